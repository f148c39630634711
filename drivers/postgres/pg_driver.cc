#include "drivers/postgres/pg_driver.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/sha256.h"
#include "drivers/postgres/pg_connection.h"
#include "drivers/postgres/pg_dump.h"
#include "drivers/postgres/pg_fingerprint.h"

namespace safemig {
namespace {

constexpr const char* kCreateMigrations = R"sql(
CREATE TABLE IF NOT EXISTS safemig_migrations (
  version        text    NOT NULL PRIMARY KEY,
  name           text    NOT NULL,
  checksum       text    NOT NULL,
  up_path        text    NOT NULL,
  down_sql       text    NOT NULL,
  down_checksum  text    NOT NULL,
  no_transaction boolean NOT NULL DEFAULT false,
  irreversible   boolean NOT NULL DEFAULT false,
  applied_at     text    NOT NULL,
  applied_by     text    NOT NULL,
  duration_ms    bigint  NOT NULL,
  deploy_id      text    NOT NULL,
  backup_id      text    NOT NULL DEFAULT ''
))sql";

constexpr const char* kCreateJournal = R"sql(
CREATE TABLE IF NOT EXISTS safemig_journal (
  id                 bigserial PRIMARY KEY,
  kind               text NOT NULL,
  environment        text NOT NULL,
  deploy_id          text NOT NULL DEFAULT '',
  started_at         text NOT NULL,
  finished_at        text NOT NULL DEFAULT '',
  outcome            text NOT NULL,
  plan_hash          text NOT NULL DEFAULT '',
  from_version       text NOT NULL DEFAULT '',
  to_version         text NOT NULL DEFAULT '',
  backup_id          text NOT NULL DEFAULT '',
  fingerprint_before text NOT NULL DEFAULT '',
  fingerprint_after  text NOT NULL DEFAULT '',
  details            text NOT NULL DEFAULT '{}'
))sql";

constexpr int kLockRetries = 3;

// The server's message without libpq's "ERROR:  " severity prefix, first line only.
std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  for (const char* prefix : {"ERROR:", "FATAL:"}) {
    if (line.rfind(prefix, 0) == 0) {
      line.erase(0, std::string(prefix).size());
      line.erase(0, line.find_first_not_of(' '));
    }
  }
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line;
}

// pqxx errors as safemig errors; the server's message is one line plus SQLSTATE.
Error Translate(const std::exception& e, const std::string& what) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return Error(Category::kConnection,
                 fmt::format("lost the connection to PostgreSQL while trying to {}: {}", what,
                             RedactSecrets(FirstLine(e.what()))),
                 "check the server; `safemig status` shows what was recorded");
  }
  std::string state;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) state = sql->sqlstate();
  return Error(Category::kMigrationFailed,
               fmt::format("could not {}: {}{}", what, RedactSecrets(FirstLine(e.what())),
                           state.empty() ? "" : " (SQLSTATE " + state + ")"));
}

std::string Milliseconds(std::chrono::milliseconds value) {
  return std::to_string(value.count()) + "ms";
}

// Shares the session with the driver, so it stays valid if the driver goes first (an
// in-place restore closes the driver while the lock object is still in scope).
class AdvisoryLock : public MigrationLock {
 public:
  AdvisoryLock(std::shared_ptr<pqxx::connection> conn, std::int64_t key)
      : conn_(std::move(conn)), key_(key) {}
  ~AdvisoryLock() override {
    try {
      pqxx::nontransaction tx(*conn_);
      tx.exec_params("SELECT pg_advisory_unlock($1)", key_);
    } catch (...) {
      // The server releases it anyway when the session ends.
    }
  }

 private:
  std::shared_ptr<pqxx::connection> conn_;
  std::int64_t key_;
};

class PostgresDriver : public Driver {
 public:
  PostgresDriver(const DatabaseUrl& url, const OpenOptions& options) : url_(url) {
    try {
      conn_ = std::make_shared<pqxx::connection>(PostgresConninfo(url_));
    } catch (const std::exception& e) {
      throw Error(Category::kConnection,
                  fmt::format("cannot connect to {}: {}", url_.Redacted(),
                              RedactSecrets(FirstLine(e.what()))),
                  "check host, port, database, user and password (URL, PGPASSWORD or "
                  "~/.pgpass)");
    }
    lock_key_ = LockKey();
    jobs_ = options.jobs > 0 ? options.jobs
                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }

  Engine engine() const override { return Engine::kPostgres; }
  Dialect dialect() const override { return Dialect::kPostgres; }
  Capabilities capabilities() const override { return Capabilities{true, true}; }
  std::string Describe() const override { return url_.Redacted(); }
  std::string ServerVersion() override {
    return "PostgreSQL " + Query1("SHOW server_version", "read the server version");
  }

  std::unique_ptr<MigrationLock> Lock(std::chrono::milliseconds timeout,
                                      const std::string& holder) override {
    (void)holder;  // the server knows us by pid and application_name
    const std::int64_t key = LockKey();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      bool taken = false;
      Guard("take the migration lock", [&] {
        pqxx::nontransaction tx(*conn_);
        taken = tx.exec_params1("SELECT pg_try_advisory_lock($1)", key)[0].as<bool>();
      });
      if (taken) return std::make_unique<AdvisoryLock>(conn_, key);
      if (std::chrono::steady_clock::now() >= deadline) {
        throw Error(Category::kLockHeld,
                    fmt::format("migration lock on {} is held by {}; gave up after {}",
                                Describe(), DescribeHolder(key), FormatDuration(timeout)),
                    "wait for that run to finish, or raise lock_timeout; the server releases "
                    "the lock when the holder's session ends");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void EnsureMetadata() override {
    Guard("create the safemig tables", [&] {
      pqxx::work tx(*conn_);
      // Two first runs at once would race on CREATE TABLE IF NOT EXISTS.
      tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(LockKey() ^ 1) + ")");
      tx.exec(kCreateMigrations);
      tx.exec(kCreateJournal);
      tx.commit();
    });
  }

  QueryResult QueryText(const std::string& sql) override {
    QueryResult result;
    Guard("read a table of another tool", [&] {
      pqxx::nontransaction tx(*conn_);
      pqxx::result rows = tx.exec(sql);
      for (pqxx::row::size_type i = 0; i < rows.columns(); ++i) {
        result.columns.emplace_back(rows.column_name(i));
      }
      for (const auto& r : rows) {
        std::vector<std::optional<std::string>> row;
        for (const auto& field : r) {
          row.emplace_back(field.is_null() ? std::nullopt
                                           : std::optional<std::string>(field.c_str()));
        }
        result.rows.push_back(std::move(row));
      }
    });
    return result;
  }

  bool HasTable(const std::string& name) override { return TableExists(name); }

  std::optional<std::int64_t> WriteCount() override {
    std::optional<std::int64_t> count;
    Guard("read pg_stat_user_tables", [&] {
      pqxx::nontransaction tx(*conn_);
      // Our own tables are excluded: the count is about what the application wrote.
      count = tx.exec1("SELECT COALESCE(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint "
                       "FROM pg_stat_user_tables WHERE relname NOT LIKE 'safemig\\_%'")[0]
                  .as<std::int64_t>();
    });
    return count;
  }

  std::vector<HistoryRow> ReadHistory() override {
    std::vector<HistoryRow> rows;
    if (!TableExists("safemig_migrations")) return rows;
    Guard("read safemig_migrations", [&] {
      pqxx::nontransaction tx(*conn_);
      for (const auto& r : tx.exec(
               "SELECT version, name, checksum, up_path, down_sql, down_checksum, "
               "no_transaction, irreversible, applied_at, applied_by, duration_ms, deploy_id, "
               "backup_id FROM safemig_migrations")) {
        HistoryRow row;
        row.version = r[0].as<std::string>();
        row.name = r[1].as<std::string>();
        row.checksum = r[2].as<std::string>();
        row.up_path = r[3].as<std::string>();
        row.down_sql = r[4].as<std::string>();
        row.down_checksum = r[5].as<std::string>();
        row.no_transaction = r[6].as<bool>();
        row.irreversible = r[7].as<bool>();
        row.applied_at = r[8].as<std::string>();
        row.applied_by = r[9].as<std::string>();
        row.duration_ms = r[10].as<std::int64_t>();
        row.deploy_id = r[11].as<std::string>();
        row.backup_id = r[12].as<std::string>();
        rows.push_back(std::move(row));
      }
    });
    return rows;
  }

  void Apply(const ApplyStep& step) override {
    for (int attempt = 1;; ++attempt) {
      try {
        if (step.in_transaction) {
          ApplyInTransaction(step);
        } else {
          ApplyWithoutTransaction(step);
        }
        return;
      } catch (const LockTimeout& timeout) {
        if (attempt > kLockRetries) throw timeout.error;
        auto wait = std::chrono::seconds(1 << (attempt - 1));
        if (notifier_) {
          notifier_(fmt::format("{} (try {} of {}); retrying in {} s", timeout.error.what(),
                                attempt, kLockRetries + 1, wait.count()));
        }
        std::this_thread::sleep_for(wait);
      }
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
    std::int64_t id = 0;
    Guard("write the journal", [&] {
      pqxx::work tx(*conn_);
      id = tx.exec_params1(
                 "INSERT INTO safemig_journal (kind, environment, deploy_id, started_at, "
                 "finished_at, outcome, plan_hash, from_version, to_version, backup_id, "
                 "fingerprint_before, fingerprint_after, details) "
                 "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) RETURNING id",
                 e.kind, e.environment, e.deploy_id, e.started_at, e.finished_at, e.outcome,
                 e.plan_hash, e.from_version, e.to_version, e.backup_id, e.fingerprint_before,
                 e.fingerprint_after, e.details)[0]
               .as<std::int64_t>();
      tx.commit();
    });
    return id;
  }

  void UpdateJournal(const JournalEntry& e) override {
    Guard("update the journal", [&] {
      pqxx::work tx(*conn_);
      tx.exec_params(
          "UPDATE safemig_journal SET kind=$1, environment=$2, deploy_id=$3, started_at=$4, "
          "finished_at=$5, outcome=$6, plan_hash=$7, from_version=$8, to_version=$9, "
          "backup_id=$10, fingerprint_before=$11, fingerprint_after=$12, details=$13 "
          "WHERE id=$14",
          e.kind, e.environment, e.deploy_id, e.started_at, e.finished_at, e.outcome,
          e.plan_hash, e.from_version, e.to_version, e.backup_id, e.fingerprint_before,
          e.fingerprint_after, e.details, e.id);
      tx.commit();
    });
  }

  std::vector<JournalEntry> ReadJournal(int limit) override {
    std::vector<JournalEntry> entries;
    if (!TableExists("safemig_journal")) return entries;
    Guard("read the journal", [&] {
      pqxx::nontransaction tx(*conn_);
      for (const auto& r : tx.exec_params(
               "SELECT id, kind, environment, deploy_id, started_at, finished_at, outcome, "
               "plan_hash, from_version, to_version, backup_id, fingerprint_before, "
               "fingerprint_after, details FROM safemig_journal ORDER BY id DESC LIMIT $1",
               limit)) {
        JournalEntry e;
        e.id = r[0].as<std::int64_t>();
        e.kind = r[1].as<std::string>();
        e.environment = r[2].as<std::string>();
        e.deploy_id = r[3].as<std::string>();
        e.started_at = r[4].as<std::string>();
        e.finished_at = r[5].as<std::string>();
        e.outcome = r[6].as<std::string>();
        e.plan_hash = r[7].as<std::string>();
        e.from_version = r[8].as<std::string>();
        e.to_version = r[9].as<std::string>();
        e.backup_id = r[10].as<std::string>();
        e.fingerprint_before = r[11].as<std::string>();
        e.fingerprint_after = r[12].as<std::string>();
        e.details = r[13].as<std::string>();
        entries.push_back(std::move(e));
      }
    });
    return entries;
  }

  Fingerprint TakeFingerprint(bool include_metadata, FingerprintDepth depth,
                              const TableFilter& read_in_full) override {
    Fingerprint fingerprint;
    Guard("fingerprint the database", [&] {
      pqxx::work tx(*conn_);
      tx.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
      fingerprint = FingerprintPostgres(tx, include_metadata, depth, read_in_full);
    });
    return fingerprint;
  }

  Fingerprint Dump(ArchiveWriter& archive, const ArchiveReader::Progress& progress) override {
    return DumpPostgres(url_, archive, jobs_, progress);
  }

 private:
  // Thrown inside Apply when a statement hit lock_timeout, so the whole migration can be
  // retried from a clean transaction.
  struct LockTimeout {
    Error error;
  };

  template <typename Fn>
  void Guard(const std::string& what, Fn&& fn) {
    try {
      fn();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Translate(e, what);
    }
  }

  std::string Query1(const std::string& sql, const std::string& what) {
    std::string value;
    Guard(what, [&] {
      pqxx::nontransaction tx(*conn_);
      value = tx.exec1(sql)[0].as<std::string>();
    });
    return value;
  }

  bool TableExists(const std::string& name) {
    bool exists = false;
    Guard("read the catalog", [&] {
      pqxx::nontransaction tx(*conn_);
      exists = !tx.exec_params1("SELECT to_regclass($1) IS NULL", name)[0].as<bool>();
    });
    return exists;
  }

  // A stable 64-bit key per database, so runners of different databases on one server
  // never wait for each other.
  std::int64_t LockKey() {
    if (!lock_key_) {
      std::string digest = Sha256Hex(
          "safemig-migration-lock:" +
          Query1("SELECT current_database()", "read the database name"));
      lock_key_ = static_cast<std::int64_t>(std::stoull(digest.substr(0, 15), nullptr, 16));
    }
    return *lock_key_;
  }

  std::string DescribeHolder(std::int64_t key) {
    const auto classid = static_cast<std::uint32_t>(static_cast<std::uint64_t>(key) >> 32);
    const auto objid = static_cast<std::uint32_t>(static_cast<std::uint64_t>(key) & 0xffffffffu);
    std::string text = "another session (it has gone by now)";
    Guard("describe the lock holder", [&] {
      pqxx::nontransaction tx(*conn_);
      auto rows = tx.exec_params(
          "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename, ''), "
          "coalesce(host(a.client_addr), 'local socket'), "
          "to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
          "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
          "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid "
          "AND l.objid = $2::bigint::oid AND l.objsubid = 1 AND l.database = "
          "(SELECT oid FROM pg_database WHERE datname = current_database())",
          static_cast<std::int64_t>(classid), static_cast<std::int64_t>(objid));
      if (!rows.empty()) {
        const auto& r = rows[0];
        text = fmt::format("pid {} ({} as {} from {}) connected since {}", r[0].as<std::string>(),
                           r[1].as<std::string>().empty() ? "no application_name"
                                                          : r[1].as<std::string>(),
                           r[2].as<std::string>(), r[3].as<std::string>(),
                           r[4].as<std::string>());
      }
    });
    return text;
  }

  std::optional<std::chrono::milliseconds> StatementLimit(const ApplyStep& step) const {
    return step.statement_timeout ? step.statement_timeout : statement_timeout_;
  }

  template <typename Tx>
  void SetLimits(Tx& tx, const ApplyStep& step, bool local) {
    const char* scope = local ? "SET LOCAL " : "SET ";
    tx.exec(std::string(scope) + "lock_timeout = '" + Milliseconds(lock_timeout_) + "'");
    auto limit = StatementLimit(step);
    tx.exec(std::string(scope) + "statement_timeout = '" +
            (limit ? Milliseconds(*limit) : std::string("0")) + "'");
  }

  // Runs one statement; failures name source:line and the server's message.
  template <typename Tx>
  void RunStatement(Tx& tx, const ApplyStep& step, const Statement& statement) {
    try {
      tx.exec(statement.text);
    } catch (const pqxx::sql_error& e) {
      const int line = step.first_line + statement.line - 1;
      Error error(Category::kMigrationFailed,
                  fmt::format("{}:{}: {} (SQLSTATE {})", step.source, line,
                              RedactSecrets(FirstLine(e.what())), e.sqlstate()),
                  "fix the statement, then run again; the database was left as it was");
      if (e.sqlstate() == "55P03") throw LockTimeout{error};
      if (e.sqlstate() == "57014") {
        throw Error(Category::kMigrationFailed,
                    fmt::format("{}:{}: statement cancelled by statement_timeout", step.source,
                                line),
                    "raise the limit with -- safemig:timeout=... if the statement is meant to "
                    "run that long");
      }
      throw error;
    } catch (const pqxx::broken_connection& e) {
      throw Error(Category::kNeedsPerson,
                  fmt::format("{}:{}: lost the connection while the statement ran: {}",
                              step.source, step.first_line + statement.line - 1,
                              RedactSecrets(FirstLine(e.what()))),
                  "check `safemig status` against the database before running again");
    }
  }

  void WriteHistory(pqxx::transaction_base& tx, const ApplyStep& step,
                    std::chrono::milliseconds elapsed) {
    const HistoryRow& row = step.row;
    if (step.direction == Direction::kDown) {
      auto result = tx.exec_params("DELETE FROM safemig_migrations WHERE version = $1",
                                   row.version);
      if (result.affected_rows() != 1) {
        throw Error(Category::kMigrationFailed,
                    fmt::format("history row of version {} vanished during the down", row.version),
                    "another tool changed safemig_migrations; run `safemig status` and check");
      }
      return;
    }
    tx.exec_params(
        "INSERT INTO safemig_migrations (version, name, checksum, up_path, down_sql, "
        "down_checksum, no_transaction, irreversible, applied_at, applied_by, duration_ms, "
        "deploy_id, backup_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
        row.version, row.name, row.checksum, row.up_path, row.down_sql, row.down_checksum,
        row.no_transaction, row.irreversible, row.applied_at, row.applied_by,
        static_cast<std::int64_t>(elapsed.count()), row.deploy_id, row.backup_id);
  }

  void ApplyInTransaction(const ApplyStep& step) {
    const auto started = std::chrono::steady_clock::now();
    try {
      pqxx::work tx(*conn_);
      SetLimits(tx, step, /*local=*/true);
      for (const Statement& statement : step.statements) RunStatement(tx, step, statement);
      WriteHistory(tx, step,
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - started));
      tx.commit();
    } catch (const Error&) {
      throw;
    } catch (const LockTimeout&) {
      throw;
    } catch (const std::exception& e) {
      throw Translate(e, "apply " + step.source);
    }
  }

  void ApplyWithoutTransaction(const ApplyStep& step) {
    const auto started = std::chrono::steady_clock::now();
    size_t done = 0;
    try {
      {
        pqxx::nontransaction limits(*conn_);
        SetLimits(limits, step, /*local=*/false);
      }
      for (const Statement& statement : step.statements) {
        // The hook writes the journal on this same connection, which libpqxx allows only
        // while no transaction object is open on it: one per statement.
        if (step.before_statement) step.before_statement(done);
        pqxx::nontransaction tx(*conn_);
        RunStatement(tx, step, statement);
        ++done;
      }
    } catch (const LockTimeout& timeout) {
      if (done == 0) throw;
      throw NoTransactionFailure(timeout.error, done, step);
    } catch (const Error& e) {
      if (done == 0) throw;
      throw NoTransactionFailure(e, done, step);
    }
    Guard("record " + step.source, [&] {
      pqxx::work tx(*conn_);
      WriteHistory(tx, step,
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - started));
      tx.commit();
    });
  }

  static Error NoTransactionFailure(const Error& e, size_t done, const ApplyStep& step) {
    // Statements that ran cannot be taken back: the state is no longer the one before.
    return Error(Category::kNeedsPerson,
                 fmt::format("{} (no-transaction migration: statements 1-{} of {} had already "
                             "run and stay applied)",
                             e.what(), done, step.statements.size()),
                 "inspect the database, undo those statements by hand or restore the backup "
                 "taken before this run, then run again");
  }

  DatabaseUrl url_;
  std::shared_ptr<pqxx::connection> conn_;
  std::optional<std::int64_t> lock_key_;
  std::chrono::milliseconds lock_timeout_{std::chrono::seconds(10)};
  std::optional<std::chrono::milliseconds> statement_timeout_;
  std::function<void(const std::string&)> notifier_;
  int jobs_ = 1;
};

}  // namespace

namespace {

class PostgresScratch : public ScratchDatabase {
 public:
  explicit PostgresScratch(const DatabaseUrl& like) : server_(like) {
    PgConn admin = ConnectLibpq(server_);
    // Databases of killed runs on this host go first.
    PgResult rows = ExecLibpq(admin.get(),
                              "SELECT datname FROM pg_database WHERE datname LIKE "
                              "'safemig\\_scratch\\_%'");
    for (int i = 0; i < PQntuples(rows.get()); ++i) {
      std::string name = PQgetvalue(rows.get(), i, 0);
      if (ScratchOwnerIsGone(name)) {
        ExecLibpq(admin.get(), "DROP DATABASE IF EXISTS " + QuotePgIdentifier(name) +
                                   " WITH (FORCE)");
      }
    }
    std::random_device random;
    url_ = like;
    url_.database = fmt::format("{}{:08x}", ScratchPrefix(), random());
    try {
      ExecLibpq(admin.get(), "CREATE DATABASE " + QuotePgIdentifier(url_.database));
    } catch (const Error& e) {
      throw Error(Category::kConnection,
                  fmt::format("cannot create a scratch database on {}: {}", like.Redacted(),
                              e.what()),
                  "the role needs CREATEDB, or set rehearsal_url to a server where it has it");
    }
  }
  ~PostgresScratch() override {
    try {
      PgConn admin = ConnectLibpq(server_);
      ExecLibpq(admin.get(), "DROP DATABASE IF EXISTS " + QuotePgIdentifier(url_.database) +
                                 " WITH (FORCE)");
    } catch (...) {
      // Left for the next CreateScratchDatabase on this host, which drops it.
    }
  }

 private:
  DatabaseUrl server_;
};

}  // namespace

std::unique_ptr<ScratchDatabase> CreatePostgresScratch(const DatabaseUrl& like) {
  return std::make_unique<PostgresScratch>(like);
}

std::unique_ptr<Driver> OpenPostgresDriver(const DatabaseUrl& url, const OpenOptions& options) {
  // A server database is never created implicitly: create_if_missing is for SQLite files.
  return std::make_unique<PostgresDriver>(url, options);
}

}  // namespace safemig
