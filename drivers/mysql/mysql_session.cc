#include "drivers/mysql/mysql_session.h"

#include <cppconn/driver.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <cstdlib>
#include <mutex>

#include <fmt/format.h>

namespace safemig {
namespace {

// The Connector's driver object is created once; its first use is not thread-safe.
sql::mysql::MySQL_Driver* TheDriver() {
  static std::once_flag once;
  static sql::mysql::MySQL_Driver* driver = nullptr;
  std::call_once(once, [] { driver = sql::mysql::get_mysql_driver_instance(); });
  return driver;
}

std::string Upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

Error BadParam(const std::string& name, const std::string& value, const std::string& accepted) {
  return Error(Category::kConfig,
               fmt::format("MySQL URL parameter {}={} is not understood", name, value),
               "accepted: " + accepted + " (docs/configuration.md)");
}

// TLS and connection options from the URL's query parameters.
void AddUrlOptions(const DatabaseUrl& url, sql::ConnectOptionsMap& options) {
  bool enforce = false;
  bool verify = false;
  for (const auto& [name, value] : url.params) {
    if (name == "ssl-mode" || name == "sslmode" || name == "ssl_mode") {
      const std::string mode = Upper(value);
      if (mode == "DISABLED" || mode == "PREFERRED") {
        enforce = false;
      } else if (mode == "REQUIRED") {
        enforce = true;
      } else if (mode == "VERIFY_CA" || mode == "VERIFY_IDENTITY") {
        enforce = verify = true;
      } else {
        throw BadParam(name, value, "DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY");
      }
    } else if (name == "tls") {
      if (value == "true") {
        enforce = verify = true;
      } else if (value == "skip-verify") {
        enforce = true;
      } else if (value != "false" && value != "preferred") {
        throw BadParam(name, value, "true, false, skip-verify, preferred");
      }
    } else if (name == "ssl-ca" || name == "x-tls-ca") {
      options["sslCA"] = sql::SQLString(value);
    } else if (name == "ssl-cert" || name == "x-tls-cert") {
      options["sslCert"] = sql::SQLString(value);
    } else if (name == "ssl-key" || name == "x-tls-key") {
      options["sslKey"] = sql::SQLString(value);
    } else if (name == "ssl-cipher") {
      options["sslCipher"] = sql::SQLString(value);
    } else if (name == "x-tls-insecure-skip-verify") {
      if (value == "true") verify = false;
    } else if (name == "socket") {
      options["socket"] = sql::SQLString(value);
    } else if (name == "connect-timeout") {
      char* end = nullptr;
      long seconds = std::strtol(value.c_str(), &end, 10);
      if (end == value.c_str() || *end != '\0' || seconds <= 0) {
        throw BadParam(name, value, "a number of seconds");
      }
      options["OPT_CONNECT_TIMEOUT"] = static_cast<int>(seconds);
    } else {
      throw Error(Category::kConfig, fmt::format("unknown MySQL URL parameter \"{}\"", name),
                  "accepted: ssl-mode, ssl-ca, ssl-cert, ssl-key, ssl-cipher, tls, x-tls-ca, "
                  "x-tls-cert, x-tls-key, socket, connect-timeout");
    }
  }
  if (enforce) options["sslEnforce"] = true;
  if (verify) options["sslVerify"] = true;
}

}  // namespace

MySqlSession::MySqlSession(const DatabaseUrl& url, const std::optional<std::string>& database) {
  sql::ConnectOptionsMap options;
  options["hostName"] = sql::SQLString(url.host.empty() ? "localhost" : url.host);
  options["port"] = url.port.value_or(3306);
  options["userName"] = sql::SQLString(url.user);
  if (url.password) {
    options["password"] = sql::SQLString(*url.password);
  } else if (const char* pwd = std::getenv("MYSQL_PWD"); pwd != nullptr) {
    options["password"] = sql::SQLString(pwd);
  }
  const std::string schema = database ? *database : url.database;
  if (!schema.empty()) options["schema"] = sql::SQLString(schema);
  options["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  options["OPT_RECONNECT"] = false;
  options["CLIENT_MULTI_STATEMENTS"] = false;
  AddUrlOptions(url, options);
  DatabaseUrl shown = url;
  shown.database = schema;
  try {
    conn_.reset(TheDriver()->connect(options));
    conn_->setAutoCommit(true);
    std::unique_ptr<sql::Statement> statement(conn_->createStatement());
    std::unique_ptr<sql::ResultSet> rows(statement->executeQuery("SELECT VERSION()"));
    if (rows->next()) version_ = rows->getString(1);
  } catch (const sql::SQLException& e) {
    throw Error(Category::kConnection,
                fmt::format("cannot connect to {}: {}", shown.Redacted(), DescribeMySqlError(e)),
                "check host, port, database, user and password (URL or MYSQL_PWD), and the "
                "ssl-* parameters");
  }
  is_mariadb_ = version_.find("MariaDB") != std::string::npos;
}

MySqlSession::~MySqlSession() {
  try {
    if (conn_) conn_->close();
  } catch (...) {
    // The server drops the session with the socket anyway.
  }
}

void MySqlSession::Exec(const std::string& sql) {
  std::unique_ptr<sql::Statement> statement(conn_->createStatement());
  statement->execute(sql);
  // A statement may return rows (a CALL, a SELECT inside a migration); drain them so the
  // connection is ready for the next one.
  do {
    std::unique_ptr<sql::ResultSet> rows(statement->getResultSet());
  } while (statement->getMoreResults());
}

std::vector<MySqlRow> MySqlSession::Query(const std::string& sql) {
  std::unique_ptr<sql::Statement> statement(conn_->createStatement());
  std::unique_ptr<sql::ResultSet> rows(statement->executeQuery(sql));
  const unsigned int columns = rows->getMetaData()->getColumnCount();
  std::vector<MySqlRow> result;
  while (rows->next()) {
    MySqlRow row(columns);
    for (unsigned int i = 1; i <= columns; ++i) {
      if (!rows->isNull(i)) row[i - 1] = rows->getString(i).asStdString();
    }
    result.push_back(std::move(row));
  }
  return result;
}

std::optional<std::string> MySqlSession::Value(const std::string& sql) {
  std::vector<MySqlRow> rows = Query(sql);
  if (rows.empty() || rows[0].empty()) return std::nullopt;
  return rows[0][0];
}

void MySqlSession::Stream(const std::string& sql,
                          const std::function<void(sql::ResultSet&)>& on_row) {
  std::unique_ptr<sql::Statement> statement(conn_->createStatement());
  statement->setResultSetType(sql::ResultSet::TYPE_FORWARD_ONLY);
  std::unique_ptr<sql::ResultSet> rows(statement->executeQuery(sql));
  while (rows->next()) on_row(*rows);
}

bool IsConnectionLost(const sql::SQLException& e) {
  const int code = e.getErrorCode();
  return code == 2002 || code == 2003 || code == 2005 || code == 2006 || code == 2013 ||
         code == 2055 || code == 1927 /* ER_CONNECTION_KILLED */;
}

std::string DescribeMySqlError(const sql::SQLException& e) {
  std::string message = e.what();
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return RedactSecrets(fmt::format("{} (error {}, SQLSTATE {})", message, e.getErrorCode(),
                                   e.getSQLState()));
}

Error TranslateMySql(const sql::SQLException& e, const std::string& what) {
  const int code = e.getErrorCode();
  if (IsConnectionLost(e) || code == 1045 || code == 1044 || code == 1049) {
    return Error(Category::kConnection,
                 fmt::format("lost or refused the connection to MySQL while trying to {}: {}",
                             what, DescribeMySqlError(e)),
                 "check the server and the credentials; `safemig status` shows what was recorded");
  }
  return Error(Category::kMigrationFailed,
               fmt::format("could not {}: {}", what, DescribeMySqlError(e)));
}

std::string QuoteMySqlLiteral(std::string_view value) {
  bool plain = true;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '\\' || c == '\'') plain = false;
  }
  if (plain) return "'" + std::string(value) + "'";
  static const char* const kHex = "0123456789ABCDEF";
  std::string out = "X'";
  out.reserve(value.size() * 2 + 3);
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 0xf]);
  }
  out.push_back('\'');
  return out;
}

MySqlThreadScope::MySqlThreadScope() { TheDriver()->threadInit(); }
MySqlThreadScope::~MySqlThreadScope() { TheDriver()->threadEnd(); }

}  // namespace safemig
