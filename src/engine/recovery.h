// Runs that died in the middle of a migration that could not roll back.
//
// A migration that runs outside a transaction (a no-transaction migration, or any
// migration on MySQL/MariaDB, whose DDL commits itself) leaves the database between two
// states when the process is killed or the connection is lost halfway. The engine writes
// each statement's progress into the run's journal entry before the statement runs, so
// the next run finds the trace, refuses to migrate on top of an unknown state, and names
// the one command that puts it right: `safemig recover`, which restores the backup taken
// before the interrupted run. Not thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/history.h"
#include "driver/driver.h"

namespace safemig {

// Where an interrupted run stood when it stopped.
struct InterruptedRun {
  JournalEntry entry;
  std::string version;        // migration that was running
  std::string source;         // its file (or "stored down of VERSION")
  std::string direction;      // "up" or "down"
  std::size_t statement = 0;  // 1-based statement that had started
  std::size_t statements = 0;
};

// The journal `details` field of a run while statement `index` (0-based) of `step` is
// about to run; and the same details once the step is done (the progress removed).
void MarkStatementStarted(nlohmann::json& details, const std::string& version,
                          const ApplyStep& step, std::size_t index);
void ClearStatementProgress(nlohmann::json& details);

// The outcome `recover --resolved` gives an entry once a person has put the state right.
inline constexpr const char* kResolvedByHand = "resolved_by_hand";

// The newest journal entry whose statement progress was never cleared: a run that died or
// failed in the middle of a step that cannot roll back, and that nobody has resolved since.
// REQUIRES the caller holds the migration lock: then no live run owns such an entry.
std::optional<InterruptedRun> FindInterruptedRun(Driver& driver);

// One line saying what the interrupted run was doing, for errors and `recover`.
std::string DescribeInterruptedRun(const InterruptedRun& run);

// Throws Error(kNeedsPerson) naming the interrupted run and `safemig recover` when there is
// one. REQUIRES the caller holds the migration lock.
void RefuseIfInterruptedRun(Driver& driver);

}  // namespace safemig
