// The PostgreSQL driver (libpqxx for statements and history, libpq for COPY).
//
// Owns one session to one database. Not thread-safe. The migration lock is a session
// advisory lock keyed by the database name, so it is released by the server when the
// session ends, however it ends. Each migration runs in one transaction with its history
// row (PostgreSQL's DDL is transactional); no-transaction migrations run statement by
// statement in autocommit. A statement that fails on lock_timeout (SQLSTATE 55P03) is
// retried with backoff a bounded number of times, each try reported.
#pragma once

#include <memory>

#include "driver/driver.h"

namespace safemig {

// REQUIRES: url.engine == Engine::kPostgres. Throws Error(kConnection) when the server
// cannot be reached or refuses the login.
std::unique_ptr<Driver> OpenPostgresDriver(const DatabaseUrl& url, const OpenOptions& options);

// CreateScratchDatabase for PostgreSQL (see driver.h): a database on like's server.
std::unique_ptr<ScratchDatabase> CreatePostgresScratch(const DatabaseUrl& like);

}  // namespace safemig
