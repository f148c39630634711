#include "drivers/sqlite/sqlite_driver.h"

#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backup/stream.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/sql_quote.h"
#include "drivers/sqlite/sqlite_fingerprint.h"
#include "drivers/table_restore.h"

namespace safemig {
namespace {

constexpr const char* kCreateMigrations = R"sql(
CREATE TABLE IF NOT EXISTS safemig_migrations (
  version        TEXT    NOT NULL PRIMARY KEY,
  name           TEXT    NOT NULL,
  checksum       TEXT    NOT NULL,
  up_path        TEXT    NOT NULL,
  down_sql       TEXT    NOT NULL,
  down_checksum  TEXT    NOT NULL,
  no_transaction INTEGER NOT NULL DEFAULT 0,
  irreversible   INTEGER NOT NULL DEFAULT 0,
  applied_at     TEXT    NOT NULL,
  applied_by     TEXT    NOT NULL,
  duration_ms    INTEGER NOT NULL,
  deploy_id      TEXT    NOT NULL,
  backup_id      TEXT    NOT NULL DEFAULT ''
))sql";

constexpr const char* kCreateJournal = R"sql(
CREATE TABLE IF NOT EXISTS safemig_journal (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  kind               TEXT NOT NULL,
  environment        TEXT NOT NULL,
  deploy_id          TEXT NOT NULL DEFAULT '',
  started_at         TEXT NOT NULL,
  finished_at        TEXT NOT NULL DEFAULT '',
  outcome            TEXT NOT NULL,
  plan_hash          TEXT NOT NULL DEFAULT '',
  from_version       TEXT NOT NULL DEFAULT '',
  to_version         TEXT NOT NULL DEFAULT '',
  backup_id          TEXT NOT NULL DEFAULT '',
  fingerprint_before TEXT NOT NULL DEFAULT '',
  fingerprint_after  TEXT NOT NULL DEFAULT '',
  details            TEXT NOT NULL DEFAULT '{}'
))sql";

struct FdCloser {
  void operator()(const int* fd) const {
    if (fd != nullptr && *fd >= 0) ::close(*fd);
    delete fd;
  }
};
using UniqueFd = std::unique_ptr<int, FdCloser>;

// Holding the flock is holding the lock; closing the descriptor releases it.
class FileLock : public MigrationLock {
 public:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  ~FileLock() override {
    // Clear the holder line first so a reader never quotes a finished runner.
    if (::ftruncate(*fd_, 0) != 0) {
      // Nothing useful to do: the flock is still released when the fd closes.
    }
  }

 private:
  UniqueFd fd_;
};

std::string ReadHolder(int fd) {
  char buffer[512] = {};
  ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
  std::string text = n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.empty() ? "another safemig process (it did not say who)" : text;
}

// How the checks open a copy they only read. A copy of a WAL-mode database is WAL-mode
// too, and a read-only connection cannot create the -shm index it needs: two of them
// opening at once failed with "database is locked". Read-write connections that never
// write, with a busy timeout, share it; no page of the file changes.
const int kCheckOpenFlags = SQLite::OPEN_READWRITE;
constexpr int kCheckBusyMs = 10'000;

constexpr const char* kSqlitePartName = "database.sqlite3.zst";
constexpr const char* kSqlitePartKind = "sqlite-database";

// Runs `work` on another thread. Wait() joins it and rethrows what it threw (SQLite
// exceptions as Error); the destructor joins without rethrowing, so an exception on the
// calling thread never leaves the thread running.
class CheckInParallel {
 public:
  explicit CheckInParallel(std::function<void()> work)
      : thread_([this, work = std::move(work)] {
          try {
            work();
          } catch (const SQLite::Exception& e) {
            error_ = std::make_exception_ptr(
                Error(Category::kMigrationFailed, std::string("SQLite: ") + e.what()));
          } catch (...) {
            error_ = std::current_exception();
          }
        }) {}
  ~CheckInParallel() {
    if (thread_.joinable()) thread_.join();
  }
  void Wait() {
    thread_.join();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
  std::thread thread_;
};

// Removes a temporary file unless Keep() was called.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::filesystem::path path) : path_(std::move(path)) {}
  ~TempFileGuard() {
    if (!kept_) {
      std::error_code ignored;
      std::filesystem::remove(path_, ignored);
    }
  }
  void Keep() { kept_ = true; }

 private:
  std::filesystem::path path_;
  bool kept_ = false;
};

class SqliteDriver : public Driver {
 public:
  SqliteDriver(const DatabaseUrl& url, const OpenOptions& options) : path_(url.path) {
    const bool in_memory = path_ == ":memory:";
    if (!in_memory && !options.create_if_missing && !std::filesystem::exists(path_)) {
      throw Error(Category::kConnection,
                  fmt::format("SQLite database file {} does not exist", path_),
                  "check the path in the URL; `safemig up` creates the file on first use");
    }
    try {
      int flags = SQLite::OPEN_READWRITE | (options.create_if_missing ? SQLite::OPEN_CREATE : 0);
      db_ = std::make_unique<SQLite::Database>(path_, flags);
      // Touch the file so a directory or non-database file fails here, not mid-run.
      db_->exec("SELECT count(*) FROM sqlite_master");
    } catch (const SQLite::Exception& e) {
      throw Error(Category::kConnection,
                  fmt::format("cannot open SQLite database {}: {}", path_, e.what()),
                  "check that the path exists, is a SQLite database and is writable");
    }
    SetTimeouts(std::chrono::seconds(10), std::nullopt);
    sqlite3_progress_handler(db_->getHandle(), 1000, &SqliteDriver::ProgressHandler, this);
  }

  Engine engine() const override { return Engine::kSqlite; }
  Dialect dialect() const override { return Dialect::kSqlite; }
  Capabilities capabilities() const override {
    return Capabilities{/*transactional_ddl=*/true, /*advisory_lock=*/false};
  }
  std::string Describe() const override { return "sqlite:" + path_; }
  std::string ServerVersion() override { return std::string("SQLite ") + sqlite3_libversion(); }

  std::unique_ptr<MigrationLock> Lock(std::chrono::milliseconds timeout,
                                      const std::string& holder) override {
    if (path_ == ":memory:") return std::make_unique<MigrationLock>();
    std::string lock_path = path_ + ".safemig.lock";
    UniqueFd fd(new int(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)));
    if (*fd < 0) {
      throw Error(Category::kConnection,
                  fmt::format("cannot open lock file {}: {}", lock_path, std::strerror(errno)),
                  "make the database's directory writable for this user");
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (::flock(*fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        throw Error(Category::kConnection,
                    fmt::format("cannot lock {}: {}", lock_path, std::strerror(errno)));
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        throw Error(Category::kLockHeld,
                    fmt::format("migration lock on {} is held by {}; gave up after {}", path_,
                                ReadHolder(*fd), FormatDuration(timeout)),
                    "wait for that run to finish, or raise lock_timeout; the lock frees "
                    "itself when the holder exits");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string line = fmt::format("{} since {}\n", holder, NowIso8601());
    if (::ftruncate(*fd, 0) != 0 ||
        ::pwrite(*fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
      // The lock is held; only the courtesy note for other runners is missing.
    }
    return std::make_unique<FileLock>(std::move(fd));
  }

  void EnsureMetadata() override {
    Guarded("create the safemig tables", [&] {
      db_->exec(kCreateMigrations);
      db_->exec(kCreateJournal);
    });
  }

  QueryResult QueryText(const std::string& sql) override {
    QueryResult result;
    // Bounded by the statement timeout like a migration's statements: a query that runs
    // away (a watch's health check) must not hang the caller.
    if (statement_timeout_) deadline_ = std::chrono::steady_clock::now() + *statement_timeout_;
    struct ClearDeadline {
      std::optional<std::chrono::steady_clock::time_point>& deadline;
      ~ClearDeadline() { deadline.reset(); }
    } clear{deadline_};
    Guarded("read a table of another tool", [&] {
      SQLite::Statement query(*db_, sql);
      for (int i = 0; i < query.getColumnCount(); ++i) {
        result.columns.emplace_back(query.getColumnName(i));
      }
      while (query.executeStep()) {
        std::vector<std::optional<std::string>> row;
        for (int i = 0; i < query.getColumnCount(); ++i) {
          SQLite::Column column = query.getColumn(i);
          if (column.isNull()) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(column.getString());
          }
        }
        result.rows.push_back(std::move(row));
      }
    });
    return result;
  }

  bool HasTable(const std::string& name) override { return TableExists(name.c_str()); }

  std::vector<HistoryRow> ReadHistory() override {
    std::vector<HistoryRow> rows;
    if (!TableExists("safemig_migrations")) return rows;
    Guarded("read safemig_migrations", [&] {
      SQLite::Statement query(*db_,
                              "SELECT version, name, checksum, up_path, down_sql, down_checksum, "
                              "no_transaction, irreversible, applied_at, applied_by, "
                              "duration_ms, deploy_id, backup_id FROM safemig_migrations");
      while (query.executeStep()) {
        HistoryRow row;
        row.version = query.getColumn(0).getString();
        row.name = query.getColumn(1).getString();
        row.checksum = query.getColumn(2).getString();
        row.up_path = query.getColumn(3).getString();
        row.down_sql = query.getColumn(4).getString();
        row.down_checksum = query.getColumn(5).getString();
        row.no_transaction = query.getColumn(6).getInt() != 0;
        row.irreversible = query.getColumn(7).getInt() != 0;
        row.applied_at = query.getColumn(8).getString();
        row.applied_by = query.getColumn(9).getString();
        row.duration_ms = query.getColumn(10).getInt64();
        row.deploy_id = query.getColumn(11).getString();
        row.backup_id = query.getColumn(12).getString();
        rows.push_back(std::move(row));
      }
    });
    return rows;
  }

  void Apply(const ApplyStep& step) override {
    size_t done = 0;
    const auto started = std::chrono::steady_clock::now();
    auto elapsed = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - started);
    };
    if (step.in_transaction) {
      Guarded("begin a transaction", [&] { db_->exec("BEGIN IMMEDIATE"); });
      try {
        for (const Statement& statement : step.statements) {
          RunStatement(step, statement);
          ++done;
          if (sqlite3_get_autocommit(db_->getHandle()) != 0) {
            // What ran before it is committed now: the state is no longer the one before.
            throw Error(Category::kNeedsPerson,
                        fmt::format("{}:{}: the statement ended safemig's transaction, so the "
                                    "{} statement(s) up to it stay applied and the migration "
                                    "is not recorded",
                                    step.source, step.first_line + statement.line - 1, done),
                        "remove BEGIN/COMMIT/ROLLBACK from the migration: safemig wraps each "
                        "migration in a transaction (or mark it -- safemig:no-transaction)");
          }
        }
        WriteHistory(step, elapsed());
        Guarded("commit", [&] { db_->exec("COMMIT"); });
      } catch (...) {
        RollbackQuietly();
        throw;
      }
      return;
    }
    for (const Statement& statement : step.statements) {
      try {
        if (step.before_statement) step.before_statement(done);
        RunStatement(step, statement);
      } catch (const Error& e) {
        std::string ran = done == 0 ? std::string("no statement had run")
                                    : fmt::format("statements 1-{} of {} had already run and "
                                                  "stay applied",
                                                  done, step.statements.size());
        // Statements that ran cannot be taken back: the state is no longer the one before.
        throw Error(done == 0 ? e.category() : Category::kNeedsPerson,
                    fmt::format("{} (no-transaction migration: {})", e.what(), ran),
                    done == 0 ? e.hint()
                              : "inspect the database, undo those statements by hand or "
                                "restore a backup, then run again");
      }
      ++done;
    }
    Guarded("record the migration", [&] {
      db_->exec("BEGIN IMMEDIATE");
      try {
        WriteHistory(step, elapsed());
        db_->exec("COMMIT");
      } catch (...) {
        RollbackQuietly();
        throw;
      }
    });
  }

  void SetTimeouts(std::chrono::milliseconds lock_wait,
                   std::optional<std::chrono::milliseconds> statement) override {
    auto busy = static_cast<int>(
        std::min<std::chrono::milliseconds::rep>(lock_wait.count(), 24L * 3600 * 1000));
    db_->setBusyTimeout(busy);
    statement_timeout_ = statement;
  }

  std::int64_t InsertJournal(const JournalEntry& entry) override {
    std::int64_t id = 0;
    Guarded("write the journal", [&] {
      SQLite::Statement insert(
          *db_,
          "INSERT INTO safemig_journal (kind, environment, deploy_id, started_at, finished_at, "
          "outcome, plan_hash, from_version, to_version, backup_id, fingerprint_before, "
          "fingerprint_after, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
      BindJournal(insert, entry);
      insert.exec();
      id = db_->getLastInsertRowid();
    });
    return id;
  }

  void UpdateJournal(const JournalEntry& entry) override {
    Guarded("update the journal", [&] {
      SQLite::Statement update(
          *db_,
          "UPDATE safemig_journal SET kind=?, environment=?, deploy_id=?, started_at=?, "
          "finished_at=?, outcome=?, plan_hash=?, from_version=?, to_version=?, backup_id=?, "
          "fingerprint_before=?, fingerprint_after=?, details=? WHERE id=?");
      BindJournal(update, entry);
      update.bind(14, static_cast<int64_t>(entry.id));
      update.exec();
    });
  }

  std::vector<JournalEntry> ReadJournal(int limit) override {
    std::vector<JournalEntry> entries;
    if (!TableExists("safemig_journal")) return entries;
    Guarded("read the journal", [&] {
      SQLite::Statement query(
          *db_,
          "SELECT id, kind, environment, deploy_id, started_at, finished_at, outcome, "
          "plan_hash, from_version, to_version, backup_id, fingerprint_before, "
          "fingerprint_after, details FROM safemig_journal ORDER BY id DESC LIMIT ?");
      query.bind(1, limit);
      while (query.executeStep()) {
        JournalEntry e;
        e.id = query.getColumn(0).getInt64();
        e.kind = query.getColumn(1).getString();
        e.environment = query.getColumn(2).getString();
        e.deploy_id = query.getColumn(3).getString();
        e.started_at = query.getColumn(4).getString();
        e.finished_at = query.getColumn(5).getString();
        e.outcome = query.getColumn(6).getString();
        e.plan_hash = query.getColumn(7).getString();
        e.from_version = query.getColumn(8).getString();
        e.to_version = query.getColumn(9).getString();
        e.backup_id = query.getColumn(10).getString();
        e.fingerprint_before = query.getColumn(11).getString();
        e.fingerprint_after = query.getColumn(12).getString();
        e.details = query.getColumn(13).getString();
        entries.push_back(std::move(e));
      }
    });
    return entries;
  }

  Fingerprint TakeFingerprint(bool include_metadata, FingerprintDepth depth,
                              const TableFilter& read_in_full) override {
    return FingerprintSqlite(*db_, include_metadata, depth, read_in_full);
  }

  Fingerprint Dump(ArchiveWriter& archive, const ArchiveReader::Progress& progress) override {
    // The online backup API copies a consistent image even while other connections
    // write; copying in one step holds a read snapshot for the duration instead of
    // restarting whenever a writer commits.
    const std::filesystem::path snapshot = archive.ScratchPath("snapshot.sqlite3");
    Guarded("copy the database with the online backup API", [&] {
      SQLite::Database copy(snapshot.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      SQLite::Backup backup(copy, *db_);
      backup.executeStep(-1);
    });
    // Fingerprinting and compressing the copy are independent reads of one file: doing
    // them on two cores makes the backup cost about the longer of the two.
    Fingerprint fingerprint;
    CheckInParallel fingerprinting([&] {
      SQLite::Database copy(snapshot.string(), kCheckOpenFlags, kCheckBusyMs);
      fingerprint = FingerprintSqlite(copy, /*include_metadata=*/true);
    });
    {
      FileSource source(snapshot);
      Sink& part = archive.BeginPart(kSqlitePartName, kSqlitePartKind);
      const std::uint64_t total = std::filesystem::file_size(snapshot);
      ProgressSink counted(part, total, progress);
      Pump(source, counted);
      fingerprinting.Wait();
      std::int64_t rows = 0;
      for (const auto& [name, data] : fingerprint.tables) rows += data.rows;
      archive.EndPart(rows);
    }
    std::filesystem::remove(snapshot);
    return fingerprint;
  }

 private:
  // Interrupts a statement that outlives the migration's statement timeout.
  static int ProgressHandler(void* self) {
    auto* driver = static_cast<SqliteDriver*>(self);
    return driver->deadline_ && std::chrono::steady_clock::now() > *driver->deadline_ ? 1 : 0;
  }

  template <typename Fn>
  void Guarded(const char* what, Fn&& fn) {
    try {
      fn();
    } catch (const SQLite::Exception& e) {
      Category category = e.getErrorCode() == SQLITE_BUSY ? Category::kLockHeld
                                                          : Category::kMigrationFailed;
      throw Error(category, fmt::format("could not {} in {}: {}", what, path_, e.what()),
                  category == Category::kLockHeld
                      ? "another connection holds a write lock on the file; retry when it "
                        "is done, or raise lock_timeout"
                      : "");
    }
  }

  bool TableExists(const char* name) {
    bool exists = false;
    Guarded("read the schema", [&] { exists = db_->tableExists(name); });
    return exists;
  }

  void RunStatement(const ApplyStep& step, const Statement& statement) {
    int line = step.first_line + statement.line - 1;
    std::optional<std::chrono::milliseconds> limit = statement_timeout_;
    if (step.statement_timeout) limit = step.statement_timeout;
    if (limit) {
      deadline_ = std::chrono::steady_clock::now() + *limit;
    } else {
      deadline_.reset();
    }
    try {
      db_->exec(statement.text);
      deadline_.reset();
    } catch (const SQLite::Exception& e) {
      deadline_.reset();
      if (e.getErrorCode() == SQLITE_INTERRUPT && limit) {
        throw Error(Category::kMigrationFailed,
                    fmt::format("{}:{}: statement cancelled after the {} statement timeout",
                                step.source, line, FormatDuration(*limit)),
                    "raise the limit with -- safemig:timeout=... if the statement is meant "
                    "to run that long");
      }
      throw Error(Category::kMigrationFailed,
                  fmt::format("{}:{}: {}", step.source, line, e.what()),
                  "fix the statement, then run again; the database was left as it was");
    }
  }

  void WriteHistory(const ApplyStep& step, std::chrono::milliseconds elapsed) {
    const HistoryRow& row = step.row;
    if (step.direction == Direction::kDown) {
      SQLite::Statement remove(*db_, "DELETE FROM safemig_migrations WHERE version = ?");
      remove.bind(1, row.version);
      if (remove.exec() != 1) {
        throw Error(Category::kMigrationFailed,
                    fmt::format("history row of version {} vanished during the down", row.version),
                    "another tool changed safemig_migrations; run `safemig status` and check");
      }
      return;
    }
    SQLite::Statement insert(
        *db_,
        "INSERT INTO safemig_migrations (version, name, checksum, up_path, down_sql, "
        "down_checksum, no_transaction, irreversible, applied_at, applied_by, duration_ms, "
        "deploy_id, backup_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
    insert.bind(1, row.version);
    insert.bind(2, row.name);
    insert.bind(3, row.checksum);
    insert.bind(4, row.up_path);
    insert.bind(5, row.down_sql);
    insert.bind(6, row.down_checksum);
    insert.bind(7, row.no_transaction ? 1 : 0);
    insert.bind(8, row.irreversible ? 1 : 0);
    insert.bind(9, row.applied_at);
    insert.bind(10, row.applied_by);
    insert.bind(11, static_cast<int64_t>(elapsed.count()));
    insert.bind(12, row.deploy_id);
    insert.bind(13, row.backup_id);
    try {
      insert.exec();
    } catch (const SQLite::Exception& e) {
      throw Error(Category::kMigrationFailed,
                  fmt::format("could not record version {} in safemig_migrations: {}",
                              row.version, e.what()),
                  "run `safemig status`: the version may already be recorded");
    }
  }

  static void BindJournal(SQLite::Statement& statement, const JournalEntry& e) {
    statement.bind(1, e.kind);
    statement.bind(2, e.environment);
    statement.bind(3, e.deploy_id);
    statement.bind(4, e.started_at);
    statement.bind(5, e.finished_at);
    statement.bind(6, e.outcome);
    statement.bind(7, e.plan_hash);
    statement.bind(8, e.from_version);
    statement.bind(9, e.to_version);
    statement.bind(10, e.backup_id);
    statement.bind(11, e.fingerprint_before);
    statement.bind(12, e.fingerprint_after);
    statement.bind(13, e.details);
  }

  void RollbackQuietly() noexcept {
    if (sqlite3_get_autocommit(db_->getHandle()) == 0) {
      sqlite3_exec(db_->getHandle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  std::string path_;
  std::unique_ptr<SQLite::Database> db_;
  std::optional<std::chrono::milliseconds> statement_timeout_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
};

}  // namespace

std::unique_ptr<Driver> OpenSqliteDriver(const DatabaseUrl& url, const OpenOptions& options) {
  return std::make_unique<SqliteDriver>(url, options);
}

namespace {

class SqliteScratch : public ScratchDatabase {
 public:
  explicit SqliteScratch(const DatabaseUrl& like) {
    namespace fs = std::filesystem;
    fs::path near = like.path == ":memory:" ? fs::temp_directory_path() : fs::path(like.path);
    fs::path dir = near.has_parent_path() ? near.parent_path() : fs::path(".");
    if (like.path == ":memory:") dir = near;
    // Files of killed runs on this host go first.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("safemig_scratch_", 0) == 0 && ScratchOwnerIsGone(name)) {
        fs::remove(entry.path(), ec);
      }
    }
    std::random_device random;
    url_ = like;
    url_.path = (dir / fmt::format("{}{:08x}.db", ScratchPrefix(), random())).string();
    int fd = ::open(url_.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      throw Error(Category::kConnection,
                  fmt::format("cannot create scratch database {}: {}", url_.path,
                              std::strerror(errno)),
                  "make the database's directory writable for this user");
    }
    ::close(fd);
  }
  ~SqliteScratch() override {
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm", "-journal", ".safemig.lock"}) {
      std::filesystem::remove(url_.path + suffix, ignored);
    }
  }
};

}  // namespace

std::unique_ptr<ScratchDatabase> CreateSqliteScratch(const DatabaseUrl& like) {
  return std::make_unique<SqliteScratch>(like);
}

namespace {

bool IsMetadataTable(const std::string& name) { return name.rfind("safemig_", 0) == 0; }

// The rows of `key` in `actual` must be the backup's (count and content hash).
void CheckTableData(const Manifest& manifest, const Fingerprint& actual, const std::string& key) {
  auto expected = manifest.fingerprint.tables.find(key);
  auto got = actual.tables.find(key);
  if (expected == manifest.fingerprint.tables.end()) return;  // the manifest has no figures
  if (got == actual.tables.end() || got->second.rows != expected->second.rows ||
      got->second.content_sha256 != expected->second.content_sha256) {
    throw Error(Category::kIntegrity,
                fmt::format("table {} restored from backup {} differs from what was backed up "
                            "({} rows, the backup recorded {})",
                            key, manifest.id, got == actual.tables.end() ? 0 : got->second.rows,
                            expected->second.rows),
                "the backup cannot be trusted; use another one");
  }
}

// Drops every table of the restored copy at `path` but `keep` (and safemig's own), then the
// views that no longer work; checks the kept tables' rows against the manifest.
RestoreReport KeepOnlyTables(const Manifest& manifest, const std::filesystem::path& path,
                             const std::vector<std::string>& keep) {
  SQLite::Database db(path.string(), kCheckOpenFlags, kCheckBusyMs);
  SQLite::Transaction transaction(db);
  std::vector<std::string> drop;
  {
    SQLite::Statement tables(db, "SELECT name FROM main.sqlite_master WHERE type = 'table' "
                                 "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'");
    while (tables.executeStep()) {
      const std::string name = tables.getColumn(0).getString();
      if (!IsMetadataTable(name) && std::find(keep.begin(), keep.end(), name) == keep.end()) {
        drop.push_back(name);
      }
    }
  }
  for (const std::string& name : drop) db.exec("DROP TABLE main." + QuoteIdentifier(name));
  // A view over a dropped table fails when prepared; views over views need more rounds.
  for (bool dropped = true; dropped;) {
    dropped = false;
    std::vector<std::string> views;
    SQLite::Statement list(db, "SELECT name FROM main.sqlite_master WHERE type = 'view'");
    while (list.executeStep()) views.push_back(list.getColumn(0).getString());
    list.reset();
    for (const std::string& view : views) {
      try {
        SQLite::Statement probe(db, "SELECT * FROM main." + QuoteIdentifier(view) + " LIMIT 0");
      } catch (const SQLite::Exception&) {
        db.exec("DROP VIEW main." + QuoteIdentifier(view));
        dropped = true;
      }
    }
  }
  const Fingerprint actual = FingerprintSqlite(db, /*include_metadata=*/true);
  RestoreReport report;
  for (const std::string& key : keep) {
    CheckTableData(manifest, actual, key);
    report.tables.push_back({key, actual.tables.at(key).rows, std::chrono::milliseconds(0)});
  }
  transaction.commit();
  return report;
}

// The "table T" lines of `keys` as the target describes them now, without reading rows:
// their CREATE TABLE statements fingerprinted in an empty in-memory database.
Fingerprint TargetTableSchema(SQLite::Database& db, const std::vector<std::string>& keys) {
  SQLite::Database memory(":memory:", SQLite::OPEN_READWRITE);
  for (const std::string& key : keys) {
    SQLite::Statement sql(db, "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND "
                              "name = ?");
    sql.bind(1, key);
    if (sql.executeStep()) memory.exec(sql.getColumn(0).getString());
  }
  return FingerprintSqlite(memory, /*include_metadata=*/true);
}

// The name the rowid goes by in `table` of schema `schema`, or "" for a WITHOUT ROWID
// table (or one whose columns take all three names).
std::string RowidName(SQLite::Database& db, const std::string& schema, const std::string& table) {
  std::set<std::string> names;
  SQLite::Statement columns(db, "SELECT lower(name) FROM pragma_table_xinfo(?, ?)");
  columns.bind(1, table);
  columns.bind(2, schema);
  while (columns.executeStep()) names.insert(columns.getColumn(0).getString());
  for (const char* alias : {"rowid", "_rowid_", "oid"}) {
    if (names.count(alias) != 0) continue;
    try {
      SQLite::Statement probe(db, fmt::format("SELECT {} FROM {}.{} LIMIT 0", alias, schema,
                                              QuoteIdentifier(table)));
      return alias;
    } catch (const SQLite::Exception&) {
      return "";  // WITHOUT ROWID
    }
  }
  return "";
}

// Replaces the rows of `keys` in the database at `path` with those of the checked copy at
// `copy`, in one transaction: triggers of those tables are set aside meanwhile (SQLite
// cannot switch them off, and DDL is transactional here), foreign keys are not enforced
// during the swap (no ON DELETE CASCADE reaches other tables) but checked before the commit.
RestoreReport ReplaceTables(const Manifest& manifest, const std::filesystem::path& path,
                            const std::filesystem::path& copy, const RestoreOptions& options) {
  SQLite::Database db(path.string(), SQLite::OPEN_READWRITE, kCheckBusyMs);
  RefuseChangedColumns(manifest.fingerprint, TargetTableSchema(db, options.tables),
                       options.tables, path.string(), manifest.id);
  if (options.before_change) options.before_change();
  db.exec("PRAGMA foreign_keys = OFF");
  {
    SQLite::Statement attach(db, "ATTACH DATABASE ? AS safemig_backup");
    attach.bind(1, copy.string());
    attach.exec();
  }
  RestoreReport report;
  try {
    db.exec("BEGIN IMMEDIATE");
    try {
      std::vector<std::string> triggers;
      for (const std::string& key : options.tables) {
        SQLite::Statement list(db, "SELECT name, sql FROM main.sqlite_master WHERE type = "
                                   "'trigger' AND tbl_name = ?");
        list.bind(1, key);
        std::vector<std::string> names;
        while (list.executeStep()) {
          names.push_back(list.getColumn(0).getString());
          triggers.push_back(list.getColumn(1).getString());
        }
        list.reset();
        for (const std::string& name : names) db.exec("DROP TRIGGER main." + QuoteIdentifier(name));
      }
      for (const std::string& key : options.tables) {
        const auto started = std::chrono::steady_clock::now();
        std::vector<std::string> columns;
        SQLite::Statement list(db, "SELECT name FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0");
        list.bind(1, key);
        while (list.executeStep()) columns.push_back(QuoteIdentifier(list.getColumn(0).getString()));
        const std::string rowid = RowidName(db, "main", key);
        if (!rowid.empty()) columns.insert(columns.begin(), rowid);
        const std::string list_sql = fmt::format("{}", fmt::join(columns, ", "));
        const std::string name = QuoteIdentifier(key);
        db.exec("DELETE FROM main." + name);
        const int rows = db.exec(fmt::format("INSERT INTO main.{0} ({1}) SELECT {1} FROM "
                                             "safemig_backup.{0}",
                                             name, list_sql));
        report.tables.push_back({key, rows, Since(started)});
      }
      for (const std::string& sql : triggers) db.exec(sql);
      // Violations that involve a replaced table, on either side, refuse the whole change.
      SQLite::Statement check(db, "PRAGMA main.foreign_key_check");
      std::map<std::tuple<std::string, std::string, int>, std::int64_t> broken;
      while (check.executeStep()) {
        const std::string child = check.getColumn(0).getString();
        const std::string parent = check.getColumn(2).getString();
        const auto& keys = options.tables;
        if (std::find(keys.begin(), keys.end(), child) != keys.end() ||
            std::find(keys.begin(), keys.end(), parent) != keys.end()) {
          ++broken[{child, parent, check.getColumn(3).getInt()}];
        }
      }
      check.reset();
      if (!broken.empty()) {
        const auto& [which, count] = *broken.begin();
        const auto& [child, parent, id] = which;
        throw ForeignKeyRefusal(fmt::format("#{} of {}", id, child), child, parent, count);
      }
      const Fingerprint actual = FingerprintSqlite(db, /*include_metadata=*/true);
      for (const std::string& key : options.tables) CheckTableData(manifest, actual, key);
      db.exec("COMMIT");
    } catch (...) {
      db.exec("ROLLBACK");
      throw;
    }
  } catch (...) {
    db.exec("DETACH DATABASE safemig_backup");
    throw;
  }
  db.exec("DETACH DATABASE safemig_backup");
  return report;
}

}  // namespace

RestoreReport RestoreSqliteArchive(const ArchiveReader& archive, const DatabaseUrl& target,
                                   const RestoreOptions& options,
                                   const ArchiveReader::Progress& progress) {
  namespace fs = std::filesystem;
  const Manifest& manifest = archive.manifest();
  const PartInfo* part = nullptr;
  for (const PartInfo& candidate : manifest.parts) {
    if (candidate.kind == kSqlitePartKind) part = &candidate;
  }
  if (part == nullptr) {
    throw Error(Category::kIntegrity,
                fmt::format("backup {} has no {} part", manifest.id, kSqlitePartKind));
  }
  const fs::path path = target.path;
  if (target.path == ":memory:") {
    throw Error(Category::kUsage, "cannot restore into an in-memory SQLite database",
                "pass --into sqlite:PATH");
  }
  std::error_code ec;
  if (fs::exists(path, ec) && !options.replace_existing) {
    throw Error(Category::kUsage,
                fmt::format("{} already exists; a restore never overwrites it unasked", path.string()),
                "restore into a new path with --into, or replace it with --in-place");
  }
  const bool replace_tables = options.replace_existing && !options.tables.empty();
  if (replace_tables && !fs::exists(path, ec)) {
    throw Error(Category::kUsage,
                fmt::format("{} does not exist, so it has no tables to replace", path.string()),
                "restore into a new database instead (leave out --in-place)");
  }
  // Nothing is touched until every part has passed its checksum.
  archive.CheckParts();
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const fs::path temp = parent / fmt::format(".{}.safemig-restore-{}", path.filename().string(),
                                             static_cast<long>(::getpid()));
  fs::remove(temp, ec);
  TempFileGuard guard(temp);
  {
    FileSink sink(temp);
    archive.ExtractPart(*part, sink, progress);
    sink.Finish();
  }
  try {
    // The file's bytes already matched the backup's SHA-256, so this guards against a
    // source that was itself damaged; quick_check covers pages and records in linear time,
    // where integrity_check also probes every index entry and dominated restore time.
    std::string check;
    CheckInParallel checking([&] {
      SQLite::Database restored(temp.string(), kCheckOpenFlags, kCheckBusyMs);
      check = restored.execAndGet("PRAGMA quick_check").getString();
    });
    SQLite::Database restored(temp.string(), kCheckOpenFlags, kCheckBusyMs);
    Fingerprint actual = FingerprintSqlite(restored, /*include_metadata=*/true);
    checking.Wait();
    if (check != "ok") {
      throw Error(Category::kIntegrity,
                  fmt::format("restored copy of {} fails SQLite's quick_check: {}", manifest.id,
                              check));
    }
    if (actual.Digest() != manifest.fingerprint.Digest()) {
      std::vector<std::string> differences = DescribeDifferences(manifest.fingerprint, actual);
      throw Error(Category::kIntegrity,
                  fmt::format("restored copy of {} differs from what was backed up: {}",
                              manifest.id, differences.empty() ? "digest" : differences.front()),
                  "the backup cannot be trusted; use another one");
    }
  } catch (const SQLite::Exception& e) {
    throw Error(Category::kIntegrity,
                fmt::format("restored copy of {} is not a usable SQLite database: {}",
                            manifest.id, e.what()));
  }
  RestoreReport report;
  try {
    if (replace_tables) return ReplaceTables(manifest, path, temp, options);
    if (!options.tables.empty()) report = KeepOnlyTables(manifest, temp, options.tables);
  } catch (const SQLite::Exception& e) {
    throw Error(Category::kMigrationFailed,
                fmt::format("cannot restore tables of {} into {}: SQLite: {}", manifest.id,
                            path.string(), e.what()),
                "the target was not changed");
  }
  if (options.replace_existing) {
    // A WAL left beside the old file would be replayed onto the restored one.
    fs::remove(path.string() + "-wal", ec);
    fs::remove(path.string() + "-shm", ec);
    fs::remove(path.string() + "-journal", ec);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    throw Error(Category::kMigrationFailed,
                fmt::format("cannot move the restored database into place at {}: {}",
                            path.string(), std::strerror(errno)),
                "check permissions of the directory; the target was not changed");
  }
  guard.Keep();
  SyncDirectory(parent);
  return report;
}

}  // namespace safemig
