// The backups of one environment: a directory of published archives.
//
// Ids sort by time and say which environment and migration version they hold:
//   20261126T030536.123Z_production_v20260127110000   (v0 when no migration was applied)
// Directories ending in .partial are backups being written or left by a crash; they are
// never listed, and RemoveAbandoned() deletes those whose writer is gone. Not thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backup/archive.h"

namespace safemig {

struct BackupEntry {
  std::string id;
  std::filesystem::path dir;
  std::optional<Manifest> manifest;  // absent when the manifest cannot be read
  std::string problem;               // why, when manifest is absent
  bool verified = false;             // a full verify or a restore succeeded
  std::string verified_at;
  std::string verified_by;  // "verify", "restore", "rehearsal"
};

struct Retention {
  std::optional<int> keep_last;                        // keep the newest N
  std::optional<std::chrono::milliseconds> max_age;  // drop older than this
};

// Which backups `backup list` shows and `restore --before/--version` choose from. Every
// condition set must hold; a backup whose manifest cannot be read passes only a filter
// without conditions (a limit alone).
struct BackupFilter {
  std::optional<std::chrono::system_clock::time_point> before;  // created strictly before
  std::optional<std::chrono::system_clock::time_point> after;   // created at or after
  std::optional<std::string> version;  // migration_version; "0" or "none": no migration
  std::optional<std::string> reason;   // manifest reason, e.g. "before-up"
  bool verified_only = false;
  std::optional<int> limit;  // only the newest N of those that pass
};

// The entries of `entries` (oldest first, as List() returns them) that pass `filter`,
// still oldest first.
std::vector<BackupEntry> FilterBackups(std::vector<BackupEntry> entries,
                                       const BackupFilter& filter);

// A point in time as a DBA types it: ISO 8601 ("2026-11-26T02:00:00Z", with fractional
// seconds, a "+01:00" offset, or no zone meaning UTC; a date alone is its midnight UTC),
// or a duration ago ("2h", "30m", "1d", "1h30m": that long before `now`). Throws
// Error(kUsage) naming `flag` otherwise.
std::chrono::system_clock::time_point ParseBackupTime(const std::string& text,
                                                      const std::string& flag,
                                                      std::chrono::system_clock::time_point now);

class BackupStore {
 public:
  explicit BackupStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

  const std::filesystem::path& dir() const { return dir_; }

  // A new id for `environment` at `migration_version`, unique in this store.
  std::string NewId(const std::string& environment, const std::string& migration_version) const;

  // Deletes *.partial directories whose writer no longer holds their lock. Returns the
  // ids removed.
  std::vector<std::string> RemoveAbandoned() const;

  // Published backups, oldest first. Missing store directory: empty.
  std::vector<BackupEntry> List() const;

  // By exact id, or a unique prefix, or "latest". Throws Error(kUsage) naming the store.
  BackupEntry Find(const std::string& id_or_prefix) const;

  // Records that a backup was proven good (a sidecar file outside the checksummed set).
  void MarkVerified(const std::string& id, const std::string& how) const;

  // Applies retention. Never removes the newest verified backup, nor the newest backup
  // taken before a change (reason before-up / before-down), nor those in `keep`. Returns
  // the ids that were (or with dry_run, would be) removed.
  std::vector<std::string> Prune(const Retention& retention, const std::set<std::string>& keep,
                                 bool dry_run) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace safemig
