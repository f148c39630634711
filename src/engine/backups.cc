#include "engine/backups.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/clock.h"
#include "core/migration.h"
#include "core/error.h"

namespace safemig {
namespace {

using Clock = std::chrono::steady_clock;

ArchiveReader::Progress ProgressFor(Reporter& reporter, const char* task) {
  return [&reporter, task](std::uint64_t done, std::uint64_t total) {
    reporter.Progress(task, done, total);
  };
}

}  // namespace

std::string CurrentVersion(Driver& driver) {
  std::string version;
  for (const HistoryRow& row : driver.ReadHistory()) {
    if (version.empty() || CompareVersions(row.version, version) > 0) version = row.version;
  }
  return version;
}

BackupResult TakeBackup(Driver& driver, const BackupStore& store, const BackupRequest& request,
                        Reporter& reporter) {
  const auto started = Clock::now();
  for (const std::string& id : store.RemoveAbandoned()) {
    reporter.Note(fmt::format("removed the unfinished backup {} left by an interrupted run", id));
  }
  Manifest manifest;
  manifest.engine = EngineName(driver.engine());
  manifest.server_version = driver.ServerVersion();
  manifest.database = RedactSecrets(driver.Describe());
  manifest.environment = request.environment;
  manifest.created_at = NowIso8601();
  manifest.tool_version = SAFEMIG_VERSION;
  manifest.migration_version = request.migration_version;
  manifest.reason = request.reason;
  manifest.label = RedactSecrets(request.label);
  manifest.compression_level = request.compression_level;
  const std::string id = store.NewId(request.environment, request.migration_version);
  ArchiveWriter writer(store.dir(), id, request.compression_level);
  manifest.fingerprint = driver.Dump(writer, ProgressFor(reporter, "backup"));
  manifest.finished_at = NowIso8601();
  BackupResult result;
  result.dir = writer.Publish(manifest);
  result.manifest = ArchiveReader::Open(result.dir).manifest();
  result.took = Since(started);
  return result;
}

Manifest VerifyBackup(const BackupStore& store, const std::string& id, Reporter& reporter) {
  BackupEntry entry = store.Find(id);
  if (!entry.manifest) {
    // List() could not read it: Open again for the precise damage message.
    ArchiveReader::Open(entry.dir);
  }
  ArchiveReader reader = ArchiveReader::Open(entry.dir);
  reader.Verify(ProgressFor(reporter, "verify"));
  store.MarkVerified(entry.id, "verify");
  return reader.manifest();
}

std::vector<std::string> ResolveBackupTables(const Manifest& manifest,
                                             const std::vector<std::string>& names) {
  std::vector<std::string> keys;
  for (const std::string& name : names) {
    if (name.empty()) continue;
    std::vector<std::string> matches;
    for (const auto& [key, data] : manifest.fingerprint.tables) {
      if (key == "sqlite_sequence") continue;  // SQLite's counters, not a table
      if (key == name) {
        matches = {key};
        break;
      }
      if (key.size() > name.size() && key.compare(key.size() - name.size(), name.size(), name) == 0 &&
          key[key.size() - name.size() - 1] == '.') {
        matches.push_back(key);
      }
    }
    if (matches.empty()) {
      std::vector<std::string> held;
      for (const auto& [key, data] : manifest.fingerprint.tables) {
        if (key != "sqlite_sequence" && key.rfind("safemig_", 0) != 0 &&
            key.find(".safemig_") == std::string::npos) {
          held.push_back(key);
        }
      }
      throw Error(Category::kUsage,
                  fmt::format("table {} is not in backup {} (it holds {})", name, manifest.id,
                              held.empty() ? std::string("no tables")
                                           : fmt::format("{}", fmt::join(held, ", "))),
                  "check the name with `safemig backup show ID`; nothing was changed");
    }
    if (matches.size() > 1) {
      throw Error(Category::kUsage,
                  fmt::format("table name {} matches {} in backup {}", name,
                              fmt::join(matches, " and "), manifest.id),
                  "name the table with its schema");
    }
    const std::string& key = matches.front();
    if (key.rfind("safemig_", 0) == 0 || key.find(".safemig_") != std::string::npos) {
      throw Error(Category::kUsage,
                  fmt::format("table {} is safemig's own bookkeeping and is not restored on "
                              "its own",
                              key),
                  "restore the whole backup to bring back its history");
    }
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  return keys;
}

RestoreResult RestoreBackup(const BackupStore& store, const std::string& id,
                            const DatabaseUrl& target, std::unique_ptr<Driver> current,
                            const std::string& environment, Reporter& reporter, int jobs,
                            const std::vector<std::string>& tables) {
  const auto started = Clock::now();
  BackupEntry entry = store.Find(id);
  ArchiveReader reader = ArchiveReader::Open(entry.dir);
  RestoreResult result;
  result.manifest = reader.manifest();
  RestoreOptions options;
  options.jobs = jobs;
  options.tables = ResolveBackupTables(result.manifest, tables);
  if (!tables.empty() && options.tables.empty()) {
    throw Error(Category::kUsage, "--tables names no table", "pass --tables a,b");
  }
  // Damage is found before anything is touched, the safety backup included.
  reader.CheckParts(ProgressFor(reporter, "check"));
  auto take_safety_backup = [&] {
    BackupRequest safety;
    safety.environment = environment;
    safety.reason = "before-restore";
    safety.label = "state before restoring " + entry.id +
                   (options.tables.empty()
                        ? std::string()
                        : fmt::format(" (tables {})", fmt::join(options.tables, ", ")));
    safety.migration_version = CurrentVersion(*current);
    BackupResult taken = TakeBackup(*current, store, safety, reporter);
    result.safety_backup_id = taken.manifest.id;
    reporter.Note(fmt::format("saved the current state as backup {}", taken.manifest.id));
  };
  if (current) {
    options.replace_existing = true;
    if (options.tables.empty()) {
      take_safety_backup();
      current.reset();  // the file is about to be replaced under this connection
    } else {
      // The driver first checks that the tables can be replaced, so a refusal leaves no
      // safety backup behind it.
      options.before_change = take_safety_backup;
    }
  }
  RestoreReport report = RestoreArchive(reader, target, options, ProgressFor(reporter, "restore"));
  // Replacing some tables in place restores only their parts: that proves less than a
  // whole restore, so the backup is not marked verified by it.
  if (!options.before_change) store.MarkVerified(entry.id, "restore");
  result.tables = std::move(report.tables);
  result.took = Since(started);
  return result;
}

std::int64_t JournalRestore(const DatabaseUrl& target, const RestoreResult& result,
                            const std::string& environment, const std::string& kind,
                            nlohmann::json details) {
  std::unique_ptr<Driver> restored = OpenDriver(target, OpenOptions{false});
  restored->EnsureMetadata();
  JournalEntry journal;
  journal.kind = kind;
  journal.environment = environment;
  journal.started_at = NowIso8601();
  journal.finished_at = journal.started_at;
  journal.outcome = "ok";
  journal.backup_id = result.manifest.id;
  if (result.tables.empty()) {
    journal.to_version = result.manifest.migration_version;
    journal.fingerprint_after = result.manifest.fingerprint.Digest();
  } else if (result.safety_backup_id.empty()) {
    // Some tables into a new database: its history is the backup's, its schema is not.
    journal.to_version = result.manifest.migration_version;
  }
  details["safety_backup_id"] = result.safety_backup_id;
  details["took_ms"] = result.took.count();
  journal.details = details.dump();
  return restored->InsertJournal(journal);
}

}  // namespace safemig
