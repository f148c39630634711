#include "drivers/mysql/mysql_driver.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/sha256.h"
#include "drivers/mysql/mysql_dump.h"
#include "drivers/mysql/mysql_fingerprint.h"
#include "drivers/mysql/mysql_session.h"

namespace safemig {
namespace {

// Same columns as the other engines' tables. utf8mb4_bin: versions compare byte for byte.
constexpr const char* kCreateMigrations = R"sql(
CREATE TABLE IF NOT EXISTS safemig_migrations (
  version        VARCHAR(190) NOT NULL PRIMARY KEY,
  name           TEXT         NOT NULL,
  checksum       VARCHAR(64)  NOT NULL,
  up_path        TEXT         NOT NULL,
  down_sql       LONGTEXT     NOT NULL,
  down_checksum  VARCHAR(64)  NOT NULL,
  no_transaction BOOLEAN      NOT NULL DEFAULT FALSE,
  irreversible   BOOLEAN      NOT NULL DEFAULT FALSE,
  applied_at     VARCHAR(32)  NOT NULL,
  applied_by     TEXT         NOT NULL,
  duration_ms    BIGINT       NOT NULL,
  deploy_id      VARCHAR(190) NOT NULL,
  backup_id      VARCHAR(190) NOT NULL DEFAULT ''
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin)sql";

constexpr const char* kCreateJournal = R"sql(
CREATE TABLE IF NOT EXISTS safemig_journal (
  id                 BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind               VARCHAR(64)  NOT NULL,
  environment        VARCHAR(190) NOT NULL,
  deploy_id          VARCHAR(190) NOT NULL DEFAULT '',
  started_at         VARCHAR(32)  NOT NULL,
  finished_at        VARCHAR(32)  NOT NULL DEFAULT '',
  outcome            VARCHAR(32)  NOT NULL,
  plan_hash          VARCHAR(64)  NOT NULL DEFAULT '',
  from_version       VARCHAR(190) NOT NULL DEFAULT '',
  to_version         VARCHAR(190) NOT NULL DEFAULT '',
  backup_id          VARCHAR(190) NOT NULL DEFAULT '',
  fingerprint_before LONGTEXT     NOT NULL,
  fingerprint_after  LONGTEXT     NOT NULL,
  details            LONGTEXT     NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin)sql";

// Who holds the migration lock and since when: GET_LOCK() itself only tells the holder's
// connection id. Never part of fingerprints or backups.
constexpr const char* kCreateLockTable = R"sql(
CREATE TABLE IF NOT EXISTS safemig_lock (
  lock_name     VARCHAR(64)     NOT NULL PRIMARY KEY,
  connection_id BIGINT UNSIGNED NOT NULL,
  holder        TEXT            NOT NULL,
  since         VARCHAR(32)     NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin)sql";

constexpr const char* kJournalColumns =
    "kind, environment, deploy_id, started_at, finished_at, outcome, plan_hash, from_version, "
    "to_version, backup_id, fingerprint_before, fingerprint_after, details";

// Server error numbers the driver reacts to.
constexpr int kErLockWaitTimeout = 1205;
constexpr int kErQueryInterrupted = 1317;
constexpr int kErStatementTimeout = 1969;  // MariaDB max_statement_time
constexpr int kErQueryTimeout = 3024;      // MySQL max_execution_time

std::string Str(const std::optional<std::string>& value) { return value.value_or(""); }

void BindJournal(sql::PreparedStatement& ps, const JournalEntry& e) {
  const std::string* values[] = {&e.kind,         &e.environment,  &e.deploy_id,
                                 &e.started_at,   &e.finished_at,  &e.outcome,
                                 &e.plan_hash,    &e.from_version, &e.to_version,
                                 &e.backup_id,    &e.fingerprint_before,
                                 &e.fingerprint_after, &e.details};
  unsigned int index = 1;
  for (const std::string* value : values) ps.setString(index++, *value);
}

// Shares the session with the driver, so it stays valid if the driver goes first.
class NamedLock : public MigrationLock {
 public:
  NamedLock(std::shared_ptr<MySqlSession> session, std::string name)
      : session_(std::move(session)), name_(std::move(name)) {}
  ~NamedLock() override {
    try {
      session_->Exec("DELETE FROM " + std::string(kMySqlLockTable) +
                     " WHERE connection_id = CONNECTION_ID()");
    } catch (...) {
      // A stale row is harmless: it is only read for the connection holding the lock.
    }
    try {
      session_->Exec("DO RELEASE_LOCK(" + QuoteMySqlLiteral(name_) + ")");
    } catch (...) {
      // The server releases it anyway when the session ends.
    }
  }

 private:
  std::shared_ptr<MySqlSession> session_;
  std::string name_;
};

class MySqlDriver : public Driver {
 public:
  MySqlDriver(const DatabaseUrl& url, const OpenOptions& options)
      : url_(url), session_(std::make_shared<MySqlSession>(url)) {
    jobs_ = options.jobs > 0 ? options.jobs
                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }

  Engine engine() const override { return Engine::kMySql; }
  Dialect dialect() const override { return Dialect::kMySql; }
  Capabilities capabilities() const override { return Capabilities{false, true}; }
  std::string Describe() const override { return url_.Redacted(); }
  std::string ServerVersion() override {
    return (session_->is_mariadb() ? "MariaDB " : "MySQL ") + session_->version();
  }

  std::unique_ptr<MigrationLock> Lock(std::chrono::milliseconds timeout,
                                      const std::string& holder) override {
    const std::string name = LockName();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      // Polled with a zero wait so the timeout is honoured to the millisecond and the
      // holder can be described the moment we give up.
      const bool taken = GuardMySql("take the migration lock", [&] {
        return Str(session_->Value("SELECT GET_LOCK(" + QuoteMySqlLiteral(name) + ", 0)")) ==
               "1";
      });
      if (taken) {
        RecordHolder(name, holder);
        return std::make_unique<NamedLock>(session_, name);
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        throw Error(Category::kLockHeld,
                    fmt::format("migration lock on {} is held by {}; gave up after {}",
                                Describe(), DescribeHolder(name), FormatDuration(timeout)),
                    "wait for that run to finish, or raise lock_timeout; the server releases "
                    "the lock when the holder's connection ends");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void EnsureMetadata() override {
    GuardMySql("create the safemig tables", [&] {
      session_->Exec(kCreateMigrations);
      session_->Exec(kCreateJournal);
    });
  }

  QueryResult QueryText(const std::string& sql) override {
    QueryResult result;
    GuardMySql("read a table of another tool", [&] {
      session_->Stream(sql, [&](sql::ResultSet& rows) {
        const unsigned int count = rows.getMetaData()->getColumnCount();
        if (result.columns.empty()) {
          for (unsigned int i = 1; i <= count; ++i) {
            result.columns.push_back(rows.getMetaData()->getColumnLabel(i).asStdString());
          }
        }
        MySqlRow row(count);
        for (unsigned int i = 1; i <= count; ++i) {
          if (!rows.isNull(i)) row[i - 1] = rows.getString(i).asStdString();
        }
        result.rows.push_back(std::move(row));
      });
    });
    return result;
  }

  bool HasTable(const std::string& name) override { return TableExists(name); }

  std::optional<std::int64_t> WriteCount() override {
    // Per-table statistics need userstat=ON; InnoDB's row counters are always there, but
    // count the whole server, safemig's own rows included.
    std::int64_t count = 0;
    GuardMySql("read the InnoDB row counters", [&] {
      for (const MySqlRow& r : session_->Query(
               "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_rows_inserted', "
               "'Innodb_rows_updated', 'Innodb_rows_deleted')")) {
        count += std::stoll(Str(r[1]));
      }
    });
    return count;
  }

  std::vector<HistoryRow> ReadHistory() override {
    std::vector<HistoryRow> rows;
    if (!TableExists("safemig_migrations")) return rows;
    GuardMySql("read safemig_migrations", [&] {
      for (const MySqlRow& r : session_->Query(
               "SELECT version, name, checksum, up_path, down_sql, down_checksum, "
               "no_transaction, irreversible, applied_at, applied_by, duration_ms, deploy_id, "
               "backup_id FROM safemig_migrations")) {
        HistoryRow row;
        row.version = Str(r[0]);
        row.name = Str(r[1]);
        row.checksum = Str(r[2]);
        row.up_path = Str(r[3]);
        row.down_sql = Str(r[4]);
        row.down_checksum = Str(r[5]);
        row.no_transaction = Str(r[6]) == "1";
        row.irreversible = Str(r[7]) == "1";
        row.applied_at = Str(r[8]);
        row.applied_by = Str(r[9]);
        row.duration_ms = std::stoll(Str(r[10]));
        row.deploy_id = Str(r[11]);
        row.backup_id = Str(r[12]);
        rows.push_back(std::move(row));
      }
    });
    return rows;
  }

  void Apply(const ApplyStep& step) override {
    const auto started = std::chrono::steady_clock::now();
    std::size_t done = 0;
    try {
      SetLimits(step);
      for (const Statement& statement : step.statements) {
        if (step.before_statement) step.before_statement(done);
        RunStatement(step, statement);
        ++done;
      }
      ClearStatementLimit();
    } catch (const Error& e) {
      ClearStatementLimit();
      if (done == 0) throw;
      // MySQL committed each statement as it ran (DDL cannot be rolled back): the
      // database is no longer the one before the migration.
      throw Error(Category::kNeedsPerson,
                  fmt::format("{} (statements 1-{} of {} had already run and stay applied: "
                              "MySQL commits DDL as it runs)",
                              e.what(), done, step.statements.size()),
                  "restore the backup taken before this run (`safemig restore`), or undo those "
                  "statements by hand, then run again");
    }
    try {
      WriteHistory(step, std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started));
    } catch (const Error& e) {
      if (step.statements.empty()) throw;
      throw Error(Category::kNeedsPerson,
                  fmt::format("{}: all {} statements ran, but recording them in "
                              "safemig_migrations failed: {}",
                              step.source, step.statements.size(), e.what()),
                  "check `safemig status`; the history row must be fixed by hand");
    }
  }

  void SetTimeouts(std::chrono::milliseconds lock_wait,
                   std::optional<std::chrono::milliseconds> statement) override {
    lock_timeout_ = lock_wait;
    statement_timeout_ = statement;
  }

  void SetNotifier(std::function<void(const std::string&)> notifier) override {
    notifier_ = std::move(notifier);
  }

  std::int64_t InsertJournal(const JournalEntry& e) override {
    return GuardMySql("write the journal", [&] {
      std::unique_ptr<sql::PreparedStatement> ps(session_->connection().prepareStatement(
          fmt::format("INSERT INTO safemig_journal ({}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      kJournalColumns)));
      BindJournal(*ps, e);
      ps->executeUpdate();
      return std::stoll(Str(session_->Value("SELECT LAST_INSERT_ID()")));
    });
  }

  void UpdateJournal(const JournalEntry& e) override {
    GuardMySql("update the journal", [&] {
      std::unique_ptr<sql::PreparedStatement> ps(session_->connection().prepareStatement(
          "UPDATE safemig_journal SET kind=?, environment=?, deploy_id=?, started_at=?, "
          "finished_at=?, outcome=?, plan_hash=?, from_version=?, to_version=?, backup_id=?, "
          "fingerprint_before=?, fingerprint_after=?, details=? WHERE id=?"));
      BindJournal(*ps, e);
      ps->setInt64(14, e.id);
      ps->executeUpdate();
    });
  }

  std::vector<JournalEntry> ReadJournal(int limit) override {
    std::vector<JournalEntry> entries;
    if (!TableExists("safemig_journal")) return entries;
    GuardMySql("read the journal", [&] {
      for (const MySqlRow& r : session_->Query(fmt::format(
               "SELECT id, {} FROM safemig_journal ORDER BY id DESC LIMIT {}", kJournalColumns,
               std::max(0, limit)))) {
        JournalEntry e;
        e.id = std::stoll(Str(r[0]));
        e.kind = Str(r[1]);
        e.environment = Str(r[2]);
        e.deploy_id = Str(r[3]);
        e.started_at = Str(r[4]);
        e.finished_at = Str(r[5]);
        e.outcome = Str(r[6]);
        e.plan_hash = Str(r[7]);
        e.from_version = Str(r[8]);
        e.to_version = Str(r[9]);
        e.backup_id = Str(r[10]);
        e.fingerprint_before = Str(r[11]);
        e.fingerprint_after = Str(r[12]);
        e.details = Str(r[13]);
        entries.push_back(std::move(e));
      }
    });
    return entries;
  }

  Fingerprint TakeFingerprint(bool include_metadata, FingerprintDepth depth,
                              const TableFilter& read_in_full) override {
    MySqlSession session(url_);
    GuardMySql("fingerprint the database", [&] {
      session.Exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
      session.Exec("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
    });
    return FingerprintMySql(session, url_.database, include_metadata, depth, read_in_full);
  }

  Fingerprint Dump(ArchiveWriter& archive, const ArchiveReader::Progress& progress) override {
    return DumpMySql(url_, archive, jobs_, progress, notifier_);
  }

 private:
  std::string LockName() const {
    // GET_LOCK names are server-wide and at most 64 characters.
    return "safemig:" + Sha256Hex("safemig-migration-lock:" + url_.database).substr(0, 40);
  }

  void RecordHolder(const std::string& name, const std::string& holder) {
    try {
      session_->Exec(kCreateLockTable);
      std::unique_ptr<sql::PreparedStatement> ps(session_->connection().prepareStatement(
          "REPLACE INTO safemig_lock (lock_name, connection_id, holder, since) VALUES "
          "(?, CONNECTION_ID(), ?, ?)"));
      ps->setString(1, name);
      ps->setString(2, RedactSecrets(holder));
      ps->setString(3, NowIso8601());
      ps->executeUpdate();
    } catch (const sql::SQLException& e) {
      // The lock is held all the same; only the description for others is poorer.
      if (notifier_) {
        notifier_("could not record the lock holder in safemig_lock: " + DescribeMySqlError(e));
      }
    }
  }

  std::string DescribeHolder(const std::string& name) {
    std::string text = "another connection (it has gone by now)";
    try {
      const std::optional<std::string> id =
          session_->Value("SELECT IS_USED_LOCK(" + QuoteMySqlLiteral(name) + ")");
      if (!id) return text;
      text = "connection " + *id;
      std::vector<MySqlRow> who = session_->Query(
          "SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = " + *id);
      if (!who.empty()) text += fmt::format(" ({}@{})", Str(who[0][0]), Str(who[0][1]));
      std::vector<MySqlRow> row = session_->Query(
          "SELECT holder, since FROM safemig_lock WHERE lock_name = " + QuoteMySqlLiteral(name) +
          " AND connection_id = " + *id);
      if (!row.empty()) {
        text += fmt::format(", {}, holding it since {}", Str(row[0][0]), Str(row[0][1]));
      }
    } catch (const sql::SQLException&) {
      // What we found so far is the best description there is.
    }
    return text;
  }

  bool TableExists(const std::string& name) {
    return GuardMySql("read the catalog", [&] {
      return !session_
                  ->Query("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                          "DATABASE() AND TABLE_NAME = " +
                          QuoteMySqlLiteral(name))
                  .empty();
    });
  }

  void SetLimits(const ApplyStep& step) {
    GuardMySql("set the session limits", [&] {
      // lock_wait_timeout counts whole seconds; 0 would mean "fail at once".
      const long long seconds =
          std::max<long long>(1, (lock_timeout_.count() + 999) / 1000);
      session_->Exec(fmt::format("SET SESSION lock_wait_timeout = {}", seconds));
      session_->Exec(fmt::format("SET SESSION innodb_lock_wait_timeout = {}", seconds));
      auto limit = step.statement_timeout ? step.statement_timeout : statement_timeout_;
      SetStatementLimit(limit.value_or(std::chrono::milliseconds(0)));
    });
  }

  // MariaDB counts max_statement_time in seconds (fractions allowed) for every statement;
  // MySQL's max_execution_time is milliseconds and applies to SELECT only.
  void SetStatementLimit(std::chrono::milliseconds limit) {
    if (session_->is_mariadb()) {
      session_->Exec(fmt::format("SET SESSION max_statement_time = {:.3f}",
                                 static_cast<double>(limit.count()) / 1000.0));
    } else {
      session_->Exec(fmt::format("SET SESSION max_execution_time = {}", limit.count()));
    }
  }

  void ClearStatementLimit() {
    try {
      SetStatementLimit(std::chrono::milliseconds(0));
    } catch (const sql::SQLException&) {
      // The session is gone; the next use reports it.
    }
  }

  void RunStatement(const ApplyStep& step, const Statement& statement) {
    const int line = step.first_line + statement.line - 1;
    try {
      session_->Exec(statement.text);
    } catch (const sql::SQLException& e) {
      const int code = e.getErrorCode();
      if (IsConnectionLost(e)) {
        throw Error(Category::kNeedsPerson,
                    fmt::format("{}:{}: lost the connection while the statement ran: {}",
                                step.source, line, DescribeMySqlError(e)),
                    "check `safemig status` against the database before running again");
      }
      if (code == kErStatementTimeout || code == kErQueryTimeout ||
          (code == kErQueryInterrupted && (step.statement_timeout || statement_timeout_))) {
        throw Error(Category::kMigrationFailed,
                    fmt::format("{}:{}: statement cancelled by the statement time limit: {}",
                                step.source, line, DescribeMySqlError(e)),
                    "raise the limit with -- safemig:timeout=... if the statement is meant to "
                    "run that long");
      }
      if (code == kErLockWaitTimeout) {
        throw Error(Category::kMigrationFailed,
                    fmt::format("{}:{}: gave up waiting for a lock after {}: {}", step.source,
                                line, FormatDuration(lock_timeout_), DescribeMySqlError(e)),
                    "another session holds a lock on that table; run again when it is done, or "
                    "raise lock_timeout");
      }
      throw Error(Category::kMigrationFailed,
                  fmt::format("{}:{}: {}", step.source, line, DescribeMySqlError(e)),
                  "fix the statement, then run again");
    }
  }

  void WriteHistory(const ApplyStep& step, std::chrono::milliseconds elapsed) {
    const HistoryRow& row = step.row;
    GuardMySql("record " + step.source + " in safemig_migrations", [&] {
      if (step.direction == Direction::kDown) {
        std::unique_ptr<sql::PreparedStatement> ps(session_->connection().prepareStatement(
            "DELETE FROM safemig_migrations WHERE version = ?"));
        ps->setString(1, row.version);
        if (ps->executeUpdate() != 1) {
          throw Error(Category::kMigrationFailed,
                      fmt::format("history row of version {} vanished during the down",
                                  row.version),
                      "another tool changed safemig_migrations; run `safemig status` and check");
        }
        return;
      }
      std::unique_ptr<sql::PreparedStatement> ps(session_->connection().prepareStatement(
          "INSERT INTO safemig_migrations (version, name, checksum, up_path, down_sql, "
          "down_checksum, no_transaction, irreversible, applied_at, applied_by, duration_ms, "
          "deploy_id, backup_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"));
      ps->setString(1, row.version);
      ps->setString(2, row.name);
      ps->setString(3, row.checksum);
      ps->setString(4, row.up_path);
      ps->setString(5, row.down_sql);
      ps->setString(6, row.down_checksum);
      ps->setBoolean(7, row.no_transaction);
      ps->setBoolean(8, row.irreversible);
      ps->setString(9, row.applied_at);
      ps->setString(10, row.applied_by);
      ps->setInt64(11, static_cast<std::int64_t>(elapsed.count()));
      ps->setString(12, row.deploy_id);
      ps->setString(13, row.backup_id);
      ps->executeUpdate();
    });
  }

  DatabaseUrl url_;
  std::shared_ptr<MySqlSession> session_;
  std::chrono::milliseconds lock_timeout_{std::chrono::seconds(10)};
  std::optional<std::chrono::milliseconds> statement_timeout_;
  std::function<void(const std::string&)> notifier_;
  int jobs_ = 1;
};

class MySqlScratch : public ScratchDatabase {
 public:
  explicit MySqlScratch(const DatabaseUrl& like) : server_(like) {
    MySqlSession admin(server_, std::string());
    GuardMySql("drop scratch databases of finished runs", [&] {
      // Databases of killed runs on this host go first.
      for (const MySqlRow& r : admin.Query(
               "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE "
               "'safemig\\_scratch\\_%'")) {
        if (ScratchOwnerIsGone(Str(r[0]))) {
          admin.Exec("DROP DATABASE IF EXISTS " + QuoteMySqlIdentifier(Str(r[0])));
        }
      }
    });
    std::random_device random;
    url_ = like;
    url_.database = fmt::format("{}{:08x}", ScratchPrefix(), random());
    try {
      admin.Exec("CREATE DATABASE " + QuoteMySqlIdentifier(url_.database) +
                 " CHARACTER SET utf8mb4");
    } catch (const sql::SQLException& e) {
      throw Error(Category::kConnection,
                  fmt::format("cannot create a scratch database on {}: {}", like.Redacted(),
                              DescribeMySqlError(e)),
                  "the account needs the CREATE and DROP privileges on safemig\\_scratch\\_%, or "
                  "set rehearsal_url to a server where it has them");
    }
  }
  ~MySqlScratch() override {
    try {
      MySqlSession admin(server_, std::string());
      admin.Exec("DROP DATABASE IF EXISTS " + QuoteMySqlIdentifier(url_.database));
    } catch (...) {
      // Left for the next CreateScratchDatabase on this host, which drops it.
    }
  }

 private:
  DatabaseUrl server_;
};

}  // namespace

std::unique_ptr<ScratchDatabase> CreateMySqlScratch(const DatabaseUrl& like) {
  return std::make_unique<MySqlScratch>(like);
}

std::unique_ptr<Driver> OpenMySqlDriver(const DatabaseUrl& url, const OpenOptions& options) {
  // A server database is never created implicitly: create_if_missing is for SQLite files.
  if (url.database.empty()) {
    throw Error(Category::kConfig, "the MySQL URL names no database",
                "write mysql://user@host/database");
  }
  return std::make_unique<MySqlDriver>(url, options);
}

}  // namespace safemig
