#include "core/status.h"

#include <algorithm>
#include <map>

namespace safemig {

const char* StateName(MigrationState state) {
  switch (state) {
    case MigrationState::kApplied: return "applied";
    case MigrationState::kPending: return "pending";
    case MigrationState::kChanged: return "changed";
    case MigrationState::kMissing: return "missing";
    case MigrationState::kOutOfOrder: return "out_of_order";
  }
  return "unknown";
}

bool IsDrift(MigrationState state) {
  return state == MigrationState::kChanged || state == MigrationState::kMissing ||
         state == MigrationState::kOutOfOrder;
}

StatusReport ComputeStatus(const std::vector<Migration>& files,
                           const std::vector<HistoryRow>& history) {
  std::map<std::string, StatusRow, VersionLess> rows;
  StatusReport report;
  for (const HistoryRow& applied : history) {
    StatusRow& row = rows[applied.version];
    row.version = applied.version;
    row.name = applied.name;
    row.applied = applied;
    if (report.current_version.empty() ||
        CompareVersions(applied.version, report.current_version) > 0) {
      report.current_version = applied.version;
    }
  }
  for (const Migration& file : files) {
    // VersionLess makes "001" and "1" the same key, as the other tools treat them.
    StatusRow& row = rows[file.version];
    if (row.version.empty()) row.version = file.version;
    row.name = file.name;
    row.file = file;
  }
  for (auto& [version, row] : rows) {
    if (row.applied && row.file) {
      if (row.applied->checksum == row.file->checksum) {
        row.state = MigrationState::kApplied;
      } else {
        row.state = MigrationState::kChanged;
        row.detail = row.file->up_path + " was edited after it was applied (checksum " +
                     row.applied->checksum.substr(0, 12) + " recorded, " +
                     row.file->checksum.substr(0, 12) + " now)";
      }
    } else if (row.applied) {
      row.state = MigrationState::kMissing;
      row.detail = "applied from " + row.applied->up_path +
                   ", which is no longer in the migrations directory";
    } else if (!report.current_version.empty() &&
               CompareVersions(version, report.current_version) < 0) {
      row.state = MigrationState::kOutOfOrder;
      row.detail = row.file->up_path + " is older than the applied version " +
                   report.current_version + " but was never applied";
    } else {
      row.state = MigrationState::kPending;
    }
    if (row.applied) ++report.applied;
    if (row.state == MigrationState::kPending || row.state == MigrationState::kOutOfOrder) {
      ++report.pending;
    }
    if (IsDrift(row.state)) ++report.drifted;
    report.rows.push_back(row);
  }
  return report;
}

}  // namespace safemig
