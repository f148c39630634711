// Plans and runs migrations against one Driver: the spine that backups, rehearsals,
// deploys and rollbacks wrap.
//
// Planning is pure (status in, Plan out), so `plan`, `status` and later the rehearsal
// reuse it. Execute() runs a plan under a lock the caller already holds, journals it, and
// is all-or-nothing: when step k fails, the steps this run already applied are reverted
// with their downs, newest first, so the database ends as it began. Not thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/migration.h"
#include "core/status.h"
#include "driver/driver.h"
#include "engine/reporter.h"

namespace safemig {

struct PlannedStep {
  Direction direction = Direction::kUp;
  std::string version;
  std::string name;
  std::string source;  // up file for kUp; "stored down of VERSION" for kDown
  std::string sql;
  int first_line = 1;
  bool in_transaction = true;
  bool irreversible = false;
  std::optional<std::chrono::milliseconds> timeout;
  // kUp: the history row to write (times filled in by Execute). kDown: the stored row.
  HistoryRow row;
  // kUp only: what would undo this step (the file's down), used when a later step fails.
  std::string down_sql;
  std::string down_source;
  int down_first_line = 1;
};

// The step that undoes the up step `up` with its file's down SQL (the same step in
// history's terms: applying it deletes the history row `up` wrote).
PlannedStep DownStepFor(const PlannedStep& up);

struct Plan {
  Direction direction = Direction::kUp;
  std::vector<PlannedStep> steps;
  std::string from_version;  // current version before the plan ("" = none)
  std::string to_version;    // version after the plan ("" = none)
};

// The history row that applying `file` writes (times, runner and ids left empty).
HistoryRow HistoryRowFor(const Migration& file);

// The pending migrations to apply, in order: all of them, those up to and including
// `to`, or the first `steps`. Throws Error(kNoGo) when the status shows an edited applied
// migration or a pending one older than the current version (naming them), and
// Error(kUsage) for a `to` that matches no migration.
Plan PlanUp(const StatusReport& status, const std::optional<std::string>& to,
            const std::optional<int>& steps);

// Applied migrations to revert, newest first, using the down SQL stored in history (so it
// works when the files are gone): one by default, `steps`, or every one newer than `to`
// ("0" reverts all). Throws Error(kNoGo) when one of them is irreversible, unless
// `allow_irreversible`: then such steps are in the plan with `irreversible` set and no SQL
// (for showing what a rollback would have to undo; Execute must not run them).
Plan PlanDown(const StatusReport& status, const std::optional<std::string>& to,
              const std::optional<int>& steps, bool allow_irreversible = false);

struct RunOptions {
  std::string environment = "default";
  std::string run_id;     // deploy id grouping this run's history rows
  std::string backup_id;  // backup taken before the run, recorded in history and journal
  std::string applied_by;
  std::string journal_kind;  // "up", "down"; defaults from the plan's direction
  // When a step fails, revert the steps this run applied with their downs. Off when the
  // caller restores a backup instead (an engine without transactional DDL).
  bool revert_with_downs = true;
  // Past this point no further step starts, and an up run that finishes past it is undone:
  // the environment's max_duration, or a rollback's --deadline. `deadline_name` says which
  // in messages.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::string deadline_name = "the deadline (max_duration)";
  std::string deadline_hint = "raise max_duration, or deploy fewer migrations at once";
  // Called just before each step starts, e.g. to bound its statements by the deadline.
  std::function<void(const PlannedStep& step)> before_step;
};

struct StepOutcome {
  std::string version;
  std::string name;
  std::chrono::milliseconds took{0};
};

struct RunResult {
  std::vector<StepOutcome> steps;
  std::string from_version;
  std::string to_version;
  std::chrono::milliseconds took{0};
  std::int64_t journal_id = 0;
};

class Migrator {
 public:
  // `driver` and `reporter` must outlive the Migrator.
  Migrator(Driver& driver, Reporter& reporter) : driver_(driver), reporter_(reporter) {}

  // REQUIRES: the caller holds driver.Lock() and EnsureMetadata() has run.
  // Throws Error(kMigrationFailed) when a step failed and everything this run had applied
  // was reverted; Error(kNeedsPerson) when reverting was impossible or failed too.
  RunResult Execute(const Plan& plan, const RunOptions& options);

 private:
  ApplyStep ToApplyStep(const PlannedStep& step, const RunOptions& options) const;
  // SplitStatements, with errors naming `source` and lines counted in the file.
  std::vector<Statement> SplitSection(const std::string& sql, const std::string& source,
                                      int first_line) const;
  // Reverts `applied` (steps of this run, oldest first) newest first. Returns the message
  // of the first revert failure, or nullopt when all were reverted.
  std::optional<std::string> RevertApplied(const std::vector<const PlannedStep*>& applied);

  Driver& driver_;
  Reporter& reporter_;
};

}  // namespace safemig
