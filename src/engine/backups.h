// Taking, verifying and restoring backups: the engine side of invariants 2, 3 and 5
// (no change without a backup; a backup is trusted once restored; nothing is lost by a
// restore because the current state is backed up first). Not thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backup/store.h"
#include "driver/driver.h"
#include "engine/reporter.h"

namespace safemig {

struct BackupRequest {
  std::string environment = "default";
  std::string reason = "manual";  // "manual", "before-up", "before-down", "before-restore"
  std::string label;
  int compression_level = 3;
  std::string migration_version;  // the version the database is at now
};

struct BackupResult {
  Manifest manifest;
  std::filesystem::path dir;
  std::chrono::milliseconds took{0};
};

// The newest applied version recorded in the database ("" when none).
std::string CurrentVersion(Driver& driver);

// Removes abandoned .partial directories, dumps the database through `driver` into a new
// archive in `store` and publishes it. Throws what Dump throws; nothing is published then.
BackupResult TakeBackup(Driver& driver, const BackupStore& store, const BackupRequest& request,
                        Reporter& reporter);

// Checks every part's checksum and decompresses it fully; marks the backup verified.
// Throws Error(kIntegrity) naming the part and the damage.
Manifest VerifyBackup(const BackupStore& store, const std::string& id, Reporter& reporter);

struct RestoreResult {
  Manifest manifest;
  std::string safety_backup_id;  // in-place only: the backup of what was replaced
  std::chrono::milliseconds took{0};
  std::vector<TableRestored> tables;  // a restore of some tables only
};

// The keys of the manifest's tables that `names` mean: an exact key, or a name without
// its schema ("orders" for "public.orders") when exactly one table has it. Throws
// Error(kUsage) for a name the backup does not hold (listing what it holds) or one of
// safemig's own tables.
std::vector<std::string> ResolveBackupTables(const Manifest& manifest,
                                             const std::vector<std::string>& names);

// Restores backup `id` into `target`. With `current` (in-place), the current state of the
// target is backed up into `store` first (after the checks that can refuse) and `current`
// is closed before the swap. With `tables`, only those tables (RestoreOptions::tables;
// resolved with ResolveBackupTables before anything else happens).
RestoreResult RestoreBackup(const BackupStore& store, const std::string& id,
                            const DatabaseUrl& target, std::unique_ptr<Driver> current,
                            const std::string& environment, Reporter& reporter, int jobs = 0,
                            const std::vector<std::string>& tables = {});

// Records in the restored database's own journal how it came to be (its journal is the
// backup's, so nothing else says it). `kind` is "restore", "recover", ...; `details` gets
// the safety backup id and the time taken added. Returns the new entry's id.
std::int64_t JournalRestore(const DatabaseUrl& target, const RestoreResult& result,
                            const std::string& environment, const std::string& kind,
                            nlohmann::json details);

}  // namespace safemig
