// Database URLs: parsing per scheme, and the one redaction function every printer uses.
//
// Accepted forms:
//   postgres://user:pass@host:port/db?sslmode=require   (also postgresql://)
//   mysql://user:pass@host:port/db?ssl-mode=REQUIRED    (also mariadb://)
//   sqlite:path/to/file.db   sqlite:///abs/path.db   sqlite://relative/path.db
// Pure functions, thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace safemig {

enum class Engine { kPostgres, kMySql, kSqlite };

const char* EngineName(Engine engine);  // "postgres", "mysql", "sqlite"

struct DatabaseUrl {
  Engine engine = Engine::kSqlite;
  // As written, lower-cased: "postgres", "postgresql", "mysql", "mariadb", "sqlite".
  std::string scheme;
  std::string user;
  std::optional<std::string> password;  // never print; use Redacted()
  // May be empty (libpq then uses a unix socket); IPv6 without brackets; percent-decoded.
  std::string host;
  std::optional<int> port;  // 1..65535 when present
  std::string database;     // server engines: database name (percent-decoded)
  std::string path;         // sqlite: file path (may be relative to the working directory)
  std::map<std::string, std::string> params;  // query parameters, percent-decoded

  // The URL re-assembled with the password (and secret-looking params) replaced by "***".
  // Parameters come out sorted by name; parsing the result gives back every field but
  // the secrets. A present but empty password is masked too.
  std::string Redacted() const;
};

// Throws Error(kConfig) with a one-line reason for an unknown scheme (case-insensitive),
// a missing database (postgres, mysql) or sqlite path, a bad port, malformed
// percent-escapes, several hosts, a duplicated parameter. The host may be empty. The
// userinfo ends at the last '@' of the authority, so a raw '@' or ':' in a password
// works; a raw '/', '?' or '#' is reported with a request to percent-encode it. Messages
// never contain the password.
DatabaseUrl ParseDatabaseUrl(std::string_view url);

// Replaces every password in `text` by "***": the userinfo password of any
// scheme://user:pass@ URL inside the text, and the values of password=, pass=, pwd=
// and secret-like key=value pairs (URL query or libpq keyword form). Safe on any text,
// including error messages from drivers. Every printer passes text through this.
// Errs towards masking too much: a URL's userinfo runs to its last '@' (up to whitespace,
// or to the closing quote of a quoted URL), and an unquoted value runs to whitespace
// (or '&' in a query). Also masks "key": "value" (JSON) and quoted values ('a b',
// "a b"). Idempotent. Not recognised: a raw space in an unquoted URL's password.
std::string RedactSecrets(std::string_view text);

}  // namespace safemig
