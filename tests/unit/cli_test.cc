// The safemig binary as users and CI pipelines run it: exit codes, JSON output, messages.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers/sqlite/sqlite_driver.h"
#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::ReadFile;
using safemig::testing::RunSafemig;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

const std::string kExamples = std::string(SAFEMIG_SOURCE_DIR) + "/migrations-examples/sqlite";

class CliTest : public ::testing::Test {
 protected:
  std::string Url() const { return "--url sqlite:" + (dir_ / "app.db").string(); }
  std::string Examples() const { return " --dir " + kExamples + " " + Url(); }

  // A private copy of the examples, for tests that edit or delete files.
  std::string CopyExamples() {
    std::filesystem::copy(kExamples, dir_ / "migrations");
    return " --dir " + (dir_ / "migrations").string() + " " + Url();
  }

  TempDir dir_;
};

TEST_F(CliTest, UpAppliesTheExamplesAndStatusReportsThem) {
  auto up = RunSafemig("up" + Examples());
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_NE(up.out.find("Done:"), std::string::npos) << up.out;
  auto status = RunSafemig("status --format json" + Examples());
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto json = nlohmann::json::parse(status.out);
  EXPECT_EQ(json["command"], "status");
  EXPECT_EQ(json["pending"], 0);
  EXPECT_GE(json["applied"].get<int>(), 6);
  for (const auto& row : json["migrations"]) EXPECT_EQ(row["state"], "applied");
  auto again = RunSafemig("up" + Examples());
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("Nothing to apply"), std::string::npos);
}

TEST_F(CliTest, UpJsonReportsEachMigrationWithTiming) {
  auto up = RunSafemig("up --format json" + Examples());
  ASSERT_EQ(up.exit_code, 0) << up.err;
  auto json = nlohmann::json::parse(up.out);
  EXPECT_TRUE(json["ok"].get<bool>());
  EXPECT_EQ(json["from_version"], "");
  ASSERT_GE(json["migrations"].size(), 6u);
  EXPECT_TRUE(json["migrations"][0].contains("took_ms"));
}

TEST_F(CliTest, EveryExampleDownReturnsTheDatabaseToEmpty) {
  ASSERT_EQ(RunSafemig("up" + Examples()).exit_code, 0);
  auto down = RunSafemig("down --to 0 --yes" + Examples());
  ASSERT_EQ(down.exit_code, 0) << down.err;
  auto status = nlohmann::json::parse(RunSafemig("status --format json" + Examples()).out);
  EXPECT_EQ(status["applied"], 0);
}

TEST_F(CliTest, FailingMigrationIsCaughtByTheRehearsalNamesFileAndLineAndChangesNothing) {
  std::string flags = CopyExamples();
  ASSERT_EQ(RunSafemig("up --steps 2" + flags).exit_code, 0);
  auto before = RunSafemig("status --format json" + flags).out;
  WriteFile(dir_ / "migrations" / "20991231000000_broken.up.sql",
            "CREATE TABLE fine (id INTEGER);\n\nINSERT INTO no_such_table VALUES (1);\n");
  WriteFile(dir_ / "migrations" / "20991231000000_broken.down.sql", "DROP TABLE fine;\n");
  auto up = RunSafemig("up" + flags);
  // `up` rehearses on a copy first, where the migration fails: a no-go before any change.
  EXPECT_EQ(up.exit_code, 5);
  EXPECT_NE(up.err.find("20991231000000_broken.up.sql:3"), std::string::npos) << up.err;
  EXPECT_NE(up.err.find("no such table"), std::string::npos) << up.err;
  auto after = nlohmann::json::parse(RunSafemig("status --format json" + flags).out);
  auto was = nlohmann::json::parse(before);
  EXPECT_EQ(after["current_version"], was["current_version"]);
  EXPECT_EQ(after["applied"], was["applied"]);
}

TEST_F(CliTest, DownWorksAfterTheMigrationFilesWereDeleted) {
  std::string flags = CopyExamples();
  ASSERT_EQ(RunSafemig("up" + flags).exit_code, 0);
  std::filesystem::remove_all(dir_ / "migrations");
  auto down = RunSafemig("down" + flags);
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_NE(down.out.find("stored"), std::string::npos) << down.out;
}

TEST_F(CliTest, LockHeldByAnotherProcessExitsFourNamingTheHolder) {
  ASSERT_EQ(RunSafemig("up --steps 1" + Examples()).exit_code, 0);
  int ready_pipe[2];
  int done_pipe[2];
  ASSERT_EQ(::pipe(ready_pipe), 0);
  ASSERT_EQ(::pipe(done_pipe), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    DatabaseUrl url;
    url.engine = Engine::kSqlite;
    url.path = (dir_ / "app.db").string();
    auto driver = OpenSqliteDriver(url, OpenOptions{});
    auto lock = driver->Lock(std::chrono::seconds(5), "release-bot@ci pid 777");
    char c = 'r';
    if (::write(ready_pipe[1], &c, 1) != 1) ::_exit(2);
    if (::read(done_pipe[0], &c, 1) != 1) ::_exit(3);
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready_pipe[0], &c, 1), 1);
  auto up = RunSafemig("up --lock-timeout 300ms" + Examples());
  c = 'd';
  ASSERT_EQ(::write(done_pipe[1], &c, 1), 1);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(up.exit_code, 4) << up.err;
  EXPECT_NE(up.err.find("release-bot@ci pid 777 since"), std::string::npos) << up.err;
}

TEST_F(CliTest, ValidateExitsFiveOnDrift) {
  std::string flags = CopyExamples();
  ASSERT_EQ(RunSafemig("up" + flags).exit_code, 0);
  EXPECT_EQ(RunSafemig("validate" + flags).exit_code, 0);
  std::filesystem::path edited;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "migrations")) {
    if (entry.path().string().find(".up.sql") != std::string::npos) {
      edited = entry.path();
      break;
    }
  }
  ASSERT_FALSE(edited.empty());
  WriteFile(edited, ReadFile(edited) + "\n-- an innocent-looking edit\n");
  auto validate = RunSafemig("validate --format json" + flags);
  EXPECT_EQ(validate.exit_code, 5);
  auto json = nlohmann::json::parse(validate.out);
  EXPECT_FALSE(json["ok"].get<bool>());
  ASSERT_EQ(json["problems"].size(), 1u);
  EXPECT_NE(json["problems"][0].get<std::string>().find("edited after it was applied"),
            std::string::npos);
  EXPECT_EQ(RunSafemig("up" + flags).exit_code, 5);
}

TEST_F(CliTest, ValidateExitsFiveOnUnpairedFilesWithoutADatabase) {
  WriteFile(dir_ / "migrations" / "20240101000000_a.up.sql", "CREATE TABLE a (id INT);");
  auto validate = RunSafemig("validate --dir migrations", dir_.path());
  EXPECT_EQ(validate.exit_code, 5) << validate.err;
  EXPECT_NE(validate.err.find("20240101000000_a"), std::string::npos) << validate.err;
}

TEST_F(CliTest, NoDatabaseUrlIsAUsageErrorWithAHint) {
  auto status = RunSafemig("status", dir_.path());
  EXPECT_EQ(status.exit_code, 2);
  EXPECT_NE(status.err.find("hint:"), std::string::npos) << status.err;
}

TEST_F(CliTest, PasswordsNeverReachOutput) {
  auto result = RunSafemig("status --format json --url postgres://app:s3cr3t-pw@db.example/app",
                           dir_.path());
  EXPECT_NE(result.exit_code, 0);
  EXPECT_EQ(result.out.find("s3cr3t-pw"), std::string::npos) << result.out;
  EXPECT_EQ(result.err.find("s3cr3t-pw"), std::string::npos) << result.err;
  auto bad = RunSafemig("status --url 'postgres://app:s3cr3t-pw@db.example:99999/app'",
                        dir_.path());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err.find("s3cr3t-pw"), std::string::npos) << bad.err;
}

TEST_F(CliTest, DownAllNeedsConfirmationWhenNotInteractive) {
  ASSERT_EQ(RunSafemig("up" + Examples()).exit_code, 0);
  auto down = RunSafemig("down --to 0" + Examples());
  EXPECT_EQ(down.exit_code, 2);
  EXPECT_NE(down.err.find("--yes"), std::string::npos) << down.err;
  auto status = nlohmann::json::parse(RunSafemig("status --format json" + Examples()).out);
  EXPECT_EQ(status["pending"], 0);
}

TEST_F(CliTest, InitThenNewWritesAPairThatValidates) {
  auto init = RunSafemig("init", dir_.path());
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "safemig.toml"));
  auto created = RunSafemig("new --format json 'Add users table'", dir_.path());
  ASSERT_EQ(created.exit_code, 0) << created.err;
  auto json = nlohmann::json::parse(created.out);
  ASSERT_EQ(json["files"].size(), 2u);
  EXPECT_NE(json["files"][0].get<std::string>().find("_add_users_table.up.sql"),
            std::string::npos);
  WriteFile(json["files"][0].get<std::string>().front() == '/'
                ? std::filesystem::path(json["files"][0].get<std::string>())
                : dir_ / json["files"][0].get<std::string>(),
            "CREATE TABLE users (id INTEGER PRIMARY KEY);\n");
  WriteFile(json["files"][1].get<std::string>().front() == '/'
                ? std::filesystem::path(json["files"][1].get<std::string>())
                : dir_ / json["files"][1].get<std::string>(),
            "DROP TABLE users;\n");
  auto up = RunSafemig("up", dir_.path());
  EXPECT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(RunSafemig("init", dir_.path()).exit_code, 2);
}

TEST_F(CliTest, InitNeverWritesAPasswordIntoTheConfig) {
  auto init = RunSafemig("init --url postgres://app:hunter2@db/app", dir_.path());
  ASSERT_EQ(init.exit_code, 0) << init.err;
  std::string config = ReadFile(dir_ / "safemig.toml");
  EXPECT_EQ(config.find("hunter2"), std::string::npos) << config;
  EXPECT_NE(config.find("${SAFEMIG_DB_PASSWORD}"), std::string::npos) << config;
}

TEST_F(CliTest, UnknownCommandIsExitTwo) {
  EXPECT_EQ(RunSafemig("frobnicate").exit_code, 2);
}

}  // namespace
}  // namespace safemig
