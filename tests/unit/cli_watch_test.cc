// `watch` and `deploy --watch` as release engineers and CI pipelines run them, on SQLite:
// a healthy watch exits 0; K failing ticks exit 7 with the rollback plan and change
// nothing, or roll the deploy back with --auto-rollback; K-1 failures and a pass do not
// trigger. Ticks are 50 ms apart so each test takes well under a few seconds.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::RunSafemig;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

const std::string kExamples = std::string(SAFEMIG_SOURCE_DIR) + "/migrations-examples/sqlite";
const std::string kLast = "20260127110000";
const std::string kBeforeLast = "20260120160000";
const std::string kFast = " --every 50ms --for 250ms";

class CliWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Seven migrations, then a deploy of the eighth: the deploy a watch looks after.
    auto up = RunSafemig("up --steps 7" + Flags(), dir_.path());
    ASSERT_EQ(up.exit_code, 0) << up.err;
    auto deploy = RunSafemig("deploy" + Flags(), dir_.path());
    ASSERT_EQ(deploy.exit_code, 0) << deploy.err;
  }

  std::string Flags() const { return " --dir " + kExamples + " --url sqlite:shop.db"; }

  nlohmann::json Json(const std::string& args) {
    auto result = RunSafemig(args + " --format json" + Flags(), dir_.path());
    return nlohmann::json::parse(result.out);
  }

  std::string CurrentVersion() { return Json("status")["current_version"]; }

  // The newest journal rows, newest first.
  nlohmann::json Journal() { return Json("history --journal")["journal"]; }

  TempDir dir_;
};

TEST_F(CliWatchTest, HealthyWatchExitsZeroAndJournalsIt) {
  auto watch = RunSafemig(
      "watch --check 'orders_ok: SELECT count(*) >= 0 FROM orders'" + kFast + Flags(), dir_.path());
  ASSERT_EQ(watch.exit_code, 0) << watch.err << watch.out;
  EXPECT_NE(watch.out.find("tick 1/5  ok    orders_ok \u2713"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("tick 5/5"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("Healthy: 5 ticks"), std::string::npos) << watch.out;
  auto row = Journal()[0];
  EXPECT_EQ(row["kind"], "watch");
  EXPECT_EQ(row["outcome"], "healthy");
  EXPECT_EQ(row["to_version"], kLast);
  EXPECT_EQ(row["details"]["ticks"], 5);
  EXPECT_EQ(row["details"]["checks"][0]["name"], "orders_ok");
}

TEST_F(CliWatchTest, FailingChecksExitSevenWithThePlanAndChangeNothing) {
  auto watch = RunSafemig(
      "watch --check 'orders_ok: SELECT count(*) > 1000 FROM orders' --check-cmd 'true' "
      "--failures 2 --every 50ms --for 10s" +
          Flags(),
      dir_.path());
  EXPECT_EQ(watch.exit_code, 7) << watch.err << watch.out;
  EXPECT_NE(watch.out.find("FAIL  orders_ok \u2717 returned 0  cmd1 \u2713"), std::string::npos)
      << watch.out;
  EXPECT_NE(watch.out.find("(2/2)"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("Not rolled back (no --auto-rollback)"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("Ways back:"), std::string::npos)
      << "the plan is printed: " << watch.out;
  EXPECT_NE(watch.err.find("error: health checks failed 2 ticks in a row (orders_ok: returned 0)"),
            std::string::npos)
      << watch.err;
  EXPECT_NE(watch.err.find("--auto-rollback"), std::string::npos) << watch.err;
  EXPECT_EQ(CurrentVersion(), kLast);
  auto row = Journal()[0];
  EXPECT_EQ(row["kind"], "watch");
  EXPECT_EQ(row["outcome"], "failed");
  EXPECT_EQ(row["details"]["ticks"], 2);
  EXPECT_EQ(row["details"]["trigger"], "watch: 2 consecutive failing checks (orders_ok)");
}

TEST_F(CliWatchTest, AutoRollbackTakesTheDeployBackAndJournalsBoth) {
  auto watch = RunSafemig(
      "watch --check 'orders_ok: SELECT 0' --failures 2 --auto-rollback "
      "--every 50ms --for 10s" +
          Flags(),
      dir_.path());
  EXPECT_EQ(watch.exit_code, 7) << watch.err << watch.out;
  EXPECT_NE(watch.out.find("Rolled back to version " + kBeforeLast), std::string::npos)
      << watch.out;
  EXPECT_NE(watch.err.find("the deploy was rolled back"), std::string::npos) << watch.err;
  EXPECT_EQ(CurrentVersion(), kBeforeLast);
  auto journal = Journal();
  nlohmann::json watch_row;
  nlohmann::json rollback_row;
  for (const auto& row : journal) {
    if (row["kind"] == "watch" && watch_row.is_null()) watch_row = row;
    if (row["kind"] == "rollback" && rollback_row.is_null()) rollback_row = row;
  }
  ASSERT_FALSE(watch_row.is_null()) << journal.dump(1);
  ASSERT_FALSE(rollback_row.is_null()) << journal.dump(1);
  EXPECT_EQ(watch_row["outcome"], "rolled_back");
  EXPECT_EQ(watch_row["details"]["rollback"]["reached_version"], kBeforeLast);
  EXPECT_EQ(watch_row["details"]["rollback"]["journal_id"], rollback_row["id"]);
  EXPECT_NE(rollback_row["details"].dump().find("watch: 2 consecutive failing checks (orders_ok)"),
            std::string::npos)
      << rollback_row.dump();
}

TEST_F(CliWatchTest, DeployWatchRollsBackItsOwnDeploy) {
  ASSERT_EQ(RunSafemig("down --yes" + Flags(), dir_.path()).exit_code, 0);
  auto deploy = RunSafemig(
      "deploy --format json --watch --watch-check 'SELECT 0' "
      "--watch-failures 1 --watch-every 50ms --auto-rollback" +
          Flags(),
      dir_.path());
  EXPECT_EQ(deploy.exit_code, 7) << deploy.err;
  auto json = nlohmann::json::parse(deploy.out);
  EXPECT_EQ(json["ok"], false);
  EXPECT_EQ(json["error"]["exit_code"], 7);
  EXPECT_EQ(json["watch"]["outcome"], "rolled_back");
  EXPECT_TRUE(json["watch"]["rollback"].is_object());
  EXPECT_EQ(CurrentVersion(), kBeforeLast);
}

TEST_F(CliWatchTest, FailuresBelowTheThresholdThenAPassDoNotTrigger) {
  // Fails on the first two ticks, passes from the third on.
  WriteFile(dir_ / "flaky.sh",
            "n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count\n"
            "if [ $n -le 2 ]; then echo \"HTTP 503 on try $n\"; exit 1; fi\n");
  auto watch = RunSafemig("watch --check-cmd 'api: sh flaky.sh' --failures 3" + kFast + Flags(),
                          dir_.path());
  EXPECT_EQ(watch.exit_code, 0) << watch.err << watch.out;
  EXPECT_NE(watch.out.find("api \u2717 exit 1: HTTP 503 on try 2 (2/3)"), std::string::npos)
      << watch.out;
  EXPECT_EQ(CurrentVersion(), kLast);
  EXPECT_EQ(Journal()[0]["outcome"], "healthy");
}

TEST_F(CliWatchTest, JsonModePrintsOneDocument) {
  auto result = RunSafemig("watch --format json --check 'SELECT 0' --failures 1" + kFast + Flags(),
                           dir_.path());
  EXPECT_EQ(result.exit_code, 7) << result.err;
  auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["command"], "watch");
  EXPECT_EQ(json["ok"], false);
  EXPECT_EQ(json["outcome"], "failed");
  EXPECT_EQ(json["ticks"], 1);
  EXPECT_EQ(json["failures"], 1);
  EXPECT_EQ(json["checks"][0]["name"], "sql1");
  EXPECT_EQ(json["checks"][0]["passed"], false);
  EXPECT_EQ(json["checks"][0]["detail"], "returned 0");
  EXPECT_EQ(json["error"]["exit_code"], 7);
  EXPECT_EQ(json["error"]["category"], "watch_failed");
  EXPECT_TRUE(json["rollback_plan"].is_object()) << json.dump(1);
  EXPECT_TRUE(json["rollback"].is_null());
  EXPECT_TRUE(json["journal_id"].is_number());
}

TEST_F(CliWatchTest, ChecksComeFromTheEnvironmentAndTheCommandLineAddsToThem) {
  WriteFile(dir_ / "safemig.toml",
            "[environments.production]\nurl = \"sqlite:shop.db\"\nmigrations = \"" + kExamples +
                "\"\n[environments.production.watch]\n"
                "checks = [\"orders_ok: SELECT count(*) >= 0 FROM orders\"]\n"
                "every = \"50ms\"\nfor = \"100ms\"\nfailures = 2\n");
  auto result = RunSafemig("watch --format json --check-cmd 'true'", dir_.path());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["environment"], "production");
  EXPECT_EQ(json["every_ms"], 50);
  EXPECT_EQ(json["failures"], 2);
  ASSERT_EQ(json["checks"].size(), 2u);
  EXPECT_EQ(json["checks"][0]["name"], "orders_ok");
  EXPECT_EQ(json["checks"][1]["name"], "cmd1");
  auto only = RunSafemig("watch --format json --no-config-checks --check-cmd 'true' --every 1s",
                         dir_.path());
  ASSERT_EQ(only.exit_code, 0) << only.err;
  auto second = nlohmann::json::parse(only.out);
  EXPECT_EQ(second["checks"].size(), 1u);
  EXPECT_EQ(second["every_ms"], 1000);
  EXPECT_EQ(second["ticks"], 1) << "for 100ms every 1s is one tick";
}

TEST_F(CliWatchTest, NoChecksIsAUsageError) {
  auto result = RunSafemig("watch" + kFast + Flags(), dir_.path());
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("watch has no checks"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("hint: pass --check SQL"), std::string::npos) << result.err;
}

TEST_F(CliWatchTest, SecretsInChecksNeverReachOutputOrJournal) {
  auto result =
      RunSafemig("watch --check-cmd \"api: echo 'token=hunter2 rejected'; exit 1\" --failures 1" +
                     kFast + Flags(),
                 dir_.path());
  EXPECT_EQ(result.exit_code, 7) << result.err;
  EXPECT_EQ(result.out.find("hunter2"), std::string::npos) << result.out;
  EXPECT_EQ(result.err.find("hunter2"), std::string::npos) << result.err;
  EXPECT_EQ(Journal().dump().find("hunter2"), std::string::npos);
}

TEST_F(CliWatchTest, DeployWatchWatchesOnlyAfterADeployThatAppliedSomething) {
  auto nothing = RunSafemig("deploy --watch --watch-check 'SELECT 1'" + Flags(), dir_.path());
  EXPECT_EQ(nothing.exit_code, 0) << nothing.err;
  EXPECT_NE(nothing.out.find("nothing to watch"), std::string::npos) << nothing.out;

  auto needs = RunSafemig("deploy --watch-for 1m" + Flags(), dir_.path());
  EXPECT_EQ(needs.exit_code, 2) << needs.err;
  EXPECT_NE(needs.err.find("--watch"), std::string::npos) << needs.err;

  ASSERT_EQ(RunSafemig("down --yes" + Flags(), dir_.path()).exit_code, 0);
  auto deploy = RunSafemig(
      "deploy --format json --watch --watch-check 'SELECT 1' "
      "--watch-every 50ms --watch-for 100ms" +
          Flags(),
      dir_.path());
  ASSERT_EQ(deploy.exit_code, 0) << deploy.err;
  auto json = nlohmann::json::parse(deploy.out);
  EXPECT_EQ(json["command"], "deploy");
  EXPECT_EQ(json["ok"], true);
  EXPECT_EQ(json["migrations"].size(), 1u);
  EXPECT_EQ(json["watch"]["outcome"], "healthy");
  EXPECT_EQ(json["watch"]["ticks"], 2);
  EXPECT_EQ(json["watch"]["deploy_id"], json["run_id"]);
}

}  // namespace
}  // namespace safemig
