// The guarded rollback behind `safemig rollback`: both ways back planned side by side with
// measured estimates, one chosen, run against a deadline, and checked by fingerprint.
//
//   lock -> history + journal -> plan both ways -> choose -> deadline/approval ->
//   safety backup -> downs or in-place restore -> verify -> journal
//
// The down way runs the down SQL stored in history when each migration was applied, so it
// works after the application and its migration files were rolled back; it keeps data
// written since the deploy, apart from what the downs themselves drop. The restore way
// brings back the backup taken before the deploy, exactly, and loses every write since.
// Both take a backup of the current state first (invariants 2 and 5). Estimates come from
// the rehearsal of the deploy (down times, restore time) and from the backup's own timing.
// Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "core/error.h"
#include "core/migration.h"
#include "driver/driver.h"
#include "engine/migrator.h"
#include "engine/reporter.h"

namespace safemig {

enum class RollbackStrategy { kAuto, kDown, kRestore };
// "auto" | "down" | "restore"; throws Error(kUsage) on anything else.
RollbackStrategy ParseRollbackStrategy(const std::string& text);
const char* RollbackStrategyName(RollbackStrategy strategy);

struct RollbackRequest {
  Environment environment;
  DatabaseUrl url;
  // The migration files that are still there (possibly none: the application was rolled
  // back). Only used to say which versions have no file any more.
  std::vector<Migration> files;
  // The target; at most one. None: the state before the newest deploy still applied.
  std::optional<std::string> to;         // version to end at ("0": before every migration)
  std::optional<int> steps;              // revert this many migrations
  std::optional<std::string> deploy_id;  // the state before this deploy (run id)
  RollbackStrategy strategy = RollbackStrategy::kAuto;
  // Longest the rollback may take: refused beforehand when the estimate exceeds it (unless
  // `force`), stopped cleanly when it passes while running.
  std::optional<std::chrono::milliseconds> deadline;
  bool force = false;
  bool dry_run = false;
  bool skip_backup = false;  // refused in protected environments
  bool yes = false;          // approval given on the command line
  // Asks a person at a terminal to type `expected` (the database name); empty when there
  // is no terminal.
  std::function<bool(const std::string& expected)> ask_approval;
  std::string reason = "manual";  // why: "manual", "watch: ...", recorded in the journal
  int jobs = 0;
  std::string runner;      // lock holder, "alice@host pid 42"
  std::string applied_by;  // "alice@host"
  // Called with the plan once both ways are known, before anything changes.
  std::function<void(const struct RollbackPlan&)> on_plan;
};

// One migration the rollback reverts (newest first).
struct RollbackStepInfo {
  std::string version;
  std::string name;
  std::string deploy_id;  // the run that applied it
  bool irreversible = false;
  bool file_present = false;  // false is expected after a code rollback
  // From the newest rehearsal that ran this migration's down: "ok", "down_failed", ...;
  // empty when no rehearsal ran it.
  std::string rehearsal_outcome;
  std::optional<std::chrono::milliseconds> rehearsed_down;
  std::vector<std::string> data_loss;  // what its down cannot bring back
};

// One way back.
struct RollbackWay {
  bool available = false;
  std::string unavailable;  // why not, when not available
  std::optional<std::chrono::milliseconds> estimate;
  std::string estimate_basis;     // how the estimate was made, in words
  std::vector<std::string> loses;  // what this way loses, in words
  // Restore only.
  std::string backup_id;
  std::uint64_t backup_bytes = 0;  // stored
  bool backup_verified = false;
  std::string backup_taken_at;
  std::optional<std::int64_t> writes_since;  // approximate, from the engine's statistics
};

struct RollbackPlan {
  std::string environment;
  std::string database;  // redacted
  std::string from_version;
  std::string to_version;
  std::string deploy_id;    // the deploy whose start is the target, when there is one
  std::string deployed_at;  // when that deploy finished
  std::vector<RollbackStepInfo> steps;
  Plan downs;  // the down plan itself (stored SQL)
  RollbackWay down;
  RollbackWay restore;
  RollbackStrategy chosen = RollbackStrategy::kDown;
  std::string why;  // why `chosen`, in words
  std::optional<std::chrono::milliseconds> deadline;
  bool over_deadline = false;
  // The schema recorded before the deploy (Fingerprint JSON, objects only); empty when no
  // deploy recorded the target state, and then there is nothing to verify against.
  std::string expected_schema;
  std::vector<std::string> changed_since_deploy;  // schema changes made after the deploy
  std::vector<std::string> missing_files;         // versions whose file is gone
};

struct RollbackOutcome {
  RollbackPlan plan;
  bool ok = false;
  bool dry_run = false;
  std::optional<Error> refusal;  // refused before anything changed (exit 5)
  std::string strategy_used;     // "down" or "restore"
  std::string safety_backup_id;
  std::string reached_version;
  std::chrono::milliseconds took{0};
  std::optional<bool> verified;  // nullopt: nothing recorded to verify against
  std::vector<std::string> differences;
  std::int64_t journal_id = 0;
};

// Both ways back, without changing anything and without a lock. Throws Error(kUsage) for a
// target that names no applied migration or deploy, Error(kNoGo) when there is nothing
// applied to roll back to that target.
RollbackPlan PlanRollback(Driver& driver, const RollbackRequest& request);

// The guarded rollback. `driver` is replaced by a fresh connection after a restore. A
// refusal (deadline estimate, approval, a strategy that is not available) comes back in
// the outcome before anything changed. Throws Error(kMigrationFailed) when a down failed
// or the deadline stopped it (saying at which version the database now is, consistently),
// Error(kNeedsPerson) when the result does not match the schema recorded before the deploy
// (the difference in words), and what the lock, backup, restore and driver throw.
RollbackOutcome Rollback(std::unique_ptr<Driver>& driver, const RollbackRequest& request,
                         Reporter& reporter);

// The documents of docs/json-output.md ("rollback").
nlohmann::json RollbackPlanJson(const RollbackPlan& plan);
nlohmann::json RollbackOutcomeJson(const RollbackOutcome& outcome);

}  // namespace safemig
