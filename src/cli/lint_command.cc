// `lint [FILES...]`: dangerous changes in migration files, offline.

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/discovery.h"
#include "core/error.h"
#include "core/status.h"
#include "lint/lint.h"

namespace safemig::cli {

namespace fs = std::filesystem;

namespace {

struct LintFlags {
  std::vector<std::string> files;
  std::string dialect;
  std::string since;
  bool all = false;
  bool rules = false;
};

// What to lint: the given files' migrations, the pending ones, or everything after --since.
struct LintScope {
  fs::path dir;
  std::vector<Migration> history;  // earlier migrations, read for cross-migration rules only
  std::vector<Migration> linted;
  std::string what;  // "2 pending migrations", for the summary line
};

std::string Plural(std::size_t n, const char* word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

// The migration (in `migrations`) that `file` belongs to.
const Migration* MigrationOfFile(const std::vector<Migration>& migrations, const fs::path& dir,
                                 const fs::path& file) {
  std::error_code ignored;
  const fs::path wanted = fs::weakly_canonical(file, ignored);
  for (const Migration& m : migrations) {
    for (const std::string& path : {m.up_path, m.down_path}) {
      if (!path.empty() && fs::weakly_canonical(dir / path, ignored) == wanted) return &m;
    }
  }
  return nullptr;
}

LintScope ChooseScope(const GlobalOptions& options, const LintFlags& flags,
                      const std::optional<Resolved>& resolved, Console& console) {
  LintScope scope;
  scope.dir = resolved ? resolved->migrations : MigrationsDirWithoutDatabase(options);
  if (!flags.files.empty()) {
    // Each file is read with its neighbours so pairs and single-file formats are found
    // the same way `up` finds them.
    std::set<std::string> seen;
    for (const std::string& file : flags.files) {
      fs::path dir = fs::path(file).parent_path();
      if (dir.empty()) dir = ".";
      std::vector<Migration> all = DiscoverMigrations(dir);
      const Migration* m = MigrationOfFile(all, dir, file);
      if (m == nullptr) {
        throw Error(Category::kUsage,
                    fmt::format("{} is not a migration file of {}", file, dir.string()),
                    "name .sql files that `safemig status` lists, or no files to lint the "
                    "pending migrations");
      }
      if (!seen.insert(m->version).second) continue;
      if (scope.linted.empty()) {
        scope.dir = dir;
        for (const Migration& earlier : all) {
          if (CompareVersions(earlier.version, m->version) < 0) scope.history.push_back(earlier);
        }
      }
      scope.linted.push_back(*m);
    }
    scope.what = Plural(scope.linted.size(), "migration");
    return scope;
  }
  std::vector<Migration> all = DiscoverMigrations(scope.dir);
  std::optional<std::string> applied_up_to;
  if (!flags.since.empty()) {
    applied_up_to = flags.since;
  } else if (resolved && !flags.all) {
    // Pending needs the history; without a reachable database every migration is linted.
    try {
      Target target = OpenTarget(options, /*create_if_missing=*/false);
      StatusReport status = ComputeStatus(all, target.driver->ReadHistory());
      std::set<std::string> pending;
      for (const StatusRow& row : status.rows) {
        if (row.state == MigrationState::kPending || row.state == MigrationState::kOutOfOrder) {
          pending.insert(row.version);
        }
      }
      for (const Migration& m : all) {
        (pending.count(m.version) != 0 ? scope.linted : scope.history).push_back(m);
      }
      scope.what = Plural(scope.linted.size(), "pending migration");
      return scope;
    } catch (const Error& e) {
      if (e.category() != Category::kConnection) throw;
      console.Warning(fmt::format("{}; linting every migration instead of the pending ones",
                                  e.what()));
    }
  }
  for (const Migration& m : all) {
    bool after = !applied_up_to || CompareVersions(m.version, *applied_up_to) > 0;
    (after ? scope.linted : scope.history).push_back(m);
  }
  scope.what = applied_up_to
                   ? fmt::format("{} after {}", Plural(scope.linted.size(), "migration"),
                                 *applied_up_to)
                   : Plural(scope.linted.size(), "migration");
  return scope;
}

// GitHub's workflow-command escaping: data, and property values (which also escape ':' and
// ',').
std::string GithubEscape(const std::string& text, bool property) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '%': out += "%25"; break;
      case '\r': out += "%0D"; break;
      case '\n': out += "%0A"; break;
      case ':': out += property ? "%3A" : ":"; break;
      case ',': out += property ? "%2C" : ","; break;
      default: out += c;
    }
  }
  return out;
}

nlohmann::json FindingJson(const lint::Finding& f, const fs::path& dir) {
  return {{"rule", f.rule},
          {"severity", lint::SeverityName(f.severity)},
          {"version", f.version},
          {"file", (dir / f.file).lexically_normal().string()},
          {"line", f.line},
          {"message", f.message},
          {"fix", f.fix}};
}

void PrintRules(const Console& console) {
  if (console.json()) {
    nlohmann::json rules = nlohmann::json::array();
    for (const lint::RuleInfo& rule : lint::Rules()) {
      rules.push_back({{"rule", rule.id},
                       {"severity", lint::SeverityName(rule.severity)},
                       {"dialects", rule.dialects},
                       {"summary", rule.summary}});
    }
    console.Json({{"command", "lint"}, {"ok", true}, {"rules", rules}});
    return;
  }
  for (const lint::RuleInfo& rule : lint::Rules()) {
    console.Line(fmt::format("{:<38} {:<8} {:<24} {}", rule.id, lint::SeverityName(rule.severity),
                             rule.dialects, rule.summary));
  }
}

void RunLint(const GlobalOptions& options, const LintFlags& flags, int& exit_code) {
  Console console(options);
  if (flags.rules) return PrintRules(console);
  std::optional<Resolved> resolved;
  if (NamesADatabase(options)) resolved = Resolve(ToSelection(options));
  lint::Options lint_options;
  if (!flags.dialect.empty()) {
    lint_options.dialect = ParseDialectName(flags.dialect);
  } else if (resolved) {
    lint_options.dialect = DialectOf(ParseDatabaseUrl(resolved->environment.url).engine);
  } else {
    throw Error(Category::kUsage, "lint needs to know the SQL dialect",
                "pass --dialect postgres|mysql|sqlite, or a database URL (--url, "
                "SAFEMIG_DATABASE_URL or safemig.toml)");
  }
  if (resolved) lint_options.ignored = resolved->config.lint_ignore;
  LintScope scope = ChooseScope(options, flags, resolved, console);
  std::vector<lint::Finding> findings =
      lint::LintMigrations(scope.history, scope.linted, lint_options);
  std::size_t errors = 0;
  for (const lint::Finding& f : findings) errors += f.severity == lint::Severity::kError ? 1 : 0;
  const std::size_t warnings = findings.size() - errors;
  if (errors > 0) exit_code = ExitCodeFor(Category::kNoGo);

  if (console.json()) {
    nlohmann::json list = nlohmann::json::array();
    for (const lint::Finding& f : findings) list.push_back(FindingJson(f, scope.dir));
    console.Json({{"command", "lint"},
                  {"ok", errors == 0},
                  {"dialect", DialectName(lint_options.dialect)},
                  {"migrations_dir", scope.dir.string()},
                  {"migrations", scope.linted.size()},
                  {"errors", errors},
                  {"warnings", warnings},
                  {"findings", list}});
    return;
  }
  const bool github = options.format == "github";
  for (const lint::Finding& f : findings) {
    const std::string file = (scope.dir / f.file).lexically_normal().string();
    if (github) {
      // One annotation per finding; GitHub shows it on the line in the pull request.
      std::cout << fmt::format("::{} file={},line={},title={}::{}\n",
                               f.severity == lint::Severity::kError ? "error" : "warning",
                               GithubEscape(file, true), f.line,
                               GithubEscape("safemig " + f.rule, true),
                               GithubEscape(f.message + "\nFix: " + f.fix, false));
      continue;
    }
    console.Line(fmt::format("{}:{}: {} [{}] {}", file, f.line, lint::SeverityName(f.severity),
                             f.rule, f.message));
    console.Line(fmt::format("    fix: {}", f.fix));
  }
  std::string summary = fmt::format("{}, {} in {} ({} rules).", Plural(errors, "error"),
                                    Plural(warnings, "warning"), scope.what,
                                    DialectName(lint_options.dialect));
  console.Line(summary);
}

}  // namespace

LintHook MakeLintHook(const Resolved& resolved, const std::vector<Migration>& files) {
  std::set<std::string> ignored = resolved.config.lint_ignore;
  return [files, ignored](const Plan& plan, Dialect dialect) {
    std::set<std::string> pending;
    for (const PlannedStep& step : plan.steps) pending.insert(step.version);
    std::vector<Migration> history;
    std::vector<Migration> linted;
    for (const Migration& m : files) {
      if (pending.count(m.version) != 0) {
        linted.push_back(m);
      } else if (linted.empty()) {
        history.push_back(m);
      }
    }
    std::vector<LintFinding> findings;
    for (const lint::Finding& f : lint::LintMigrations(history, linted, {dialect, ignored})) {
      findings.push_back(LintFinding{f.version, f.rule, lint::SeverityName(f.severity),
                                     fmt::format("{} ({}:{}; fix: {})", f.message, f.file,
                                                 f.line, f.fix)});
    }
    return findings;
  };
}

void SetupLintCommand(CLI::App& app, GlobalOptions& options, int& exit_code) {
  auto flags = std::make_shared<LintFlags>();
  auto* lint = app.add_subcommand(
      "lint", "find dangerous changes (locks, data loss, rolling-deploy breakage) in migrations; "
              "exit 5 on an error finding");
  lint->add_option("files", flags->files,
                   "migration files to lint (default: the pending migrations, or all when no "
                   "database is reachable)");
  lint->add_option("--dialect", flags->dialect, "SQL dialect when no database URL is given")
      ->check(CLI::IsMember({"postgres", "mysql", "sqlite"}));
  lint->add_option("--since", flags->since, "lint the migrations newer than VERSION (offline)");
  lint->add_flag("--all", flags->all, "lint every migration, applied ones too");
  lint->add_flag("--rules", flags->rules, "list the rules and exit");
  lint->callback([&options, flags, &exit_code] { RunLint(options, *flags, exit_code); });
}

}  // namespace safemig::cli
