// The fingerprint (core/fingerprint.h) of a MySQL/MariaDB database.
//
// Objects, one line each, keyed by name (bare when a plain word, double-quoted otherwise):
//   "table T"      items, " | " separated: every column by name (COLUMN_TYPE, nullability,
//                  default, EXTRA such as auto_increment or VIRTUAL GENERATED, the
//                  generation expression, charset and collation, comment), every index
//                  ("index NAME": unique, type such as BTREE/FULLTEXT/SPATIAL, columns with
//                  prefix length and order), every foreign key ("fk NAME": columns, the
//                  referenced table and columns, ON UPDATE/DELETE), every check constraint
//                  ("check NAME"), and "options" (engine, collation, CREATE_OPTIONS such as
//                  row_format or partitioned, comment). Not AUTO_INCREMENT=N: the counter
//                  moves without the data changing (a failed insert), like a sequence.
//   "columns T"    column names in ordinal order, so a reordering is reported apart.
//   "view V", "trigger G", "procedure P", "function F", "event E": SHOW CREATE output
//                  normalised by NormaliseMySqlCreate, plus sql_mode for the bodies whose
//                  meaning depends on it.
//
// Data: one entry per base table. Each row is rendered on the server as
// CONCAT_WS(',', QUOTE(v), ...) over its stored (non-generated) columns in name order, where
// v is the value as a dump receives it: text converted to utf8mb4, the stored bytes of
// binary and spatial columns, BIT as a number (MySqlValueKind). QUOTE gives NULL for NULL
// and a quoted, escaped string otherwise, so NULL, '' and 'NULL' differ and no value can
// run into its neighbour. A dump computes the same on the client (MySqlRowHasher) from the
// rows it writes, so a backup needs no second pass over the data. The MD5 of that text is
// split into two 64-bit lanes, each summed over the table exactly (DECIMAL, no wrap).
// Sums do not depend on row order and count duplicates; the server ships three numbers per
// table, never rows. content_sha256 is the SHA-256 of "safemig-mysql-rows-1 COUNT SUM1
// SUM2". Accidental collisions are negligible; a multiset sum is not built to resist rows
// crafted on purpose, which is not the threat here (a database against its own backup or
// rehearsal). time_zone is '+00:00' while hashing, so TIMESTAMP values mean one instant.
// Below FingerprintDepth::kFull a table is counted with COUNT(*), or not read at all.
//
// Limitations: privileges, partition definitions beyond the "partitioned" option,
// sequences (MariaDB CREATE SEQUENCE) and table statistics are not described.
#include "drivers/mysql/mysql_fingerprint.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include <openssl/evp.h>

#include "core/sha256.h"
#include "core/sql_quote.h"

namespace safemig {
namespace {

bool IsPlainWord(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string Name(const std::string& name) {
  return IsPlainWord(name) ? name : QuoteIdentifier(name);
}

std::string Str(const std::optional<std::string>& value) { return value.value_or(""); }
std::string OrNull(const std::optional<std::string>& value) {
  return value ? QuoteMySqlLiteral(*value) : "NULL";
}

std::string Join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

// The server-side rendering of one column for the row hash; see MySqlRowHasher.
std::string HashedValue(const std::string& column, MySqlValueKind kind) {
  const std::string name = QuoteMySqlIdentifier(column);
  switch (kind) {
    case MySqlValueKind::kBytes:
      return "CAST(" + name + " AS BINARY)";
    case MySqlValueKind::kBit:
      return "CAST(" + name + " + 0 AS BINARY)";
    case MySqlValueKind::kNumber:
    case MySqlValueKind::kText:
      break;
  }
  return "CAST(CONVERT(" + name + " USING utf8mb4) AS BINARY)";
}

std::string Decimal(MySqlRowSums::Sum value) {
  if (value == 0) return "0";
  std::string digits;
  while (value > 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  }
  return std::string(digits.rbegin(), digits.rend());
}

struct TableInfo {
  std::string options;
  std::map<std::string, std::string> items;  // "column a" -> "column a INT ..."
  std::vector<std::pair<int, std::string>> ordered_columns;
  std::vector<std::pair<std::string, MySqlValueKind>> stored_columns;  // for the row hash
};

MySqlRowSums::Sum ParseSum(const std::string& digits) {
  MySqlRowSums::Sum value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') {
      throw Error(Category::kMigrationFailed, "the server returned a row hash sum that is not "
                                              "a whole number: " + digits);
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value;
}

// The row sums of `table` (already qualified and quoted) over its stored columns and the
// rows `where` selects, as MySqlRowHasher computes them on the client.
MySqlRowSums HashRows(MySqlSession& session, const std::string& table,
                      std::vector<std::pair<std::string, MySqlValueKind>> stored,
                      const std::string& where) {
  std::sort(stored.begin(), stored.end());
  std::string values = "CONCAT_WS(','";
  for (const auto& [column, kind] : stored) values += ", QUOTE(" + HashedValue(column, kind) + ")";
  values += ")";
  std::vector<MySqlRow> sums = session.Query(
      "SELECT COUNT(*), COALESCE(SUM(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), "
      "0), COALESCE(SUM(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)), 0) FROM "
      "(SELECT MD5(" + values + ") AS h FROM " + table +
      (where.empty() ? "" : " WHERE " + where) + ") AS hashed");
  MySqlRowSums result;
  result.rows = std::stoll(Str(sums.at(0)[0]));
  result.lane1 = ParseSum(Str(sums.at(0)[1]));
  result.lane2 = ParseSum(Str(sums.at(0)[2]));
  return result;
}

}  // namespace

MySqlValueKind MySqlKindOf(const std::string& data_type) {
  static const std::set<std::string> numbers = {
      "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal",
      "numeric", "float",    "double",    "real", "year"};
  static const std::set<std::string> bytes = {
      "binary",     "varbinary",       "tinyblob",     "blob",       "mediumblob",
      "longblob",   "geometry",        "point",        "linestring", "polygon",
      "multipoint", "multilinestring", "multipolygon", "geometrycollection"};
  if (numbers.count(data_type) != 0) return MySqlValueKind::kNumber;
  if (data_type == "bit") return MySqlValueKind::kBit;
  if (bytes.count(data_type) != 0) return MySqlValueKind::kBytes;
  return MySqlValueKind::kText;
}

void MySqlRowHasher::AppendRowText(std::string& out,
                                   const std::vector<const std::string*>& values) {
  // CONCAT_WS(',', QUOTE(v1), QUOTE(v2), ...) exactly as the server renders it.
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    if (values[i] == nullptr) {
      out += "NULL";
      continue;
    }
    out.push_back('\'');
    for (char c : *values[i]) {
      switch (c) {
        case '\\': out += "\\\\"; break;
        case '\'': out += "\\'"; break;
        case '\0': out += "\\0"; break;
        case '\x1a': out += "\\Z"; break;
        default: out.push_back(c);
      }
    }
    out.push_back('\'');
  }
}

void MySqlRowHasher::AddRowText(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_md5(), nullptr);
  std::uint64_t lane1 = 0;
  std::uint64_t lane2 = 0;
  for (int i = 0; i < 8; ++i) {
    lane1 = (lane1 << 8) | digest[i];
    lane2 = (lane2 << 8) | digest[8 + i];
  }
  sums_.lane1 += lane1;
  sums_.lane2 += lane2;
  ++sums_.rows;
}

void MySqlRowSums::Add(const MySqlRowSums& other) {
  rows += other.rows;
  lane1 += other.lane1;
  lane2 += other.lane2;
}

TableData MySqlRowSums::Finish() const {
  TableData data;
  data.rows = rows;
  data.content_sha256 = Sha256Hex(
      fmt::format("safemig-mysql-rows-1 {} {} {}", rows, Decimal(lane1), Decimal(lane2)));
  return data;
}

MySqlRowSums HashMySqlRows(MySqlSession& session, const std::string& database,
                           const std::string& table, const std::string& where) {
  return GuardMySql("hash the rows of " + QuoteMySqlIdentifier(table), [&] {
    session.Exec("SET SESSION time_zone = '+00:00'");
    std::vector<std::pair<std::string, MySqlValueKind>> stored;
    for (const MySqlRow& r : session.Query(
             "SELECT COLUMN_NAME, DATA_TYPE, EXTRA, IS_GENERATED FROM information_schema.COLUMNS "
             "WHERE TABLE_SCHEMA = " + QuoteMySqlLiteral(database) + " AND TABLE_NAME = " +
             QuoteMySqlLiteral(table))) {
      if (Str(r[3]) == "ALWAYS" || Str(r[2]).find("GENERATED") != std::string::npos) continue;
      stored.emplace_back(Str(r[0]), MySqlKindOf(Str(r[1])));
    }
    return HashRows(session, QuoteMySqlIdentifier(database) + "." + QuoteMySqlIdentifier(table),
                    std::move(stored), where);
  });
}

std::vector<std::string> MySqlHashRanges(MySqlSession& session, const std::string& database,
                                         const std::string& table, int parts) {
  if (parts < 2) return {""};
  return GuardMySql("split the rows of " + QuoteMySqlIdentifier(table), [&] {
    std::vector<MySqlRow> key = session.Query(
        "SELECT k.COLUMN_NAME, c.DATA_TYPE FROM information_schema.KEY_COLUMN_USAGE k JOIN "
        "information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = "
        "k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME WHERE k.TABLE_SCHEMA = " +
        QuoteMySqlLiteral(database) + " AND k.TABLE_NAME = " + QuoteMySqlLiteral(table) +
        " AND k.CONSTRAINT_NAME = 'PRIMARY'");
    static const std::set<std::string> integers = {"tinyint", "smallint", "mediumint", "int",
                                                   "integer", "bigint"};
    if (key.size() != 1 || integers.count(Str(key[0][1])) == 0) {
      return std::vector<std::string>{""};
    }
    const std::string column = QuoteMySqlIdentifier(Str(key[0][0]));
    // Signed and unsigned keys alike fit a long double closely enough to place bounds;
    // the bounds only need to be increasing, never exact.
    std::vector<MySqlRow> range = session.Query(
        "SELECT CAST(MIN(" + column + ") AS CHAR), CAST(MAX(" + column + ") AS CHAR) FROM " +
        QuoteMySqlIdentifier(database) + "." + QuoteMySqlIdentifier(table));
    if (range.empty() || !range[0][0] || !range[0][1]) return std::vector<std::string>{""};
    const long double low = std::stold(*range[0][0]);
    const long double high = std::stold(*range[0][1]);
    std::vector<std::string> bounds;
    for (int i = 1; i < parts; ++i) {
      const std::string bound = fmt::format("{:.0f}", low + (high - low) * i / parts);
      if (bounds.empty() || bound != bounds.back()) bounds.push_back(bound);
    }
    std::vector<std::string> conditions;
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
      std::string condition;
      if (i > 0) condition = column + " >= " + bounds[i - 1];
      if (i < bounds.size()) {
        condition += (condition.empty() ? "" : " AND ") + column + " < " + bounds[i];
      }
      conditions.push_back(condition);
    }
    return conditions;
  });
}

std::string StripDefiner(const std::string& sql) {
  const std::string key = "DEFINER=";
  std::size_t at = sql.find(key);
  if (at == std::string::npos) return sql;
  // DEFINER=`user`@`host` (either part may be quoted with ` or ' or bare).
  std::size_t i = at + key.size();
  auto skip_part = [&] {
    if (i < sql.size() && (sql[i] == '`' || sql[i] == '\'' || sql[i] == '"')) {
      const char quote = sql[i++];
      while (i < sql.size()) {
        if (sql[i] == quote) {
          if (i + 1 < sql.size() && sql[i + 1] == quote) {
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        ++i;
      }
    } else {
      while (i < sql.size() && sql[i] != '@' && sql[i] != ' ') ++i;
    }
  };
  skip_part();
  if (i < sql.size() && sql[i] == '@') {
    ++i;
    skip_part();
  }
  std::size_t end = i;
  while (end < sql.size() && sql[end] == ' ') ++end;
  std::size_t begin = at;
  return sql.substr(0, begin) + sql.substr(end);
}

std::string WithoutQualifier(std::string text, const std::string& database,
                             const std::string& before) {
  const std::string qualifier = before + QuoteMySqlIdentifier(database) + ".";
  for (std::size_t at = text.find(qualifier); at != std::string::npos;
       at = text.find(qualifier, at)) {
    text.erase(at + before.size(), qualifier.size() - before.size());
  }
  return text;
}

std::string NormaliseMySqlCreate(const std::string& sql, const std::string& database) {
  std::string text = WithoutQualifier(StripDefiner(sql), database);
  std::string out;
  char quote = 0;
  bool space = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote != 0) {
      out.push_back(c);
      if (c == '\\' && quote != '`' && i + 1 < text.size()) {
        out.push_back(text[++i]);
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    if (c == '\'' || c == '"' || c == '`') quote = c;
    out.push_back(c);
  }
  // " AUTO_INCREMENT=123" among table options.
  for (std::size_t at = out.find(" AUTO_INCREMENT="); at != std::string::npos;
       at = out.find(" AUTO_INCREMENT=", at)) {
    std::size_t end = at + 16;
    while (end < out.size() && std::isdigit(static_cast<unsigned char>(out[end]))) ++end;
    out.erase(at, end - at);
  }
  return out;
}

Fingerprint FingerprintMySql(MySqlSession& session, const std::string& database,
                             bool include_metadata, FingerprintDepth depth,
                             const TableFilter& read_in_full) {
  return GuardMySql("fingerprint the database", [&] {
    const std::string db = QuoteMySqlLiteral(database);
    const std::string qdb = QuoteMySqlIdentifier(database);
    session.Exec("SET SESSION time_zone = '+00:00'");
    auto wanted = [&](const std::string& table) {
      if (table == kMySqlLockTable) return false;
      return include_metadata || !IsSafemigTable(table);
    };

    Fingerprint fingerprint;
    std::map<std::string, TableInfo> tables;
    std::set<std::string> views;
    for (const MySqlRow& r : session.Query(
             "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION, CREATE_OPTIONS, "
             "TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = " + db)) {
      const std::string name = Str(r[0]);
      if (!wanted(name)) continue;
      if (Str(r[1]) == "VIEW") {
        views.insert(name);
        continue;
      }
      // CREATE_OPTIONS carries no AUTO_INCREMENT; "partitioned" and row_format matter.
      tables[name].options = fmt::format("options engine={} collation={} create_options={}{}",
                                         Str(r[2]), Str(r[3]), QuoteIdentifier(Str(r[4])),
                                         Str(r[5]).empty() ? "" : " comment=" + OrNull(r[5]));
    }

    for (const MySqlRow& r : session.Query(
             "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, "
             "COLUMN_DEFAULT, EXTRA, CHARACTER_SET_NAME, COLLATION_NAME, "
             "GENERATION_EXPRESSION, COLUMN_COMMENT, IS_GENERATED, DATA_TYPE FROM "
             "information_schema.COLUMNS WHERE TABLE_SCHEMA = " + db)) {
      auto it = tables.find(Str(r[0]));
      if (it == tables.end()) continue;
      const std::string column = Str(r[1]);
      // A default calling NEXTVAL names its sequence with the database; a restored copy's
      // names its own.
      std::optional<std::string> column_default = r[5];
      if (column_default) column_default = WithoutQualifier(*column_default, database);
      std::string line = fmt::format("column {} {} null={} default={}", Name(column), Str(r[3]),
                                     Str(r[4]), OrNull(column_default));
      if (!Str(r[6]).empty()) line += " extra=" + QuoteIdentifier(Str(r[6]));
      if (r[7]) line += " charset=" + Str(r[7]) + " collation=" + Str(r[8]);
      if (!Str(r[9]).empty()) line += " generated=" + QuoteMySqlLiteral(Str(r[9]));
      if (!Str(r[10]).empty()) line += " comment=" + QuoteMySqlLiteral(Str(r[10]));
      it->second.items["column " + column] = line;
      it->second.ordered_columns.emplace_back(std::stoi(Str(r[2])), column);
      const bool generated = Str(r[11]) == "ALWAYS" ||
                             Str(r[6]).find("GENERATED") != std::string::npos;
      if (!generated) it->second.stored_columns.emplace_back(column, MySqlKindOf(Str(r[12])));
    }

    {
      std::map<std::pair<std::string, std::string>, std::vector<std::string>> index_columns;
      std::map<std::pair<std::string, std::string>, std::string> index_kind;
      for (const MySqlRow& r : session.Query(
               "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, COLLATION, "
               "INDEX_TYPE, INDEX_COMMENT FROM information_schema.STATISTICS WHERE "
               "TABLE_SCHEMA = " + db + " ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX")) {
        if (tables.count(Str(r[0])) == 0) continue;
        const auto key = std::make_pair(Str(r[0]), Str(r[1]));
        std::string column = Name(Str(r[3]));
        if (r[4]) column += "(" + Str(r[4]) + ")";
        column += Str(r[5]) == "D" ? " DESC" : "";
        index_columns[key].push_back(column);
        index_kind[key] = fmt::format("unique={} type={}{}", Str(r[2]) == "0" ? 1 : 0, Str(r[6]),
                                      Str(r[7]).empty() ? "" : " comment=" + OrNull(r[7]));
      }
      for (const auto& [key, columns] : index_columns) {
        tables[key.first].items["index " + key.second] = fmt::format(
            "index {} {} ({})", Name(key.second), index_kind[key], Join(columns, ", "));
      }
    }

    {
      std::map<std::pair<std::string, std::string>, std::pair<std::vector<std::string>,
                                                              std::vector<std::string>>>
          fk_columns;
      std::map<std::pair<std::string, std::string>, std::string> fk_target;
      for (const MySqlRow& r : session.Query(
               "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, "
               "k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, "
               "c.UPDATE_RULE, c.DELETE_RULE FROM information_schema.KEY_COLUMN_USAGE k JOIN "
               "information_schema.REFERENTIAL_CONSTRAINTS c ON c.CONSTRAINT_SCHEMA = "
               "k.CONSTRAINT_SCHEMA AND c.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND "
               "c.TABLE_NAME = k.TABLE_NAME WHERE k.TABLE_SCHEMA = " + db +
               " AND k.REFERENCED_TABLE_NAME IS NOT NULL ORDER BY k.TABLE_NAME, "
               "k.CONSTRAINT_NAME, k.ORDINAL_POSITION")) {
        if (tables.count(Str(r[0])) == 0) continue;
        const auto key = std::make_pair(Str(r[0]), Str(r[1]));
        fk_columns[key].first.push_back(Name(Str(r[2])));
        fk_columns[key].second.push_back(Name(Str(r[5])));
        // Another database is named; this one is not, so a restore under another name
        // compares equal.
        const std::string target = Str(r[3]) == database ? Name(Str(r[4]))
                                                         : Name(Str(r[3])) + "." + Name(Str(r[4]));
        fk_target[key] = fmt::format("{} on update {} on delete {}", target, Str(r[6]), Str(r[7]));
      }
      for (const auto& [key, columns] : fk_columns) {
        const std::string& target = fk_target[key];
        const std::size_t space = target.find(" on update");
        tables[key.first].items["fk " + key.second] = fmt::format(
            "fk {} ({}) -> {} ({}){}", Name(key.second), Join(columns.first, ", "),
            target.substr(0, space), Join(columns.second, ", "), target.substr(space));
      }
    }

    for (const MySqlRow& r : session.Query(
             "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM "
             "information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = " + db)) {
      auto it = tables.find(Str(r[0]));
      if (it == tables.end()) continue;
      it->second.items["check " + Str(r[1])] =
          fmt::format("check {} {}", Name(Str(r[1])), NormaliseMySqlCreate(Str(r[2]), database));
    }

    for (auto& [name, info] : tables) {
      std::vector<std::string> items;
      for (const auto& [key, line] : info.items) items.push_back(line);
      items.push_back(info.options);
      fingerprint.objects["table " + Name(name)] =
          "table " + Name(name) + ": " + Join(items, " | ");
      std::sort(info.ordered_columns.begin(), info.ordered_columns.end());
      std::vector<std::string> ordered;
      for (const auto& [position, column] : info.ordered_columns) ordered.push_back(Name(column));
      fingerprint.objects["columns " + Name(name)] =
          "columns " + Name(name) + ": " + Join(ordered, ", ");

      const std::string table = qdb + "." + QuoteMySqlIdentifier(name);
      if (!ReadsInFull(depth, read_in_full, name)) {
        if (depth == FingerprintDepth::kRowCounts) {
          fingerprint.tables[name].rows =
              std::stoll(Str(session.Query("SELECT COUNT(*) FROM " + table).at(0)[0]));
        }
        continue;
      }
      TableData data = HashRows(session, table, info.stored_columns, "").Finish();
      fingerprint.tables[name] = data;
    }

    for (const std::string& view : views) {
      std::vector<MySqlRow> rows =
          session.Query("SHOW CREATE VIEW " + qdb + "." + QuoteMySqlIdentifier(view));
      if (rows.empty()) continue;
      fingerprint.objects["view " + Name(view)] =
          "view " + Name(view) + ": " + NormaliseMySqlCreate(Str(rows[0][1]), database);
    }

    for (const MySqlRow& r : session.Query(
             "SELECT TRIGGER_NAME, SQL_MODE FROM information_schema.TRIGGERS WHERE "
             "TRIGGER_SCHEMA = " + db)) {
      std::vector<MySqlRow> rows =
          session.Query("SHOW CREATE TRIGGER " + qdb + "." + QuoteMySqlIdentifier(Str(r[0])));
      if (rows.empty()) continue;
      fingerprint.objects["trigger " + Name(Str(r[0]))] = fmt::format(
          "trigger {}: sql_mode={} {}", Name(Str(r[0])), QuoteIdentifier(Str(r[1])),
          NormaliseMySqlCreate(Str(rows[0][2]), database));
    }

    for (const MySqlRow& r : session.Query(
             "SELECT ROUTINE_TYPE, ROUTINE_NAME, SQL_MODE FROM information_schema.ROUTINES "
             "WHERE ROUTINE_SCHEMA = " + db)) {
      const std::string kind = Str(r[0]) == "FUNCTION" ? "function" : "procedure";
      if (Str(r[0]) != "FUNCTION" && Str(r[0]) != "PROCEDURE") continue;
      std::vector<MySqlRow> rows = session.Query("SHOW CREATE " + Str(r[0]) + " " + qdb + "." +
                                                 QuoteMySqlIdentifier(Str(r[1])));
      if (rows.empty()) continue;
      fingerprint.objects[kind + " " + Name(Str(r[1]))] = fmt::format(
          "{} {}: sql_mode={} {}", kind, Name(Str(r[1])), QuoteIdentifier(Str(r[2])),
          NormaliseMySqlCreate(Str(rows[0][2]), database));
    }

    for (const MySqlRow& r : session.Query(
             "SELECT EVENT_NAME, SQL_MODE, STATUS FROM information_schema.EVENTS WHERE "
             "EVENT_SCHEMA = " + db)) {
      std::vector<MySqlRow> rows =
          session.Query("SHOW CREATE EVENT " + qdb + "." + QuoteMySqlIdentifier(Str(r[0])));
      if (rows.empty()) continue;
      fingerprint.objects["event " + Name(Str(r[0]))] = fmt::format(
          "event {}: sql_mode={} {}", Name(Str(r[0])), QuoteIdentifier(Str(r[1])),
          NormaliseMySqlCreate(Str(rows[0][3]), database));
    }
    return fingerprint;
  });
}

}  // namespace safemig
