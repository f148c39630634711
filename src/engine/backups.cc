#include "engine/backups.h"

#include <fmt/format.h>

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

RestoreResult RestoreBackup(const BackupStore& store, const std::string& id,
                            const DatabaseUrl& target, std::unique_ptr<Driver> current,
                            const std::string& environment, Reporter& reporter, int jobs) {
  const auto started = Clock::now();
  BackupEntry entry = store.Find(id);
  ArchiveReader reader = ArchiveReader::Open(entry.dir);
  // Damage is found before anything is touched, the safety backup included.
  reader.CheckParts(ProgressFor(reporter, "check"));
  RestoreResult result;
  result.manifest = reader.manifest();
  RestoreOptions options;
  options.jobs = jobs;
  if (current) {
    BackupRequest safety;
    safety.environment = environment;
    safety.reason = "before-restore";
    safety.label = "state before restoring " + entry.id;
    safety.migration_version = CurrentVersion(*current);
    BackupResult taken = TakeBackup(*current, store, safety, reporter);
    result.safety_backup_id = taken.manifest.id;
    reporter.Note(fmt::format("saved the current state as backup {}", taken.manifest.id));
    current.reset();  // the file is about to be replaced under this connection
    options.replace_existing = true;
  }
  RestoreArchive(reader, target, options, ProgressFor(reporter, "restore"));
  store.MarkVerified(entry.id, "restore");
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
  journal.to_version = result.manifest.migration_version;
  journal.backup_id = result.manifest.id;
  journal.fingerprint_after = result.manifest.fingerprint.Digest();
  details["safety_backup_id"] = result.safety_backup_id;
  details["took_ms"] = result.took.count();
  journal.details = details.dump();
  return restored->InsertJournal(journal);
}

}  // namespace safemig
