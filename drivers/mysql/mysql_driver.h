// The MySQL/MariaDB driver (MySQL Connector/C++ 1.1, which links MariaDB's client library
// on Debian and talks to both servers).
//
// Owns one session to one database. Not thread-safe. MySQL commits DDL as it runs, so
// capabilities().transactional_ddl is false: every statement of a migration stays applied
// once it ran, and a failure after the first statement is Error(kNeedsPerson) naming how
// far it got (the engine then restores the backup taken before the change). The migration
// lock is GET_LOCK() keyed by the database name, released by the server when the session
// ends, however it ends.
#pragma once

#include <memory>

#include "driver/driver.h"

namespace safemig {

// REQUIRES: url.engine == Engine::kMySql. Throws Error(kConnection) when the server cannot
// be reached or refuses the login, Error(kConfig) for an unknown URL parameter.
std::unique_ptr<Driver> OpenMySqlDriver(const DatabaseUrl& url, const OpenOptions& options);

// CreateScratchDatabase for MySQL (see driver.h): a database on like's server.
std::unique_ptr<ScratchDatabase> CreateMySqlScratch(const DatabaseUrl& like);

}  // namespace safemig
