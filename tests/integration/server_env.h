// Access to the real servers scripts/test starts (scripts/servers): PostgreSQL and
// MariaDB. Each test gets a fresh database of its own, dropped afterwards. Without the
// server's URL the test is skipped locally, and fails under CI=true: a missing server must
// never pass silently.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <random>
#include <string>

#include "config/url.h"
#include "drivers/mysql/mysql_session.h"
#include "drivers/postgres/pg_connection.h"

namespace safemig::testing {

inline bool UnderCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) != "" && std::string(ci) != "false";
}

// The admin URL of the test PostgreSQL server, or nullopt (after failing or skipping).
// `text` in single quotes for /bin/sh.
inline std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// The URL a test hands to the safemig binary: the environment variable `server_var`
// (SAFEMIG_TEST_POSTGRES_URL, SAFEMIG_TEST_MYSQL_URL) as written, with its password and
// parameters, and the database name replaced. DatabaseUrl only prints itself redacted,
// so the URL is edited as text.
inline std::string CommandLineUrl(const char* server_var, const std::string& database) {
  const char* value = std::getenv(server_var);
  std::string url = value == nullptr ? "" : value;
  size_t authority = url.find("://");
  authority = authority == std::string::npos ? 0 : authority + 3;
  // A raw '/', '?' or '#' cannot appear in the userinfo (safemig asks for percent-encoding).
  size_t path = url.find_first_of("/?#", authority);
  if (path == std::string::npos) return url + "/" + database;
  if (url[path] != '/') return url.substr(0, path) + "/" + database + url.substr(path);
  size_t rest = url.find_first_of("?#", path);
  return url.substr(0, path + 1) + database + (rest == std::string::npos ? "" : url.substr(rest));
}

inline std::optional<DatabaseUrl> PostgresServer() {
  const char* url = std::getenv("SAFEMIG_TEST_POSTGRES_URL");
  if (url == nullptr || *url == '\0') return std::nullopt;
  return ParseDatabaseUrl(url);
}

#define SAFEMIG_REQUIRE_POSTGRES(url_var)                                                   \
  auto url_var##_optional = ::safemig::testing::PostgresServer();                           \
  if (!url_var##_optional) {                                                                \
    if (::safemig::testing::UnderCi()) {                                                    \
      FAIL() << "SAFEMIG_TEST_POSTGRES_URL is not set; scripts/test starts the server";     \
    }                                                                                       \
    GTEST_SKIP() << "SAFEMIG_TEST_POSTGRES_URL is not set (run scripts/test)";              \
  }                                                                                         \
  const ::safemig::DatabaseUrl url_var = *url_var##_optional

// A database created for one test and dropped (with its connections) at the end.
class ScratchPostgresDatabase {
 public:
  explicit ScratchPostgresDatabase(const DatabaseUrl& server) : server_(server) {
    std::random_device random;
    name_ = "safemig_it_" + std::to_string(random()) + std::to_string(random());
    PgConn admin = ConnectLibpq(server_);
    ExecLibpq(admin.get(), "CREATE DATABASE " + name_);
    url_ = server_;
    url_.database = name_;
  }
  ~ScratchPostgresDatabase() {
    try {
      PgConn admin = ConnectLibpq(server_);
      ExecLibpq(admin.get(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {
    }
  }
  ScratchPostgresDatabase(const ScratchPostgresDatabase&) = delete;
  ScratchPostgresDatabase& operator=(const ScratchPostgresDatabase&) = delete;

  const DatabaseUrl& url() const { return url_; }
  const std::string& name() const { return name_; }

  // Runs SQL in this database (simple protocol; several statements allowed).
  void Exec(const std::string& sql) const {
    PgConn conn = ConnectLibpq(url_);
    ExecLibpq(conn.get(), sql);
  }

 private:
  DatabaseUrl server_;
  DatabaseUrl url_;
  std::string name_;
};

// The admin URL of the test MariaDB/MySQL server, or nullopt.
inline std::optional<DatabaseUrl> MySqlServer() {
  const char* url = std::getenv("SAFEMIG_TEST_MYSQL_URL");
  if (url == nullptr || *url == '\0') return std::nullopt;
  return ParseDatabaseUrl(url);
}

#define SAFEMIG_REQUIRE_MYSQL(url_var)                                                      \
  auto url_var##_optional = ::safemig::testing::MySqlServer();                              \
  if (!url_var##_optional) {                                                                \
    if (::safemig::testing::UnderCi()) {                                                    \
      FAIL() << "SAFEMIG_TEST_MYSQL_URL is not set; scripts/test starts the server";        \
    }                                                                                       \
    GTEST_SKIP() << "SAFEMIG_TEST_MYSQL_URL is not set (run scripts/test)";                 \
  }                                                                                         \
  const ::safemig::DatabaseUrl url_var = *url_var##_optional

// A MySQL database created for one test and dropped at the end.
class ScratchMySqlDatabase {
 public:
  explicit ScratchMySqlDatabase(const DatabaseUrl& server) : server_(server) {
    std::random_device random;
    name_ = "safemig_it_" + std::to_string(random()) + std::to_string(random());
    MySqlSession admin(server_, std::string());
    admin.Exec("CREATE DATABASE " + name_ + " CHARACTER SET utf8mb4");
    url_ = server_;
    url_.database = name_;
  }
  ~ScratchMySqlDatabase() {
    try {
      MySqlSession admin(server_, std::string());
      admin.Exec("DROP DATABASE IF EXISTS " + name_);
    } catch (...) {
    }
  }
  ScratchMySqlDatabase(const ScratchMySqlDatabase&) = delete;
  ScratchMySqlDatabase& operator=(const ScratchMySqlDatabase&) = delete;

  const DatabaseUrl& url() const { return url_; }
  const std::string& name() const { return name_; }

  // Runs one statement in this database.
  void Exec(const std::string& sql) const {
    MySqlSession session(url_);
    session.Exec(sql);
  }
  std::vector<MySqlRow> Query(const std::string& sql) const {
    MySqlSession session(url_);
    return session.Query(sql);
  }

 private:
  DatabaseUrl server_;
  DatabaseUrl url_;
  std::string name_;
};

}  // namespace safemig::testing
