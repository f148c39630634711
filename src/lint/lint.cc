#include "lint/lint.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "lint/tokens.h"

namespace safemig::lint {

namespace {

using Tokens = std::vector<Token>;

constexpr const char* kPg = "postgres";
constexpr const char* kAll = "postgres, mysql, sqlite";

const std::vector<RuleInfo> kRules = {
    {"create-index-locks-writes", kPg, Severity::kWarning,
     "CREATE INDEX without CONCURRENTLY blocks writes to the table while it builds"},
    {"drop-index-locks", kPg, Severity::kWarning,
     "DROP INDEX without CONCURRENTLY waits for and then blocks every query on the table"},
    {"concurrently-in-transaction", kPg, Severity::kError,
     "CONCURRENTLY cannot run inside a transaction; the migration fails"},
    {"add-column-not-null-without-default", kAll, Severity::kError,
     "ADD COLUMN ... NOT NULL without DEFAULT fails on a table that has rows"},
    {"add-column-volatile-default", kPg, Severity::kWarning,
     "ADD COLUMN with a volatile DEFAULT rewrites the whole table under an exclusive lock"},
    {"add-column-stored-generated", kPg, Severity::kWarning,
     "ADD COLUMN ... GENERATED ALWAYS AS (...) STORED rewrites the whole table under an "
     "exclusive lock"},
    {"drop-not-null", kPg, Severity::kWarning,
     "DROP NOT NULL lets NULLs in that the application version still running may not expect"},
    {"domain-check-constraint", kPg, Severity::kWarning,
     "a CHECK on a domain is validated against every column using it, under lock"},
    {"reindex-locks", kPg, Severity::kWarning,
     "REINDEX without CONCURRENTLY blocks writes (and reads using the index) until done"},
    {"alter-column-type", kPg, Severity::kError,
     "ALTER COLUMN ... TYPE rewrites the table (and its indexes) under an exclusive lock"},
    {"set-not-null", kPg, Severity::kWarning,
     "SET NOT NULL scans the whole table under an exclusive lock"},
    {"constraint-not-valid", kPg, Severity::kWarning,
     "a FOREIGN KEY or CHECK added without NOT VALID is checked against every row under lock"},
    {"unique-constraint-locks", kPg, Severity::kWarning,
     "ADD UNIQUE / PRIMARY KEY builds its index while blocking writes"},
    {"rename", kAll, Severity::kWarning,
     "renaming a table or column breaks the application still running during a rolling deploy"},
    {"drop-table", kAll, Severity::kError, "DROP TABLE destroys data"},
    {"drop-column", kAll, Severity::kError, "DROP COLUMN destroys data"},
    {"drop-schema", "postgres, mysql", Severity::kError,
     "DROP SCHEMA / DROP DATABASE destroys everything in it"},
    {"truncate", "postgres, mysql", Severity::kError, "TRUNCATE deletes every row"},
    {"delete-without-where", kAll, Severity::kError, "DELETE without WHERE deletes every row"},
    {"update-without-where", kAll, Severity::kError, "UPDATE without WHERE changes every row"},
    {"transaction-control", "postgres, sqlite", Severity::kError,
     "BEGIN/COMMIT/ROLLBACK inside a migration ends the transaction safemig wraps it in"},
    {"vacuum-full-or-cluster", kPg, Severity::kError,
     "VACUUM FULL and CLUSTER rewrite the table, blocking reads and writes throughout"},
    {"enum-members-changed", "mysql", Severity::kWarning,
     "removing or reordering ENUM/SET members copies the whole table and can change data"},
    {"inline-references-ignored", "mysql", Severity::kWarning,
     "a REFERENCES clause in a column definition is silently ignored by MySQL"},
    {"ddl-mixed-with-dml", "mysql", Severity::kWarning,
     "DDL commits itself, so DDL and data changes in one migration cannot be undone together"},
    {"sqlite-unsupported-alter", "sqlite", Severity::kError,
     "SQLite's ALTER TABLE cannot do this; the table has to be rebuilt"},
    {"table-rebuild", "sqlite", Severity::kWarning,
     "a table rebuild (create, copy, drop, rename) copies every row and needs care with "
     "foreign keys"},
    {"missing-down", kAll, Severity::kError,
     "the migration has no down and is not marked irreversible"},
    {"down-misses-objects", kAll, Severity::kWarning,
     "the up creates objects its down never mentions"},
    {"syntax", kAll, Severity::kError, "the file cannot be split into statements"},
};

Severity SeverityOf(const std::string& rule, Dialect dialect) {
  // MySQL fills a new NOT NULL column with the type's implicit default instead of failing.
  if (rule == "add-column-not-null-without-default" && dialect == Dialect::kMySql) {
    return Severity::kWarning;
  }
  for (const RuleInfo& info : kRules) {
    if (rule == info.id) return info.severity;
  }
  return Severity::kError;
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Rule ids after "safemig:ignore" on each comment line of `text`.
std::set<std::string> IgnoresIn(std::string_view line) {
  std::set<std::string> rules;
  constexpr std::string_view kMarker = "safemig:ignore";
  size_t at = line.find(kMarker);
  if (at == std::string_view::npos) return rules;
  std::string rest(line.substr(at + kMarker.size()));
  std::string current;
  for (char c : rest + " ") {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_') {
      current += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!current.empty()) {
      rules.insert(current);
      current.clear();
    }
  }
  return rules;
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

bool IsCommentLine(std::string_view line) {
  size_t first = line.find_first_not_of(" \t\r");
  return first == std::string_view::npos || line.substr(first, 2) == "--" ||
         line.substr(first, 1) == "#";
}

// Reads [schema.]name at `i`; the unqualified name.
std::optional<std::string> ReadName(const Tokens& t, size_t& i) {
  if (i >= t.size() || !t[i].IsName()) return std::nullopt;
  std::string name = NameOf(t[i]);
  ++i;
  while (i + 1 < t.size() && t[i].IsPunct('.') && t[i + 1].IsName()) {
    name = NameOf(t[i + 1]);
    i += 2;
  }
  return name;
}

void SkipWords(const Tokens& t, size_t& i, std::initializer_list<std::string_view> words) {
  for (std::string_view word : words) {
    if (i < t.size() && t[i].Is(word)) {
      ++i;
    } else {
      return;
    }
  }
}

void SkipIfExists(const Tokens& t, size_t& i) {
  if (i + 1 < t.size() && t[i].Is("IF") && t[i + 1].Is("EXISTS")) i += 2;
  if (i + 2 < t.size() && t[i].Is("IF") && t[i + 1].Is("NOT") && t[i + 2].Is("EXISTS")) i += 3;
}

bool Contains(const Tokens& t, size_t from, size_t to, std::string_view word) {
  for (size_t i = from; i < to && i < t.size(); ++i) {
    if (t[i].Is(word)) return true;
  }
  return false;
}

bool ContainsSequence(const Tokens& t, size_t from, size_t to,
                      std::initializer_list<std::string_view> words) {
  for (size_t i = from; i < to && i < t.size(); ++i) {
    size_t k = 0;
    for (std::string_view word : words) {
      if (i + k >= to || !t[i + k].Is(word)) break;
      ++k;
    }
    if (k == words.size()) return true;
  }
  return false;
}

// [from, to) ranges split on commas at parenthesis depth 0.
std::vector<std::pair<size_t, size_t>> SplitOnCommas(const Tokens& t, size_t from, size_t to) {
  std::vector<std::pair<size_t, size_t>> parts;
  int depth = 0;
  size_t start = from;
  for (size_t i = from; i < to; ++i) {
    if (t[i].IsPunct('(')) ++depth;
    if (t[i].IsPunct(')')) --depth;
    if (depth == 0 && t[i].IsPunct(',')) {
      parts.emplace_back(start, i);
      start = i + 1;
    }
  }
  if (start < to) parts.emplace_back(start, to);
  return parts;
}

// The string literals of ENUM(...) / SET(...) in [from, to), if the range declares one.
std::optional<std::vector<std::string>> EnumMembers(const Tokens& t, size_t from, size_t to) {
  for (size_t i = from; i + 1 < to; ++i) {
    if ((t[i].Is("ENUM") || t[i].Is("SET")) && t[i + 1].IsPunct('(')) {
      std::vector<std::string> members;
      for (size_t k = i + 2; k < to && !t[k].IsPunct(')'); ++k) {
        if (t[k].kind == TokenKind::kString) members.push_back(t[k].text);
      }
      return members;
    }
  }
  return std::nullopt;
}

bool IsConstraintStart(const Token& token) {
  for (std::string_view word : {"CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "KEY",
                                "INDEX", "FULLTEXT", "SPATIAL", "EXCLUDE", "LIKE", "PERIOD"}) {
    if (token.Is(word)) return true;
  }
  return false;
}

bool IsVolatileCall(const Tokens& t, size_t i) {
  static const std::set<std::string> kVolatile = {
      "RANDOM", "CLOCK_TIMESTAMP", "TIMEOFDAY", "GEN_RANDOM_UUID", "UUID_GENERATE_V1",
      "UUID_GENERATE_V1MC", "UUID_GENERATE_V4", "NEXTVAL", "TXID_CURRENT"};
  return t[i].kind == TokenKind::kWord && kVolatile.count(t[i].text) != 0 && i + 1 < t.size() &&
         t[i + 1].IsPunct('(');
}

// What persists from one migration to the next: MySQL ENUM/SET columns as declared so far.
struct SchemaMemory {
  std::map<std::string, std::vector<std::string>> enums;  // "table.column" -> members
};

class MigrationLinter {
 public:
  MigrationLinter(const Migration& migration, const Options& options, SchemaMemory& memory,
                  bool report, std::vector<Finding>& out)
      : m_(migration), options_(options), memory_(memory), report_(report), out_(out) {}

  void Run() {
    if (!m_.HasDown() && !m_.directives.irreversible) {
      Emit("missing-down", m_.up_path, m_.up_first_line,
           "there is no down migration, so this change can only be undone by a restore",
           "write the down that undoes it, or mark the up -- safemig:irreversible");
    }
    std::vector<Statement> up;
    if (!Split(m_.up_sql, m_.up_path, m_.up_first_line, up)) return;
    file_ignores_ = LeadingIgnores(m_.up_sql);
    PrescanRebuilds(up);
    const auto lines = Lines(m_.up_sql);
    for (const Statement& statement : up) {
      statement_ignores_ = StatementIgnores(lines, statement.line);
      base_line_ = m_.up_first_line + statement.line - 1;
      file_ = m_.up_path;
      Tokens tokens = Tokenize(statement.text, options_.dialect);
      if (!tokens.empty()) CheckUp(tokens);
    }
    if (m_.HasDown()) CheckDown();
  }

 private:
  bool Split(const std::string& sql, const std::string& file, int first_line,
             std::vector<Statement>& statements) {
    try {
      statements = SplitStatements(sql, options_.dialect);
      return true;
    } catch (const Error& e) {
      Emit("syntax", file, first_line, e.what(), "fix the file so it splits into statements");
      return false;
    }
  }

  static std::set<std::string> LeadingIgnores(const std::string& sql) {
    std::set<std::string> rules;
    for (std::string_view line : Lines(sql)) {
      if (!IsCommentLine(line)) break;
      for (const std::string& rule : IgnoresIn(line)) rules.insert(rule);
    }
    return rules;
  }

  // Ignores on the statement's first line and the comment lines right above it.
  static std::set<std::string> StatementIgnores(const std::vector<std::string_view>& lines,
                                                int line) {
    std::set<std::string> rules;
    size_t index = static_cast<size_t>(line - 1);
    if (index < lines.size()) rules = IgnoresIn(lines[index]);
    while (index > 0 && IsCommentLine(lines[index - 1])) {
      --index;
      for (const std::string& rule : IgnoresIn(lines[index])) rules.insert(rule);
    }
    return rules;
  }

  void Emit(const std::string& rule, const std::string& file, int line, std::string message,
            std::string fix) {
    if (!report_ || options_.ignored.count(rule) != 0 || file_ignores_.count(rule) != 0 ||
        statement_ignores_.count(rule) != 0) {
      return;
    }
    out_.push_back(Finding{rule, SeverityOf(rule, options_.dialect), m_.version, file, line,
                           std::move(message), std::move(fix)});
  }

  void At(const Token& token, const std::string& rule, std::string message, std::string fix) {
    Emit(rule, file_, base_line_ + token.line, std::move(message), std::move(fix));
  }

  bool Pg() const { return options_.dialect == Dialect::kPostgres; }
  bool MySql() const { return options_.dialect == Dialect::kMySql; }
  bool Sqlite() const { return options_.dialect == Dialect::kSqlite; }
  bool Existing(const std::string& table) const { return created_.count(table) == 0; }

  // SQLite's table rebuild: DROP TABLE x ... ALTER TABLE x_new RENAME TO x. Those drops are
  // part of the rebuild, not data loss.
  void PrescanRebuilds(const std::vector<Statement>& statements) {
    if (!Sqlite()) return;
    std::set<std::string> dropped;
    for (const Statement& statement : statements) {
      Tokens t = Tokenize(statement.text, options_.dialect);
      size_t i = 2;
      if (t.size() > 2 && t[0].Is("DROP") && t[1].Is("TABLE")) {
        SkipIfExists(t, i);
        if (auto name = ReadName(t, i)) dropped.insert(*name);
      }
      if (t.size() > 2 && t[0].Is("ALTER") && t[1].Is("TABLE")) {
        if (!ReadName(t, i)) continue;
        if (i + 2 < t.size() && t[i].Is("RENAME") && t[i + 1].Is("TO")) {
          size_t k = i + 2;
          if (auto target = ReadName(t, k); target && dropped.count(*target) != 0) {
            rebuilt_.insert(*target);
          }
        }
      }
    }
  }

  void CheckUp(const Tokens& t) {
    const Token& first = t[0];
    if (first.Is("BEGIN") || first.Is("COMMIT") || first.Is("ROLLBACK") || first.Is("END") ||
        (first.Is("START") && t.size() > 1 && t[1].Is("TRANSACTION"))) {
      CheckTransactionControl(t);
      return;
    }
    NoteMySqlKind(t);
    if (first.Is("CREATE")) return CheckCreate(t);
    if (first.Is("ALTER") && t.size() > 1 && t[1].Is("TABLE")) return CheckAlterTable(t);
    if (first.Is("DROP")) return CheckDrop(t);
    if (first.Is("RENAME") && t.size() > 1 && t[1].Is("TABLE")) {
      At(first, "rename", "RENAME TABLE breaks the application version still running",
         "add the new table (or a view with the new name) first, move the code over, and "
         "drop the old one in a later release");
      return;
    }
    if (first.Is("TRUNCATE")) return CheckTruncate(t);
    if (first.Is("DELETE") || first.Is("UPDATE")) return CheckWhere(t);
    if (first.Is("VACUUM") && Pg() && Contains(t, 1, t.size(), "FULL")) {
      At(first, "vacuum-full-or-cluster",
         "VACUUM FULL rewrites the table and blocks reads and writes until it is done",
         "use plain VACUUM, or pg_repack, outside the deploy");
      return;
    }
    if (first.Is("REINDEX") && Pg() && !Contains(t, 1, std::min<size_t>(t.size(), 5), "CONCURRENTLY")) {
      At(first, "reindex-locks",
         "REINDEX blocks writes to the table, and reads that use the index, until it is done",
         "REINDEX ... CONCURRENTLY (PostgreSQL 12+), in a migration marked "
         "-- safemig:no-transaction");
      return;
    }
    if (first.Is("REINDEX") && Pg()) {
      CheckConcurrentlyOutsideTransaction(first);
      return;
    }
    if (Pg() && t.size() > 2 && first.Is("ALTER") && t[1].Is("DOMAIN") &&
        ContainsSequence(t, 2, t.size(), {"ADD"}) && Contains(t, 2, t.size(), "CHECK") &&
        !ContainsSequence(t, 2, t.size(), {"NOT", "VALID"})) {
      At(first, "domain-check-constraint",
         "the new domain CHECK is validated against every column that uses the domain, under "
         "lock",
         "add it NOT VALID, then ALTER DOMAIN ... VALIDATE CONSTRAINT in a later migration");
      return;
    }
    if (first.Is("CLUSTER") && Pg()) {
      At(first, "vacuum-full-or-cluster",
         "CLUSTER rewrites the table and blocks reads and writes until it is done",
         "leave physical ordering to a maintenance window (or pg_repack), not a migration");
    }
  }

  void CheckTransactionControl(const Tokens& t) {
    if (MySql() || m_.directives.no_transaction) return;
    At(t[0], "transaction-control",
       fmt::format("{} inside a migration ends the transaction safemig runs it in, so a "
                   "failure after it can no longer be rolled back",
                   t[0].text),
       "remove it: safemig wraps each migration in a transaction (mark the migration "
       "-- safemig:no-transaction if it must manage its own)");
  }

  // MySQL commits DDL by itself: a migration that changes data and structure cannot be
  // undone as one.
  void NoteMySqlKind(const Tokens& t) {
    if (!MySql() || mixed_reported_) return;
    const Token& first = t[0];
    bool ddl = first.Is("CREATE") || first.Is("ALTER") || first.Is("DROP") ||
               first.Is("RENAME") || first.Is("TRUNCATE");
    bool dml = first.Is("INSERT") || first.Is("UPDATE") || first.Is("DELETE") ||
               first.Is("REPLACE");
    if (dml) {
      // Filling a table this migration created is part of creating it: a restore undoes both.
      size_t i = 1;
      SkipWords(t, i, {"LOW_PRIORITY"});
      SkipWords(t, i, {"IGNORE"});
      SkipWords(t, i, {"INTO"});
      SkipWords(t, i, {"FROM"});
      std::optional<std::string> table = ReadName(t, i);
      if (table && !Existing(*table)) dml = false;
    }
    if ((ddl && saw_dml_) || (dml && saw_ddl_)) {
      mixed_reported_ = true;
      At(first, "ddl-mixed-with-dml",
         "this migration mixes DDL and data changes; MySQL commits the DDL on its own, so a "
         "failure part-way cannot be undone together",
         "put the data change in a migration of its own");
    }
    saw_ddl_ = saw_ddl_ || ddl;
    saw_dml_ = saw_dml_ || dml;
  }

  void CheckCreate(const Tokens& t) {
    size_t i = 1;
    SkipWords(t, i, {"OR", "REPLACE"});
    bool unique = i < t.size() && t[i].Is("UNIQUE");
    if (unique) ++i;
    if (i < t.size() && t[i].Is("INDEX")) return CheckCreateIndex(t, i + 1);
    SkipWords(t, i, {"TEMPORARY"});
    SkipWords(t, i, {"TEMP"});
    SkipWords(t, i, {"UNLOGGED"});
    if (i < t.size() && t[i].Is("TABLE")) {
      ++i;
      SkipIfExists(t, i);
      std::optional<std::string> table = ReadName(t, i);
      if (!table) return;
      created_.insert(*table);
      created_objects_.emplace_back(*table, "");
      if (i < t.size() && t[i].IsPunct('(')) CheckColumnDefinitions(t, i, *table);
      return;
    }
    if (Pg() && i < t.size() && t[i].Is("DOMAIN") && Contains(t, i, t.size(), "CHECK")) {
      At(t[0], "domain-check-constraint",
         "a CHECK on a domain is re-validated against every column using the domain whenever "
         "it changes, under lock",
         "put the CHECK on the table columns instead (ADD CONSTRAINT ... NOT VALID, then "
         "VALIDATE)");
    }
    for (std::string_view kind : {"VIEW", "SEQUENCE", "TYPE", "FUNCTION", "PROCEDURE",
                                  "TRIGGER", "MATERIALIZED", "DOMAIN"}) {
      if (i < t.size() && t[i].Is(kind)) {
        ++i;
        SkipWords(t, i, {"VIEW"});
        SkipIfExists(t, i);
        if (auto name = ReadName(t, i)) {
          std::string on;
          if (kind == "TRIGGER") {
            size_t on_at = FindWord(t, "ON", i);
            size_t k = on_at + 1;
            if (on_at < t.size()) on = ReadName(t, k).value_or("");
          }
          created_objects_.emplace_back(*name, on);
        }
        return;
      }
    }
  }

  void CheckColumnDefinitions(const Tokens& t, size_t open, const std::string& table) {
    size_t close = open;
    int depth = 0;
    for (; close < t.size(); ++close) {
      if (t[close].IsPunct('(')) ++depth;
      if (t[close].IsPunct(')') && --depth == 0) break;
    }
    for (auto [from, to] : SplitOnCommas(t, open + 1, close)) {
      if (from >= to || IsConstraintStart(t[from])) continue;
      RememberEnum(t, table, from, to);
      CheckInlineReferences(t, from, to);
    }
  }

  void RememberEnum(const Tokens& t, const std::string& table, size_t from, size_t to) {
    if (!MySql() || !t[from].IsName()) return;
    if (auto members = EnumMembers(t, from + 1, to)) {
      memory_.enums[table + "." + NameOf(t[from])] = *members;
    }
  }

  void CheckInlineReferences(const Tokens& t, size_t from, size_t to) {
    if (!MySql()) return;
    for (size_t k = from; k < to; ++k) {
      if (t[k].Is("REFERENCES")) {
        At(t[k], "inline-references-ignored",
           "MySQL ignores REFERENCES in a column definition: no foreign key is created",
           "declare it as a table constraint: FOREIGN KEY (col) REFERENCES other (id)");
        return;
      }
    }
  }

  void CheckCreateIndex(const Tokens& t, size_t i) {
    bool concurrently = i < t.size() && t[i].Is("CONCURRENTLY");
    if (concurrently) ++i;
    if (!Pg()) return;
    size_t on = FindWord(t, "ON", i);
    size_t k = on + 1;
    SkipWords(t, k, {"ONLY"});
    std::optional<std::string> table = on < t.size() ? ReadName(t, k) : std::nullopt;
    SkipIfExists(t, i);
    if (i < on && t[i].IsName()) {
      size_t n = i;
      if (auto name = ReadName(t, n)) created_objects_.emplace_back(*name, table.value_or(""));
    }
    if (concurrently) {
      CheckConcurrentlyOutsideTransaction(t[0]);
      return;
    }
    if (table && Existing(*table)) {
      At(t[0], "create-index-locks-writes",
         fmt::format("CREATE INDEX on {} blocks writes to it until the index is built", *table),
         "CREATE INDEX CONCURRENTLY, in a migration marked -- safemig:no-transaction");
    }
  }

  void CheckConcurrentlyOutsideTransaction(const Token& at) {
    if (m_.directives.no_transaction) return;
    At(at, "concurrently-in-transaction",
       "CONCURRENTLY cannot run inside a transaction block, and safemig runs this migration "
       "in one",
       "mark the migration -- safemig:no-transaction and keep one statement per migration");
  }

  void CheckAlterTable(const Tokens& t) {
    size_t i = 2;
    SkipIfExists(t, i);
    SkipWords(t, i, {"ONLY"});
    std::optional<std::string> table = ReadName(t, i);
    if (!table) return;
    for (auto [from, to] : SplitOnCommas(t, i, t.size())) {
      if (from < to) CheckAlterAction(t, from, to, *table);
    }
  }

  void CheckAlterAction(const Tokens& t, size_t from, size_t to, const std::string& table) {
    const Token& verb = t[from];
    const bool existing = Existing(table);
    if (Sqlite() && !(verb.Is("ADD") || verb.Is("DROP") || verb.Is("RENAME"))) {
      At(verb, "sqlite-unsupported-alter",
         fmt::format("SQLite's ALTER TABLE cannot {} (only RENAME, ADD COLUMN and DROP "
                     "COLUMN)",
                     verb.text),
         "rebuild the table: CREATE TABLE new, INSERT INTO new SELECT ... FROM old, DROP "
         "TABLE old, ALTER TABLE new RENAME TO old");
      return;
    }
    if (verb.Is("ADD")) return CheckAdd(t, from + 1, to, table, existing);
    if (verb.Is("ALTER")) return CheckAlterColumn(t, from + 1, to, table, existing);
    if (verb.Is("DROP")) return CheckDropColumn(t, from + 1, to, table, existing);
    if (verb.Is("RENAME")) return CheckRename(t, from + 1, to, table, existing);
    if (MySql() && (verb.Is("MODIFY") || verb.Is("CHANGE"))) {
      return CheckMySqlModify(t, from, to, table, existing);
    }
  }

  void CheckAdd(const Tokens& t, size_t i, size_t to, const std::string& table, bool existing) {
    if (i >= to) return;
    if (Sqlite() && (t[i].Is("CONSTRAINT") || t[i].Is("PRIMARY") || t[i].Is("UNIQUE") ||
                     t[i].Is("FOREIGN") || t[i].Is("CHECK"))) {
      At(t[i], "sqlite-unsupported-alter", "SQLite's ALTER TABLE cannot add a constraint",
         "rebuild the table with the constraint in its CREATE TABLE");
      return;
    }
    if (t[i].Is("CONSTRAINT") || t[i].Is("PRIMARY") || t[i].Is("UNIQUE") ||
        t[i].Is("FOREIGN") || t[i].Is("CHECK") || t[i].Is("EXCLUDE")) {
      return CheckAddConstraint(t, i, to, table, existing);
    }
    if (t[i].Is("INDEX") || t[i].Is("KEY") || t[i].Is("FULLTEXT") || t[i].Is("SPATIAL")) return;
    SkipWords(t, i, {"COLUMN"});
    SkipIfExists(t, i);
    if (i >= to || !t[i].IsName()) return;
    const std::string column = NameOf(t[i]);
    created_objects_.emplace_back(column, table);
    RememberEnum(t, table, i, to);
    CheckInlineReferences(t, i, to);
    const bool generated = Contains(t, i, to, "GENERATED") || Contains(t, i, to, "AS") ||
                           Contains(t, i, to, "AUTO_INCREMENT") ||
                           Contains(t, i, to, "SERIAL") || Contains(t, i, to, "BIGSERIAL");
    const size_t default_at = FindWord(t, "DEFAULT", i);
    const bool has_default = default_at < to;
    if (ContainsSequence(t, i, to, {"NOT", "NULL"}) && !has_default && !generated &&
        (existing || Sqlite())) {
      At(t[i], "add-column-not-null-without-default",
         MySql() ? fmt::format("{}.{} is NOT NULL without a DEFAULT: existing rows get the "
                               "type's implicit default (0, '', ...)",
                               table, column)
                 : fmt::format("{}.{} is NOT NULL without a DEFAULT: the ALTER fails as soon "
                               "as {} has rows",
                               table, column, table),
         "add it with a DEFAULT, or nullable, backfill, then set NOT NULL");
    }
    if (!existing || !Pg()) return;
    for (size_t k = i + 1; k < to; ++k) {
      if (t[k].Is("SERIAL") || t[k].Is("BIGSERIAL") || t[k].Is("SMALLSERIAL")) {
        At(t[k], "add-column-volatile-default",
           fmt::format("{} fills {}.{} from a sequence (a volatile default), which rewrites "
                       "every row under an exclusive lock",
                       Lower(t[k].text), table, column),
           "add a nullable bigint column, attach an identity or sequence default after, and "
           "backfill in batches");
        break;
      }
    }
    if (ContainsSequence(t, i, to, {"GENERATED", "ALWAYS", "AS"}) && Contains(t, i, to, "STORED")) {
      At(t[i], "add-column-stored-generated",
         fmt::format("the stored generated column {}.{} is computed for every row while the "
                     "table is locked",
                     table, column),
         "add a plain nullable column, backfill it in batches and keep it current with a "
         "trigger, or compute it in a view");
    }
    for (size_t k = default_at + 1; has_default && k < to; ++k) {
      if (IsVolatileCall(t, k)) {
        At(t[k], "add-column-volatile-default",
           fmt::format("DEFAULT {}() is volatile, so adding {}.{} rewrites every row under an "
                       "exclusive lock",
                       Lower(t[k].text), table, column),
           "add the column without a default, set the default after, and backfill in batches");
        break;
      }
    }
    if (Contains(t, i, to, "REFERENCES")) {
      At(t[i], "constraint-not-valid",
         fmt::format("the foreign key on new column {}.{} is checked under a lock on both "
                     "tables",
                     table, column),
         "add the column, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID and VALIDATE "
         "CONSTRAINT in a later migration");
    }
    if (Contains(t, i, to, "UNIQUE") || ContainsSequence(t, i, to, {"PRIMARY", "KEY"})) {
      At(t[i], "unique-constraint-locks",
         fmt::format("the unique index of new column {}.{} is built while writes wait", table,
                     column),
         "add the column, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING "
         "INDEX");
    }
  }

  void CheckAddConstraint(const Tokens& t, size_t i, size_t to, const std::string& table,
                          bool existing) {
    if (!Pg() || !existing) return;
    const bool not_valid = ContainsSequence(t, i, to, {"NOT", "VALID"});
    if ((Contains(t, i, to, "FOREIGN") || Contains(t, i, to, "CHECK")) && !not_valid) {
      At(t[i], "constraint-not-valid",
         fmt::format("the new constraint is checked against every row of {} while it is "
                     "locked",
                     table),
         "ADD CONSTRAINT ... NOT VALID now, then ALTER TABLE ... VALIDATE CONSTRAINT in a later "
         "migration (it takes a weaker lock)");
    }
    if (Contains(t, i, to, "EXCLUDE")) {
      At(t[i], "unique-constraint-locks",
         fmt::format("adding the exclusion constraint builds its index on {} while writes wait",
                     table),
         "add it while the table is small or in a maintenance window; there is no "
         "concurrent form");
      return;
    }
    if ((Contains(t, i, to, "UNIQUE") || ContainsSequence(t, i, to, {"PRIMARY", "KEY"})) &&
        !ContainsSequence(t, i, to, {"USING", "INDEX"})) {
      At(t[i], "unique-constraint-locks",
         fmt::format("adding the constraint builds a unique index on {} while writes wait",
                     table),
         "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT name UNIQUE USING "
         "INDEX name");
    }
  }

  void CheckAlterColumn(const Tokens& t, size_t i, size_t to, const std::string& table,
                        bool existing) {
    SkipWords(t, i, {"COLUMN"});
    if (i >= to || !t[i].IsName() || !Pg() || !existing) return;
    const std::string column = NameOf(t[i]);
    if (Contains(t, i + 1, to, "TYPE")) {
      At(t[i], "alter-column-type",
         fmt::format("changing the type of {}.{} rewrites the table and its indexes under an "
                     "exclusive lock",
                     table, column),
         "add a new column, backfill it in batches, switch the code over, then drop the old "
         "one");
    }
    if (ContainsSequence(t, i + 1, to, {"DROP", "NOT", "NULL"})) {
      At(t[i], "drop-not-null",
         fmt::format("{}.{} may hold NULL from now on; the application version still running "
                     "may not handle it",
                     table, column),
         "ship code that handles NULL first, then drop the constraint in a later release");
    }
    if (ContainsSequence(t, i + 1, to, {"SET", "NOT", "NULL"})) {
      At(t[i], "set-not-null",
         fmt::format("SET NOT NULL on {}.{} scans the whole table under an exclusive lock",
                     table, column),
         "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT c, then SET "
         "NOT NULL (PostgreSQL 12+ uses the check) and drop the check");
    }
  }

  void CheckDropColumn(const Tokens& t, size_t i, size_t to, const std::string& table,
                       bool existing) {
    if (i >= to) return;
    for (std::string_view word : {"CONSTRAINT", "INDEX", "KEY", "PRIMARY", "FOREIGN", "CHECK",
                                  "DEFAULT", "PARTITION", "TRIGGER", "NOT", "IDENTITY"}) {
      if (t[i].Is(word)) return;
    }
    SkipWords(t, i, {"COLUMN"});
    SkipIfExists(t, i);
    if (i >= to || !t[i].IsName() || !existing) return;
    At(t[i], "drop-column",
       fmt::format("dropping {}.{} destroys its data, and the application still running may "
                   "read it",
                   table, NameOf(t[i])),
       "stop using the column in a release first; drop it in a later one, after a backup "
       "(or mark this -- safemig:ignore drop-column when that was done)");
  }

  void CheckRename(const Tokens& t, size_t i, size_t to, const std::string& table,
                   bool existing) {
    if (i >= to) return;
    if (t[i].Is("CONSTRAINT") || t[i].Is("INDEX") || t[i].Is("KEY")) return;
    if (t[i].Is("TO") || t[i].Is("AS")) {
      size_t k = i + 1;
      std::optional<std::string> target = ReadName(t, k);
      if (target && rebuilt_.count(*target) != 0) {
        At(t[i], "table-rebuild",
           fmt::format("{} is rebuilt: every row is copied, and foreign keys pointing at it "
                       "are checked only if foreign_keys is off during the swap",
                       *target),
           "run the rebuild in a migration marked -- safemig:no-transaction with PRAGMA "
           "foreign_keys=OFF before and PRAGMA foreign_key_check after");
        return;
      }
      if (!existing) return;
      At(t[i], "rename",
         fmt::format("renaming table {} breaks the application version still running during "
                     "a rolling deploy",
                     table),
         "create the new name alongside (a view, or a copy kept in sync), move the code, then "
         "drop the old name in a later release");
      return;
    }
    SkipWords(t, i, {"COLUMN"});
    if (i >= to || !t[i].IsName() || !existing) return;
    At(t[i], "rename",
       fmt::format("renaming {}.{} breaks the application version still running during a "
                   "rolling deploy",
                   table, NameOf(t[i])),
       "add the new column, write both, backfill, move reads over, then drop the old column "
       "in a later release");
  }

  void CheckMySqlModify(const Tokens& t, size_t from, size_t to, const std::string& table,
                        bool existing) {
    size_t i = from + 1;
    SkipWords(t, i, {"COLUMN"});
    if (i >= to || !t[i].IsName()) return;
    std::string old_name = NameOf(t[i]);
    std::string new_name = old_name;
    if (t[from].Is("CHANGE") && i + 1 < to && t[i + 1].IsName()) {
      new_name = NameOf(t[i + 1]);
      ++i;
      if (new_name != old_name && existing) {
        At(t[i], "rename",
           fmt::format("CHANGE renames {}.{} to {}, which breaks the application version "
                       "still running during a rolling deploy",
                       table, old_name, new_name),
           "add the new column, write both, backfill, move reads over, then drop the old one "
           "in a later release");
      }
    }
    std::optional<std::vector<std::string>> members = EnumMembers(t, i + 1, to);
    const std::string old_key = table + "." + old_name;
    auto known = memory_.enums.find(old_key);
    if (members && known != memory_.enums.end() && existing) {
      const std::vector<std::string>& before = known->second;
      bool keeps_prefix = members->size() >= before.size() &&
                          std::equal(before.begin(), before.end(), members->begin());
      if (!keeps_prefix) {
        At(t[from], "enum-members-changed",
           fmt::format("{}.{}: members removed or reordered ({} -> {}): MySQL copies the "
                       "whole table, and rows holding a removed value change",
                       table, old_name, fmt::join(before, ","), fmt::join(*members, ",")),
           "only append new members at the end; migrate rows off a value before removing it");
      }
    }
    if (known != memory_.enums.end()) memory_.enums.erase(known);
    if (members) memory_.enums[table + "." + new_name] = *members;
  }

  void CheckDrop(const Tokens& t) {
    if (t.size() < 2) return;
    size_t i = 2;
    if (t[1].Is("INDEX")) {
      bool concurrently = i < t.size() && t[i].Is("CONCURRENTLY");
      if (!Pg()) return;
      if (concurrently) {
        CheckConcurrentlyOutsideTransaction(t[0]);
        return;
      }
      At(t[0], "drop-index-locks",
         "DROP INDEX waits for every query on its table and blocks new ones until it is done",
         "DROP INDEX CONCURRENTLY, in a migration marked -- safemig:no-transaction");
      return;
    }
    if (t[1].Is("SCHEMA") || t[1].Is("DATABASE")) {
      if (Sqlite()) return;
      At(t[0], "drop-schema",
         fmt::format("DROP {} destroys every object and row in it", t[1].text),
         "drop the objects one by one in migrations that say so, after a backup");
      return;
    }
    if (!t[1].Is("TABLE")) return;
    SkipIfExists(t, i);
    while (i < t.size()) {
      std::optional<std::string> table = ReadName(t, i);
      if (!table) break;
      if (Existing(*table) && rebuilt_.count(*table) == 0) {
        At(t[0], "drop-table",
           fmt::format("dropping table {} destroys its data, and the application still "
                       "running may use it",
                       *table),
           "stop using the table in a release first; drop it in a later one after a backup "
           "(or rename it aside and drop it later)");
      }
      if (i < t.size() && t[i].IsPunct(',')) {
        ++i;
      } else {
        break;
      }
    }
  }

  void CheckTruncate(const Tokens& t) {
    if (Sqlite()) return;
    size_t i = 1;
    SkipWords(t, i, {"TABLE"});
    SkipWords(t, i, {"ONLY"});
    std::optional<std::string> table = ReadName(t, i);
    if (table && !Existing(*table)) return;
    At(t[0], "truncate",
       fmt::format("TRUNCATE deletes every row of {}", table.value_or("the table")),
       "delete what must go with a WHERE clause, after a backup; or mark this -- "
       "safemig:ignore truncate when emptying it is the point");
  }

  void CheckWhere(const Tokens& t) {
    const bool del = t[0].Is("DELETE");
    size_t i = 1;
    SkipWords(t, i, {"FROM"});
    SkipWords(t, i, {"ONLY"});
    std::optional<std::string> table = ReadName(t, i);
    if (FindWord(t, "WHERE") < t.size()) return;
    // MySQL's multi-table UPDATE ... JOIN ... ON limits the rows by its join condition.
    if (!del && FindWord(t, "JOIN") < FindWord(t, "SET")) return;
    if (table && !Existing(*table)) return;
    At(t[0], del ? "delete-without-where" : "update-without-where",
       fmt::format("{} without WHERE {} every row of {}", t[0].text,
                   del ? "deletes" : "changes", table.value_or("the table")),
       "add the WHERE clause you mean (WHERE true states that every row is meant)");
  }

  // Downs run CONCURRENTLY and transaction statements too; destruction is their job.
  void CheckDown() {
    std::vector<Statement> down;
    if (!Split(m_.down_sql, m_.down_path, m_.down_first_line, down)) return;
    const auto lines = Lines(m_.down_sql);
    file_ignores_ = LeadingIgnores(m_.down_sql);
    file_ = m_.down_path;
    std::set<std::string> mentioned;
    for (const Statement& statement : down) {
      statement_ignores_ = StatementIgnores(lines, statement.line);
      base_line_ = m_.down_first_line + statement.line - 1;
      Tokens t = Tokenize(statement.text, options_.dialect);
      if (t.empty()) continue;
      for (const Token& token : t) {
        if (token.IsName()) mentioned.insert(NameOf(token));
      }
      if (t[0].Is("BEGIN") || t[0].Is("COMMIT") || t[0].Is("ROLLBACK") || t[0].Is("END")) {
        CheckTransactionControl(t);
      }
      const bool concurrently = Contains(t, 0, std::min<size_t>(t.size(), 4), "CONCURRENTLY");
      if (Pg() && concurrently && (t[0].Is("CREATE") || t[0].Is("DROP"))) {
        CheckConcurrentlyOutsideTransaction(t[0]);
      }
    }
    if (m_.directives.irreversible) return;
    std::vector<std::string> missing;
    for (const auto& [name, on] : created_objects_) {
      if (mentioned.count(name) != 0 || (!on.empty() && mentioned.count(on) != 0)) continue;
      missing.push_back(on.empty() ? name : on + "." + name);
    }
    if (missing.empty()) return;
    file_ignores_ = LeadingIgnores(m_.up_sql);
    statement_ignores_.clear();
    Emit("down-misses-objects", m_.down_path, m_.down_first_line,
         fmt::format("the down never mentions {}, which the up creates",
                     fmt::join(missing, ", ")),
         "drop them in the down (or mark the migration -- safemig:irreversible)");
  }

  const Migration& m_;
  const Options& options_;
  SchemaMemory& memory_;
  bool report_;
  std::vector<Finding>& out_;

  std::set<std::string> file_ignores_;
  std::set<std::string> statement_ignores_;
  std::string file_;
  int base_line_ = 1;
  std::set<std::string> created_;  // tables created earlier in this migration
  std::set<std::string> rebuilt_;  // SQLite tables dropped and replaced by a rename
  // (name, table it belongs to or "") of every object the up creates
  std::vector<std::pair<std::string, std::string>> created_objects_;
  bool saw_ddl_ = false;
  bool saw_dml_ = false;
  bool mixed_reported_ = false;
};

}  // namespace

const char* SeverityName(Severity severity) {
  return severity == Severity::kError ? "error" : "warning";
}

const std::vector<RuleInfo>& Rules() { return kRules; }

std::vector<Finding> LintMigration(const Migration& migration, const Options& options) {
  return LintMigrations({}, {migration}, options);
}

std::vector<Finding> LintMigrations(const std::vector<Migration>& history,
                                    const std::vector<Migration>& migrations,
                                    const Options& options) {
  SchemaMemory memory;
  std::vector<Finding> findings;
  for (const Migration& migration : history) {
    MigrationLinter(migration, options, memory, /*report=*/false, findings).Run();
  }
  for (const Migration& migration : migrations) {
    MigrationLinter(migration, options, memory, /*report=*/true, findings).Run();
  }
  return findings;
}

bool HasErrors(const std::vector<Finding>& findings) {
  return std::any_of(findings.begin(), findings.end(),
                     [](const Finding& f) { return f.severity == Severity::kError; });
}

}  // namespace safemig::lint
