// Lint: dangerous changes found in migration files before they reach a database.
//
// Offline and per dialect: rules read the statements the splitter produces, so what is
// linted is exactly what a driver would send. Rules about destruction and locking read up
// migrations only (a down is expected to drop what its up created), and skip tables created
// earlier in the same migration (nobody else can be using them yet). A finding is silenced
// by `-- safemig:ignore RULE[, RULE...]` in the file's leading comments (whole migration) or
// on the lines just above the statement, or by the config's [lint] ignore list.
// Pure functions, thread-safe.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/migration.h"
#include "core/sql_split.h"

namespace safemig::lint {

enum class Severity { kError, kWarning };

const char* SeverityName(Severity severity);

struct Finding {
  std::string rule;  // stable id, e.g. "create-index-locks-writes"
  Severity severity = Severity::kWarning;
  std::string version;  // migration version ("" for a loose file)
  std::string file;     // path relative to the migrations directory (or as given)
  int line = 1;         // 1-based line in `file`
  std::string message;  // one line: what is dangerous and why
  std::string fix;      // one line: the safe way to write it
};

struct RuleInfo {
  const char* id;
  const char* dialects;  // "postgres, mysql, sqlite"
  Severity severity;
  const char* summary;
};

// Every rule, for `lint --rules` and the docs.
const std::vector<RuleInfo>& Rules();

struct Options {
  Dialect dialect = Dialect::kPostgres;
  std::set<std::string> ignored;  // rule ids silenced everywhere (config)
};

// Findings of one migration, in file order. A file that does not split (unterminated
// quote...) is one "syntax" error finding rather than an exception.
std::vector<Finding> LintMigration(const Migration& migration, const Options& options);

// Findings of several migrations. Cross-migration rules (MySQL ENUM/SET members removed or
// reordered) read `history` (earlier migrations, oldest first, not reported on) to know the
// columns as they are before the first linted one.
std::vector<Finding> LintMigrations(const std::vector<Migration>& history,
                                    const std::vector<Migration>& migrations,
                                    const Options& options);

// True when any finding has error severity.
bool HasErrors(const std::vector<Finding>& findings);

}  // namespace safemig::lint
