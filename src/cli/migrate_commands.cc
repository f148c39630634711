// `status`, `up`, `down`, `validate`, `history`.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/clock.h"
#include "core/discovery.h"
#include "core/error.h"
#include "core/sql_split.h"
#include "core/status.h"
#include "engine/backups.h"
#include "engine/gates.h"
#include "engine/migrator.h"
#include "engine/recovery.h"

namespace safemig::cli {
namespace {

struct StepOptions {
  std::string to;
  int steps = 0;
  bool skip_backup = false;

  std::optional<std::string> To() const {
    return to.empty() ? std::nullopt : std::optional<std::string>(to);
  }
  std::optional<int> Steps() const { return steps == 0 ? std::nullopt : std::optional<int>(steps); }
};

nlohmann::json StatusRowJson(const StatusRow& row) {
  nlohmann::json j = {{"version", row.version}, {"name", row.name},
                      {"state", StateName(row.state)}};
  if (row.applied) {
    j["applied_at"] = row.applied->applied_at;
    j["applied_by"] = row.applied->applied_by;
    j["duration_ms"] = row.applied->duration_ms;
  }
  if (row.file) j["file"] = row.file->up_path;
  if (!row.detail.empty()) j["detail"] = row.detail;
  return j;
}

// Reads history under the lock the caller holds and compares it with the files.
StatusReport ReadStatus(Driver& driver, const std::vector<Migration>& files) {
  return ComputeStatus(files, driver.ReadHistory());
}

void RunStatus(const GlobalOptions& options) {
  Console console(options);
  Target target = OpenTarget(options, /*create_if_missing=*/false);
  std::vector<Migration> files = LoadMigrations(target.resolved);
  StatusReport status = ReadStatus(*target.driver, files);
  if (console.json()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const StatusRow& row : status.rows) rows.push_back(StatusRowJson(row));
    console.Json({{"command", "status"},
                  {"ok", true},
                  {"environment", target.resolved.environment.name},
                  {"database", target.driver->Describe()},
                  {"migrations_dir", target.resolved.migrations.string()},
                  {"current_version", status.current_version},
                  {"applied", status.applied},
                  {"pending", status.pending},
                  {"drifted", status.drifted},
                  {"migrations", rows}});
    return;
  }
  console.Line(fmt::format("Database:    {} ({}), environment {}", target.driver->Describe(),
                           target.driver->ServerVersion(), target.resolved.environment.name));
  console.Line(fmt::format("Migrations:  {}", target.resolved.migrations.string()));
  console.Line(fmt::format("Version:     {} ({} applied, {} pending{})",
                           VersionOrNone(status.current_version), status.applied,
                           status.pending,
                           status.drifted ? fmt::format(", {} drifted", status.drifted) : ""));
  if (status.rows.empty()) {
    console.Line("No migrations yet: create one with `safemig new NAME`.");
    return;
  }
  size_t name_width = 4;
  for (const StatusRow& row : status.rows) name_width = std::max(name_width, row.name.size());
  console.Line("");
  console.Line(fmt::format("  {:<16} {:<{}} {:<13} {}", "VERSION", "NAME", name_width, "STATE",
                           "APPLIED AT"));
  for (const StatusRow& row : status.rows) {
    console.Line(fmt::format("  {:<16} {:<{}} {:<13} {}", row.version, row.name, name_width,
                             StateName(row.state),
                             row.applied ? row.applied->applied_at : std::string("-")));
  }
  for (const StatusRow& row : status.rows) {
    if (!row.detail.empty()) console.Warning(fmt::format("{}: {}", row.version, row.detail));
  }
}

nlohmann::json RunResultJson(const std::string& command, const Target& target,
                             const RunOptions& run, const RunResult& result) {
  nlohmann::json steps = nlohmann::json::array();
  for (const StepOutcome& step : result.steps) {
    steps.push_back({{"version", step.version}, {"name", step.name},
                     {"took_ms", step.took.count()}});
  }
  return {{"command", command},
          {"ok", true},
          {"environment", target.resolved.environment.name},
          {"database", target.driver->Describe()},
          {"run_id", run.run_id},
          {"from_version", result.from_version},
          {"to_version", result.to_version},
          {"took_ms", result.took.count()},
          {"migrations", steps}};
}

// `down`: the simple way back, from the SQL stored when each migration was applied. (`up`
// is the deploy pipeline, in deploy_commands.cc.)
void RunDown(const GlobalOptions& options, const StepOptions& step_options) {
  Console console(options);
  if (step_options.skip_backup) {
    // Invariant 2, checked before anything is opened, so a refusal touches nothing.
    Gate gate = ProtectedGate(Resolve(ToSelection(options)).environment, /*skip_backup=*/true);
    if (gate.status == GateStatus::kFail) throw Error(Category::kNoGo, gate.detail, gate.hint);
  }
  Target target = OpenTarget(options, /*create_if_missing=*/false);
  std::vector<Migration> files;
  // A rollback must work when the application (and its migration files) was already
  // rolled back: downs come from history, files only improve the status report.
  try {
    files = LoadMigrations(target.resolved);
  } catch (const Error& e) {
    console.Warning(fmt::format("{} (continuing: down uses the SQL stored in the database)",
                                e.what()));
  }
  auto lock = target.driver->Lock(target.resolved.environment.lock_timeout, RunnerName());
  target.driver->EnsureMetadata();
  // Before the backup: reverting on top of a half-migrated state would bury it.
  RefuseIfInterruptedRun(*target.driver);
  StatusReport status = ReadStatus(*target.driver, files);
  Plan plan = PlanDown(status, step_options.To(), step_options.Steps());
  nlohmann::json backup_json = nullptr;
  RunOptions run;
  run.environment = target.resolved.environment.name;
  run.run_id = NewRunId();
  run.applied_by = CurrentUserAtHost();
  if (plan.steps.empty()) {
    if (console.json()) {
      console.Json(RunResultJson("down", target, run,
                                 RunResult{{}, status.current_version, status.current_version,
                                           std::chrono::milliseconds(0), 0}));
    } else {
      console.Line(fmt::format("Nothing to revert: {} is at version {}.",
                               target.driver->Describe(), VersionOrNone(status.current_version)));
    }
    return;
  }
  if (plan.steps.size() > 1) {
    Confirm(options, fmt::format("revert {} migrations of {} (down to version {})",
                                 plan.steps.size(), target.driver->Describe(),
                                 VersionOrNone(plan.to_version)));
  }
  auto reporter = MakeReporter(console);
  const Environment& env = target.resolved.environment;
  if (step_options.skip_backup) {
    console.Warning("no backup taken (--skip-backup): only the down-migrations can undo this");
  } else {
    BackupRequest request;
    request.environment = env.name;
    request.reason = "before-down";
    request.migration_version = status.current_version;
    request.label = fmt::format("before down to {}", VersionOrNone(plan.to_version));
    BackupResult backup = TakeBackup(*target.driver, BackupStore(BackupDir(target.resolved)),
                                     request, *reporter);
    run.backup_id = backup.manifest.id;
    if (console.json()) {
      backup_json = {{"id", backup.manifest.id}, {"raw_bytes", backup.manifest.RawBytes()},
                     {"stored_bytes", backup.manifest.StoredBytes()},
                     {"took_ms", backup.took.count()}};
    }
    console.Line(fmt::format("Backup {}: {} -> {} in {}", backup.manifest.id,
                             Bytes(backup.manifest.RawBytes()),
                             Bytes(backup.manifest.StoredBytes()), FormatDuration(backup.took)));
  }
  console.Line(fmt::format("Reverting {} migration{} on {} (environment {}): version {} -> {}",
                           plan.steps.size(), plan.steps.size() == 1 ? "" : "s",
                           target.driver->Describe(), target.resolved.environment.name,
                           VersionOrNone(plan.from_version), VersionOrNone(plan.to_version)));
  console.Line("  using the down SQL stored in safemig_migrations when each was applied");
  Migrator migrator(*target.driver, *reporter);
  RunResult result = migrator.Execute(plan, run);
  if (console.json()) {
    nlohmann::json document = RunResultJson("down", target, run, result);
    document["backup"] = backup_json;
    console.Json(document);
    return;
  }
  console.Line(fmt::format("Done: {} is at version {} ({} in {}).", target.driver->Describe(),
                           VersionOrNone(result.to_version),
                           fmt::format("{} migration{}", result.steps.size(),
                                       result.steps.size() == 1 ? "" : "s"),
                           FormatDuration(result.took)));
}

void RunValidate(const GlobalOptions& options, const std::string& dialect_name, int& exit_code) {
  Console console(options);
  std::vector<std::string> problems;
  std::vector<Migration> files;
  std::optional<Target> target;
  std::filesystem::path dir;
  bool database_checked = false;
  bool database_missing = false;
  Dialect dialect = ParseDialectName(dialect_name);
  if (NamesADatabase(options)) {
    // Any failure here (unknown environment, bad URL, unreachable server) is the user's
    // real problem, not a reason to fall back to checking files alone.
    Resolved resolved = Resolve(ToSelection(options));
    DatabaseUrl url = ParseDatabaseUrl(resolved.environment.url);
    dir = resolved.migrations;
    dialect = DialectOf(url.engine);
    // A SQLite file that does not exist yet has no history: nothing can have drifted.
    database_missing = url.engine == Engine::kSqlite && url.path != ":memory:" &&
                       !std::filesystem::exists(url.path);
    if (!database_missing) target.emplace(OpenTarget(options, /*create_if_missing=*/false));
  } else {
    dir = MigrationsDirWithoutDatabase(options);
  }
  bool files_read = true;
  try {
    files = DiscoverMigrations(dir);
  } catch (const Error& e) {
    problems.push_back(e.what());
    files_read = false;
  }
  for (const Migration& file : files) {
    for (const auto& [sql, path, first_line] :
         {std::tuple(file.up_sql, file.up_path, file.up_first_line),
          std::tuple(file.down_sql, file.down_path, file.down_first_line)}) {
      try {
        SplitStatements(sql, dialect);
      } catch (const Error& e) {
        problems.push_back(fmt::format("{} (section starting at line {}): {}", path, first_line,
                                       e.what()));
      }
    }
  }
  StatusReport status;
  if (database_missing) database_checked = true;
  // Without the files, every applied migration would look "missing": say only what is known.
  if (target && files_read) {
    status = ReadStatus(*target->driver, files);
    database_checked = true;
    for (const StatusRow& row : status.rows) {
      if (IsDrift(row.state)) problems.push_back(row.detail);
    }
  }
  if (!problems.empty()) exit_code = ExitCodeFor(Category::kNoGo);
  if (console.json()) {
    console.Json({{"command", "validate"},
                  {"ok", problems.empty()},
                  {"migrations_dir", dir.string()},
                  {"migrations", files.size()},
                  {"database_checked", database_checked},
                  {"problems", problems}});
    return;
  }
  if (!database_checked) {
    console.Line(fmt::format("No database given (--url, SAFEMIG_DATABASE_URL or config): checked "
                             "the files only, not drift, with {} syntax rules (--dialect).",
                             DialectName(dialect)));
  }
  if (problems.empty()) {
    console.Line(fmt::format("OK: {} migrations in {} are well-formed and paired{}.",
                             files.size(), dir.string(),
                             database_checked ? ", and match the database's history" : ""));
    return;
  }
  for (const std::string& problem : problems) std::cerr << "problem: " << problem << '\n';
  std::cerr << fmt::format("error: validation found {} problem{}; nothing was changed\n",
                           problems.size(), problems.size() == 1 ? "" : "s");
}

void RunHistory(const GlobalOptions& options, bool journal, int limit) {
  Console console(options);
  Target target = OpenTarget(options, /*create_if_missing=*/false);
  if (journal) {
    std::vector<JournalEntry> entries = target.driver->ReadJournal(limit);
    if (console.json()) {
      nlohmann::json rows = nlohmann::json::array();
      for (const JournalEntry& e : entries) {
        rows.push_back({{"id", e.id}, {"kind", e.kind}, {"environment", e.environment},
                        {"run_id", e.deploy_id}, {"started_at", e.started_at},
                        {"finished_at", e.finished_at}, {"outcome", e.outcome},
                        {"from_version", e.from_version}, {"to_version", e.to_version},
                        {"backup_id", e.backup_id},
                        {"details", nlohmann::json::parse(e.details, nullptr, false)}});
      }
      console.Json({{"command", "history"}, {"ok", true}, {"journal", rows}});
      return;
    }
    console.Line(fmt::format("  {:>4} {:<9} {:<24} {:<11} {:<16} {:<16} {}", "ID", "KIND",
                             "STARTED", "OUTCOME", "FROM", "TO", "ENVIRONMENT"));
    for (const JournalEntry& e : entries) {
      console.Line(fmt::format("  {:>4} {:<9} {:<24} {:<11} {:<16} {:<16} {}", e.id, e.kind,
                               e.started_at, e.outcome, VersionOrNone(e.from_version),
                               VersionOrNone(e.to_version), e.environment));
    }
    return;
  }
  std::vector<HistoryRow> rows = target.driver->ReadHistory();
  std::sort(rows.begin(), rows.end(), [](const HistoryRow& a, const HistoryRow& b) {
    return CompareVersions(a.version, b.version) < 0;
  });
  if (console.json()) {
    nlohmann::json list = nlohmann::json::array();
    for (const HistoryRow& row : rows) {
      list.push_back({{"version", row.version}, {"name", row.name}, {"checksum", row.checksum},
                      {"file", row.up_path}, {"down_checksum", row.down_checksum},
                      {"irreversible", row.irreversible},
                      {"no_transaction", row.no_transaction}, {"applied_at", row.applied_at},
                      {"applied_by", row.applied_by}, {"duration_ms", row.duration_ms},
                      {"run_id", row.deploy_id}, {"backup_id", row.backup_id}});
    }
    console.Json({{"command", "history"}, {"ok", true}, {"applied", list}});
    return;
  }
  if (rows.empty()) {
    console.Line(fmt::format("No migrations applied to {}.", target.driver->Describe()));
    return;
  }
  console.Line(fmt::format("  {:<16} {:<36} {:<24} {:>8}  {}", "VERSION", "NAME", "APPLIED AT",
                           "TOOK", "BY"));
  for (const HistoryRow& row : rows) {
    console.Line(fmt::format("  {:<16} {:<36} {:<24} {:>8}  {}", row.version, row.name,
                             row.applied_at,
                             FormatDuration(std::chrono::milliseconds(row.duration_ms)),
                             row.applied_by));
  }
}

void AddStepOptions(CLI::App& command, StepOptions& step_options, const char* to_help) {
  auto* to = command.add_option("--to", step_options.to, to_help);
  command.add_option("--steps", step_options.steps, "number of migrations")->excludes(to);
}

}  // namespace

void SetupMigrateCommands(CLI::App& app, GlobalOptions& options, int& exit_code) {
  app.add_subcommand("status", "show applied, pending and drifted migrations")
      ->callback([&options] { RunStatus(options); });

  // `up` is the deploy pipeline under its familiar name: backup, rehearsal, gates, apply.
  auto up_flags = std::make_shared<DeployFlags>();
  auto* up = app.add_subcommand(
      "up", "apply pending migrations through the deploy pipeline (backup, rehearsal, gates)");
  AddDeployOptions(*up, *up_flags);
  up->callback(
      [&options, up_flags, &exit_code] { RunDeploy(options, *up_flags, "up", exit_code); });

  auto down_options = std::make_shared<StepOptions>();
  auto* down = app.add_subcommand(
      "down", "revert applied migrations with their stored down SQL (one by default)");
  AddStepOptions(*down, *down_options,
                 "revert every migration newer than this version (0: all of them)");
  down->add_flag("--skip-backup", down_options->skip_backup,
                 "do not back up first (refused in protected environments)");
  down->callback(
      [&options, down_options] { RunDown(options, *down_options); });

  auto dialect = std::make_shared<std::string>("sqlite");
  auto* validate = app.add_subcommand(
      "validate", "check migration files (pairing, syntax) and drift; exit 5 on any problem");
  validate
      ->add_option("--dialect", *dialect,
                   "SQL rules for checking files when no database is given (the URL's engine "
                   "otherwise)")
      ->check(CLI::IsMember({"postgres", "mysql", "sqlite"}));
  validate->callback(
      [&options, dialect, &exit_code] { RunValidate(options, *dialect, exit_code); });

  auto journal = std::make_shared<bool>(false);
  auto limit = std::make_shared<int>(50);
  auto* history = app.add_subcommand("history", "list applied migrations, or the journal");
  history->add_flag("--journal", *journal, "list journal entries (runs) instead");
  history->add_option("--limit", *limit, "journal entries to show (newest first)");
  history->callback([&options, journal, limit] { RunHistory(options, *journal, *limit); });
}

}  // namespace safemig::cli
