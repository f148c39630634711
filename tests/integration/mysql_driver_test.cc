// MySQL/MariaDB driver behaviour beyond the shared conformance suite: how far a failed
// migration got, who holds the lock, URL options, and errors free of passwords.
#include <gtest/gtest.h>

#include "core/error.h"
#include "driver/driver.h"
#include "core/sha256.h"
#include "core/sql_split.h"
#include "drivers/mysql/mysql_session.h"
#include "server_env.h"

namespace safemig {
namespace {

using safemig::testing::ScratchMySqlDatabase;

ApplyStep Up(const std::string& version, const std::string& sql) {
  ApplyStep step;
  step.source = version + "_m.up.sql";
  step.first_line = 3;  // as if a header of two lines preceded the SQL
  step.statements = SplitStatements(sql, Dialect::kMySql);
  step.row.version = version;
  step.row.name = "m";
  step.row.checksum = Sha256Hex(sql);
  step.row.up_path = step.source;
  step.row.applied_at = "2026-01-01T00:00:00.000Z";
  step.row.applied_by = "tester@host";
  step.row.deploy_id = "run";
  return step;
}

TEST(MySqlDriver, FailureOnTheThirdStatementNamesTheTwoThatRan) {
  SAFEMIG_REQUIRE_MYSQL(server);
  ScratchMySqlDatabase db(server);
  auto driver = OpenDriver(db.url());
  driver->EnsureMetadata();
  ApplyStep step = Up("1",
                      "CREATE TABLE a (id INT);\n"
                      "INSERT INTO a VALUES (1);\n"
                      "INSERT INTO missing VALUES (1);\n"
                      "CREATE TABLE b (id INT);");
  std::vector<std::size_t> announced;
  step.before_statement = [&](std::size_t index) { announced.push_back(index); };
  try {
    driver->Apply(step);
    FAIL() << "expected the third statement to fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNeedsPerson);
    const std::string message = e.what();
    EXPECT_NE(message.find("1_m.up.sql:5"), std::string::npos) << message;
    EXPECT_NE(message.find("statements 1-2 of 4 had already run"), std::string::npos) << message;
    EXPECT_NE(message.find("missing"), std::string::npos) << message;  // the server's words
  }
  EXPECT_EQ(announced, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_TRUE(driver->ReadHistory().empty());
  EXPECT_EQ(db.Query("SELECT COUNT(*) FROM a").at(0).at(0), "1");
}

TEST(MySqlDriver, FailureOnTheFirstStatementLeavesNothingBehind) {
  SAFEMIG_REQUIRE_MYSQL(server);
  ScratchMySqlDatabase db(server);
  auto driver = OpenDriver(db.url());
  driver->EnsureMetadata();
  try {
    driver->Apply(Up("1", "CREATE TABLE broken (id INT,);\nCREATE TABLE fine (id INT);"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed);
    EXPECT_NE(std::string(e.what()).find("1_m.up.sql:3"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(driver->TakeFingerprint(false).tables.empty());
}

TEST(MySqlDriver, RoutinesAndTriggersFromTheSplitterRunWhole) {
  SAFEMIG_REQUIRE_MYSQL(server);
  ScratchMySqlDatabase db(server);
  auto driver = OpenDriver(db.url());
  driver->EnsureMetadata();
  driver->Apply(Up("1",
                   "CREATE TABLE t (id INT PRIMARY KEY, n INT);\n"
                   "CREATE PROCEDURE fill(IN k INT)\nBEGIN\n  DECLARE i INT DEFAULT 0;\n"
                   "  WHILE i < k DO\n    INSERT INTO t VALUES (i, i * i);\n    SET i = i + 1;\n"
                   "  END WHILE;\nEND;\n"
                   "CALL fill(5);"));
  EXPECT_EQ(db.Query("SELECT SUM(n) FROM t").at(0).at(0), "30");
  ASSERT_EQ(driver->ReadHistory().size(), 1u);
}

TEST(MySqlDriver, SecondRunnerIsToldWhoHoldsTheLockAndSinceWhen) {
  SAFEMIG_REQUIRE_MYSQL(server);
  ScratchMySqlDatabase db(server);
  auto first = OpenDriver(db.url());
  auto lock = first->Lock(std::chrono::seconds(1), "alice@ci-7 pid 4242");
  auto second = OpenDriver(db.url());
  try {
    second->Lock(std::chrono::milliseconds(300), "bob@ci-8 pid 1");
    FAIL() << "expected the lock to be held";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kLockHeld);
    const std::string message = e.what();
    EXPECT_NE(message.find("connection "), std::string::npos) << message;
    EXPECT_NE(message.find(server.user + "@"), std::string::npos) << message;
    EXPECT_NE(message.find("alice@ci-7 pid 4242"), std::string::npos) << message;
    EXPECT_NE(message.find("since 20"), std::string::npos) << message;
  }
  // A lock on another database is independent.
  ScratchMySqlDatabase other(server);
  EXPECT_NO_THROW(OpenDriver(other.url())->Lock(std::chrono::milliseconds(100), "carol"));
  // The lock's own table is no part of the schema the user sees.
  EXPECT_EQ(first->TakeFingerprint(true).objects.count("table safemig_lock"), 0u);
}

TEST(MySqlDriver, WrongPasswordIsAConnectionErrorWithoutThePassword) {
  SAFEMIG_REQUIRE_MYSQL(server);
  DatabaseUrl url = server;
  url.password = "not-the-Secret-42";
  try {
    OpenDriver(url);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kConnection);
    EXPECT_EQ(std::string(e.what()).find("not-the-Secret-42"), std::string::npos) << e.what();
  }
}

TEST(MySqlDriver, UnknownUrlParameterIsAConfigError) {
  SAFEMIG_REQUIRE_MYSQL(server);
  DatabaseUrl url = server;
  url.params["ssl-mod"] = "REQUIRED";
  try {
    OpenDriver(url);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kConfig);
    EXPECT_NE(std::string(e.what()).find("ssl-mod"), std::string::npos);
  }
}

TEST(MySqlDriver, ReportsMariaDbServerVersion) {
  SAFEMIG_REQUIRE_MYSQL(server);
  ScratchMySqlDatabase db(server);
  const std::string version = OpenDriver(db.url())->ServerVersion();
  EXPECT_TRUE(version.rfind("MariaDB ", 0) == 0 || version.rfind("MySQL ", 0) == 0) << version;
}

}  // namespace
}  // namespace safemig
