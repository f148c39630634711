// Shared by the PostgreSQL driver's files: libpq connection strings built from a
// DatabaseUrl, and raw libpq connections for COPY streaming (libpqxx 6.4 only offers
// text COPY line by line, and hides its PGconn).
//
// Not thread-safe per connection; one connection per thread.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>

#include "config/url.h"

namespace safemig {

// libpq keyword=value conninfo for `url` (host, port, dbname, user, password, and every
// URL parameter such as sslmode), with application_name=safemig unless the URL sets one.
// `database` overrides the database name when not empty. The result holds the password:
// never print it.
std::string PostgresConninfo(const DatabaseUrl& url, const std::string& database = "");

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// Connects with libpq. Throws Error(kConnection) with libpq's message (redacted) and a
// hint on failure.
PgConn ConnectLibpq(const DatabaseUrl& url, const std::string& database = "");

// Runs `sql` (one or more statements, simple protocol). Throws Error(kMigrationFailed)
// with the server's message and SQLSTATE unless the result status is COMMAND_OK or
// TUPLES_OK.
PgResult ExecLibpq(PGconn* conn, const std::string& sql);

// Quotes an identifier for SQL ("name" with doubled quotes).
std::string QuotePgIdentifier(const std::string& name);

}  // namespace safemig
