// `adopt` and `baseline`: start using safemig on a database that already has a history.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/adopt.h"

namespace safemig::cli {

namespace {

// Shows the plan; records it when confirmed (--yes, or typed yes on a terminal).
void ShowAndRecord(const GlobalOptions& options, Target& target,
                   const std::vector<Migration>& files, const AdoptionPlan& plan,
                   const std::string& command) {
  Console console(options);
  int to_record = 0;
  for (const AdoptionRow& row : plan.rows) to_record += row.already_recorded ? 0 : 1;
  const bool record = to_record > 0 && options.yes;
  int written = 0;
  if (record) {
    const std::string run_id = NewRunId();
    written = RecordAdoption(*target.driver, plan, files, run_id);
    JournalEntry journal;
    journal.kind = command;
    journal.environment = target.resolved.environment.name;
    journal.deploy_id = run_id;
    journal.started_at = NowIso8601();
    journal.finished_at = journal.started_at;
    journal.outcome = "ok";
    journal.to_version = plan.rows.empty() ? "" : plan.rows.back().version;
    journal.details = nlohmann::json{{"source", plan.source}, {"recorded", written}}.dump();
    target.driver->InsertJournal(journal);
  }
  if (console.json()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const AdoptionRow& row : plan.rows) {
      rows.push_back({{"version", row.version}, {"name", row.name}, {"file", row.file},
                      {"already_recorded", row.already_recorded}});
    }
    console.Json({{"command", command}, {"ok", true}, {"source", plan.source},
                  {"database", target.url.Redacted()}, {"migrations", rows},
                  {"recorded", written}, {"dry_run", !record && to_record > 0}});
    return;
  }
  console.Line(fmt::format("{} on {}: {} migration{} applied.", plan.source,
                           target.url.Redacted(), plan.rows.size(),
                           plan.rows.size() == 1 ? "" : "s"));
  for (const AdoptionRow& row : plan.rows) {
    console.Line(fmt::format("  {:<16} {:<40} {}", row.version, row.name,
                             row.already_recorded ? "already recorded" : "to record"));
  }
  if (to_record == 0) {
    console.Line("safemig already records all of them; nothing to do.");
  } else if (!record) {
    console.Line(fmt::format("Nothing recorded yet: run again with --yes to record these {} "
                             "migration{} (with their down SQL) in safemig_migrations.",
                             to_record, to_record == 1 ? "" : "s"));
  } else {
    console.Line(fmt::format("Recorded {} migration{}. `safemig status` now shows them applied; "
                             "the old history table was left as it was.",
                             written, written == 1 ? "" : "s"));
  }
}

Target OpenLocked(const GlobalOptions& options, std::unique_ptr<MigrationLock>& lock) {
  Target target = OpenTarget(options, /*create_if_missing=*/false);
  lock = target.driver->Lock(target.resolved.environment.lock_timeout, RunnerName());
  target.driver->EnsureMetadata();
  return target;
}

void RunAdopt(const GlobalOptions& options, const std::string& from) {
  std::optional<ForeignTool> only;
  if (!from.empty()) only = ParseForeignTool(from);
  std::unique_ptr<MigrationLock> lock;
  Target target = OpenLocked(options, lock);
  std::vector<Migration> files = LoadMigrations(target.resolved);
  ForeignHistory history = ReadForeignHistory(*target.driver, only);
  std::vector<std::string> versions = history.versions;
  if (history.tool == ForeignTool::kGolangMigrate && !versions.empty()) {
    versions = VersionsUpTo(files, versions.back());
  }
  AdoptionPlan plan =
      PlanAdoption(versions, files, target.driver->ReadHistory(),
                   fmt::format("{} ({})", ForeignToolName(history.tool), history.table));
  ShowAndRecord(options, target, files, plan, "adopt");
}

void RunBaseline(const GlobalOptions& options, const std::string& version) {
  std::unique_ptr<MigrationLock> lock;
  Target target = OpenLocked(options, lock);
  std::vector<Migration> files = LoadMigrations(target.resolved);
  AdoptionPlan plan = PlanAdoption(VersionsUpTo(files, version), files,
                                   target.driver->ReadHistory(), "baseline " + version);
  ShowAndRecord(options, target, files, plan, "baseline");
}

}  // namespace

void SetupAdoptCommands(CLI::App& app, GlobalOptions& options) {
  auto from = std::make_shared<std::string>();
  auto* adopt = app.add_subcommand(
      "adopt",
      "record what golang-migrate, dbmate, Flyway or goose applied here (shows it; --yes "
      "records)");
  adopt->add_option("--from", *from, "which tool's history to read when several are present")
      ->check(CLI::IsMember({"golang-migrate", "dbmate", "flyway", "goose"}));
  adopt->callback([&options, from] { RunAdopt(options, *from); });

  auto version = std::make_shared<std::string>();
  auto* baseline = app.add_subcommand(
      "baseline",
      "mark an existing database as being at VERSION: every migration up to it counts as "
      "applied (shows it; --yes records)");
  baseline->add_option("version", *version, "a version from the migrations directory")
      ->required();
  baseline->callback([&options, version] { RunBaseline(options, *version); });
}

}  // namespace safemig::cli
