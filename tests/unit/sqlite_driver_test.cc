// The SQLite driver: apply/revert with history in one transaction, failures that leave
// the schema unchanged, the lock between processes, timeouts, the journal.
#include "drivers/sqlite/sqlite_driver.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/sql_split.h"
#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::TempDir;

DatabaseUrl SqliteUrl(const std::filesystem::path& path) {
  DatabaseUrl url;
  url.engine = Engine::kSqlite;
  url.scheme = "sqlite";
  url.path = path.string();
  return url;
}

ApplyStep UpStep(const std::string& version, const std::string& sql) {
  ApplyStep step;
  step.direction = Direction::kUp;
  step.source = version + "_test.up.sql";
  step.statements = SplitStatements(sql, Dialect::kSqlite);
  step.row.version = version;
  step.row.name = "test";
  step.row.checksum = "c";
  step.row.up_path = step.source;
  step.row.down_sql = "SELECT 1";
  step.row.down_checksum = "d";
  step.row.applied_at = "2026-01-01T00:00:00.000Z";
  step.row.applied_by = "tester@host";
  step.row.deploy_id = "run";
  return step;
}

// The schema as sqlite_master describes it, minus safemig's own tables.
std::string Schema(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  std::string schema;
  sqlite3_exec(
      db,
      "SELECT type || ' ' || name || ' ' || coalesce(sql,'') FROM sqlite_master "
      "WHERE name NOT LIKE 'safemig_%' AND name NOT LIKE 'sqlite_%' ORDER BY type, name",
      [](void* out, int, char** values, char**) {
        *static_cast<std::string*>(out) += std::string(values[0]) + "\n";
        return 0;
      },
      &schema, nullptr);
  sqlite3_close(db);
  return schema;
}

TEST(SqliteDriver, MissingFileIsAConnectionErrorWhenNotCreating) {
  TempDir dir;
  try {
    OpenSqliteDriver(SqliteUrl(dir / "nope.db"), OpenOptions{false});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kConnection);
    EXPECT_NE(std::string(e.what()).find("nope.db"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "nope.db"));
}

TEST(SqliteDriver, NonDatabaseFileIsAConnectionError) {
  TempDir dir;
  safemig::testing::WriteFile(dir / "text.db", std::string(4096, 'x'));
  try {
    OpenSqliteDriver(SqliteUrl(dir / "text.db"), OpenOptions{true});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kConnection);
  }
}

// A read-only query (a watch's health check) is bounded by the statement timeout too.
TEST(SqliteDriver, QueryTextStopsAtTheStatementTimeout) {
  TempDir dir;
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  driver->SetTimeouts(std::chrono::seconds(1), std::chrono::milliseconds(200));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(driver->QueryText("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                 "WHERE x < 2000000000) SELECT count(*) FROM c"),
               Error);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  // The limit does not outlive the query.
  EXPECT_EQ(driver->QueryText("SELECT 42").rows.at(0).at(0), "42");
}

TEST(SqliteDriver, AppliesStatementsAndHistoryRowTogether) {
  TempDir dir;
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  driver->EnsureMetadata();
  EXPECT_TRUE(driver->ReadHistory().empty());
  driver->Apply(UpStep("1", "CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);"));
  auto history = driver->ReadHistory();
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].version, "1");
  EXPECT_EQ(history[0].down_sql, "SELECT 1");
  EXPECT_EQ(history[0].applied_by, "tester@host");
  EXPECT_NE(Schema(dir / "app.db").find("table a"), std::string::npos);
}

TEST(SqliteDriver, FailureInTheMiddleLeavesSchemaAndHistoryUnchanged) {
  TempDir dir;
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  driver->EnsureMetadata();
  driver->Apply(UpStep("1", "CREATE TABLE a (id INTEGER PRIMARY KEY);"));
  std::string before = Schema(dir / "app.db");
  ApplyStep bad = UpStep("2",
                         "CREATE TABLE b (id INTEGER);\n"
                         "CREATE INDEX b_id ON b (id);\n"
                         "\n"
                         "ALTER TABLE missing ADD COLUMN x INTEGER;\n"
                         "CREATE TABLE c (id INTEGER);\n");
  try {
    driver->Apply(bad);
    FAIL() << "expected the migration to fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed);
    std::string message = e.what();
    EXPECT_NE(message.find("2_test.up.sql:4"), std::string::npos) << message;
    EXPECT_NE(message.find("no such table"), std::string::npos) << message;
  }
  EXPECT_EQ(Schema(dir / "app.db"), before);
  EXPECT_EQ(driver->ReadHistory().size(), 1u);
}

TEST(SqliteDriver, ErrorLineAccountsForSectionOffset) {
  TempDir dir;
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  driver->EnsureMetadata();
  ApplyStep bad = UpStep("1", "SELECT 1;\nSELEKT 2;");
  bad.first_line = 10;
  try {
    driver->Apply(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(":11:"), std::string::npos) << e.what();
  }
}

TEST(SqliteDriver, RefusesMigrationThatCommitsSafemigsTransaction) {
  TempDir dir;
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  driver->EnsureMetadata();
  try {
    driver->Apply(UpStep("1", "CREATE TABLE a (id INTEGER); COMMIT; CREATE TABLE b (id INTEGER);"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNeedsPerson);
    EXPECT_NE(std::string(e.what()).find("ended safemig's transaction"), std::string::npos);
  }
  EXPECT_TRUE(driver->ReadHistory().empty());
}

TEST(SqliteDriver, DownDeletesHistoryRowInSameTransaction) {
  TempDir dir;
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  driver->EnsureMetadata();
  driver->Apply(UpStep("1", "CREATE TABLE a (id INTEGER);"));
  ApplyStep down;
  down.direction = Direction::kDown;
  down.source = "stored down of 1";
  down.statements = SplitStatements("DROP TABLE a;", Dialect::kSqlite);
  down.row.version = "1";
  driver->Apply(down);
  EXPECT_TRUE(driver->ReadHistory().empty());
  EXPECT_EQ(Schema(dir / "app.db"), "");
}

TEST(SqliteDriver, NoTransactionFailureSaysWhichStatementsRan) {
  TempDir dir;
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  driver->EnsureMetadata();
  ApplyStep step = UpStep("1", "CREATE TABLE a (id INTEGER);\nCREATE TABLE a (id INTEGER);");
  step.in_transaction = false;
  try {
    driver->Apply(step);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNeedsPerson);
    EXPECT_NE(std::string(e.what()).find("statements 1-1 of 2 had already run"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(driver->ReadHistory().empty());
}

TEST(SqliteDriver, StatementTimeoutCancelsLongStatement) {
  TempDir dir;
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  driver->EnsureMetadata();
  ApplyStep step = UpStep(
      "1",
      "CREATE TABLE slow AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
      "WHERE i < 100000000) SELECT i FROM n;");
  step.statement_timeout = std::chrono::milliseconds(100);
  auto started = std::chrono::steady_clock::now();
  try {
    driver->Apply(step);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("statement timeout"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(Schema(dir / "app.db"), "");
}

TEST(SqliteDriver, SecondProcessWaitsThenNamesTheLockHolder) {
  TempDir dir;
  int to_parent[2];
  int to_child[2];
  ASSERT_EQ(::pipe(to_parent), 0);
  ASSERT_EQ(::pipe(to_child), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
    auto lock = driver->Lock(std::chrono::seconds(5), "holder-process");
    char ready = 'r';
    if (::write(to_parent[1], &ready, 1) != 1) ::_exit(2);
    char done = 0;
    if (::read(to_child[0], &done, 1) != 1) ::_exit(3);
    ::_exit(0);
  }
  char ready = 0;
  ASSERT_EQ(::read(to_parent[0], &ready, 1), 1);
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  auto started = std::chrono::steady_clock::now();
  try {
    driver->Lock(std::chrono::milliseconds(300), "waiting-process");
    FAIL() << "expected the lock to be held";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kLockHeld);
    EXPECT_NE(std::string(e.what()).find("holder-process since 20"), std::string::npos)
        << e.what();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(300));
  char done = 'd';
  ASSERT_EQ(::write(to_child[1], &done, 1), 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // Released by the holder's exit: now it is ours at once.
  EXPECT_NO_THROW(driver->Lock(std::chrono::milliseconds(300), "waiting-process"));
}

TEST(SqliteDriver, LockOfKilledProcessIsReleased) {
  TempDir dir;
  int to_parent[2];
  ASSERT_EQ(::pipe(to_parent), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
    auto lock = driver->Lock(std::chrono::seconds(5), "doomed");
    char ready = 'r';
    if (::write(to_parent[1], &ready, 1) != 1) ::_exit(2);
    ::pause();
    ::_exit(0);
  }
  char ready = 0;
  ASSERT_EQ(::read(to_parent[0], &ready, 1), 1);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  EXPECT_NO_THROW(driver->Lock(std::chrono::milliseconds(300), "next"));
}

TEST(SqliteDriver, JournalRoundTrips) {
  TempDir dir;
  auto driver = OpenSqliteDriver(SqliteUrl(dir / "app.db"), OpenOptions{});
  EXPECT_TRUE(driver->ReadJournal(10).empty());
  driver->EnsureMetadata();
  JournalEntry entry;
  entry.kind = "up";
  entry.environment = "default";
  entry.started_at = "2026-01-01T00:00:00.000Z";
  entry.outcome = "running";
  entry.id = driver->InsertJournal(entry);
  entry.outcome = "ok";
  entry.to_version = "3";
  entry.details = R"({"steps":[]})";
  driver->UpdateJournal(entry);
  auto journal = driver->ReadJournal(10);
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(journal[0].outcome, "ok");
  EXPECT_EQ(journal[0].to_version, "3");
  EXPECT_EQ(journal[0].details, R"({"steps":[]})");
}

}  // namespace
}  // namespace safemig
