// The deploy pipeline on SQLite: gates refuse before anything changes, a failing migration
// leaves the database as it was (by downs, or by restoring the backup), and a successful
// deploy is verified against its rehearsal.
#include "engine/deploy.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "deploy_fixture.h"

namespace safemig {
namespace {

using testing::MakeMigration;

class DeployTest : public testing::SqliteShop {
 protected:
  static std::vector<Migration> FourMigrations() {
    return testing::FourMigrations("INTEGER PRIMARY KEY");
  }

  DeployReport Run(const DeployRequest& request) { return Deploy(driver_, request, reporter_); }

  // A passing rehearsal of `files` in the journal; afterwards a row that makes the third
  // migration fail on the target, which the plan hash (schema, not data) does not see.
  void RehearseThenBreakMigrationThree(const std::vector<Migration>& files) {
    DeployRequest request = Request(files);
    DeployReport rehearsal = RehearseOnly(*driver_, request, reporter_);
    ASSERT_EQ(rehearsal.verdict, "go") << ::testing::PrintToString(rehearsal.reasons);
    Exec("INSERT INTO post (title) VALUES ('hello');");
    Reopen();
  }

  std::size_t BackupCount() { return BackupStore(dir_ / "backups").List().size(); }
};

TEST_F(DeployTest, DeployBacksUpRehearsesAppliesAndVerifies) {
  DeployRequest request = Request(FourMigrations());
  bool summary_seen_before_apply = false;
  request.on_verdict = [&](const DeployReport& report) {
    summary_seen_before_apply = driver_->ReadHistory().empty() && report.verdict == "go";
  };
  DeployReport report = Run(request);
  EXPECT_TRUE(summary_seen_before_apply);
  EXPECT_TRUE(report.ok);
  EXPECT_EQ(report.verdict, "go");
  ASSERT_TRUE(report.backup);
  ASSERT_TRUE(report.rehearsal);
  EXPECT_EQ(report.rehearsal->status, "passed");
  EXPECT_EQ(report.migrations.size(), 4u);
  ASSERT_TRUE(report.verified);
  EXPECT_TRUE(*report.verified);
  ASSERT_TRUE(report.rollback);
  EXPECT_TRUE(report.rollback->by_down.has_value());
  EXPECT_EQ(report.rollback->recommended, "down");
  EXPECT_EQ(driver_->ReadHistory().size(), 4u);
  auto journal = Journal();
  EXPECT_EQ(journal[0].kind, "deploy");
  EXPECT_EQ(journal[0].outcome, "ok");
  EXPECT_EQ(journal[0].plan_hash, report.plan_hash);
  EXPECT_EQ(journal[1].kind, "rehearsal");
  EXPECT_TRUE(ScratchFiles().empty());
}

TEST_F(DeployTest, FailureInTheThirdOfFourIsRevertedByDownsAndChecked) {
  const std::vector<Migration> files = FourMigrations();
  RehearseThenBreakMigrationThree(files);
  const Fingerprint before = Data();
  try {
    Run(Request(files));
    FAIL() << "expected the third migration to fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed);
    const std::string message = e.what();
    EXPECT_NE(message.find("3_unique_title.up.sql"), std::string::npos) << message;
    EXPECT_NE(message.find("reverted"), std::string::npos) << message;
    EXPECT_NE(message.find("schema fingerprint equals"), std::string::npos) << message;
  }
  EXPECT_TRUE(driver_->ReadHistory().empty());
  EXPECT_EQ(Data().Digest(), before.Digest());
}

TEST_F(DeployTest, NoTransactionMigrationFailingAtItsThirdStatementIsUndoneByRestore) {
  std::vector<Migration> files = FourMigrations();
  files[2] = MakeMigration("3", "tags_and_unique_title",
                           "-- safemig:no-transaction\n"
                           "CREATE TABLE tag_a (id INTEGER);\n"
                           "CREATE TABLE tag_b (id INTEGER);\n"
                           "CREATE UNIQUE INDEX post_title ON post (title);\n",
                           "DROP INDEX post_title;\nDROP TABLE tag_b;\nDROP TABLE tag_a;\n");
  files[2].directives.no_transaction = true;
  RehearseThenBreakMigrationThree(files);
  const Fingerprint before = Data();
  try {
    Run(Request(files));
    FAIL() << "expected the third migration to fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed) << e.what();
    const std::string message = e.what();
    EXPECT_NE(message.find("UNIQUE"), std::string::npos) << message;
    EXPECT_NE(message.find("restored the pre-deploy backup"), std::string::npos) << message;
    EXPECT_NE(message.find(" in "), std::string::npos) << message;
  }
  Reopen();
  EXPECT_EQ(Data().Digest(), before.Digest()) << "tag_a and tag_b are gone again";
  EXPECT_TRUE(driver_->ReadHistory().empty()) << "no history row";
  EXPECT_EQ(Journal()[0].outcome, "restored");
}

TEST_F(DeployTest, ProtectedEnvironmentRefusesSkipBackupBeforeAnythingChanges) {
  DeployRequest request = Request(FourMigrations());
  request.environment.is_protected = true;
  request.skip_backup = true;
  request.yes = true;
  DeployReport report = Run(request);
  EXPECT_EQ(report.verdict, "no-go");
  ASSERT_TRUE(report.refusal);
  EXPECT_EQ(report.refusal->category(), Category::kNoGo);
  EXPECT_NE(std::string(report.refusal->what()).find("--skip-backup is refused"),
            std::string::npos);
  EXPECT_EQ(BackupCount(), 0u);
  EXPECT_TRUE(driver_->ReadHistory().empty());
}

TEST_F(DeployTest, ProtectedEnvironmentNeedsApprovalAndAPassingRehearsal) {
  DeployRequest request = Request(FourMigrations());
  request.environment.is_protected = true;
  DeployReport refused = Run(request);
  EXPECT_EQ(refused.verdict, "no-go");
  EXPECT_NE(std::string(refused.refusal->what()).find("approval"), std::string::npos);
  EXPECT_NE(refused.refusal->hint().find("--yes"), std::string::npos);

  // A rehearsal that fails blocks the protected deploy even with --yes.
  std::vector<Migration> bad = FourMigrations();
  bad[1] = MakeMigration("2", "create_tag", "CREATE TABLE tag (id INTEGER PRIMARY KEY);",
                         "SELECT 1;");
  request = Request(bad);
  request.environment.is_protected = true;
  request.yes = true;
  DeployReport failed = Run(request);
  EXPECT_EQ(failed.verdict, "no-go");
  ASSERT_FALSE(failed.reasons.empty());
  EXPECT_NE(failed.reasons[0].find("2_create_tag: down leaves the schema different"),
            std::string::npos)
      << failed.reasons[0];
  EXPECT_TRUE(driver_->ReadHistory().empty());

  // A person who types the wrong name does not approve.
  request = Request(FourMigrations());
  request.environment.is_protected = true;
  request.ask_approval = [](const std::string& expected) { return expected == "not it"; };
  DeployReport unapproved = Run(request);
  EXPECT_EQ(unapproved.verdict, "no-go");
  EXPECT_TRUE(driver_->ReadHistory().empty());

  request.ask_approval = [](const std::string& expected) { return expected == "shop.db"; };
  EXPECT_TRUE(Run(request).ok);
  EXPECT_EQ(driver_->ReadHistory().size(), 4u);
}

TEST_F(DeployTest, PromotionRefusesWhatTheSourceEnvironmentHasNotApplied) {
  const std::vector<Migration> files = FourMigrations();
  // The staging database has the first two only.
  DatabaseUrl staging_url;
  staging_url.engine = Engine::kSqlite;
  staging_url.path = (dir_ / "staging.db").string();
  std::filesystem::copy_file(url_.path, staging_url.path);
  {
    auto staging = OpenDriver(staging_url, OpenOptions{false});
    staging->EnsureMetadata();
    Reporter quiet;
    Migrator(*staging, quiet)
        .Execute(PlanUp(ComputeStatus(files, {}), std::string("2"), std::nullopt), RunOptions{});
  }
  DeployRequest request = Request(files);
  request.environment.promote_from = "staging";
  Environment staging;
  staging.name = "staging";
  staging.url = "sqlite:" + staging_url.path;
  request.environments["staging"] = staging;
  DeployReport report = Run(request);
  EXPECT_EQ(report.verdict, "no-go");
  ASSERT_TRUE(report.refusal);
  EXPECT_NE(std::string(report.refusal->what()).find("3_unique_title is not applied in staging"),
            std::string::npos)
      << report.refusal->what();
  EXPECT_NE(report.refusal->hint().find("deploy to staging first"), std::string::npos);
  EXPECT_EQ(BackupCount(), 0u) << "refused before the backup";

  request.to = "2";
  EXPECT_TRUE(Run(request).ok) << "what staging has may be promoted";
}

TEST_F(DeployTest, OutsideTheWindowIsANoGoUnlessAReasonIsGiven) {
  DeployRequest request = Request(FourMigrations());
  request.environment.window = ParseDeployWindow("Mon-Fri 02:00-05:00 UTC", "test");
  // Thursday 2026-11-26 12:00 UTC.
  request.now = [] {
    return std::chrono::system_clock::from_time_t(1795694400);
  };
  DeployReport refused = Run(request);
  EXPECT_EQ(refused.verdict, "no-go");
  EXPECT_NE(std::string(refused.refusal->what()).find("outside the deploy window"),
            std::string::npos);
  EXPECT_NE(refused.refusal->hint().find("--outside-window"), std::string::npos);
  EXPECT_TRUE(driver_->ReadHistory().empty());

  request.outside_window_reason = "hotfix for incident 42";
  DeployReport report = Run(request);
  ASSERT_TRUE(report.ok);
  EXPECT_NE(Journal()[0].details.find("hotfix for incident 42"), std::string::npos);
}

TEST_F(DeployTest, DeadlinePassedDuringTheApplyRollsBack) {
  std::vector<Migration> files = FourMigrations();
  // A tenth of a second or more of work in the first migration; the deadline is shorter.
  files[0] = MakeMigration("1", "slow",
                           "CREATE TABLE numbers AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
                           "SELECT i + 1 FROM n WHERE i < 400000) SELECT i FROM n;",
                           "DROP TABLE numbers;");
  DeployRequest request = Request(files);
  request.environment.max_duration = std::chrono::milliseconds(20);
  const Fingerprint before = Data();
  try {
    Run(request);
    FAIL() << "expected the deadline to stop the deploy";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed) << e.what();
    EXPECT_NE(std::string(e.what()).find("deadline"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(driver_->ReadHistory().empty());
  EXPECT_EQ(Data().Digest(), before.Digest());
}

TEST_F(DeployTest, DriftIsANoGo) {
  std::vector<Migration> files = FourMigrations();
  DeployRequest request = Request(files);
  request.to = "1";
  ASSERT_TRUE(Run(request).ok);
  files[0] = MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url TEXT; -- edited",
                           "ALTER TABLE post DROP COLUMN url;");
  DeployReport report = Run(Request(files));
  EXPECT_EQ(report.verdict, "no-go");
  EXPECT_NE(report.reasons[0].find("drift"), std::string::npos) << report.reasons[0];
}

TEST_F(DeployTest, PlanChangesNothingAndReportsTheRehearsalState) {
  const std::vector<Migration> files = FourMigrations();
  const Fingerprint before = Data();
  const std::size_t journal_rows = Journal().size();
  DeployReport plan = PlanDeploy(*driver_, Request(files), reporter_);
  EXPECT_EQ(plan.command, "plan");
  EXPECT_EQ(plan.pending.size(), 4u);
  EXPECT_EQ(plan.verdict, "go");
  EXPECT_FALSE(plan.rehearsal.has_value()) << "none yet";
  EXPECT_EQ(Data().Digest(), before.Digest());
  EXPECT_EQ(Journal().size(), journal_rows);

  DeployReport rehearsal = RehearseOnly(*driver_, Request(files), reporter_);
  DeployReport again = PlanDeploy(*driver_, Request(files), reporter_);
  ASSERT_TRUE(again.rehearsal);
  EXPECT_EQ(again.rehearsal->status, "passed");
  EXPECT_EQ(again.plan_hash, rehearsal.plan_hash);
  ASSERT_TRUE(again.rollback);
  EXPECT_TRUE(again.rollback->by_down.has_value());
  ASSERT_TRUE(again.backup_estimate_bytes);
  EXPECT_GT(*again.backup_estimate_bytes, 0u);
  nlohmann::json json = DeployJson(again);
  EXPECT_EQ(json["rehearsal"]["status"], "passed");
  EXPECT_EQ(json["rehearsal"]["migrations"].size(), 4u);
  EXPECT_TRUE(json["lint"].empty());
}

}  // namespace
}  // namespace safemig
