// MySQL/MariaDB backup and restore (mysql_dump.h).
//
// Decisions worth knowing before changing this file:
// - Every part starts with the session settings it needs (SET NAMES utf8mb4, time_zone
//   '+00:00', sql_mode NO_AUTO_VALUE_ON_ZERO, foreign_key_checks and unique_checks off), so
//   it means the same when a person replays it with the mariadb client as when safemig
//   does. TIMESTAMP values are written and read in UTC; a stored 0 in an AUTO_INCREMENT
//   column stays 0.
// - Data parts hold one statement per line: string values are escaped (\n, \r, \0, \\, \',
//   \Z), BLOB/BINARY/VARBINARY and spatial values are hex literals of their exact bytes (the
//   server's internal geometry format, which it reads back as is), BIT columns are read as
//   numbers. The restore therefore streams a part line by line without parsing SQL.
// - A table's rows load inside one transaction with unique_checks and foreign_key_checks
//   off: MariaDB then bulk-loads an empty InnoDB table (no per-row undo log).
// - DEFINER clauses are dropped from views, routines, triggers and events: a restore as
//   another account (the rehearsal's, a laptop's) would otherwise need SUPER, and the
//   objects then belong to the restoring account. The fingerprint ignores definers too.
// - One session dumps everything: Connector/C++ 1.1 and MariaDB offer no way to share a
//   snapshot between sessions without blocking commits server-wide, and a backup must not
//   stall the application. Its client work is spread over three threads instead (reading
//   and formatting, MD5 of the rows, compressing and writing; see CopyTableOut).
// - The restore loads tables on `jobs` parallel sessions, largest first, with InnoDB's
//   automatic statistics paused (PausedStatistics), and checks each table's rows as soon
//   as it is loaded by reading them back and hashing them on the client as the backup did
//   (a large table in key ranges on every free session), so the check of one table
//   overlaps the load of the others and costs the server little.
// - MySQL has no RENAME DATABASE. An in-place restore builds and checks the copy in a
//   temporary database, moves the target's tables aside into a holding database with one
//   atomic RENAME TABLE (its views, routines, triggers and events are kept as SQL first),
//   moves the copy's tables in, replays the post part and checks the fingerprint again.
//   Any failure moves the old tables back and recreates their objects.
#include "drivers/mysql/mysql_dump.h"

#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backup/stream.h"
#include "core/clock.h"
#include "core/sql_split.h"
#include "drivers/mysql/mysql_fingerprint.h"
#include "drivers/mysql/mysql_session.h"
#include "drivers/table_restore.h"

namespace safemig {
namespace {

constexpr const char* kSchemaPart = "schema.sql.zst";
constexpr const char* kSchemaKind = "mysql-schema";
constexpr const char* kTableKind = "mysql-table-data";
constexpr const char* kPostPart = "post.sql.zst";
constexpr const char* kPostKind = "mysql-post";
constexpr const char* kDatabaseHeader = "-- safemig database: ";
constexpr const char* kTableHeader = "-- safemig table: ";

// An INSERT grows to about this size before the next starts: large enough that per-statement
// overhead vanishes, far below the default max_allowed_packet (16 MiB on MariaDB).
constexpr std::size_t kStatementBytes = 1 << 20;

constexpr const char* kPartSettings =
    "SET NAMES utf8mb4;\n"
    "SET time_zone = '+00:00';\n"
    "SET sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\n"
    "SET foreign_key_checks = 0;\n"
    "SET unique_checks = 0;\n";

std::string Str(const std::optional<std::string>& value) { return value.value_or(""); }

// Re-throws a kMigrationFailed error with `context` in front of its message.
template <typename Fn>
auto InContext(const std::string& context, Fn&& fn) -> decltype(fn()) {
  try {
    return GuardMySql(context, std::forward<Fn>(fn));
  } catch (const Error& e) {
    if (e.category() != Category::kMigrationFailed) throw;
    throw Error(e.category(), context + ": " + e.what(), e.hint());
  }
}

// Reports progress every 8 MiB across all parts, from one or several threads.
class SharedProgress {
 public:
  SharedProgress(const ArchiveReader::Progress& progress, std::uint64_t total)
      : progress_(progress), total_(total) {}
  void Add(std::uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ += bytes;
    if (progress_ && done_ - reported_ >= (8u << 20)) {
      reported_ = done_;
      progress_(done_, std::max(done_, total_));
    }
  }
  void Complete() {
    if (progress_) progress_(std::max(done_, total_), std::max(done_, total_));
  }

 private:
  const ArchiveReader::Progress& progress_;
  std::uint64_t total_;
  std::mutex mutex_;
  std::uint64_t done_ = 0;
  std::uint64_t reported_ = 0;
};

class CountingSink : public Sink {
 public:
  using Sink::Write;
  CountingSink(Sink& next, SharedProgress& progress) : next_(next), progress_(progress) {}
  void Write(const char* data, std::size_t size) override {
    next_.Write(data, size);
    progress_.Add(size);
  }
  void Finish() override { next_.Finish(); }

 private:
  Sink& next_;
  SharedProgress& progress_;
};

class StringSink : public Sink {
 public:
  using Sink::Write;
  void Write(const char* data, std::size_t size) override { text.append(data, size); }
  void Finish() override {}
  std::string text;
};

// --- what is dumped ----------------------------------------------------------------------

using ValueKind = MySqlValueKind;

struct ColumnToCopy {
  std::string name;
  ValueKind kind = ValueKind::kText;
};

struct TableToCopy {
  std::string name;
  std::string engine;
  std::uint64_t bytes = 0;
  std::vector<ColumnToCopy> columns;
};

std::vector<TableToCopy> ListTables(MySqlSession& session, const std::string& database) {
  const std::string db = QuoteMySqlLiteral(database);
  std::map<std::string, TableToCopy> tables;
  for (const MySqlRow& r : session.Query(
           "SELECT TABLE_NAME, ENGINE, COALESCE(DATA_LENGTH, 0) FROM information_schema.TABLES "
           "WHERE TABLE_SCHEMA = " + db + " AND TABLE_TYPE = 'BASE TABLE'")) {
    if (Str(r[0]) == kMySqlLockTable) continue;
    TableToCopy& table = tables[Str(r[0])];
    table.name = Str(r[0]);
    table.engine = Str(r[1]);
    table.bytes = std::stoull(Str(r[2]));
  }
  for (const MySqlRow& r : session.Query(
           "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS "
           "WHERE TABLE_SCHEMA = " + db + " ORDER BY TABLE_NAME, ORDINAL_POSITION")) {
    auto it = tables.find(Str(r[0]));
    if (it == tables.end()) continue;
    // Generated columns are computed again by the server; inserting into them is an error.
    if (Str(r[3]).find("GENERATED") != std::string::npos) continue;
    it->second.columns.push_back(ColumnToCopy{Str(r[1]), MySqlKindOf(Str(r[2]))});
  }
  std::vector<TableToCopy> result;
  for (auto& [name, table] : tables) result.push_back(std::move(table));
  return result;
}

void AppendEscaped(std::string& out, const std::string& value) {
  out.push_back('\'');
  for (char c : value) {
    switch (c) {
      case '\0': out += "\\0"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      case '\x1a': out += "\\Z"; break;
      default: out.push_back(c);
    }
  }
  out.push_back('\'');
}

void AppendHex(std::string& out, const std::string& value) {
  if (value.empty()) {
    out += "''";
    return;
  }
  static const char* const kHex = "0123456789ABCDEF";
  out += "0x";
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 0xf]);
  }
}

// Hashes rows handed over as records of a 4-byte length and the row's text
// (MySqlRowHasher::AppendRowText), in any split; runs behind a BackgroundSink.
class RowTextHashSink : public Sink {
 public:
  using Sink::Write;
  void Write(const char* data, std::size_t size) override {
    pending_.append(data, size);
    std::size_t at = 0;
    while (pending_.size() - at >= 4) {
      std::uint32_t length = 0;
      std::memcpy(&length, pending_.data() + at, 4);
      if (pending_.size() - at - 4 < length) break;
      hasher_.AddRowText(std::string_view(pending_.data() + at + 4, length));
      at += 4 + length;
    }
    pending_.erase(0, at);
  }
  void Finish() override {}
  const MySqlRowSums& sums() const { return hasher_.sums(); }

 private:
  MySqlRowHasher hasher_;
  std::string pending_;
};

// One row as it streams out of a table: each stored column's value and whether it is NULL.
struct StreamedRow {
  std::vector<std::string> values;
  std::vector<bool> nulls;
};

// Streams the rows of `table` that `where` selects ("" for all) through one forward-only
// statement, each as the text the server sends (BIT as its number).
void StreamRows(MySqlSession& session, const std::string& database, const TableToCopy& table,
                const std::string& where, const std::function<void(const StreamedRow&)>& on_row) {
  std::string select = "SELECT ";
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    const std::string name = QuoteMySqlIdentifier(table.columns[i].name);
    // BIT arrives as raw bytes whose width the text protocol does not say; as a number it
    // goes back into the column unchanged.
    select += (i > 0 ? ", " : "") +
              (table.columns[i].kind == ValueKind::kBit ? name + " + 0" : name);
  }
  select += " FROM " + QuoteMySqlIdentifier(database) + "." + QuoteMySqlIdentifier(table.name);
  if (!where.empty()) select += " WHERE " + where;
  StreamedRow row;
  row.values.resize(table.columns.size());
  row.nulls.resize(table.columns.size());
  const auto columns = static_cast<std::uint32_t>(table.columns.size());
  session.Stream(select, [&](sql::ResultSet& r) {
    for (std::uint32_t i = 1; i <= columns; ++i) {
      row.nulls[i - 1] = r.isNull(i);
      if (row.nulls[i - 1]) {
        row.values[i - 1].clear();
      } else {
        row.values[i - 1] = r.getString(i).asStdString();
      }
    }
    on_row(row);
  });
}

// The fingerprint's row hash of streamed rows, the MD5s computed on a thread of its own.
class BackgroundRowHasher {
 public:
  explicit BackgroundRowHasher(const std::vector<ColumnToCopy>& columns)
      : order_(columns.size()), hashed_(columns.size()) {
    // The fingerprint hashes columns in name order.
    for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(),
              [&](std::size_t a, std::size_t b) { return columns[a].name < columns[b].name; });
  }
  void Add(const StreamedRow& row) {
    for (std::size_t i = 0; i < order_.size(); ++i) {
      hashed_[i] = row.nulls[order_[i]] ? nullptr : &row.values[order_[i]];
    }
    record_.assign(4, '\0');
    MySqlRowHasher::AppendRowText(record_, hashed_);
    const auto length = static_cast<std::uint32_t>(record_.size() - 4);
    std::memcpy(record_.data(), &length, 4);
    background_.Write(record_);
  }
  // Waits for the hashing thread; call once, after the last Add().
  MySqlRowSums Finish() {
    background_.Flush();
    return texts_.sums();
  }

 private:
  std::vector<std::size_t> order_;
  std::vector<const std::string*> hashed_;
  std::string record_;
  RowTextHashSink texts_;
  BackgroundSink background_{texts_};
};

// Writes the rows of `table` and returns their fingerprint entry, hashed from the very
// values written. Three threads share the work: this one reads the rows and formats the
// INSERTs and the rows' hash texts; one hashes the texts (MD5); one checksums,
// compresses and writes the part. On two cores that took a 1.2 GiB backup from 16-19 s
// to 11-12 s (docs/performance.md).
TableData CopyTableOut(MySqlSession& session, const std::string& database,
                       const TableToCopy& table, Sink& part) {
  const std::string target = QuoteMySqlIdentifier(table.name);
  BackgroundSink out(part);
  BackgroundRowHasher hasher(table.columns);
  out.Write(kTableHeader + target + "\n");
  out.Write(kPartSettings);
  if (table.columns.empty()) {
    out.Flush();
    return hasher.Finish().Finish();
  }
  std::string insert = "INSERT INTO " + target + " (";
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    insert += (i > 0 ? ", " : "") + QuoteMySqlIdentifier(table.columns[i].name);
  }
  insert += ") VALUES ";

  out.Write("START TRANSACTION;\n");
  std::string statement;
  statement.reserve(kStatementBytes + (64 << 10));
  StreamRows(session, database, table, "", [&](const StreamedRow& row) {
    statement += statement.empty() ? insert + "(" : ",(";
    for (std::size_t i = 0; i < row.values.size(); ++i) {
      if (i > 0) statement.push_back(',');
      if (row.nulls[i]) {
        statement += "NULL";
        continue;
      }
      switch (table.columns[i].kind) {
        case ValueKind::kNumber:
        case ValueKind::kBit:
          statement += row.values[i];
          break;
        case ValueKind::kBytes:
          AppendHex(statement, row.values[i]);
          break;
        case ValueKind::kText:
          AppendEscaped(statement, row.values[i]);
          break;
      }
    }
    statement.push_back(')');
    hasher.Add(row);
    if (statement.size() >= kStatementBytes) {
      statement += ";\n";
      out.Write(statement);
      statement.clear();
    }
  });
  if (!statement.empty()) {
    statement += ";\n";
    out.Write(statement);
  }
  out.Write("COMMIT;\n");
  out.Flush();
  return hasher.Finish().Finish();
}

// Reads back the rows of a restored `table` that `where` selects and hashes them on the
// client, as CopyTableOut hashed them when they were backed up. The server only sends
// rows, which costs it a fraction of hashing them itself (FingerprintMySql): on a 1 GiB
// table, about 4 s of server CPU instead of 16-20 s.
MySqlRowSums ReadBackRows(MySqlSession& session, const std::string& database,
                          const TableToCopy& table, const std::string& where) {
  BackgroundRowHasher hasher(table.columns);
  if (!table.columns.empty()) {
    StreamRows(session, database, table, where, [&](const StreamedRow& row) { hasher.Add(row); });
  }
  return hasher.Finish();
}

// "SET sql_mode = '...';" for an object's recorded mode.
std::string SqlModeLine(const std::string& mode) {
  return "SET sql_mode = " + QuoteMySqlLiteral(mode) + ";\n";
}

void WriteBody(Sink& out, const std::string& mode, const std::string& create) {
  out.Write(SqlModeLine(mode));
  out.Write("DELIMITER ;;\n");
  out.Write(StripDefiner(create));
  out.Write(";;\nDELIMITER ;\n");
}

// Views ordered so each comes after the views it reads from. A view names another as
// `name` in its SHOW CREATE text (the server always quotes); a false match only moves a
// view earlier than needed.
std::vector<std::pair<std::string, std::string>> OrderViews(
    const std::map<std::string, std::string>& views) {
  std::vector<std::pair<std::string, std::string>> ordered;
  std::set<std::string> placed;
  std::set<std::string> visiting;
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    if (placed.count(name) != 0 || visiting.count(name) != 0) return;
    visiting.insert(name);
    const std::string& text = views.at(name);
    for (const auto& [other, other_text] : views) {
      if (other != name && text.find(QuoteMySqlIdentifier(other)) != std::string::npos) {
        visit(other);
      }
    }
    visiting.erase(name);
    placed.insert(name);
    ordered.emplace_back(name, text);
  };
  for (const auto& [name, text] : views) visit(name);
  return ordered;
}

// Functions, procedures, views, triggers and events of `database` as replayable SQL.
void WritePostObjects(MySqlSession& session, const std::string& database, Sink& out) {
  const std::string db = QuoteMySqlLiteral(database);
  const std::string qdb = QuoteMySqlIdentifier(database) + ".";
  out.Write("SET NAMES utf8mb4;\nSET time_zone = '+00:00';\n");
  for (const MySqlRow& r : session.Query(
           "SELECT ROUTINE_TYPE, ROUTINE_NAME, SQL_MODE FROM information_schema.ROUTINES "
           "WHERE ROUTINE_SCHEMA = " + db +
           " AND ROUTINE_TYPE IN ('FUNCTION', 'PROCEDURE') ORDER BY ROUTINE_TYPE, "
           "ROUTINE_NAME")) {
    std::vector<MySqlRow> create = session.Query("SHOW CREATE " + Str(r[0]) + " " + qdb +
                                                 QuoteMySqlIdentifier(Str(r[1])));
    if (!create.empty()) WriteBody(out, Str(r[2]), Str(create[0][2]));
  }
  std::map<std::string, std::string> views;
  for (const MySqlRow& r : session.Query(
           "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = " + db)) {
    std::vector<MySqlRow> create =
        session.Query("SHOW CREATE VIEW " + qdb + QuoteMySqlIdentifier(Str(r[0])));
    if (!create.empty()) views[Str(r[0])] = StripDefiner(Str(create[0][1]));
  }
  if (!views.empty()) out.Write("SET sql_mode = '';\n");
  for (const auto& [name, text] : OrderViews(views)) out.Write(text + ";\n");
  for (const MySqlRow& r : session.Query(
           "SELECT TRIGGER_NAME, SQL_MODE FROM information_schema.TRIGGERS WHERE "
           "TRIGGER_SCHEMA = " + db +
           " ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER")) {
    std::vector<MySqlRow> create =
        session.Query("SHOW CREATE TRIGGER " + qdb + QuoteMySqlIdentifier(Str(r[0])));
    if (!create.empty()) WriteBody(out, Str(r[1]), Str(create[0][2]));
  }
  for (const MySqlRow& r : session.Query(
           "SELECT EVENT_NAME, SQL_MODE, TIME_ZONE FROM information_schema.EVENTS WHERE "
           "EVENT_SCHEMA = " + db + " ORDER BY EVENT_NAME")) {
    std::vector<MySqlRow> create =
        session.Query("SHOW CREATE EVENT " + qdb + QuoteMySqlIdentifier(Str(r[0])));
    if (create.empty()) continue;
    out.Write("SET time_zone = " + QuoteMySqlLiteral(Str(r[2])) + ";\n");
    WriteBody(out, Str(r[1]), Str(create[0][3]));
  }
  out.Write("SET sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\nSET time_zone = '+00:00';\n");
}

std::string TablePartName(std::size_t index) { return fmt::format("t{}.sql.zst", index + 1); }

// --- restore -----------------------------------------------------------------------------

// Runs a part's statements, one per line (data parts), as they stream out of the archive.
class LineStatementSink : public Sink {
 public:
  using Sink::Write;
  explicit LineStatementSink(MySqlSession& session) : session_(session) {}
  void Write(const char* data, std::size_t size) override {
    std::size_t start = 0;
    for (std::size_t i = 0; i < size; ++i) {
      if (data[i] != '\n') continue;
      pending_.append(data + start, i - start);
      Run();
      start = i + 1;
    }
    pending_.append(data + start, size - start);
  }
  void Finish() override { Run(); }
  // The part's first line (a data part's header comment).
  const std::string& first_line() const { return first_line_; }

 private:
  void Run() {
    std::string& line = pending_;
    if (!seen_first_) {
      first_line_ = line;
      seen_first_ = true;
    }
    while (!line.empty() && (line.back() == ';' || line.back() == ' ' || line.back() == '\r')) {
      line.pop_back();
    }
    if (!line.empty() && line.rfind("-- ", 0) != 0) session_.Exec(line);
    line.clear();
  }
  MySqlSession& session_;
  std::string pending_;
  std::string first_line_;
  bool seen_first_ = false;
};

void RunScript(MySqlSession& session, const std::string& script) {
  for (const Statement& statement : SplitStatements(script, Dialect::kMySql)) {
    session.Exec(statement.text);
  }
}

std::string ExtractText(const ArchiveReader& archive, const PartInfo& part) {
  StringSink text;
  archive.ExtractPart(part, text);
  return text.text;
}

struct RestorePlan {
  const PartInfo* schema = nullptr;
  std::vector<const PartInfo*> tables;
  const PartInfo* post = nullptr;
};

RestorePlan PlanRestore(const Manifest& manifest) {
  RestorePlan plan;
  for (const PartInfo& part : manifest.parts) {
    if (part.kind == kSchemaKind) {
      plan.schema = &part;
    } else if (part.kind == kTableKind) {
      plan.tables.push_back(&part);
    } else if (part.kind == kPostKind) {
      plan.post = &part;
    } else {
      throw Error(Category::kIntegrity,
                  fmt::format("backup {} has a part of unknown kind \"{}\" ({})", manifest.id,
                              part.kind, part.name),
                  "restore it with the safemig version that wrote it");
    }
  }
  if (plan.schema == nullptr || plan.post == nullptr) {
    throw Error(Category::kIntegrity,
                fmt::format("backup {} lacks its schema or post part", manifest.id),
                "the backup cannot be restored; use another one");
  }
  return plan;
}

std::string RandomSuffix() {
  std::random_device random;
  return fmt::format("{:08x}", random());
}

bool DatabaseExists(MySqlSession& admin, const std::string& name) {
  return !admin
              .Query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = " +
                     QuoteMySqlLiteral(name))
              .empty();
}

std::vector<std::string> BaseTables(MySqlSession& session, const std::string& database) {
  std::vector<std::string> names;
  for (const MySqlRow& r : session.Query(
           "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = " +
           QuoteMySqlLiteral(database) + " AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME")) {
    names.push_back(Str(r[0]));
  }
  return names;
}

std::int64_t CountObjects(MySqlSession& admin, const std::string& database) {
  const std::string db = QuoteMySqlLiteral(database);
  return std::stoll(Str(admin.Value(
      "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = " + db +
      ") + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = " + db +
      ") + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = " + db + ")")));
}

// Drops views, routines, triggers and events of `database` (not its tables).
void DropPostObjects(MySqlSession& admin, const std::string& database) {
  const std::string db = QuoteMySqlLiteral(database);
  const std::string qdb = QuoteMySqlIdentifier(database) + ".";
  for (const MySqlRow& r : admin.Query(
           "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = " + db)) {
    admin.Exec("DROP TRIGGER IF EXISTS " + qdb + QuoteMySqlIdentifier(Str(r[0])));
  }
  for (const MySqlRow& r : admin.Query(
           "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = " + db)) {
    admin.Exec("DROP VIEW IF EXISTS " + qdb + QuoteMySqlIdentifier(Str(r[0])));
  }
  for (const MySqlRow& r : admin.Query(
           "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE "
           "ROUTINE_SCHEMA = " + db + " AND ROUTINE_TYPE IN ('FUNCTION', 'PROCEDURE')")) {
    admin.Exec("DROP " + Str(r[0]) + " IF EXISTS " + qdb + QuoteMySqlIdentifier(Str(r[1])));
  }
  for (const MySqlRow& r : admin.Query(
           "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = " + db)) {
    admin.Exec("DROP EVENT IF EXISTS " + qdb + QuoteMySqlIdentifier(Str(r[0])));
  }
}

// Moves every base table of `from` into `to` with one atomic RENAME TABLE.
void MoveTables(MySqlSession& admin, const std::string& from, const std::string& to) {
  std::vector<std::string> tables = BaseTables(admin, from);
  if (tables.empty()) return;
  std::string sql = "RENAME TABLE ";
  for (std::size_t i = 0; i < tables.size(); ++i) {
    if (i > 0) sql += ", ";
    const std::string name = QuoteMySqlIdentifier(tables[i]);
    sql += QuoteMySqlIdentifier(from) + "." + name + " TO " + QuoteMySqlIdentifier(to) + "." +
           name;
  }
  admin.Exec(sql);
}

struct DatabaseOptions {
  std::string charset = "utf8mb4";
  std::string collation;
};

DatabaseOptions ParseDatabaseHeader(const std::string& schema) {
  DatabaseOptions options;
  const std::string header = kDatabaseHeader;
  if (schema.rfind(header, 0) != 0) return options;
  try {
    const auto json = nlohmann::json::parse(schema.substr(header.size(),
                                                          schema.find('\n') - header.size()));
    options.charset = json.value("charset", options.charset);
    options.collation = json.value("collation", "");
  } catch (const nlohmann::json::exception&) {
    // An unreadable header only loses the database's default collation.
  }
  return options;
}

std::string CreateDatabaseSql(const std::string& name, const DatabaseOptions& options) {
  std::string sql = "CREATE DATABASE " + QuoteMySqlIdentifier(name) + " CHARACTER SET " +
                    QuoteMySqlIdentifier(options.charset);
  if (!options.collation.empty()) sql += " COLLATE " + QuoteMySqlIdentifier(options.collation);
  return sql;
}

// Keeps InnoDB from recomputing the statistics of the tables of `database` while they
// fill. Without this, MariaDB's background statistics task re-reads a table each time a
// tenth more rows arrived and, measured on a 1 GiB table, burnt as much CPU as the load
// itself (docs/performance.md). Resume() puts each table's own setting back (an instant
// change of table options) and analyzes every table once, so the restored database starts
// with fresh statistics; the destructor puts the settings back without checking.
class PausedStatistics {
 public:
  PausedStatistics(MySqlSession& session, const std::string& database)
      : session_(session), qdb_(QuoteMySqlIdentifier(database) + ".") {
    for (const MySqlRow& r : session.Query(
             "SELECT TABLE_NAME, CREATE_OPTIONS FROM information_schema.TABLES WHERE "
             "TABLE_SCHEMA = " + QuoteMySqlLiteral(database) +
             " AND TABLE_TYPE = 'BASE TABLE' AND ENGINE = 'InnoDB'")) {
      const std::string options = Str(r[1]);
      if (options.find("stats_auto_recalc=0") != std::string::npos) continue;
      const std::string table = qdb_ + QuoteMySqlIdentifier(Str(r[0]));
      try {
        session.Exec("ALTER TABLE " + table + " STATS_AUTO_RECALC = 0, ALGORITHM = INSTANT");
      } catch (const sql::SQLException&) {
        continue;  // a server that would rebuild the table for it: load it as it is
      }
      paused_.emplace_back(table, options.find("stats_auto_recalc=1") != std::string::npos
                                      ? "1"
                                      : "DEFAULT");
    }
  }
  ~PausedStatistics() {
    for (const auto& [table, setting] : paused_) {
      try {
        Put(table, setting);
      } catch (...) {
        // The database is being dropped or reported as failed already.
      }
    }
  }
  PausedStatistics(const PausedStatistics&) = delete;
  PausedStatistics& operator=(const PausedStatistics&) = delete;

  void Resume() {
    std::string all;
    for (const auto& [table, setting] : paused_) all += (all.empty() ? "" : ", ") + table;
    while (!paused_.empty()) {
      Put(paused_.back().first, paused_.back().second);
      paused_.pop_back();
    }
    if (!all.empty()) session_.Query("ANALYZE TABLE " + all);
  }

 private:
  void Put(const std::string& table, const std::string& setting) {
    session_.Exec("ALTER TABLE " + table + " STATS_AUTO_RECALC = " + setting +
                  ", ALGORITHM = INSTANT");
  }
  MySqlSession& session_;
  std::string qdb_;
  std::vector<std::pair<std::string, std::string>> paused_;  // table, setting to put back
};

// The table a data part fills, from its first line ("-- safemig table: `name`"), or "".
std::string TableOfHeader(const std::string& line) {
  const std::string prefix = std::string(kTableHeader) + "`";
  if (line.rfind(prefix, 0) != 0 || line.size() < prefix.size() + 1 || line.back() != '`') {
    return "";
  }
  std::string name;
  const std::string quoted = line.substr(prefix.size(), line.size() - prefix.size() - 1);
  for (std::size_t i = 0; i < quoted.size(); ++i) {
    name.push_back(quoted[i]);
    if (quoted[i] == '`') ++i;  // doubled inside the quotes
  }
  return name;
}

// A table whose data part holds at least this much SQL is read back in `jobs` key ranges
// at once when it is loaded: the largest table, loaded last to finish, would otherwise be
// read by one session while the others idle.
constexpr std::uint64_t kSplitHashBytes = 64u << 20;

// Loads every part into `database` (which exists and is empty): the schema, then the data
// parts on `jobs` sessions, largest first. A session that loaded a table queues reading
// it back and hashing its rows (ReadBackRows; in key ranges for a large table), which the
// sessions take up as they come free, so checking overlaps loading. Then the post part.
// Returns the hash of every loaded table, for CheckFingerprint.
std::map<std::string, TableData> LoadInto(const ArchiveReader& archive,
                                          const DatabaseUrl& target,
                                          const std::string& database, const RestorePlan& plan,
                                          const std::string& schema, int jobs,
                                          SharedProgress& progress) {
  MySqlSession schema_session(target, database);
  InContext("cannot restore the schema", [&] { RunScript(schema_session, schema); });
  std::optional<PausedStatistics> statistics;
  std::map<std::string, TableToCopy> columns;  // how to read each table back
  InContext("cannot read the restored tables", [&] {
    statistics.emplace(schema_session, database);
    for (TableToCopy& table : ListTables(schema_session, database)) {
      columns[table.name] = std::move(table);
    }
  });

  struct Task {
    const PartInfo* part = nullptr;  // load this part, or else:
    std::string table;               // hash these rows of this table
    std::string where;
  };
  std::vector<const PartInfo*> parts = plan.tables;
  std::stable_sort(parts.begin(), parts.end(), [](const PartInfo* a, const PartInfo* b) {
    return a->raw_bytes > b->raw_bytes;
  });
  std::deque<Task> tasks;
  for (const PartInfo* part : parts) tasks.push_back(Task{part, "", ""});
  const int sessions = std::max(1, std::min(jobs, static_cast<int>(parts.size())));
  std::map<std::string, MySqlRowSums> sums;
  int loading = 0;
  std::mutex mutex;  // guards tasks, sums, loading and first_error
  std::condition_variable changed;
  std::exception_ptr first_error;

  auto worker = [&] {
    bool was_loading = false;
    try {
      MySqlThreadScope scope;
      MySqlSession session(target, database);
      for (;;) {
        Task task;
        {
          std::unique_lock<std::mutex> lock(mutex);
          changed.wait(lock, [&] { return first_error || !tasks.empty() || loading == 0; });
          if (first_error || tasks.empty()) return;
          task = std::move(tasks.front());
          tasks.pop_front();
          if (task.part != nullptr) {
            ++loading;
            was_loading = true;
          }
        }
        if (task.part == nullptr) {
          auto it = columns.find(task.table);
          const MySqlRowSums rows =
              it == columns.end()
                  ? HashMySqlRows(session, database, task.table, task.where)
                  : InContext("cannot read back the rows of " + QuoteMySqlIdentifier(task.table),
                              [&] {
                                return ReadBackRows(session, database, it->second, task.where);
                              });
          std::lock_guard<std::mutex> lock(mutex);
          sums[task.table].Add(rows);
          continue;
        }
        const PartInfo& part = *task.part;
        LineStatementSink statements(session);
        CountingSink counted(statements, progress);
        InContext("cannot restore the rows of part " + part.name, [&] {
          archive.ExtractPart(part, counted);
          statements.Finish();
        });
        const std::string table = TableOfHeader(statements.first_line());
        if (table.empty()) {
          throw Error(Category::kIntegrity,
                      fmt::format("part {} of backup {} does not say which table it fills",
                                  part.name, archive.manifest().id),
                      "the backup cannot be restored; use another one");
        }
        const std::vector<std::string> ranges =
            part.raw_bytes >= kSplitHashBytes ? MySqlHashRanges(session, database, table, sessions)
                                              : std::vector<std::string>{""};
        {
          std::lock_guard<std::mutex> lock(mutex);
          --loading;
          was_loading = false;
          sums[table];  // an entry even for a table without rows
          for (const std::string& where : ranges) tasks.push_back(Task{nullptr, table, where});
        }
        changed.notify_all();
      }
    } catch (...) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (was_loading) --loading;
        if (!first_error) first_error = std::current_exception();
      }
      changed.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < sessions; ++i) threads.emplace_back(worker);
  for (std::thread& thread : threads) thread.join();
  if (first_error) std::rethrow_exception(first_error);

  InContext("cannot put the tables' statistics settings back",
            [&] { statistics->Resume(); });
  const std::string post = ExtractText(archive, *plan.post);
  InContext("cannot restore views, routines, triggers and events",
            [&] { RunScript(schema_session, post); });
  std::map<std::string, TableData> hashed;
  for (const auto& [table, rows] : sums) hashed[table] = rows.Finish();
  return hashed;
}

// Compares `database` with the backup: its schema as it is now, and its rows by the
// hashes `hashed` took of each table right after loading it (nothing else writes to a
// database being restored).
void CheckFingerprint(const Manifest& manifest, const DatabaseUrl& target,
                      const std::string& database,
                      const std::map<std::string, TableData>& hashed) {
  MySqlSession session(target, database);
  // Sequences have no data part: their one row is read now.
  Fingerprint restored =
      FingerprintMySql(session, database, true, FingerprintDepth::kSchema,
                       [&hashed](const std::string& key) { return hashed.count(key) == 0; });
  for (const auto& [table, data] : hashed) restored.tables[table] = data;
  if (restored.Digest() == manifest.fingerprint.Digest()) return;
  const std::vector<std::string> differences = DescribeDifferences(manifest.fingerprint, restored);
  throw Error(Category::kIntegrity,
              fmt::format("the restored copy of backup {} differs from what was backed up: {}",
                          manifest.id,
                          differences.empty() ? std::string("fingerprint digest")
                                              : differences.front()),
              "the backup cannot be trusted; use another one");
}

// Drops a database this restore created unless Release() was called.
class CreatedDatabase {
 public:
  CreatedDatabase(MySqlSession& admin, std::string name) : admin_(admin), name_(std::move(name)) {}
  ~CreatedDatabase() {
    if (name_.empty()) return;
    try {
      admin_.Exec("DROP DATABASE IF EXISTS " + QuoteMySqlIdentifier(name_));
    } catch (...) {
      // Named in no message: the next restore uses another name, and the DBA sees it.
    }
  }
  void Release() { name_.clear(); }

 private:
  MySqlSession& admin_;
  std::string name_;
};

// Puts the verified copy in `temporary` in place of `target_db`, keeping the old contents
// until the swapped-in database has passed its check.
void SwapIn(MySqlSession& admin, const ArchiveReader& archive, const RestorePlan& plan,
            const DatabaseUrl& target, const std::string& temporary,
            const std::map<std::string, TableData>& hashed) {
  const std::string& target_db = target.database;
  const std::string holding = "safemig_old_" + RandomSuffix();
  const std::string shown = QuoteMySqlIdentifier(target_db);
  StringSink old_objects;
  InContext("cannot read the objects of " + shown, [&] {
    WritePostObjects(admin, target_db, old_objects);
    admin.Exec("CREATE DATABASE " + QuoteMySqlIdentifier(holding));
  });
  bool moved_old = false;
  try {
    InContext("cannot move the old tables of " + shown + " aside", [&] {
      // Triggers cannot move with RENAME TABLE across databases; all are kept as SQL.
      DropPostObjects(admin, target_db);
      MoveTables(admin, target_db, holding);
      moved_old = true;
      DropPostObjects(admin, temporary);
      MoveTables(admin, temporary, target_db);
    });
    {
      MySqlSession session(target, target_db);
      const std::string post = ExtractText(archive, *plan.post);
      InContext("cannot restore views, routines, triggers and events",
                [&] { RunScript(session, post); });
    }
    CheckFingerprint(archive.manifest(), target, target_db, hashed);
  } catch (const Error& e) {
    try {
      DropPostObjects(admin, target_db);
      for (const std::string& table : BaseTables(admin, target_db)) {
        admin.Exec("DROP TABLE " + shown + "." + QuoteMySqlIdentifier(table));
      }
      if (moved_old) MoveTables(admin, holding, target_db);
      MySqlSession session(target, target_db);
      RunScript(session, old_objects.text);
      admin.Exec("DROP DATABASE " + QuoteMySqlIdentifier(holding));
    } catch (const std::exception& undo) {
      throw Error(Category::kNeedsPerson,
                  fmt::format("{}; putting the old contents of {} back failed too: {}", e.what(),
                              shown, RedactSecrets(undo.what())),
                  fmt::format("the old tables are in database {}; move them back with RENAME "
                              "TABLE, or restore the safety backup",
                              QuoteMySqlIdentifier(holding)));
    }
    throw Error(e.category(), e.what() + std::string(" (") + shown + " was left as it was)",
                e.hint());
  }
  InContext("cannot drop the old contents of " + shown,
            [&] { admin.Exec("DROP DATABASE " + QuoteMySqlIdentifier(holding)); });
}

// --- restoring some tables ------------------------------------------------------------

// Reads a data part's first line, "-- safemig table: `name`", and stops.
class HeaderLineSink : public Sink {
 public:
  using Sink::Write;
  struct Done {};
  void Write(const char* data, std::size_t size) override {
    const char* end = static_cast<const char*>(std::memchr(data, '\n', size));
    line_.append(data, end == nullptr ? size : static_cast<std::size_t>(end - data));
    if (end != nullptr || line_.size() > 4096) throw Done{};
  }
  void Finish() override {}
  // The table's name, or "" when the line is not a header.
  std::string Table() const { return TableOfHeader(line_); }

 private:
  std::string line_;
};

// The data part of each table in `keys`.
std::map<std::string, const PartInfo*> FindTableParts(const ArchiveReader& archive,
                                                      const RestorePlan& plan,
                                                      const std::vector<std::string>& keys) {
  std::map<std::string, const PartInfo*> found;
  for (const PartInfo* part : plan.tables) {
    HeaderLineSink header;
    try {
      archive.ExtractPart(*part, header);
    } catch (const HeaderLineSink::Done&) {
    }
    const std::string table = header.Table();
    if (std::find(keys.begin(), keys.end(), table) != keys.end()) found[table] = part;
  }
  for (const std::string& key : keys) {
    if (found.count(key) == 0) throw MissingTablePart(archive.manifest().id, key);
  }
  return found;
}

std::string InList(const std::vector<std::string>& names) {
  std::string list;
  for (const std::string& name : names) list += (list.empty() ? "" : ", ") + QuoteMySqlLiteral(name);
  return list;
}

// Refuses (Error(kNoGo)) when a foreign key from or to one of `tables` has rows without
// their referenced row. Runs in the caller's transaction, so it sees the replaced rows.
void CheckForeignKeys(MySqlSession& session, const std::string& database,
                      const std::vector<std::string>& tables) {
  const std::string db = QuoteMySqlLiteral(database);
  struct Key {
    std::string child, parent;
    std::vector<std::pair<std::string, std::string>> columns;  // child column, parent column
  };
  std::map<std::string, Key> keys;
  for (const MySqlRow& r : session.Query(
           "SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME, COLUMN_NAME, "
           "REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE "
           "TABLE_SCHEMA = " + db + " AND REFERENCED_TABLE_SCHEMA = " + db +
           " AND REFERENCED_TABLE_NAME IS NOT NULL AND (TABLE_NAME IN (" + InList(tables) +
           ") OR REFERENCED_TABLE_NAME IN (" + InList(tables) + ")) ORDER BY TABLE_NAME, "
           "CONSTRAINT_NAME, ORDINAL_POSITION")) {
    Key& key = keys[Str(r[1]) + "." + Str(r[0])];
    key.child = Str(r[1]);
    key.parent = Str(r[2]);
    key.columns.emplace_back(Str(r[3]), Str(r[4]));
  }
  const std::string qdb = QuoteMySqlIdentifier(database) + ".";
  for (const auto& [name, key] : keys) {
    std::string set;
    std::string match;
    for (const auto& [child, parent] : key.columns) {
      set += " AND c." + QuoteMySqlIdentifier(child) + " IS NOT NULL";
      match += (match.empty() ? "" : " AND ") + std::string("p.") + QuoteMySqlIdentifier(parent) +
               " = c." + QuoteMySqlIdentifier(child);
    }
    const std::int64_t broken = std::stoll(Str(session.Value(
        "SELECT COUNT(*) FROM " + qdb + QuoteMySqlIdentifier(key.child) + " c WHERE 1 = 1" + set +
        " AND NOT EXISTS (SELECT 1 FROM " + qdb + QuoteMySqlIdentifier(key.parent) +
        " p WHERE " + match + ")")));
    if (broken > 0) {
      throw ForeignKeyRefusal(name.substr(key.child.size() + 1), key.child, key.parent, broken);
    }
  }
}

// Replaces the rows of options.tables in the existing database with the backup's. The
// parts are loaded into a scratch database first and their rows checked against the
// manifest; then one transaction deletes the old rows and copies the new ones in with
// foreign_key_checks off (so no ON DELETE CASCADE reaches other tables), and checks the
// keys itself before the commit. MySQL cannot switch triggers off for a session, so a
// table with triggers is refused rather than have them fire for every row.
RestoreReport ReplaceTables(const ArchiveReader& archive, const DatabaseUrl& target,
                            const RestorePlan& plan, const RestoreOptions& options,
                            const std::string& schema, const DatabaseOptions& database_options,
                            SharedProgress& progress) {
  const Manifest& manifest = archive.manifest();
  const std::string& database = target.database;
  const std::string shown = QuoteMySqlIdentifier(database);
  const auto parts = FindTableParts(archive, plan, options.tables);
  MySqlSession session(target, database);
  GuardMySql("read the tables to replace", [&] {
    const Fingerprint now = FingerprintMySql(session, database, true, FingerprintDepth::kSchema);
    RefuseChangedColumns(manifest.fingerprint, now, options.tables, shown, manifest.id);
    for (const MySqlRow& r : session.Query(
             "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS WHERE "
             "TRIGGER_SCHEMA = " + QuoteMySqlLiteral(database) + " AND EVENT_OBJECT_TABLE IN (" +
             InList(options.tables) + ") ORDER BY 1, 2")) {
      throw Error(Category::kNoGo,
                  fmt::format("table {} has trigger {}, which MySQL would fire for every row "
                              "replaced; nothing was changed",
                              Str(r[0]), Str(r[1])),
                  "restore the table into a new database instead and copy the rows you need");
    }
  });
  if (options.before_change) options.before_change();

  const std::string temporary = "safemig_restore_" + RandomSuffix();
  MySqlSession admin(target, std::string());
  InContext("cannot create the database to load the tables into", [&] {
    admin.Exec(CreateDatabaseSql(temporary, database_options));
  });
  CreatedDatabase created(admin, temporary);
  {
    MySqlSession scratch(target, temporary);
    InContext("cannot restore the schema", [&] { RunScript(scratch, schema); });
    for (const std::string& key : options.tables) {
      const PartInfo& part = *parts.at(key);
      LineStatementSink statements(scratch);
      CountingSink counted(statements, progress);
      InContext("cannot restore the rows of part " + part.name, [&] {
        archive.ExtractPart(part, counted);
        statements.Finish();
      });
    }
    const Fingerprint loaded = GuardMySql("check the loaded tables", [&] {
      return FingerprintMySql(scratch, temporary, true, FingerprintDepth::kFull);
    });
    for (const std::string& key : options.tables) {
      auto expected = manifest.fingerprint.tables.find(key);
      auto got = loaded.tables.find(key);
      if (expected != manifest.fingerprint.tables.end() &&
          (got == loaded.tables.end() || got->second.rows != expected->second.rows ||
           got->second.content_sha256 != expected->second.content_sha256)) {
        throw Error(Category::kIntegrity,
                    fmt::format("table {} loaded from backup {} differs from what was backed "
                                "up; nothing was changed",
                                key, manifest.id),
                    "the backup cannot be trusted; use another one");
      }
    }
  }

  RestoreReport report;
  const std::string qdb = shown + ".";
  try {
    GuardMySql("replace the tables' rows", [&] {
      session.Exec("SET SESSION foreign_key_checks = 0");
      session.Exec("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'");
      session.Exec("START TRANSACTION");
      for (const std::string& key : options.tables) {
        const auto started = std::chrono::steady_clock::now();
        std::string columns;
        for (const MySqlRow& r : session.Query(
                 "SELECT COLUMN_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA "
                 "= " + QuoteMySqlLiteral(database) + " AND TABLE_NAME = " +
                 QuoteMySqlLiteral(key) + " ORDER BY ORDINAL_POSITION")) {
          if (Str(r[1]).find("GENERATED") != std::string::npos) continue;
          columns += (columns.empty() ? "" : ", ") + QuoteMySqlIdentifier(Str(r[0]));
        }
        const std::string table = QuoteMySqlIdentifier(key);
        session.Exec("DELETE FROM " + qdb + table);
        session.Exec("INSERT INTO " + qdb + table + " (" + columns + ") SELECT " + columns +
                     " FROM " + QuoteMySqlIdentifier(temporary) + "." + table);
        const std::int64_t rows =
            std::stoll(Str(session.Value("SELECT COUNT(*) FROM " + qdb + table)));
        auto expected = manifest.fingerprint.tables.find(key);
        if (expected != manifest.fingerprint.tables.end() && rows != expected->second.rows) {
          throw Error(Category::kIntegrity,
                      fmt::format("table {} holds {} rows after the copy, the backup recorded "
                                  "{}; nothing was changed",
                                  key, rows, expected->second.rows));
        }
        report.tables.push_back({key, rows, Since(started)});
      }
      CheckForeignKeys(session, database, options.tables);
      session.Exec("COMMIT");
      session.Exec("SET SESSION foreign_key_checks = 1");
    });
  } catch (const Error&) {
    try {
      session.Exec("ROLLBACK");
    } catch (...) {  // closing the session rolls back as well
    }
    throw;
  }
  return report;
}

// Drops every table of `database` but `keep` and safemig's own, the foreign keys of the
// kept tables that point at dropped ones, and the views that no longer work.
void KeepOnlyTables(MySqlSession& admin, const std::string& database,
                    const std::vector<std::string>& keep) {
  const std::string db = QuoteMySqlLiteral(database);
  const std::string qdb = QuoteMySqlIdentifier(database) + ".";
  std::vector<std::string> drop;
  for (const std::string& table : BaseTables(admin, database)) {
    if (!IsSafemigTable(table) && std::find(keep.begin(), keep.end(), table) == keep.end()) {
      drop.push_back(table);
    }
  }
  if (drop.empty()) return;
  for (const MySqlRow& r : admin.Query(
           "SELECT DISTINCT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.KEY_COLUMN_USAGE "
           "WHERE TABLE_SCHEMA = " + db + " AND REFERENCED_TABLE_NAME IN (" + InList(drop) +
           ") AND TABLE_NAME NOT IN (" + InList(drop) + ")")) {
    admin.Exec("ALTER TABLE " + qdb + QuoteMySqlIdentifier(Str(r[0])) + " DROP FOREIGN KEY " +
               QuoteMySqlIdentifier(Str(r[1])));
  }
  std::string list;
  for (const std::string& table : drop) {
    list += (list.empty() ? "" : ", ") + qdb + QuoteMySqlIdentifier(table);
  }
  admin.Exec("SET SESSION foreign_key_checks = 0");
  admin.Exec("DROP TABLE " + list);
  admin.Exec("SET SESSION foreign_key_checks = 1");
  for (bool dropped = true; dropped;) {
    dropped = false;
    for (const MySqlRow& r : admin.Query(
             "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = " + db)) {
      const std::string view = qdb + QuoteMySqlIdentifier(Str(r[0]));
      try {
        admin.Query("SELECT * FROM " + view + " LIMIT 0");
      } catch (const sql::SQLException&) {
        admin.Exec("DROP VIEW " + view);
        dropped = true;
      }
    }
  }
}

}  // namespace

Fingerprint DumpMySql(const DatabaseUrl& url, ArchiveWriter& archive, int /*jobs*/,
                      const ArchiveReader::Progress& progress,
                      const std::function<void(const std::string&)>& notifier) {
  MySqlSession session(url);
  const std::string& database = url.database;
  std::vector<TableToCopy> tables;
  std::vector<std::string> sequences;  // MariaDB
  DatabaseOptions options;
  InContext("cannot back up the MySQL database", [&] {
    session.Exec("SET SESSION time_zone = '+00:00'");
    session.Exec("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'");
    // The server must wait for us while a part is compressed.
    session.Exec("SET SESSION net_write_timeout = 3600");
    session.Exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    session.Exec("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
    tables = ListTables(session, database);
    for (const MySqlRow& r : session.Query(
             "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = " +
             QuoteMySqlLiteral(database) + " AND TABLE_TYPE = 'SEQUENCE' ORDER BY TABLE_NAME")) {
      sequences.push_back(Str(r[0]));
    }
    std::vector<MySqlRow> db = session.Query(
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
        "information_schema.SCHEMATA WHERE SCHEMA_NAME = " + QuoteMySqlLiteral(database));
    if (!db.empty()) options = DatabaseOptions{Str(db[0][0]), Str(db[0][1])};
  });
  for (const TableToCopy& table : tables) {
    if (notifier && table.engine != "InnoDB") {
      notifier(fmt::format("table {} uses the {} engine, which has no transactions: writes to it "
                           "during the backup may show in the copy",
                           QuoteMySqlIdentifier(table.name), table.engine));
    }
  }
  std::uint64_t estimate = 0;
  for (const TableToCopy& table : tables) estimate += table.bytes;
  SharedProgress shared(progress, estimate);

  {
    Sink& part = archive.BeginPart(kSchemaPart, kSchemaKind);
    CountingSink counted(part, shared);
    nlohmann::json header = {{"charset", options.charset}, {"collation", options.collation}};
    counted.Write(kDatabaseHeader + header.dump() + "\n");
    counted.Write(kPartSettings);
    InContext("cannot back up the sequences", [&] {
      // Before the tables, whose defaults may call NEXTVAL. Each continues where the
      // original would after a restart: at its first value not handed to a cache.
      for (const std::string& sequence : sequences) {
        const std::string name = QuoteMySqlIdentifier(sequence);
        std::vector<MySqlRow> create =
            session.Query("SHOW CREATE SEQUENCE " + QuoteMySqlIdentifier(database) + "." + name);
        std::vector<MySqlRow> state = session.Query(
            "SELECT next_not_cached_value, cycle_count FROM " + QuoteMySqlIdentifier(database) +
            "." + name);
        counted.Write(Str(create.at(0)[1]) + ";\n");
        counted.Write(fmt::format("SELECT SETVAL({}, {}, 0, {});\n", name, Str(state.at(0)[0]),
                                  Str(state.at(0)[1])));
      }
    });
    InContext("cannot back up the table definitions", [&] {
      for (const TableToCopy& table : tables) {
        std::vector<MySqlRow> create = session.Query(
            "SHOW CREATE TABLE " + QuoteMySqlIdentifier(database) + "." +
            QuoteMySqlIdentifier(table.name));
        // A default NEXTVAL(`db`.`seq`) must call the restored copy's own sequence.
        std::string text = Str(create.at(0)[1]);
        for (const char* call : {"nextval(", "lastval(", "NEXTVAL(", "LASTVAL("}) {
          text = WithoutQualifier(text, database, call);
        }
        counted.Write(text + ";\n");
      }
    });
    archive.EndPart();
  }

  std::map<std::string, TableData> data;
  for (std::size_t i = 0; i < tables.size(); ++i) {
    Sink& part = archive.BeginPart(TablePartName(i), kTableKind);
    CountingSink counted(part, shared);
    TableData& table = data[tables[i].name];
    table = InContext("cannot back up the rows of " + QuoteMySqlIdentifier(tables[i].name),
                      [&] { return CopyTableOut(session, database, tables[i], counted); });
    archive.EndPart(table.rows);
  }

  {
    Sink& part = archive.BeginPart(kPostPart, kPostKind);
    CountingSink counted(part, shared);
    InContext("cannot back up views, routines, triggers and events",
              [&] { WritePostObjects(session, database, counted); });
    archive.EndPart();
  }

  // The schema as of the snapshot; the rows were hashed as they were written, a
  // sequence's one row by the server.
  Fingerprint fingerprint = FingerprintMySql(session, database, true, FingerprintDepth::kSchema);
  for (const std::string& sequence : sequences) {
    data[sequence] = HashMySqlRows(session, database, sequence).Finish();
  }
  fingerprint.tables = std::move(data);
  GuardMySql("finish the backup snapshot", [&] { session.Exec("COMMIT"); });
  shared.Complete();
  return fingerprint;
}

RestoreReport RestoreMySql(const ArchiveReader& archive, const DatabaseUrl& target,
                  const RestoreOptions& options, int jobs,
                  const ArchiveReader::Progress& progress) {
  const Manifest& manifest = archive.manifest();
  if (manifest.engine != EngineName(Engine::kMySql)) {
    throw Error(Category::kUsage,
                fmt::format("backup {} holds a {} database, not a MySQL one", manifest.id,
                            manifest.engine),
                "pass a target URL of the backup's engine");
  }
  if (target.database.empty() || target.database.size() > 64) {
    throw Error(Category::kUsage,
                fmt::format("'{}' is not a usable MySQL database name (1 to 64 characters)",
                            target.database),
                "pass a target URL with a shorter database name");
  }
  // Nothing is touched until every part has passed its checksum.
  archive.CheckParts();
  const RestorePlan plan = PlanRestore(manifest);
  SharedProgress shared(progress, manifest.RawBytes());
  const std::string schema = ExtractText(archive, *plan.schema);
  const DatabaseOptions database_options = ParseDatabaseHeader(schema);
  if (options.replace_existing && !options.tables.empty()) {
    RestoreReport report =
        ReplaceTables(archive, target, plan, options, schema, database_options, shared);
    shared.Complete();
    return report;
  }

  MySqlSession admin(target, std::string());
  const std::string shown = QuoteMySqlIdentifier(target.database);
  const bool exists = GuardMySql("read the list of databases",
                                 [&] { return DatabaseExists(admin, target.database); });
  const std::int64_t objects =
      exists ? GuardMySql("read the catalog", [&] { return CountObjects(admin, target.database); })
             : 0;
  if (objects > 0 && !options.replace_existing) {
    throw Error(Category::kUsage,
                fmt::format("database {} already exists and is not empty ({} tables, views, "
                            "routines or events); a restore never overwrites it unasked",
                            shown, objects),
                "restore into a new database, or replace this one with --in-place");
  }

  if (objects == 0) {
    // Straight into the target: a new database is dropped again on failure; an existing
    // empty one keeps what was restored so far, and the error says so.
    if (!exists) {
      InContext("cannot create database " + shown, [&] {
        admin.Exec(CreateDatabaseSql(target.database, database_options));
      });
    }
    CreatedDatabase created(admin, exists ? std::string() : target.database);
    RestoreReport report;
    try {
      const auto hashed = LoadInto(archive, target, target.database, plan, schema, jobs, shared);
      CheckFingerprint(manifest, target, target.database, hashed);
      if (!options.tables.empty()) {
        GuardMySql("drop the tables not asked for",
                   [&] { KeepOnlyTables(admin, target.database, options.tables); });
        for (const std::string& key : options.tables) {
          auto it = manifest.fingerprint.tables.find(key);
          report.tables.push_back({key, it == manifest.fingerprint.tables.end() ? 0 : it->second.rows,
                                   std::chrono::milliseconds(0)});
        }
      }
    } catch (const Error& e) {
      if (!exists) throw;
      throw Error(e.category(),
                  e.what() + fmt::format(" (database {} keeps what was restored so far)", shown),
                  e.hint());
    }
    created.Release();
    shared.Complete();
    return report;
  }

  const std::string temporary = "safemig_restore_" + RandomSuffix();
  InContext("cannot create the database to restore " + shown + " into", [&] {
    admin.Exec(CreateDatabaseSql(temporary, database_options));
  });
  CreatedDatabase created(admin, temporary);
  const auto hashed = LoadInto(archive, target, temporary, plan, schema, jobs, shared);
  CheckFingerprint(manifest, target, temporary, hashed);
  // The tables move with one RENAME TABLE, rows untouched: their hashes still hold.
  SwapIn(admin, archive, plan, target, temporary, hashed);
  shared.Complete();
  return {};
}

}  // namespace safemig
