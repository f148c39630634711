// The shared conformance suite: every driver must behave the same way for every verb the
// engine relies on. SQLite runs everywhere; PostgreSQL and MariaDB need the servers
// scripts/test starts. Where an engine commits DDL as it runs (MySQL), the tests that expect
// a failed migration to leave nothing behind expect instead what the engine must be told:
// how far it got (the engine then restores its backup).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "backup/store.h"
#include "core/error.h"
#include "core/sha256.h"
#include "core/sql_split.h"
#include "engine/backups.h"
#include "engine/migrator.h"
#include "server_env.h"
#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::TempDir;

// One empty database of one engine, removed afterwards.
class TestDatabase {
 public:
  virtual ~TestDatabase() = default;
  virtual DatabaseUrl url() const = 0;
  // SQL that keeps a statement busy for about `seconds`.
  virtual std::string SlowStatement() const = 0;
};

class SqliteDatabase : public TestDatabase {
 public:
  DatabaseUrl url() const override {
    DatabaseUrl url;
    url.engine = Engine::kSqlite;
    url.scheme = "sqlite";
    url.path = (dir_ / "conformance.db").string();
    return url;
  }
  std::string SlowStatement() const override {
    return "CREATE TABLE slow AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
           "WHERE i < 200000000) SELECT i FROM n";
  }

 private:
  TempDir dir_;
};

class PostgresDatabase : public TestDatabase {
 public:
  explicit PostgresDatabase(const DatabaseUrl& server) : db_(server) {}
  DatabaseUrl url() const override { return db_.url(); }
  std::string SlowStatement() const override { return "SELECT pg_sleep(5)"; }

 private:
  testing::ScratchPostgresDatabase db_;
};

class MySqlDatabase : public TestDatabase {
 public:
  explicit MySqlDatabase(const DatabaseUrl& server) : db_(server) {}
  DatabaseUrl url() const override { return db_.url(); }
  std::string SlowStatement() const override { return "SELECT SLEEP(5) FROM DUAL"; }

 private:
  testing::ScratchMySqlDatabase db_;
};

class DriverConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      db_ = std::make_unique<SqliteDatabase>();
    } else if (GetParam() == "mysql") {
      SAFEMIG_REQUIRE_MYSQL(server);
      db_ = std::make_unique<MySqlDatabase>(server);
    } else {
      SAFEMIG_REQUIRE_POSTGRES(server);
      db_ = std::make_unique<PostgresDatabase>(server);
    }
    driver_ = Open();
    driver_->EnsureMetadata();
  }

  std::unique_ptr<Driver> Open() const { return OpenDriver(db_->url(), OpenOptions{true, 2}); }

  ApplyStep Step(const std::string& version, const std::string& sql,
                 Direction direction = Direction::kUp) const {
    ApplyStep step;
    step.direction = direction;
    step.source = version + "_conformance." + (direction == Direction::kUp ? "up" : "down") +
                  ".sql";
    step.statements = SplitStatements(sql, driver_->dialect());
    step.row.version = version;
    step.row.name = "conformance";
    step.row.checksum = Sha256Hex(sql);
    step.row.up_path = step.source;
    step.row.down_sql = "DROP TABLE t" + version;
    step.row.down_checksum = Sha256Hex(step.row.down_sql);
    step.row.applied_at = "2026-01-01T00:00:00.000Z";
    step.row.applied_by = "tester@host";
    step.row.deploy_id = "run";
    return step;
  }

  std::string SchemaDigest() { return driver_->TakeFingerprint(false).SchemaDigest(); }
  bool TransactionalDdl() const { return driver_->capabilities().transactional_ddl; }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Driver> driver_;
};

TEST_P(DriverConformance, MetadataIsIdempotentAndHistoryStartsEmpty) {
  driver_->EnsureMetadata();
  EXPECT_TRUE(driver_->ReadHistory().empty());
  EXPECT_TRUE(driver_->ReadJournal(5).empty());
}

TEST_P(DriverConformance, AppliesStatementsWithTheirHistoryRow) {
  driver_->Apply(Step("1", "CREATE TABLE t1 (id INTEGER PRIMARY KEY, name TEXT);\n"
                           "INSERT INTO t1 VALUES (1, 'a');"));
  auto history = driver_->ReadHistory();
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].version, "1");
  EXPECT_EQ(history[0].down_sql, "DROP TABLE t1");
  EXPECT_EQ(driver_->TakeFingerprint(false).tables.size(), 1u);
}

TEST_P(DriverConformance, LesserFingerprintDepthsDescribeTheSameSchemaAndCountExactly) {
  driver_->Apply(Step("1",
                      "CREATE TABLE t1 (id INTEGER PRIMARY KEY, name TEXT);\n"
                      "CREATE TABLE t2 (id INTEGER PRIMARY KEY, t1_id INTEGER);\n"
                      "CREATE INDEX t2_t1 ON t2 (t1_id);\n"
                      "CREATE VIEW v1 AS SELECT id, name FROM t1;\n"
                      "INSERT INTO t1 VALUES (1, 'a'), (2, NULL), (3, 'c');\n"
                      "INSERT INTO t2 VALUES (1, 1);"));
  const Fingerprint full = driver_->TakeFingerprint(false);
  const Fingerprint schema = driver_->TakeFingerprint(false, FingerprintDepth::kSchema);
  const Fingerprint counts = driver_->TakeFingerprint(false, FingerprintDepth::kRowCounts);
  EXPECT_EQ(schema.SchemaDigest(), full.SchemaDigest());
  EXPECT_EQ(counts.SchemaDigest(), full.SchemaDigest());
  EXPECT_EQ(schema.objects, full.objects);
  EXPECT_TRUE(schema.tables.empty());

  // Keys differ by engine ("t1", "public.t1") but sort alike.
  ASSERT_EQ(full.tables.size(), 2u);
  const std::string t1 = full.tables.begin()->first;
  const std::string t2 = full.tables.rbegin()->first;
  EXPECT_EQ(full.tables.at(t1).rows, 3);
  EXPECT_EQ(full.tables.at(t2).rows, 1);
  EXPECT_EQ(testing::RowCountsDiffer(full, counts), "");

  // A table asked for in full is hashed as a full fingerprint hashes it; no other is read.
  const Fingerprint one = driver_->TakeFingerprint(
      false, FingerprintDepth::kSchema, [&t1](const std::string& key) { return key == t1; });
  EXPECT_EQ(one.SchemaDigest(), full.SchemaDigest());
  ASSERT_EQ(one.tables.size(), 1u);
  EXPECT_EQ(one.tables.at(t1).rows, 3);
  EXPECT_EQ(one.tables.at(t1).content_sha256, full.tables.at(t1).content_sha256);

  driver_->Apply(Step("2", "INSERT INTO t1 VALUES (4, 'd');\nDELETE FROM t2;"));
  const Fingerprint later = driver_->TakeFingerprint(false, FingerprintDepth::kRowCounts);
  EXPECT_EQ(later.tables.at(t1).rows, 4);
  EXPECT_EQ(later.tables.at(t2).rows, 0);
  EXPECT_EQ(later.SchemaDigest(), full.SchemaDigest());

  // With safemig's own tables too: the history holds the two steps.
  const Fingerprint with_metadata = driver_->TakeFingerprint(true, FingerprintDepth::kRowCounts);
  EXPECT_EQ(with_metadata.SchemaDigest(), driver_->TakeFingerprint(true).SchemaDigest());
  bool found_history = false;
  for (const auto& [key, data] : with_metadata.tables) {
    if (key.size() < 18 || key.compare(key.size() - 18, 18, "safemig_migrations") != 0) continue;
    found_history = true;
    EXPECT_EQ(data.rows, 2);
  }
  EXPECT_TRUE(found_history);
}

TEST_P(DriverConformance, FailureInTheMiddleLeavesSchemaAndHistoryAsTheyWere) {
  driver_->Apply(Step("1", "CREATE TABLE t1 (id INTEGER PRIMARY KEY);"));
  const std::string before = SchemaDigest();
  try {
    driver_->Apply(Step("2",
                        "CREATE TABLE t2 (id INTEGER);\n"
                        "CREATE INDEX t2_id ON t2 (id);\n"
                        "INSERT INTO missing_table VALUES (1);\n"));
    FAIL() << "expected the migration to fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2_conformance.up.sql:3"), std::string::npos) << e.what();
    if (TransactionalDdl()) {
      EXPECT_EQ(e.category(), Category::kMigrationFailed);
    } else {
      // The first two statements committed as they ran: the engine must restore.
      EXPECT_EQ(e.category(), Category::kNeedsPerson);
      EXPECT_NE(std::string(e.what()).find("statements 1-2 of 3 had already run"),
                std::string::npos)
          << e.what();
    }
  }
  if (TransactionalDdl()) {
    EXPECT_EQ(SchemaDigest(), before);
  }
  EXPECT_EQ(driver_->ReadHistory().size(), 1u);
}

TEST_P(DriverConformance, DownRemovesTheHistoryRowWithTheSchema) {
  driver_->Apply(Step("1", "CREATE TABLE t1 (id INTEGER);"));
  driver_->Apply(Step("1", "DROP TABLE t1;", Direction::kDown));
  EXPECT_TRUE(driver_->ReadHistory().empty());
  EXPECT_TRUE(driver_->TakeFingerprint(false).tables.empty());
}

TEST_P(DriverConformance, NoTransactionFailureAfterAStatementNeedsAPerson) {
  ApplyStep step = Step("1", "CREATE TABLE t1 (id INTEGER);\nCREATE TABLE t1 (id INTEGER);");
  step.in_transaction = false;
  try {
    driver_->Apply(step);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNeedsPerson);
    EXPECT_NE(std::string(e.what()).find("statements 1-1 of 2"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(driver_->ReadHistory().empty());
}

TEST_P(DriverConformance, SecondRunnerWaitsThenNamesTheHolder) {
  auto lock = driver_->Lock(std::chrono::seconds(2), "first-runner");
  auto second = Open();
  const auto started = std::chrono::steady_clock::now();
  try {
    second->Lock(std::chrono::milliseconds(400), "second-runner");
    FAIL() << "expected the lock to be held";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kLockHeld);
    EXPECT_NE(std::string(e.what()).find("held by"), std::string::npos) << e.what();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(400));
  lock.reset();
  EXPECT_NO_THROW(second->Lock(std::chrono::milliseconds(400), "second-runner"));
}

TEST_P(DriverConformance, LockOfAKilledRunnerIsFreed) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto holder = Open();
    auto lock = holder->Lock(std::chrono::seconds(2), "doomed-runner");
    char c = 'r';
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  EXPECT_THROW(driver_->Lock(std::chrono::milliseconds(200), "next"), Error);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_NO_THROW(driver_->Lock(std::chrono::seconds(5), "next"));
}

TEST_P(DriverConformance, StatementTimeoutCancelsALongStatement) {
  ApplyStep step = Step("1", db_->SlowStatement());
  step.statement_timeout = std::chrono::milliseconds(200);
  const auto started = std::chrono::steady_clock::now();
  try {
    driver_->Apply(step);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("statement"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(4));
  EXPECT_TRUE(driver_->ReadHistory().empty());
}

TEST_P(DriverConformance, JournalRoundTrips) {
  JournalEntry entry;
  entry.kind = "up";
  entry.environment = "ci";
  entry.started_at = "2026-01-01T00:00:00.000Z";
  entry.outcome = "running";
  entry.id = driver_->InsertJournal(entry);
  entry.outcome = "ok";
  entry.details = R"({"steps":[]})";
  driver_->UpdateJournal(entry);
  auto journal = driver_->ReadJournal(5);
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(journal[0].id, entry.id);
  EXPECT_EQ(journal[0].outcome, "ok");
  EXPECT_EQ(journal[0].details, R"({"steps":[]})");
}

TEST_P(DriverConformance, AllOrNothingWhenTheThirdOfFourFails) {
  auto file = [](const std::string& version, const std::string& up, const std::string& down) {
    Migration m;
    m.version = version;
    m.name = "m" + version;
    m.up_path = version + "_m.up.sql";
    m.down_path = version + "_m.down.sql";
    m.up_sql = up;
    m.down_sql = down;
    m.checksum = Sha256Hex(up);
    m.down_checksum = Sha256Hex(down);
    return m;
  };
  std::vector<Migration> files = {
      file("1", "CREATE TABLE a (id INTEGER);", "DROP TABLE a;"),
      file("2", "ALTER TABLE a ADD COLUMN name TEXT;", "ALTER TABLE a DROP COLUMN name;"),
      // Without transactional DDL a migration that fails after its first statement needs a
      // restore; one that fails on its first statement is undone by reverting the others.
      TransactionalDdl()
          ? file("3", "CREATE TABLE b (id INTEGER);\nINSERT INTO nope VALUES (1);", "DROP TABLE b;")
          : file("3", "INSERT INTO nope VALUES (1);\nCREATE TABLE b (id INTEGER);", "DROP TABLE b;"),
      file("4", "CREATE TABLE c (id INTEGER);", "DROP TABLE c;")};
  const std::string before = SchemaDigest();
  Reporter quiet;
  Migrator migrator(*driver_, quiet);
  RunOptions options;
  options.run_id = "run";
  EXPECT_THROW(migrator.Execute(PlanUp(ComputeStatus(files, driver_->ReadHistory()), {}, {}),
                                options),
               Error);
  EXPECT_EQ(SchemaDigest(), before);
  EXPECT_TRUE(driver_->ReadHistory().empty());
  EXPECT_EQ(driver_->ReadJournal(1).at(0).outcome, "reverted");
}

TEST_P(DriverConformance, BackupRestoresToAnEqualFingerprint) {
  driver_->Apply(Step("1", "CREATE TABLE t1 (id INTEGER PRIMARY KEY, name TEXT, n REAL);\n"
                           "INSERT INTO t1 VALUES (1, 'ä''x', 1.5), (2, NULL, NULL), (3, '', 0);\n"
                           "CREATE INDEX t1_name ON t1 (name);"));
  TempDir store_dir;
  BackupStore store(store_dir.path());
  Reporter quiet;
  BackupRequest request;
  request.migration_version = "1";
  BackupResult backup = TakeBackup(*driver_, store, request, quiet);
  EXPECT_EQ(backup.manifest.fingerprint.Digest(), driver_->TakeFingerprint(true).Digest());
  DatabaseUrl target = db_->url();
  if (target.engine == Engine::kSqlite) {
    target.path += ".restored";
  } else {
    target.database += "_r";
  }
  RestoreBackup(store, backup.manifest.id, target, nullptr, "default", quiet, 2);
  auto restored = OpenDriver(target, OpenOptions{false});
  EXPECT_EQ(restored->TakeFingerprint(true).Digest(), backup.manifest.fingerprint.Digest());
  EXPECT_EQ(restored->ReadHistory().size(), 1u);
  restored.reset();
  if (target.engine == Engine::kPostgres) {
    PgConn admin = ConnectLibpq(target, "postgres");
    ExecLibpq(admin.get(), "DROP DATABASE IF EXISTS " + QuotePgIdentifier(target.database) +
                               " WITH (FORCE)");
  } else if (target.engine == Engine::kMySql) {
    MySqlSession admin(target, std::string());
    admin.Exec("DROP DATABASE IF EXISTS " + QuoteMySqlIdentifier(target.database));
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, DriverConformance, ::testing::Values("sqlite", "postgres", "mysql"),
                         [](const ::testing::TestParamInfo<std::string>& engine) {
                           return engine.param;
                         });

}  // namespace
}  // namespace safemig

namespace safemig {
namespace {

class ScratchConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      like_.engine = Engine::kSqlite;
      like_.scheme = "sqlite";
      like_.path = (dir_ / "app.db").string();
    } else if (GetParam() == "mysql") {
      SAFEMIG_REQUIRE_MYSQL(server);
      like_ = server;
    } else {
      SAFEMIG_REQUIRE_POSTGRES(server);
      like_ = server;
    }
  }
  bool Exists(const DatabaseUrl& url) {
    try {
      OpenDriver(url, OpenOptions{false});
      return true;
    } catch (const Error&) {
      return false;
    }
  }
  TempDir dir_;
  DatabaseUrl like_;
};

TEST_P(ScratchConformance, IsUsableAndGoneAfterwards) {
  DatabaseUrl url;
  {
    auto scratch = CreateScratchDatabase(like_);
    url = scratch->url();
    auto driver = OpenDriver(url, OpenOptions{false});
    driver->EnsureMetadata();
    EXPECT_TRUE(driver->ReadHistory().empty());
    EXPECT_TRUE(ScratchOwnerPid(url.engine == Engine::kSqlite
                                    ? std::filesystem::path(url.path).filename().string()
                                    : url.database)
                    .has_value());
  }
  EXPECT_FALSE(Exists(url));
}

TEST_P(ScratchConformance, ALeftoverOfAKilledRunIsDroppedByTheNext) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto scratch = CreateScratchDatabase(like_);
    std::string text = scratch->url().engine == Engine::kSqlite ? scratch->url().path
                                                                 : scratch->url().database;
    text.push_back('\n');
    if (::write(pipe_fds[1], text.data(), text.size()) < 0) ::_exit(2);
    ::_exit(0);  // no destructors: as if killed
  }
  ::close(pipe_fds[1]);
  std::string name;
  char c = 0;
  while (::read(pipe_fds[0], &c, 1) == 1 && c != '\n') name.push_back(c);
  ::waitpid(child, nullptr, 0);
  ASSERT_FALSE(name.empty());
  DatabaseUrl leftover = like_;
  if (leftover.engine == Engine::kSqlite) {
    leftover.path = name;
  } else {
    leftover.database = name;
  }
  EXPECT_TRUE(Exists(leftover));
  auto next = CreateScratchDatabase(like_);
  EXPECT_FALSE(Exists(leftover));
}

INSTANTIATE_TEST_SUITE_P(Engines, ScratchConformance, ::testing::Values("sqlite", "postgres", "mysql"),
                         [](const ::testing::TestParamInfo<std::string>& engine) {
                           return engine.param;
                         });

}  // namespace
}  // namespace safemig
