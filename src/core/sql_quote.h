// Quoting names for SQL text. Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace safemig {

// `name` as a double-quoted SQL identifier with embedded quotes doubled: safe for any name
// (keywords, spaces, quotes) in PostgreSQL and SQLite, and in MySQL with ANSI_QUOTES.
inline std::string QuoteIdentifier(std::string_view name) {
  std::string quoted = "\"";
  for (char c : name) {
    quoted.push_back(c);
    if (c == '"') quoted.push_back('"');
  }
  quoted.push_back('"');
  return quoted;
}

// `name` in backticks with embedded backticks doubled: MySQL's and MariaDB's quoting,
// safe for any name whatever the sql_mode.
inline std::string QuoteMySqlIdentifier(std::string_view name) {
  std::string quoted = "`";
  for (char c : name) {
    quoted.push_back(c);
    if (c == '`') quoted.push_back('`');
  }
  quoted.push_back('`');
  return quoted;
}

}  // namespace safemig
