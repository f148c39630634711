// Shared by the MySQL/MariaDB driver's files: one Connector/C++ 1.1 connection built from
// a DatabaseUrl, with the few query shapes the driver needs, and the translation of
// sql::SQLException into safemig::Error.
//
// URL parameters understood (names the mariadb/mysql clients and golang-migrate use):
//   ssl-mode=DISABLED|PREFERRED|REQUIRED|VERIFY_CA|VERIFY_IDENTITY
//   ssl-ca=PATH  ssl-cert=PATH  ssl-key=PATH  ssl-cipher=LIST
//   tls=true|false|skip-verify|preferred   x-tls-ca / x-tls-cert / x-tls-key (golang-migrate)
//   socket=PATH  connect-timeout=SECONDS
// The password comes from the URL, else from MYSQL_PWD as the mariadb client reads it.
//
// One MySqlSession per thread; a session is not thread-safe.
#pragma once

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/url.h"
#include "core/error.h"
#include "core/sql_quote.h"  // QuoteMySqlIdentifier

namespace safemig {

using MySqlRow = std::vector<std::optional<std::string>>;

class MySqlSession {
 public:
  // Connects to `url`'s server, using `database` instead of url.database when given
  // ("" connects without a default database). Throws Error(kConnection) with a redacted
  // message and a hint, Error(kConfig) for an unknown or malformed URL parameter.
  explicit MySqlSession(const DatabaseUrl& url,
                        const std::optional<std::string>& database = std::nullopt);
  ~MySqlSession();
  MySqlSession(const MySqlSession&) = delete;
  MySqlSession& operator=(const MySqlSession&) = delete;

  // These throw sql::SQLException; callers translate with TranslateMySql() at their edge.
  void Exec(const std::string& sql);
  std::vector<MySqlRow> Query(const std::string& sql);
  // First column of the first row; nullopt for no row or NULL.
  std::optional<std::string> Value(const std::string& sql);
  // Streams the rows of `sql` one at a time (forward-only, unbuffered: memory stays bounded
  // whatever the result size). The session can run nothing else until it returns.
  void Stream(const std::string& sql, const std::function<void(sql::ResultSet&)>& on_row);

  sql::Connection& connection() { return *conn_; }
  // "10.11.19-MariaDB-0+deb12u1"
  const std::string& version() const { return version_; }
  bool is_mariadb() const { return is_mariadb_; }

 private:
  std::unique_ptr<sql::Connection> conn_;
  std::string version_;
  bool is_mariadb_ = false;
};

// The error for a failed `what` ("read the history", ...): kConnection when the server is
// gone or refused us, kMigrationFailed otherwise; the server's message, error number and
// SQLSTATE, with secrets redacted.
Error TranslateMySql(const sql::SQLException& e, const std::string& what);
// True for client-side errors that mean the connection is gone (2006, 2013, ...).
bool IsConnectionLost(const sql::SQLException& e);
// "message (error 1146, SQLSTATE 42S02)", redacted.
std::string DescribeMySqlError(const sql::SQLException& e);

// Runs fn(), translating a sql::SQLException into TranslateMySql(e, what).
template <typename Fn>
auto GuardMySql(const std::string& what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const sql::SQLException& e) {
    throw TranslateMySql(e, what);
  }
}

// `value` as a SQL string literal that means the same bytes under every sql_mode
// (backslash escapes or not): '' when empty, otherwise a hex literal X'...' for bytes that
// are not plain printable ASCII, '...' for the rest. Safe for any bytes.
std::string QuoteMySqlLiteral(std::string_view value);

// Connector/C++ needs each thread that uses a connection to announce itself.
class MySqlThreadScope {
 public:
  MySqlThreadScope();
  ~MySqlThreadScope();
  MySqlThreadScope(const MySqlThreadScope&) = delete;
  MySqlThreadScope& operator=(const MySqlThreadScope&) = delete;
};

}  // namespace safemig
