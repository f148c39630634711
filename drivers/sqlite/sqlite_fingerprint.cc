#include "drivers/sqlite/sqlite_fingerprint.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backup/stream.h"
#include "core/error.h"
#include "core/sql_quote.h"

namespace safemig {
namespace {

// ---------------------------------------------------------------------------------------
// Names


// For fingerprint lines: bare when a plain word, so lines stay readable, quoted otherwise
// so a name holding " | " or ", " cannot be mistaken for line structure.
std::string ShowName(std::string_view name) {
  const bool plain =
      !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
      std::all_of(name.begin(), name.end(),
                  [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
  return plain ? std::string(name) : QuoteIdentifier(name);
}

// SQLite compares names case-insensitively for ASCII letters only.
std::string LowerAscii(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

std::string UpperAscii(std::string_view text) {
  std::string upper(text);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return upper;
}

// REQUIRES: `prefix` is lower-case.
bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && LowerAscii(text.substr(0, prefix.size())) == prefix;
}

// ---------------------------------------------------------------------------------------
// SQL text
//
// sqlite_master keeps each object's SQL as it was written. Only a tokenizer is needed to
// compare it fairly: whitespace and comments between tokens collapse to one space, quoted
// text is kept byte for byte, and constraint clauses are found at parenthesis depth 0.

struct Token {
  std::string_view text;
  bool space_before = false;  // whitespace or a comment separated it from the previous one
};

bool IsWordByte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return std::isalnum(byte) || c == '_' || c == '$' || byte >= 0x80;
}

std::vector<Token> Tokenize(std::string_view sql) {
  std::vector<Token> tokens;
  bool space = false;
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    const char next = i + 1 < sql.size() ? sql[i + 1] : '\0';
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      ++i;
      continue;
    }
    if (c == '-' && next == '-') {
      const std::size_t newline = sql.find('\n', i);
      i = newline == std::string_view::npos ? sql.size() : newline + 1;
      space = true;
      continue;
    }
    if (c == '/' && next == '*') {
      const std::size_t close = sql.find("*/", i + 2);
      i = close == std::string_view::npos ? sql.size() : close + 2;
      space = true;
      continue;
    }
    std::size_t end = i + 1;
    if (c == '\'' || c == '"' || c == '`') {
      // A doubled quote is an escaped quote inside the same token.
      while (end < sql.size()) {
        if (sql[end] == c) {
          if (end + 1 < sql.size() && sql[end + 1] == c) {
            end += 2;
            continue;
          }
          ++end;
          break;
        }
        ++end;
      }
    } else if (c == '[') {
      const std::size_t close = sql.find(']', i + 1);
      end = close == std::string_view::npos ? sql.size() : close + 1;
    } else if (IsWordByte(c)) {
      while (end < sql.size() && IsWordByte(sql[end])) ++end;
    }
    tokens.push_back(Token{sql.substr(i, end - i), space});
    space = false;
    i = end;
  }
  return tokens;
}

// Tokens [begin, end) as text, with one space wherever the original had any separation.
std::string Join(const std::vector<Token>& tokens, std::size_t begin, std::size_t end) {
  std::string text;
  for (std::size_t i = begin; i < end && i < tokens.size(); ++i) {
    if (i > begin && tokens[i].space_before) text.push_back(' ');
    text.append(tokens[i].text);
  }
  return text;
}

std::string NormaliseSql(std::string_view sql) {
  const std::vector<Token> tokens = Tokenize(sql);
  return Join(tokens, 0, tokens.size());
}

// A declared type upper-cased, with spaces kept only between words: "varchar( 10 )" and
// "VARCHAR(10)" are the same type to SQLite.
std::string CanonicalType(std::string_view type) {
  const std::vector<Token> tokens = Tokenize(type);
  std::string text;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0 && tokens[i].space_before && IsWordByte(tokens[i - 1].text.back()) &&
        IsWordByte(tokens[i].text.front())) {
      text.push_back(' ');
    }
    text.append(tokens[i].text);
  }
  return UpperAscii(text);
}

// Quoted tokens start with their quote character, so they never match a keyword.
bool IsKeyword(const Token& token, std::string_view keyword) {
  return token.text.size() == keyword.size() && UpperAscii(token.text) == keyword;
}

bool IsAnyKeyword(const Token& token, std::initializer_list<std::string_view> keywords) {
  return std::any_of(keywords.begin(), keywords.end(),
                     [&](std::string_view keyword) { return IsKeyword(token, keyword); });
}

// The index of the ")" closing the "(" at `open`, or tokens.size() if it is never closed.
std::size_t MatchingParen(const std::vector<Token>& tokens, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < tokens.size(); ++i) {
    if (tokens[i].text == "(") {
      ++depth;
    } else if (tokens[i].text == ")" && --depth == 0) {
      return i;
    }
  }
  return tokens.size();
}

// [begin, end) split at commas outside parentheses.
std::vector<std::pair<std::size_t, std::size_t>> SplitAtCommas(const std::vector<Token>& tokens,
                                                               std::size_t begin, std::size_t end) {
  std::vector<std::pair<std::size_t, std::size_t>> parts;
  std::size_t start = begin;
  for (std::size_t i = begin; i < end; ++i) {
    if (tokens[i].text == "(") {
      i = MatchingParen(tokens, i);
    } else if (tokens[i].text == ",") {
      parts.emplace_back(start, i);
      start = i + 1;
    }
  }
  if (start < end) parts.emplace_back(start, end);
  return parts;
}

std::string Unquote(std::string_view token) {
  if (token.size() >= 2 && token.front() == '[' && token.back() == ']') {
    return std::string(token.substr(1, token.size() - 2));
  }
  if (token.size() >= 2 &&
      (token.front() == '"' || token.front() == '`' || token.front() == '\'') &&
      token.back() == token.front()) {
    std::string name;
    for (std::size_t i = 1; i + 1 < token.size(); ++i) {
      name.push_back(token[i]);
      if (token[i] == token.front()) ++i;  // the second of a doubled quote
    }
    return name;
  }
  return std::string(token);
}

// The index just after the object's name in "CREATE [TEMP] [UNIQUE|VIRTUAL] {TABLE|INDEX|
// VIEW|TRIGGER} [IF NOT EXISTS] [schema.]name ...", or nullopt if the text is not shaped
// like that.
std::optional<std::size_t> AfterName(const std::vector<Token>& tokens) {
  std::size_t i = 0;
  if (tokens.empty() || !IsKeyword(tokens[0], "CREATE")) return std::nullopt;
  ++i;
  while (i < tokens.size() && IsAnyKeyword(tokens[i], {"TEMP", "TEMPORARY", "UNIQUE", "VIRTUAL"})) {
    ++i;
  }
  if (i >= tokens.size() || !IsAnyKeyword(tokens[i], {"TABLE", "INDEX", "VIEW", "TRIGGER"})) {
    return std::nullopt;
  }
  ++i;
  if (i + 2 < tokens.size() && IsKeyword(tokens[i], "IF") && IsKeyword(tokens[i + 1], "NOT") &&
      IsKeyword(tokens[i + 2], "EXISTS")) {
    i += 3;
  }
  if (i >= tokens.size()) return std::nullopt;
  ++i;
  if (i + 1 < tokens.size() && tokens[i].text == ".") i += 2;
  return i;
}

// What only a table's CREATE TABLE text says; PRAGMA table_xinfo reports the rest.
struct ColumnSql {
  std::string collation;  // upper-cased; empty when not declared
  std::string generated;  // "(expr)" of GENERATED ALWAYS AS
  bool autoincrement = false;
};

struct TableSql {
  std::map<std::string, ColumnSql> columns;  // by lower-cased column name
  std::vector<std::string> checks;           // "check (expr)" or "check NAME (expr)"
  std::vector<std::string> options;          // "without rowid", "strict"
};

// Scans a column definition (column != nullptr) or a table constraint for the clauses
// that only the SQL text records.
void ScanConstraints(const std::vector<Token>& tokens, std::size_t begin, std::size_t end,
                     ColumnSql* column, std::vector<std::string>& checks) {
  std::string check_name;
  for (std::size_t i = begin; i < end;) {
    const Token& token = tokens[i];
    const bool group_follows = i + 1 < end && tokens[i + 1].text == "(";
    if (token.text == "(") {
      // Type arguments, DEFAULT (expr), REFERENCES t(cols), key column lists.
      i = MatchingParen(tokens, i) + 1;
    } else if (IsKeyword(token, "CONSTRAINT") && i + 2 < end && IsKeyword(tokens[i + 2], "CHECK")) {
      // A constraint name shows in the error message a violation raises.
      check_name = Unquote(tokens[i + 1].text);
      i += 2;
    } else if (IsKeyword(token, "CHECK") && group_follows) {
      const std::size_t close = MatchingParen(tokens, i + 1);
      checks.push_back("check " + (check_name.empty() ? "" : ShowName(check_name) + " ") +
                       Join(tokens, i + 1, close + 1));
      check_name.clear();
      i = close + 1;
    } else if (column != nullptr && IsKeyword(token, "COLLATE") && i + 1 < end) {
      column->collation = UpperAscii(Unquote(tokens[i + 1].text));
      i += 2;
    } else if (column != nullptr && IsKeyword(token, "AS") && group_follows) {
      const std::size_t close = MatchingParen(tokens, i + 1);
      column->generated = Join(tokens, i + 1, close + 1);
      i = close + 1;
    } else {
      if (column != nullptr && IsKeyword(token, "AUTOINCREMENT")) column->autoincrement = true;
      ++i;
    }
  }
}

TableSql ParseCreateTable(std::string_view sql) {
  TableSql table;
  const std::vector<Token> tokens = Tokenize(sql);
  const std::optional<std::size_t> open = AfterName(tokens);
  if (!open || *open >= tokens.size() || tokens[*open].text != "(") return table;
  const std::size_t close = MatchingParen(tokens, *open);
  for (const auto& [begin, end] : SplitAtCommas(tokens, *open + 1, close)) {
    if (begin >= end) continue;
    if (IsAnyKeyword(tokens[begin], {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"})) {
      ScanConstraints(tokens, begin, end, nullptr, table.checks);
    } else {
      ColumnSql& column = table.columns[LowerAscii(Unquote(tokens[begin].text))];
      ScanConstraints(tokens, begin + 1, end, &column, table.checks);
    }
  }
  if (close < tokens.size()) {
    for (const auto& [begin, end] : SplitAtCommas(tokens, close + 1, tokens.size())) {
      table.options.push_back(LowerAscii(Join(tokens, begin, end)));
    }
  }
  return table;
}

// The SQL of a view, trigger or virtual table after its name: the part that says what it
// does, without the name's quoting or IF NOT EXISTS.
std::string BodyAfterName(std::string_view sql, bool drop_as) {
  const std::vector<Token> tokens = Tokenize(sql);
  std::optional<std::size_t> start = AfterName(tokens);
  if (!start) return Join(tokens, 0, tokens.size());
  if (drop_as && *start < tokens.size() && IsKeyword(tokens[*start], "AS")) ++*start;
  return Join(tokens, *start, tokens.size());
}

struct IndexSql {
  std::vector<std::string> columns;  // each key column's text, without ASC/DESC or COLLATE
  std::string where;                 // of a partial index
};

IndexSql ParseCreateIndex(std::string_view sql) {
  IndexSql index;
  const std::vector<Token> tokens = Tokenize(sql);
  const std::optional<std::size_t> after_name = AfterName(tokens);
  if (!after_name) return index;
  std::size_t open = *after_name;
  while (open < tokens.size() && tokens[open].text != "(") ++open;
  if (open >= tokens.size()) return index;
  const std::size_t close = MatchingParen(tokens, open);
  for (auto [begin, end] : SplitAtCommas(tokens, open + 1, close)) {
    // PRAGMA index_xinfo reports direction and collation; only the expression is needed.
    if (end > begin + 1 && IsAnyKeyword(tokens[end - 1], {"ASC", "DESC"})) --end;
    if (end > begin + 2 && IsKeyword(tokens[end - 2], "COLLATE")) end -= 2;
    index.columns.push_back(Join(tokens, begin, end));
  }
  if (close + 1 < tokens.size() && IsKeyword(tokens[close + 1], "WHERE")) {
    index.where = Join(tokens, close + 2, tokens.size());
  }
  return index;
}

// ---------------------------------------------------------------------------------------
// Reading the schema

struct SchemaRow {
  std::string type;
  std::string name;
  std::string table;  // tbl_name: the table an index or trigger belongs to
  std::string sql;    // empty for the indexes SQLite creates itself
};

struct ColumnInfo {
  std::string name;
  std::string type;
  bool not_null = false;
  std::optional<std::string> default_sql;
  int pk = 0;      // position in the primary key, 0 if not part of it
  int hidden = 0;  // 0 normal, 1 hidden (virtual tables), 2 generated virtual, 3 stored
};

std::vector<SchemaRow> ReadSchema(SQLite::Database& db) {
  std::vector<SchemaRow> rows;
  SQLite::Statement query(db, "SELECT type, name, tbl_name, sql FROM main.sqlite_master");
  while (query.executeStep()) {
    SchemaRow row;
    row.type = query.getColumn(0).getString();
    row.name = query.getColumn(1).getString();
    row.table = query.getColumn(2).getString();
    if (!query.getColumn(3).isNull()) row.sql = query.getColumn(3).getString();
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<ColumnInfo> ReadColumns(SQLite::Database& db, const std::string& table) {
  std::vector<ColumnInfo> columns;
  SQLite::Statement query(db,
                          "SELECT name, type, \"notnull\", dflt_value, pk, hidden "
                          "FROM pragma_table_xinfo(?, 'main') ORDER BY cid");
  query.bind(1, table);
  while (query.executeStep()) {
    ColumnInfo column;
    column.name = query.getColumn(0).getString();
    column.type = CanonicalType(query.getColumn(1).getString());
    column.not_null = query.getColumn(2).getInt() != 0;
    if (!query.getColumn(3).isNull()) {
      column.default_sql = NormaliseSql(query.getColumn(3).getString());
    }
    column.pk = query.getColumn(4).getInt();
    column.hidden = query.getColumn(5).getInt();
    columns.push_back(std::move(column));
  }
  return columns;
}

std::string ColumnItem(const ColumnInfo& column, const TableSql& sql) {
  std::string item = fmt::format("column {} {} pk={} notnull={} default={}", ShowName(column.name),
                                 column.type.empty() ? "(no type)" : column.type, column.pk,
                                 column.not_null ? 1 : 0, column.default_sql.value_or("NULL"));
  auto parsed = sql.columns.find(LowerAscii(column.name));
  if (parsed != sql.columns.end()) {
    // BINARY is the default, so declaring it changes nothing.
    const std::string& collation = parsed->second.collation;
    if (!collation.empty() && collation != "BINARY") item += " collate=" + collation;
    if (column.hidden == 2 || column.hidden == 3) {
      item += fmt::format(" generated={} {}", column.hidden == 3 ? "stored" : "virtual",
                          parsed->second.generated);
    }
    if (parsed->second.autoincrement) item += " autoincrement";
  }
  return item;
}

std::vector<std::string> ForeignKeyItems(SQLite::Database& db, const std::string& table) {
  struct ForeignKey {
    std::string parent;
    std::vector<std::string> from;
    std::vector<std::string> to;
    std::string on_update;
    std::string on_delete;
    std::string match;
  };
  std::map<int, ForeignKey> keys;
  SQLite::Statement query(db,
                          "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete, \"match\" "
                          "FROM pragma_foreign_key_list(?, 'main') ORDER BY id, seq");
  query.bind(1, table);
  while (query.executeStep()) {
    ForeignKey& key = keys[query.getColumn(0).getInt()];
    key.parent = query.getColumn(1).getString();
    key.from.push_back(ShowName(query.getColumn(2).getString()));
    // NULL when the key refers to the parent's primary key without naming its columns.
    if (!query.getColumn(3).isNull()) key.to.push_back(ShowName(query.getColumn(3).getString()));
    key.on_update = query.getColumn(4).getString();
    key.on_delete = query.getColumn(5).getString();
    key.match = query.getColumn(6).getString();
  }
  std::vector<std::string> items;
  items.reserve(keys.size());
  for (const auto& [id, key] : keys) {
    items.push_back(fmt::format("fk ({}) references {}{} on_update={} on_delete={} match={}",
                                fmt::join(key.from, ", "), ShowName(key.parent),
                                key.to.empty() ? "" : fmt::format(" ({})", fmt::join(key.to, ", ")),
                                key.on_update, key.on_delete, key.match));
  }
  // Sorted, because the pragma numbers keys in declaration order.
  std::sort(items.begin(), items.end());
  return items;
}

void AddIndexes(SQLite::Database& db, const std::string& table,
                const std::map<std::string, std::string>& index_sql, Fingerprint& fingerprint) {
  struct IndexEntry {
    std::string name;
    bool unique = false;
    std::string origin;
  };
  std::vector<IndexEntry> entries;
  {
    SQLite::Statement list(db, "SELECT name, \"unique\", origin FROM pragma_index_list(?, 'main')");
    list.bind(1, table);
    while (list.executeStep()) {
      entries.push_back(IndexEntry{list.getColumn(0).getString(), list.getColumn(1).getInt() != 0,
                                   list.getColumn(2).getString()});
    }
  }
  for (const IndexEntry& entry : entries) {
    auto sql_it = index_sql.find(entry.name);
    const IndexSql sql = sql_it == index_sql.end() ? IndexSql{} : ParseCreateIndex(sql_it->second);
    std::vector<std::string> names;  // plain column names, for constraint indexes' keys
    std::vector<std::string> keys;   // with direction and collation
    SQLite::Statement info(db,
                           "SELECT cid, name, \"desc\", coll FROM pragma_index_xinfo(?, 'main') "
                           "WHERE key ORDER BY seqno");
    info.bind(1, entry.name);
    while (info.executeStep()) {
      const int cid = info.getColumn(0).getInt();
      std::string text;
      if (cid == -2) {
        // An expression: only the CREATE INDEX text has it.
        text = keys.size() < sql.columns.size() ? sql.columns[keys.size()] : "(expression)";
      } else if (cid == -1) {
        text = "rowid";
      } else {
        text = ShowName(info.getColumn(1).getString());
      }
      names.push_back(text);
      text += info.getColumn(2).getInt() != 0 ? " DESC" : " ASC";
      const std::string collation = UpperAscii(info.getColumn(3).getString());
      if (!collation.empty() && collation != "BINARY") text += " COLLATE " + collation;
      keys.push_back(std::move(text));
    }
    const std::string key_list = fmt::format("{}", fmt::join(keys, ", "));
    if (entry.origin == "c") {
      const std::string key = "index " + ShowName(entry.name);
      fingerprint.objects[key] = fmt::format("{}: on {} ({}){}{}", key, ShowName(table), key_list,
                                             entry.unique ? " unique" : "",
                                             sql.where.empty() ? "" : " where " + sql.where);
      continue;
    }
    // The index behind a PRIMARY KEY or UNIQUE constraint is named after what it covers,
    // since its sqlite_autoindex_T_N name only counts constraints in declaration order.
    std::string key = fmt::format("{} on {} ({})", entry.origin == "pk" ? "primary key" : "unique",
                                  ShowName(table), fmt::join(names, ", "));
    for (int copy = 2; fingerprint.objects.count(key) != 0; ++copy) {
      key = fmt::format("{} on {} ({}) #{}", entry.origin == "pk" ? "primary key" : "unique",
                        ShowName(table), fmt::join(names, ", "), copy);
    }
    fingerprint.objects[key] = fmt::format("{}: {}", key, key_list);
  }
}

// ---------------------------------------------------------------------------------------
// Hashing the data
//
// The rows of a table are fed to SHA-256 one after another, each as its values in the
// order of the column names (so a column reordering leaves the data hash alone; the
// "columns" line reports it). Generated columns are left out: the schema determines them.
// Each value is one tag byte and its payload:
//   'N'                                  NULL
//   'I' + 8 bytes big-endian             INTEGER (two's complement)
//   'R' + 8 bytes big-endian             REAL (the IEEE-754 bit pattern, exact)
//   'T' + 8-byte big-endian length + bytes   TEXT (as stored, UTF-8)
//   'B' + 8-byte big-endian length + bytes   BLOB
// Every row of a table has the same number of values, so the stream parses one way only,
// and 1, 1.0, '1' and X'31' all hash differently, as do NULL and ''.

void AppendU64(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xffU));
  }
}

void AppendValue(std::string& out, const SQLite::Column& value) {
  switch (value.getType()) {
    case SQLITE_INTEGER:
      out.push_back('I');
      AppendU64(out, static_cast<std::uint64_t>(value.getInt64()));
      break;
    case SQLITE_FLOAT: {
      out.push_back('R');
      const double real = value.getDouble();
      std::uint64_t bits = 0;
      static_assert(sizeof(bits) == sizeof(real), "REAL is a 64-bit IEEE-754 double");
      std::memcpy(&bits, &real, sizeof(bits));
      AppendU64(out, bits);
      break;
    }
    case SQLITE_TEXT: {
      out.push_back('T');
      // getText() before getBytes(): SQLite sizes the value in the form last asked for.
      const char* text = value.getText();
      const auto size = static_cast<std::size_t>(value.getBytes());
      AppendU64(out, size);
      out.append(text, size);
      break;
    }
    case SQLITE_BLOB: {
      out.push_back('B');
      const void* blob = value.getBlob();
      const auto size = static_cast<std::size_t>(value.getBytes());
      AppendU64(out, size);
      if (size > 0) out.append(static_cast<const char*>(blob), size);
      break;
    }
    default:
      out.push_back('N');
      break;
  }
}

// Streams the rows of `query` into a hash. `keep`, when given, filters rows by their
// first column (for sqlite_sequence).
TableData HashRows(SQLite::Statement& query, const std::set<std::string>* keep = nullptr) {
  Sha256 sha;
  TableData data;
  std::string row;
  const int count = query.getColumnCount();
  while (query.executeStep()) {
    if (keep != nullptr && keep->count(query.getColumn(0).getString()) == 0) continue;
    row.clear();
    for (int i = 0; i < count; ++i) AppendValue(row, query.getColumn(i));
    sha.Update(row.data(), row.size());
    ++data.rows;
  }
  data.content_sha256 = sha.HexDigest();
  return data;
}

// The order rows are hashed in, which must not depend on how SQLite happens to scan.
std::string RowOrder(const std::vector<ColumnInfo>& columns, bool without_rowid,
                     const std::vector<const ColumnInfo*>& data_columns) {
  std::vector<std::string> terms;
  if (without_rowid) {
    // The primary key is unique under its own collations, so it orders every row.
    std::vector<const ColumnInfo*> key;
    for (const ColumnInfo& column : columns) {
      if (column.pk > 0) key.push_back(&column);
    }
    std::sort(key.begin(), key.end(),
              [](const ColumnInfo* a, const ColumnInfo* b) { return a->pk < b->pk; });
    for (const ColumnInfo* column : key) terms.push_back(QuoteIdentifier(column->name));
  } else {
    std::set<std::string> names;
    for (const ColumnInfo& column : columns) names.insert(LowerAscii(column.name));
    // A column may take a rowid alias's name, and then the alias means the column.
    for (const char* alias : {"rowid", "_rowid_", "oid"}) {
      if (names.count(alias) == 0) return alias;
    }
    // All three aliases are taken, so the rowid cannot be named: order by every value,
    // type first and text by bytes, so rows that tie also serialise alike (0.0 and -0.0
    // aside).
    for (const ColumnInfo* column : data_columns) {
      const std::string name = QuoteIdentifier(column->name);
      terms.push_back(fmt::format("typeof({0}), {0} COLLATE BINARY", name));
    }
  }
  return fmt::format("{}", fmt::join(terms, ", "));
}

TableData HashTable(SQLite::Database& db, const std::string& table,
                    const std::vector<ColumnInfo>& columns, bool without_rowid) {
  std::vector<const ColumnInfo*> data_columns;
  for (const ColumnInfo& column : columns) {
    if (column.hidden == 0) data_columns.push_back(&column);
  }
  std::sort(data_columns.begin(), data_columns.end(),
            [](const ColumnInfo* a, const ColumnInfo* b) { return a->name < b->name; });
  std::vector<std::string> select;
  select.reserve(data_columns.size());
  for (const ColumnInfo* column : data_columns) select.push_back(QuoteIdentifier(column->name));
  std::string sql =
      fmt::format("SELECT {} FROM main.{}", fmt::join(select, ", "), QuoteIdentifier(table));
  const std::string order = RowOrder(columns, without_rowid, data_columns);
  if (!order.empty()) sql += " ORDER BY " + order;
  SQLite::Statement query(db, sql);
  return HashRows(query);
}

// ---------------------------------------------------------------------------------------

// The exact row count of `table` with an empty content hash (FingerprintDepth::kRowCounts).
TableData CountTable(SQLite::Database& db, const std::string& table) {
  TableData data;
  data.rows = db.execAndGet("SELECT count(*) FROM main." + QuoteIdentifier(table)).getInt64();
  return data;
}

Fingerprint Collect(SQLite::Database& db, bool include_metadata, FingerprintDepth depth,
                    const TableFilter& read_in_full) {
  auto in_full = [&](const std::string& key) { return ReadsInFull(depth, read_in_full, key); };
  const std::vector<SchemaRow> schema = ReadSchema(db);
  auto excluded = [&](const std::string& table) {
    return StartsWithNoCase(table, "sqlite_") ||
           (!include_metadata && StartsWithNoCase(table, "safemig_"));
  };
  std::map<std::string, std::string> index_sql;
  bool has_sequence = false;
  for (const SchemaRow& row : schema) {
    if (row.type == "index" && !row.sql.empty()) index_sql[row.name] = row.sql;
    if (row.type == "table" && row.name == "sqlite_sequence") has_sequence = true;
  }

  Fingerprint fingerprint;
  std::set<std::string> fingerprinted_tables;
  for (const SchemaRow& row : schema) {
    if (excluded(row.table)) continue;
    if (row.type == "view") {
      const std::string key = "view " + ShowName(row.name);
      fingerprint.objects[key] = key + ": " + BodyAfterName(row.sql, /*drop_as=*/true);
    } else if (row.type == "trigger") {
      const std::string key = "trigger " + ShowName(row.name);
      fingerprint.objects[key] = key + ": " + BodyAfterName(row.sql, /*drop_as=*/false);
    } else if (row.type == "table" && StartsWithNoCase(row.sql, "create virtual table")) {
      // Its content lives in shadow tables, which are ordinary tables fingerprinted on
      // their own; reading the virtual table would need its module loaded.
      const std::string key = "virtual table " + ShowName(row.name);
      fingerprint.objects[key] = key + ": " + BodyAfterName(row.sql, /*drop_as=*/false);
    } else if (row.type == "table") {
      const std::vector<ColumnInfo> columns = ReadColumns(db, row.name);
      const TableSql sql = ParseCreateTable(row.sql);
      const std::string shown = ShowName(row.name);

      std::vector<const ColumnInfo*> by_name;
      by_name.reserve(columns.size());
      for (const ColumnInfo& column : columns) by_name.push_back(&column);
      std::sort(by_name.begin(), by_name.end(),
                [](const ColumnInfo* a, const ColumnInfo* b) { return a->name < b->name; });
      std::vector<std::string> items;
      items.reserve(by_name.size() + sql.checks.size() + sql.options.size());
      for (const ColumnInfo* column : by_name) items.push_back(ColumnItem(*column, sql));
      std::vector<std::string> checks = sql.checks;
      std::sort(checks.begin(), checks.end());
      items.insert(items.end(), checks.begin(), checks.end());
      const std::vector<std::string> foreign_keys = ForeignKeyItems(db, row.name);
      items.insert(items.end(), foreign_keys.begin(), foreign_keys.end());
      std::vector<std::string> options = sql.options;
      std::sort(options.begin(), options.end());
      items.insert(items.end(), options.begin(), options.end());
      fingerprint.objects["table " + shown] =
          fmt::format("table {}: {}", shown, fmt::join(items, " | "));

      std::vector<std::string> declared;
      declared.reserve(columns.size());
      for (const ColumnInfo& column : columns) declared.push_back(ShowName(column.name));
      fingerprint.objects["columns " + shown] =
          fmt::format("columns {}: {}", shown, fmt::join(declared, ", "));

      AddIndexes(db, row.name, index_sql, fingerprint);
      const bool without_rowid =
          std::find(sql.options.begin(), sql.options.end(), "without rowid") != sql.options.end();
      if (in_full(row.name)) {
        fingerprint.tables[row.name] = HashTable(db, row.name, columns, without_rowid);
      } else if (depth == FingerprintDepth::kRowCounts) {
        fingerprint.tables[row.name] = CountTable(db, row.name);
      }
      fingerprinted_tables.insert(row.name);
    }
  }

  if (has_sequence && (depth != FingerprintDepth::kSchema || in_full("sqlite_sequence"))) {
    // The next AUTOINCREMENT id is data a restore must bring back. An empty result is
    // left out: SQLite keeps sqlite_sequence after the last such table is dropped, and
    // that should not read as a difference.
    SQLite::Statement query(db, "SELECT name, seq FROM main.sqlite_sequence ORDER BY name, seq");
    TableData sequence = HashRows(query, &fingerprinted_tables);
    // A few rows, cheap to hash; left unhashed like the tables unless read in full.
    if (!in_full("sqlite_sequence")) sequence.content_sha256.clear();
    if (sequence.rows > 0) fingerprint.tables["sqlite_sequence"] = std::move(sequence);
  }
  return fingerprint;
}

}  // namespace

Fingerprint FingerprintSqlite(SQLite::Database& db, bool include_metadata,
                              FingerprintDepth depth, const TableFilter& read_in_full) {
  try {
    // A deferred transaction takes its read snapshot at the first SELECT and writes
    // nothing. Inside the caller's transaction a BEGIN would fail, and that transaction
    // is already one consistent view.
    std::optional<SQLite::Transaction> transaction;
    if (sqlite3_get_autocommit(db.getHandle()) != 0) {
      transaction.emplace(db, SQLite::TransactionBehavior::DEFERRED);
    }
    Fingerprint fingerprint = Collect(db, include_metadata, depth, read_in_full);
    if (transaction) transaction->commit();
    return fingerprint;
  } catch (const SQLite::Exception& e) {
    throw Error(
        Category::kMigrationFailed,
        fmt::format("cannot fingerprint SQLite database {}: {}", db.getFilename(), e.what()),
        "check that the file is a readable SQLite database and no other process holds "
        "an exclusive lock on it");
  }
}

}  // namespace safemig
