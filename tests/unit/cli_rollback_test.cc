// `rollback` on SQLite as an operator runs it after a bad release: the plan with both
// ways back, the choice and why, the deadline, the check against the schema recorded before
// the deploy, and the journal.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <filesystem>
#include <string>

#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::RunSafemig;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

const std::string kExamples = std::string(SAFEMIG_SOURCE_DIR) + "/migrations-examples/sqlite";
const std::string kLast = "20260127110000";     // newest example migration
const std::string kSixth = "20260114093000";    // the sixth
const std::string kSeventh = "20260120160000";  // the seventh

class CliRollbackTest : public ::testing::Test {
 protected:
  void SetUp() override { std::filesystem::copy(kExamples, dir_ / "migrations"); }

  static std::string Flags() { return " --dir migrations --url sqlite:shop.db"; }

  safemig::testing::CommandResult Run(const std::string& args) {
    return RunSafemig(args + Flags(), dir_.path());
  }

  nlohmann::json Json(const std::string& args, int expected_exit = 0) {
    auto result = Run(args + " --format json");
    EXPECT_EQ(result.exit_code, expected_exit) << args << ": " << result.err;
    if (result.out.empty()) return nlohmann::json();
    return nlohmann::json::parse(result.out);
  }

  // Six migrations by one deploy, the last two by a second one; returns the second's id.
  std::string DeployTwice() {
    Json("deploy --steps 6");
    return Json("deploy")["run_id"].get<std::string>();
  }

  std::string Query(const std::string& sql) {
    SQLite::Database db((dir_ / "shop.db").string());
    SQLite::Statement query(db, sql);
    return query.executeStep() ? query.getColumn(0).getString() : "";
  }

  void Exec(const std::string& sql) {
    SQLite::Database db((dir_ / "shop.db").string(), SQLite::OPEN_READWRITE);
    db.exec(sql);
  }

  std::string CurrentVersion() {
    return Query("SELECT max(version) FROM safemig_migrations");
  }

  TempDir dir_;
};

TEST_F(CliRollbackTest, DryRunShowsBothWaysWithMeasuredEstimatesAndChangesNothing) {
  const std::string deploy = DeployTwice();
  auto json = Json("rollback --dry-run");
  EXPECT_EQ(json["command"], "rollback");
  EXPECT_TRUE(json["ok"].get<bool>());
  EXPECT_TRUE(json["dry_run"].get<bool>());
  const auto& plan = json["plan"];
  EXPECT_EQ(plan["from_version"], kLast);
  EXPECT_EQ(plan["to_version"], kSixth);
  EXPECT_EQ(plan["deploy_id"], deploy);
  ASSERT_EQ(plan["steps"].size(), 2u);
  EXPECT_EQ(plan["steps"][0]["version"], kLast);  // newest first
  EXPECT_EQ(plan["steps"][0]["rehearsal_outcome"], "ok");
  EXPECT_TRUE(plan["steps"][0]["rehearsed_down_ms"].is_number());
  EXPECT_TRUE(plan["down"]["available"].get<bool>());
  EXPECT_TRUE(plan["down"]["estimate_ms"].is_number()) << plan.dump();
  EXPECT_TRUE(plan["restore"]["available"].get<bool>());
  EXPECT_TRUE(plan["restore"]["estimate_ms"].is_number()) << plan.dump();
  EXPECT_TRUE(plan["restore"]["backup_id"].get<std::string>().find(kSixth) != std::string::npos);
  EXPECT_TRUE(plan["restore"]["writes_since"].is_null());  // SQLite keeps no statistics
  EXPECT_EQ(plan["chosen"], "down");
  EXPECT_TRUE(plan["verifiable"].get<bool>());
  EXPECT_EQ(CurrentVersion(), kLast);

  auto text = Run("rollback --dry-run");
  EXPECT_EQ(text.exit_code, 0) << text.err;
  for (const char* expected : {"down-migrations (stored SQL)", "restore backup", "Chosen: down",
                               "Dry run: nothing was changed."}) {
    EXPECT_NE(text.out.find(expected), std::string::npos) << expected << "\n" << text.out;
  }
}

TEST_F(CliRollbackTest, ByDownWorksAfterTheMigrationFilesAreGoneAndKeepsNewData) {
  DeployTwice();
  // The application was rolled back first: its newest migrations are gone from disk.
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "migrations")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kLast, 0) == 0 || name.rfind(kSeventh, 0) == 0) {
      std::filesystem::remove(entry.path());
    }
  }
  Exec("INSERT INTO customers (email, name) VALUES ('late@example.com', 'Written after')");
  auto json = Json("rollback --yes");
  EXPECT_TRUE(json["ok"].get<bool>()) << json.dump();
  EXPECT_EQ(json["strategy"], "down");
  EXPECT_EQ(json["reached_version"], kSixth);
  EXPECT_EQ(json["verified"], true);
  ASSERT_EQ(json["plan"]["missing_files"].size(), 2u);
  EXPECT_FALSE(json["plan"]["steps"][0]["file_present"].get<bool>());
  EXPECT_FALSE(json["safety_backup_id"].is_null());
  EXPECT_EQ(CurrentVersion(), kSixth);
  EXPECT_EQ(Query("SELECT name FROM customers WHERE email = 'late@example.com'"),
            "Written after");
  // The journal remembers the estimate next to the actual time.
  auto details = nlohmann::json::parse(
      Query("SELECT details FROM safemig_journal WHERE kind = 'rollback' ORDER BY id DESC"));
  EXPECT_EQ(details["strategy"], "down");
  EXPECT_TRUE(details["estimate_ms"].is_number());
  EXPECT_TRUE(details["actual_ms"].is_number());
  // And `status` has nothing to complain about: the remaining files match the history.
  auto status = Run("status");
  EXPECT_EQ(status.exit_code, 0) << status.err << status.out;
}

TEST_F(CliRollbackTest, ByRestoreBringsBackExactDataAndKeepsTheCurrentStateInABackup) {
  DeployTwice();
  Exec("INSERT INTO customers (email, name) VALUES ('late@example.com', 'Written after')");
  auto json = Json("rollback --strategy restore --yes");
  EXPECT_TRUE(json["ok"].get<bool>()) << json.dump();
  EXPECT_EQ(json["strategy"], "restore");
  EXPECT_EQ(json["reached_version"], kSixth);
  EXPECT_EQ(json["verified"], true);
  EXPECT_EQ(CurrentVersion(), kSixth);
  EXPECT_EQ(Query("SELECT count(*) FROM customers WHERE email = 'late@example.com'"), "0");
  // The write since the deploy is in the safety backup, restorable by hand.
  const std::string safety = json["safety_backup_id"].get<std::string>();
  auto restored = Run("restore " + safety + " --into sqlite:safety.db");
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  SQLite::Database db((dir_ / "safety.db").string());
  EXPECT_EQ(db.execAndGet("SELECT name FROM customers WHERE email = 'late@example.com'")
                .getString(),
            "Written after");
  EXPECT_EQ(Query("SELECT kind FROM safemig_journal ORDER BY id DESC"), "rollback");
}

TEST_F(CliRollbackTest, AutoRestoresWhenADownWasNeverRehearsed) {
  DeployTwice();
  Exec("DELETE FROM safemig_journal WHERE kind = 'rehearsal'");
  auto json = Json("rollback --dry-run");
  EXPECT_EQ(json["plan"]["chosen"], "restore");
  EXPECT_NE(json["plan"]["why"].get<std::string>().find("never rehearsed"), std::string::npos)
      << json["plan"]["why"];
  EXPECT_TRUE(json["plan"]["down"]["estimate_ms"].is_null());
}

TEST_F(CliRollbackTest, AutoRestoresPastAnIrreversibleMigration) {
  Json("deploy");
  WriteFile(dir_ / "migrations" / "20260201000000_drop_legacy.up.sql",
            "-- safemig:irreversible\nCREATE TABLE legacy_export (id INTEGER PRIMARY KEY);\n");
  WriteFile(dir_ / "migrations" / "20260201000000_drop_legacy.down.sql", "");
  Json("deploy");
  auto json = Json("rollback --dry-run");
  EXPECT_FALSE(json["plan"]["down"]["available"].get<bool>());
  EXPECT_NE(json["plan"]["down"]["unavailable"].get<std::string>().find("irreversible"),
            std::string::npos);
  EXPECT_EQ(json["plan"]["chosen"], "restore");
  // Asking for downs anyway is refused before anything changes.
  auto refused = Run("rollback --strategy down --yes");
  EXPECT_EQ(refused.exit_code, 5);
  EXPECT_NE(refused.err.find("irreversible"), std::string::npos) << refused.err;
  EXPECT_EQ(CurrentVersion(), "20260201000000");
  auto done = Json("rollback --yes");
  EXPECT_EQ(done["strategy"], "restore");
  EXPECT_EQ(CurrentVersion(), kLast);
}

TEST_F(CliRollbackTest, AnEstimateOverTheDeadlineIsRefusedUnlessForced) {
  DeployTwice();
  auto refused = Run("rollback --deadline 1ms --yes");
  EXPECT_EQ(refused.exit_code, 5) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("longer than the deadline"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
  EXPECT_EQ(CurrentVersion(), kLast);
  Json("rollback --deadline 1ms --force --strategy down --skip-backup --yes", 1);
  // 1 ms passes before the first down can start: stopped cleanly, nothing reverted.
  EXPECT_EQ(CurrentVersion(), kLast);
}

TEST_F(CliRollbackTest, TheDeadlineStopsASlowDownCleanlyAtAConsistentVersion) {
  // The down of the newest migration is quick; the one before it is slow on the real data
  // (a knob the rehearsal saw at 1), so the deadline passes inside it.
  Json("deploy --steps 6");
  WriteFile(dir_ / "migrations" / "20260201000000_knob.up.sql",
            "CREATE TABLE knob (n INTEGER NOT NULL);\nINSERT INTO knob VALUES (1);\n");
  WriteFile(dir_ / "migrations" / "20260201000000_knob.down.sql",
            "CREATE TABLE spin AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < (SELECT n FROM knob)) SELECT count(*) AS n FROM c;\n"
            "DROP TABLE spin;\nDROP TABLE knob;\n");
  WriteFile(dir_ / "migrations" / "20260202000000_quick.up.sql",
            "CREATE TABLE quick (id INTEGER PRIMARY KEY);\n");
  WriteFile(dir_ / "migrations" / "20260202000000_quick.down.sql", "DROP TABLE quick;\n");
  Json("deploy");
  Exec("UPDATE knob SET n = 2000000000");
  auto result = Run("rollback --to " + kSixth + " --strategy down --deadline 1500ms --yes");
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_NE(result.err.find("rollback stopped"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("consistent at version 20260201000000"), std::string::npos)
      << result.err;
  // The quick one was reverted, the slow one rolled back whole: knob is still there.
  EXPECT_EQ(CurrentVersion(), "20260201000000");
  EXPECT_EQ(Query("SELECT n FROM knob"), "2000000000");
  EXPECT_EQ(Query("SELECT count(*) FROM sqlite_master WHERE name IN ('quick', 'spin')"), "0");
}

TEST_F(CliRollbackTest, ASchemaChangedByHandAfterTheDeployFailsTheCheckLoudly) {
  DeployTwice();
  Exec("CREATE TABLE hotfix_audit (id INTEGER PRIMARY KEY)");
  auto plan = Run("rollback --dry-run");
  EXPECT_NE(plan.err.find("the schema changed after the deploy"), std::string::npos) << plan.err;
  auto result = Run("rollback --strategy down --yes");
  EXPECT_EQ(result.exit_code, 9) << result.out << result.err;
  EXPECT_NE(result.err.find("hotfix_audit"), std::string::npos) << result.err;
  // The downs ran: the version is the target's; the person is told what differs.
  EXPECT_EQ(CurrentVersion(), kSixth);
}

TEST_F(CliRollbackTest, NothingToRollBackIsANoGo) {
  Json("deploy --steps 1");
  Json("rollback --yes");
  auto result = Run("rollback --yes");
  EXPECT_EQ(result.exit_code, 5) << result.err;
  EXPECT_NE(result.err.find("nothing to roll back"), std::string::npos) << result.err;
}

TEST_F(CliRollbackTest, AProtectedEnvironmentNeedsApproval) {
  WriteFile(dir_ / "safemig.toml",
            "migrations = \"migrations\"\n[environments.production]\nurl = \"sqlite:shop.db\"\n"
            "protected = true\n");
  auto deploy = RunSafemig("deploy --env production --yes", dir_.path());
  ASSERT_EQ(deploy.exit_code, 0) << deploy.err;
  auto refused = RunSafemig("rollback --env production", dir_.path());
  EXPECT_EQ(refused.exit_code, 5) << refused.err;
  EXPECT_NE(refused.err.find("not approved"), std::string::npos) << refused.err;
  auto skip = RunSafemig("rollback --env production --skip-backup --yes", dir_.path());
  EXPECT_EQ(skip.exit_code, 5) << skip.err;
  EXPECT_EQ(CurrentVersion(), kLast);
  auto done = RunSafemig("rollback --env production --yes", dir_.path());
  EXPECT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(CurrentVersion(), "");
}

TEST_F(CliRollbackTest, TargetsAreExclusive) {
  DeployTwice();
  auto result = Run("rollback --to " + kSixth + " --steps 1");
  EXPECT_EQ(result.exit_code, 2) << result.err;
  auto unknown = Run("rollback --deploy 20990101T000000Z-deadbeef");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
  EXPECT_NE(unknown.err.find("history --journal"), std::string::npos) << unknown.err;
}

}  // namespace
}  // namespace safemig
