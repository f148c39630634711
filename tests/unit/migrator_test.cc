// Planning and running migrations against a real SQLite file: all-or-nothing runs, downs
// from stored SQL, the journal.
#include "engine/migrator.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/sha256.h"
#include "drivers/sqlite/sqlite_driver.h"
#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::TempDir;

Migration File(const std::string& version, const std::string& up, const std::string& down) {
  Migration m;
  m.version = version;
  m.name = "m" + version;
  m.up_path = version + "_m" + version + ".up.sql";
  m.down_path = version + "_m" + version + ".down.sql";
  m.up_sql = up;
  m.down_sql = down;
  m.checksum = Sha256Hex(up);
  m.down_checksum = Sha256Hex(down);
  return m;
}

class RecordingReporter : public Reporter {
 public:
  void StepFinished(const PlannedStep& step, std::chrono::milliseconds) override {
    finished.push_back(step.version);
  }
  void StepFailed(const PlannedStep& step, std::string_view) override {
    failed.push_back(step.version);
  }
  void StepReverted(const PlannedStep& step, std::chrono::milliseconds) override {
    reverted.push_back(step.version);
  }
  std::vector<std::string> finished, failed, reverted;
};

class MigratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DatabaseUrl url;
    url.engine = Engine::kSqlite;
    url.path = (dir_ / "app.db").string();
    driver_ = OpenSqliteDriver(url, OpenOptions{});
    driver_->EnsureMetadata();
    files_ = {File("1", "CREATE TABLE a (id INTEGER);", "DROP TABLE a;"),
              File("2", "CREATE TABLE b (id INTEGER);", "DROP TABLE b;"),
              File("3", "ALTER TABLE a ADD COLUMN name TEXT;", "ALTER TABLE a DROP COLUMN name;"),
              File("4", "CREATE INDEX a_name ON a (name);", "DROP INDEX a_name;")};
  }

  StatusReport Status() { return ComputeStatus(files_, driver_->ReadHistory()); }

  RunResult Up(std::optional<std::string> to = {}, std::optional<int> steps = {}) {
    return Migrator(*driver_, reporter_).Execute(PlanUp(Status(), to, steps), Options());
  }
  RunResult Down(std::optional<std::string> to = {}, std::optional<int> steps = {}) {
    return Migrator(*driver_, reporter_).Execute(PlanDown(Status(), to, steps), Options());
  }
  static RunOptions Options() {
    RunOptions options;
    options.run_id = "run-1";
    options.applied_by = "tester@host";
    return options;
  }

  TempDir dir_;
  std::unique_ptr<Driver> driver_;
  std::vector<Migration> files_;
  RecordingReporter reporter_;
};

TEST_F(MigratorTest, UpAppliesAllPendingInOrder) {
  RunResult result = Up();
  EXPECT_EQ(result.steps.size(), 4u);
  EXPECT_EQ(result.to_version, "4");
  EXPECT_EQ(Status().current_version, "4");
  EXPECT_EQ(reporter_.finished, (std::vector<std::string>{"1", "2", "3", "4"}));
}

TEST_F(MigratorTest, UpToAndStepsLimitThePlan) {
  Up(std::string("2"));
  EXPECT_EQ(Status().current_version, "2");
  Up(std::nullopt, 1);
  EXPECT_EQ(Status().current_version, "3");
}

TEST_F(MigratorTest, UpWithUnknownTargetIsUsageError) {
  try {
    PlanUp(Status(), std::string("99"), std::nullopt);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kUsage);
  }
}

TEST_F(MigratorTest, FailureInThirdOfFourRevertsTheFirstTwo) {
  files_[2] = File("3", "ALTER TABLE a ADD COLUMN name TEXT;\nALTER TABLE nope ADD COLUMN x;",
                   "ALTER TABLE a DROP COLUMN name;");
  try {
    Up();
    FAIL() << "expected failure";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed);
    std::string message = e.what();
    EXPECT_NE(message.find("3_m3.up.sql:2"), std::string::npos) << message;
    EXPECT_NE(message.find("reverted"), std::string::npos) << message;
  }
  EXPECT_TRUE(driver_->ReadHistory().empty());
  EXPECT_EQ(reporter_.reverted, (std::vector<std::string>{"2", "1"}));
  auto journal = driver_->ReadJournal(1);
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(journal[0].outcome, "reverted");
  // Nothing of the run is left: applying the fixed set works from scratch.
  files_[2] = File("3", "ALTER TABLE a ADD COLUMN name TEXT;", "ALTER TABLE a DROP COLUMN name;");
  EXPECT_EQ(Up().steps.size(), 4u);
}

TEST_F(MigratorTest, UnrevertableEarlierStepNeedsAPerson) {
  files_[0] = File("1", "-- safemig:irreversible\nCREATE TABLE a (id INTEGER);", "");
  files_[0].directives.irreversible = true;
  files_[1] = File("2", "CREATE TABLE a (id INTEGER);", "DROP TABLE a;");  // fails: exists
  try {
    Up();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNeedsPerson);
    EXPECT_NE(std::string(e.what()).find("irreversible"), std::string::npos) << e.what();
  }
}

TEST_F(MigratorTest, MalformedLaterFileFailsBeforeAnythingRuns) {
  files_[3] = File("4", "CREATE INDEX a_name ON a ('unterminated);", "DROP INDEX a_name;");
  EXPECT_THROW(Up(), Error);
  EXPECT_TRUE(driver_->ReadHistory().empty());
}

TEST_F(MigratorTest, DownRevertsOneByDefault) {
  Up();
  RunResult result = Down();
  EXPECT_EQ(result.steps.size(), 1u);
  EXPECT_EQ(result.to_version, "3");
  EXPECT_EQ(Status().current_version, "3");
}

TEST_F(MigratorTest, DownToZeroRevertsEverything) {
  Up();
  Down(std::string("0"));
  EXPECT_TRUE(driver_->ReadHistory().empty());
}

TEST_F(MigratorTest, DownToVersionKeepsThatVersion) {
  Up();
  RunResult result = Down(std::string("2"));
  EXPECT_EQ(result.steps.size(), 2u);
  EXPECT_EQ(Status().current_version, "2");
}

TEST_F(MigratorTest, DownWorksAfterTheFilesWereDeleted) {
  Up();
  files_.clear();  // the application, and its migrations directory, were rolled back
  StatusReport status = Status();
  EXPECT_EQ(status.drifted, 4);
  RunResult result = Down(std::nullopt, 2);
  EXPECT_EQ(result.steps.size(), 2u);
  EXPECT_EQ(driver_->ReadHistory().size(), 2u);
  Down(std::string("0"));
  EXPECT_TRUE(driver_->ReadHistory().empty());
}

TEST_F(MigratorTest, DownUsesStoredSqlNotTheEditedFile) {
  Up();
  files_[3].down_sql = "DROP TABLE a;";  // a later edit that would be disastrous
  Down();
  EXPECT_EQ(Status().current_version, "3");
  // Table a still exists: the stored `DROP INDEX a_name` ran, not the edit.
  EXPECT_NO_THROW(Up());
}

TEST_F(MigratorTest, DownRefusesIrreversibleMigration) {
  files_[3] = File("4", "CREATE INDEX a_name ON a (name);", "");
  files_[3].directives.irreversible = true;
  Up();
  try {
    Down();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNoGo);
    EXPECT_NE(std::string(e.what()).find("irreversible"), std::string::npos);
  }
  EXPECT_EQ(Status().current_version, "4");
}

TEST_F(MigratorTest, UpRefusesWhenAnAppliedFileWasEdited) {
  Up(std::string("2"));
  files_[0] = File("1", "CREATE TABLE a (id INTEGER, extra TEXT);", "DROP TABLE a;");
  try {
    Up();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNoGo);
  }
  EXPECT_EQ(Status().current_version, "2");
}

TEST_F(MigratorTest, UpRefusesOutOfOrderPending) {
  Migration second = files_[1];
  files_.erase(files_.begin() + 1);
  Up();
  files_.insert(files_.begin() + 1, second);
  EXPECT_THROW(PlanUp(Status(), std::nullopt, std::nullopt), Error);
}

TEST_F(MigratorTest, HistoryRecordsRunAndDownSql) {
  Up();
  auto history = driver_->ReadHistory();
  ASSERT_EQ(history.size(), 4u);
  for (const HistoryRow& row : history) {
    EXPECT_EQ(row.deploy_id, "run-1");
    EXPECT_EQ(row.applied_by, "tester@host");
    EXPECT_FALSE(row.down_sql.empty());
    EXPECT_EQ(row.down_checksum, Sha256Hex(row.down_sql));
  }
  auto journal = driver_->ReadJournal(5);
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(journal[0].kind, "up");
  EXPECT_EQ(journal[0].outcome, "ok");
  EXPECT_EQ(journal[0].to_version, "4");
  EXPECT_NE(journal[0].details.find("\"took_ms\""), std::string::npos);
}

}  // namespace
}  // namespace safemig

namespace safemig {
namespace {

TEST_F(MigratorTest, InterruptBetweenMigrationsRevertsTheRun) {
  class InterruptAfterFirst : public Reporter {
   public:
    void StepFinished(const PlannedStep&, std::chrono::milliseconds) override {
      SetInterruptedForTesting(true);
    }
  } reporter;
  try {
    Migrator(*driver_, reporter).Execute(PlanUp(Status(), {}, {}), Options());
    FAIL() << "expected the interrupt to stop the run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("interrupted"), std::string::npos) << e.what();
  }
  SetInterruptedForTesting(false);
  EXPECT_TRUE(driver_->ReadHistory().empty());
}

}  // namespace
}  // namespace safemig
