#include "engine/recovery.h"

#include <fmt/format.h>

#include "core/error.h"

namespace safemig {

namespace {

// Entries younger than an interrupted run that do not migrate (backups, rehearsals, failed
// attempts refused by this check) can pile up above it; look back far enough to see past
// them.
constexpr int kJournalLookBack = 200;

constexpr const char* kProgressKey = "in_progress";

}  // namespace

void MarkStatementStarted(nlohmann::json& details, const std::string& version,
                          const ApplyStep& step, std::size_t index) {
  details[kProgressKey] = {
      {"version", version},
      {"source", step.source},
      {"direction", step.direction == Direction::kUp ? "up" : "down"},
      {"statement", index + 1},
      {"statements", step.statements.size()},
  };
}

void ClearStatementProgress(nlohmann::json& details) { details.erase(kProgressKey); }

std::optional<InterruptedRun> FindInterruptedRun(Driver& driver) {
  for (JournalEntry& entry : driver.ReadJournal(kJournalLookBack)) {
    // A run that was killed stays "running"; one whose statement failed after others had
    // auto-committed is "failed" but just as uncertain. Only a person closes either.
    if (entry.outcome == kResolvedByHand) continue;
    nlohmann::json details = nlohmann::json::parse(entry.details, nullptr, false);
    if (!details.is_object() || !details.contains(kProgressKey)) continue;
    const nlohmann::json& progress = details[kProgressKey];
    if (!progress.is_object()) continue;
    InterruptedRun run;
    run.version = progress.value("version", "");
    run.source = progress.value("source", "");
    run.direction = progress.value("direction", "up");
    run.statement = progress.value("statement", std::size_t{0});
    run.statements = progress.value("statements", std::size_t{0});
    run.entry = std::move(entry);
    return run;
  }
  return std::nullopt;
}

std::string DescribeInterruptedRun(const InterruptedRun& run) {
  return fmt::format(
      "run {} (journal entry {}, started {}) stopped during the {} of migration {} at "
      "statement {} of {} of {}, which cannot roll back",
      run.entry.deploy_id.empty() ? "?" : run.entry.deploy_id, run.entry.id,
      run.entry.started_at, run.direction, run.version, run.statement, run.statements,
      run.source);
}

void RefuseIfInterruptedRun(Driver& driver) {
  std::optional<InterruptedRun> run = FindInterruptedRun(driver);
  if (!run) return;
  std::string hint =
      run->entry.backup_id.empty()
          ? "that run took no backup: put the database right by hand, then run `safemig "
            "recover --resolved \"what you did\"`"
          : fmt::format("run `safemig recover` to restore backup {}, taken just before it",
                        run->entry.backup_id);
  throw Error(Category::kNeedsPerson,
              fmt::format("the database may be half-migrated: {}", DescribeInterruptedRun(*run)),
              hint);
}

}  // namespace safemig
