// The one abstract interface every database engine implements.
//
// A Driver owns one connection to one target database. It is not thread-safe: one
// engine pipeline uses it at a time. Every method translates the engine library's
// exceptions into safemig::Error at this edge (kConnection for connect/auth failures,
// kMigrationFailed for a failing statement, kLockHeld for lock timeouts), with messages
// already free of secrets. The engine code above never names a specific engine.
//
// Implemented: SQLite (drivers/sqlite) and PostgreSQL (drivers/postgres).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backup/archive.h"
#include "config/url.h"
#include "core/fingerprint.h"
#include "core/history.h"
#include "core/sql_split.h"

namespace safemig {

struct Capabilities {
  bool transactional_ddl = false;  // a failed migration rolls back its DDL too
  bool advisory_lock = false;      // the server arbitrates the migration lock
};

enum class Direction { kUp, kDown };

// One migration in one direction, ready to run.
struct ApplyStep {
  Direction direction = Direction::kUp;
  std::string source;   // file (or "stored down of VERSION") named in error messages
  int first_line = 1;   // line of `source` on which the SQL starts
  std::vector<Statement> statements;
  bool in_transaction = true;
  std::optional<std::chrono::milliseconds> statement_timeout;
  // kUp: inserted into safemig_migrations in the same transaction as the statements.
  // kDown: the row with row.version is deleted in that transaction.
  HistoryRow row;
  // Called with a statement's 0-based index just before it runs, when the step runs outside
  // a transaction or the engine lacks transactional DDL: then a crash mid-step leaves an
  // uncertain state, and the engine journals how far it got so the next run can tell.
  // Optional. An exception from it stops the step before that statement.
  std::function<void(std::size_t index)> before_statement;
};

struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

// Held while migrating; released by the destructor (also when the process dies, for
// every engine's implementation).
class MigrationLock {
 public:
  virtual ~MigrationLock() = default;
};

class Driver {
 public:
  virtual ~Driver() = default;

  virtual Engine engine() const = 0;
  virtual Dialect dialect() const = 0;
  virtual Capabilities capabilities() const = 0;
  // What to call the target in messages (file path or database name; no secrets).
  virtual std::string Describe() const = 0;
  virtual std::string ServerVersion() = 0;

  // Waits up to `timeout` for the migration lock. `holder` says who we are
  // ("alice@ci-7 pid 4242"). Throws Error(kLockHeld) naming the current holder and since
  // when.
  virtual std::unique_ptr<MigrationLock> Lock(std::chrono::milliseconds timeout,
                                              const std::string& holder) = 0;

  // Creates safemig_migrations and safemig_journal if missing. Idempotent.
  virtual void EnsureMetadata() = 0;

  // Applied migrations in no particular order; empty if the tables do not exist yet.
  virtual std::vector<HistoryRow> ReadHistory() = 0;

  // Runs the step's statements and its history bookkeeping. With in_transaction, all or
  // nothing (on engines with transactional DDL). Without, statement by statement, the
  // history change after the last one succeeds. Throws Error(kMigrationFailed) whose
  // message names source:line and the database's message, and says which statements
  // had already run when not in a transaction.
  virtual void Apply(const ApplyStep& step) = 0;

  // Session limits: how long to wait for the engine's locks, and the longest a single
  // statement may run (nullopt: unlimited).
  virtual void SetTimeouts(std::chrono::milliseconds lock_wait,
                           std::optional<std::chrono::milliseconds> statement) = 0;

  // Where the driver reports what it does on its own, such as retrying a migration after a
  // lock timeout. Optional; the default ignores the reports.
  virtual void SetNotifier(std::function<void(const std::string&)> /*notifier*/) {}

  // Journal: Insert returns the new id; Update rewrites the row with entry.id.
  virtual std::int64_t InsertJournal(const JournalEntry& entry) = 0;
  virtual void UpdateJournal(const JournalEntry& entry) = 0;
  // Newest first; empty if the table does not exist yet.
  virtual std::vector<JournalEntry> ReadJournal(int limit) = 0;

  // Rows of a read-only query, each value as text (NULL as nullopt), with the column names
  // as the server reports them. For reading small tables safemig does not own, such as the
  // history tables of other migration tools (`adopt`); not for user data. Throws
  // Error(kMigrationFailed) naming the query when it fails.
  virtual QueryResult QueryText(const std::string& sql) = 0;
  // Whether a table (in the target's default schema) exists.
  virtual bool HasTable(const std::string& name) = 0;
  // Rows users have written (inserted + updated + deleted) as the engine's statistics count
  // them since they began: approximate, and only the difference between two readings means
  // anything ("about N writes since the deploy"). nullopt when the engine keeps no such
  // statistics (SQLite).
  virtual std::optional<std::int64_t> WriteCount() { return std::nullopt; }

  // The current schema and, to `depth`, data, canonically, as of one instant.
  // include_metadata: also safemig's own tables. Tables `read_in_full` names are read in
  // full whatever the depth. The schema half (SchemaDigest) is the same at every depth.
  virtual Fingerprint TakeFingerprint(bool include_metadata, FingerprintDepth depth,
                                      const TableFilter& read_in_full) = 0;
  Fingerprint TakeFingerprint(bool include_metadata,
                              FingerprintDepth depth = FingerprintDepth::kFull) {
    return TakeFingerprint(include_metadata, depth, TableFilter());
  }

  // Writes one consistent copy of the whole database into `archive` as parts (the
  // caller publishes it) and returns the fingerprint of exactly what was written, safemig's
  // tables included. Memory stays bounded whatever the database size. Throws
  // Error(kMigrationFailed) on failure; the archive is then abandoned.
  virtual Fingerprint Dump(ArchiveWriter& archive, const ArchiveReader::Progress& progress) = 0;
};

// A database that exists for a while (the staging copy a rehearsal restores into) and is
// dropped by the destructor, also when an error or Ctrl-C unwinds the stack. Its name
// carries this host and process id, so one left by a killed run is dropped by the next
// CreateScratchDatabase on the same host. Not thread-safe.
class ScratchDatabase {
 public:
  virtual ~ScratchDatabase() = default;
  const DatabaseUrl& url() const { return url_; }

 protected:
  DatabaseUrl url_;
};

// Creates an empty scratch database beside `like`: on the same server for server engines
// (the connecting role needs CREATEDB), in the same directory for SQLite. Throws
// Error(kConnection) when that is not possible.
std::unique_ptr<ScratchDatabase> CreateScratchDatabase(const DatabaseUrl& like);

// "safemig_scratch_<host>_<pid>_": the name prefix of this process's scratch databases.
// Also parses such names back: returns the pid when `name` is a scratch database of this
// host, nullopt otherwise.
std::string ScratchPrefix();
std::optional<long> ScratchOwnerPid(const std::string& name);
// True when `name` is a scratch database of this host whose process is gone.
bool ScratchOwnerIsGone(const std::string& name);

struct RestoreOptions {
  // Replace an existing target (in-place restore). Without it an existing target is an
  // error. The caller takes the safety backup first and closes its own connections
  // (with `tables`: the caller takes it in before_change, and may keep its connections).
  bool replace_existing = false;
  // Parallel connections for server databases (0: one per core).
  int jobs = 0;
  // Only these tables, as keys of the manifest's Fingerprint::tables (the caller checks
  // they are there). Empty: the whole database.
  // Without replace_existing: the whole backup is restored and checked as usual, then the
  // tables not named are dropped (with the views and foreign keys that need them).
  // With replace_existing: only the rows of these tables are replaced, in one transaction,
  // after checking that their columns in the target equal the backup's; foreign keys are
  // checked before the commit (a violation refuses, nothing changed) and counters
  // (sequences, AUTO_INCREMENT, sqlite_sequence) never go backwards.
  std::vector<std::string> tables;
  // With tables and replace_existing: called once the checks passed, before the target is
  // changed (the caller takes its safety backup here). An exception from it stops the
  // restore with the target unchanged.
  std::function<void()> before_change;
};

// One table of a --tables restore, as restored.
struct TableRestored {
  std::string table;  // key in the manifest's Fingerprint::tables
  std::int64_t rows = 0;
  // The time replacing its rows took (in place); zero when the table came with a whole
  // restore (into a new database) and was not timed on its own.
  std::chrono::milliseconds took{0};
};

struct RestoreReport {
  std::vector<TableRestored> tables;  // with RestoreOptions::tables only, in that order
};

// Restores `archive` into `target` (same engine as the backup). Checks every part before
// touching the target, and checks afterwards that the target's fingerprint equals the
// manifest's (with `tables` in place: that those tables' row counts and content hashes
// equal the manifest's); on any failure the target is left as it was (for SQLite: built
// in a temporary file and renamed over the target only once checked). Throws
// Error(kIntegrity) for a damaged backup, Error(kUsage) for an engine mismatch or an
// existing target, Error(kNoGo) when a table cannot be replaced in place (its columns
// changed, a foreign key would break).
RestoreReport RestoreArchive(const ArchiveReader& archive, const DatabaseUrl& target,
                             const RestoreOptions& options,
                             const ArchiveReader::Progress& progress);

struct OpenOptions {
  // Whether a missing SQLite file may be created. Read-only commands pass false, so a
  // typo in a path is an error rather than a new empty database.
  bool create_if_missing = true;
  // Parallel connections for backups and restores of server databases (0: one per core).
  int jobs = 0;
};

// Selects the driver by the URL's engine. Throws Error(kConnection) when the database
// cannot be reached, Error(kConfig) for an engine this build does not include.
std::unique_ptr<Driver> OpenDriver(const DatabaseUrl& url, const OpenOptions& options = {});

}  // namespace safemig
