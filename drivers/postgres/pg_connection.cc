#include "drivers/postgres/pg_connection.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/sql_quote.h"

namespace safemig {
namespace {

// libpq keyword values are single-quoted with backslash escapes.
std::string ConninfoValue(const std::string& value) {
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('\'');
  return quoted;
}

}  // namespace

std::string PostgresConninfo(const DatabaseUrl& url, const std::string& database) {
  std::string conninfo;
  auto add = [&conninfo](const std::string& key, const std::string& value) {
    if (!conninfo.empty()) conninfo.push_back(' ');
    conninfo += key + "=" + ConninfoValue(value);
  };
  if (!url.host.empty()) add("host", url.host);
  if (url.port) add("port", std::to_string(*url.port));
  add("dbname", database.empty() ? url.database : database);
  if (!url.user.empty()) add("user", url.user);
  if (url.password) add("password", *url.password);
  bool has_application_name = false;
  for (const auto& [key, value] : url.params) {
    add(key, value);
    if (key == "application_name") has_application_name = true;
  }
  // So DBAs can tell safemig's sessions apart in pg_stat_activity.
  if (!has_application_name) add("application_name", "safemig");
  return conninfo;
}

PgConn ConnectLibpq(const DatabaseUrl& url, const std::string& database) {
  PgConn conn(PQconnectdb(PostgresConninfo(url, database).c_str()));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    std::string message = conn ? PQerrorMessage(conn.get()) : "out of memory";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    DatabaseUrl shown = url;
    if (!database.empty()) shown.database = database;
    throw Error(Category::kConnection,
                fmt::format("cannot connect to {}: {}", shown.Redacted(), RedactSecrets(message)),
                "check host, port, database, user and password (URL, PGPASSWORD or ~/.pgpass)");
  }
  return conn;
}

PgResult ExecLibpq(PGconn* conn, const std::string& sql) {
  PgResult result(PQexec(conn, sql.c_str()));
  ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  std::string message = result ? PQresultErrorMessage(result.get()) : PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  const char* sqlstate = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  throw Error(Category::kMigrationFailed,
              fmt::format("PostgreSQL: {}{}", RedactSecrets(message),
                          sqlstate ? fmt::format(" (SQLSTATE {})", sqlstate) : ""));
}

std::string QuotePgIdentifier(const std::string& name) { return QuoteIdentifier(name); }

}  // namespace safemig
