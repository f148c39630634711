// Where a database stands relative to the migration files: the comparison `status`,
// `validate` and `up` all rely on. Pure function over values; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/history.h"
#include "core/migration.h"

namespace safemig {

enum class MigrationState {
  kApplied,     // recorded, file present and unchanged
  kPending,     // file present, not recorded, newer than every applied version
  kChanged,     // drift: recorded, but the up file's checksum differs from the recorded one
  kMissing,     // drift: recorded, but no file has this version any more
  kOutOfOrder,  // drift: file not recorded, yet older than the newest applied version
};

const char* StateName(MigrationState state);  // "applied", "pending", "changed", ...
bool IsDrift(MigrationState state);
// How messages show a version: "none" before any migration.
inline std::string VersionOrNone(const std::string& version) {
  return version.empty() ? "none" : version;
}

struct StatusRow {
  std::string version;
  std::string name;
  MigrationState state = MigrationState::kPending;
  std::optional<Migration> file;       // absent for kMissing
  std::optional<HistoryRow> applied;   // absent for kPending / kOutOfOrder
  std::string detail;                  // one line explaining drift, empty otherwise
};

struct StatusReport {
  std::vector<StatusRow> rows;  // ascending by version
  std::string current_version;  // newest applied version; empty if none
  int applied = 0;
  int pending = 0;  // kPending + kOutOfOrder
  int drifted = 0;
};

// REQUIRES: `files` has unique versions (DiscoverMigrations guarantees it).
StatusReport ComputeStatus(const std::vector<Migration>& files,
                           const std::vector<HistoryRow>& history);

}  // namespace safemig
