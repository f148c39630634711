// `recover`: the one command that puts a database right after a run died halfway through a
// migration that could not roll back (see engine/recovery.h).

#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "backup/store.h"
#include "core/clock.h"
#include "core/error.h"
#include "cli/commands.h"
#include "engine/backups.h"
#include "engine/recovery.h"

namespace safemig::cli {

namespace {

nlohmann::json InterruptedJson(const InterruptedRun& run) {
  return {{"journal_id", run.entry.id},      {"run_id", run.entry.deploy_id},
          {"started_at", run.entry.started_at}, {"version", run.version},
          {"direction", run.direction},      {"statement", run.statement},
          {"statements", run.statements},    {"backup_id", run.entry.backup_id}};
}

// Someone repaired the database by hand: close the trace so runs may go on, and keep who
// said so and why.
void MarkResolved(const Console& console, Driver& driver, InterruptedRun run,
                  const std::string& reason) {
  nlohmann::json details = nlohmann::json::parse(run.entry.details, nullptr, false);
  if (!details.is_object()) details = nlohmann::json::object();
  details["resolved_by"] = RunnerName();
  details["resolution"] = RedactSecrets(reason);
  run.entry.outcome = kResolvedByHand;
  run.entry.finished_at = NowIso8601();
  run.entry.details = details.dump();
  driver.UpdateJournal(run.entry);
  if (console.json()) {
    console.Json({{"command", "recover"}, {"ok", true}, {"action", "marked_resolved"},
                  {"interrupted", InterruptedJson(run)}});
    return;
  }
  console.Line(fmt::format("Marked journal entry {} as resolved by hand: {}", run.entry.id,
                           reason));
}

void RunRecover(const GlobalOptions& options, const std::string& resolved_reason) {
  Console console(options);
  Target target = OpenTarget(options, /*create_if_missing=*/false);
  std::unique_ptr<MigrationLock> lock =
      target.driver->Lock(target.resolved.environment.lock_timeout, RunnerName());
  target.driver->EnsureMetadata();
  std::optional<InterruptedRun> run = FindInterruptedRun(*target.driver);
  if (!run) {
    if (console.json()) {
      console.Json({{"command", "recover"}, {"ok", true}, {"action", "nothing"},
                    {"interrupted", nullptr}});
      return;
    }
    console.Line("Nothing to recover: no run stopped halfway through a migration.");
    return;
  }
  console.Line(fmt::format("A {}.", DescribeInterruptedRun(*run)));
  if (!resolved_reason.empty()) {
    MarkResolved(console, *target.driver, *run, resolved_reason);
    return;
  }
  if (run->entry.backup_id.empty()) {
    throw Error(Category::kNeedsPerson,
                "that run took no backup before it started, so there is nothing to restore",
                "put the database right by hand, then run `safemig recover --resolved \"what "
                "you did\"`");
  }
  BackupStore store(BackupDir(target.resolved));
  BackupEntry backup = store.Find(run->entry.backup_id);
  Confirm(options, fmt::format("restore {} to backup {}, taken just before that run (the "
                               "current state is backed up first)",
                               target.url.Redacted(), backup.id));
  auto reporter = MakeReporter(console);
  RestoreResult result =
      RestoreBackup(store, backup.id, target.url, std::move(target.driver),
                    target.resolved.environment.name, *reporter, options.jobs);
  JournalRestore(target.url, result, target.resolved.environment.name, "recover",
                 {{"interrupted", InterruptedJson(*run)}});
  if (console.json()) {
    console.Json({{"command", "recover"}, {"ok", true}, {"action", "restored"},
                  {"interrupted", InterruptedJson(*run)}, {"backup_id", backup.id},
                  {"safety_backup_id", result.safety_backup_id},
                  {"migration_version", result.manifest.migration_version},
                  {"took_ms", result.took.count()}});
    return;
  }
  console.Line(fmt::format(
      "Restored backup {} in {}: the database is at version {} again, fingerprint checked.",
      backup.id, FormatDuration(result.took),
      result.manifest.migration_version.empty() ? "none" : result.manifest.migration_version));
  console.Line(fmt::format("The half-migrated state it replaced is backup {}.",
                           result.safety_backup_id));
}

}  // namespace

void SetupRecoverCommand(CLI::App& app, GlobalOptions& options) {
  auto resolved = std::make_shared<std::string>();
  auto* recover = app.add_subcommand(
      "recover",
      "after a run died halfway through a migration that cannot roll back: restore the "
      "backup taken before it");
  recover->add_option("--resolved", *resolved,
                      "the database was put right by hand: record REASON and allow runs again "
                      "without restoring");
  recover->callback([&options, resolved] { RunRecover(options, *resolved); });
}

}  // namespace safemig::cli
