// deploy, up, rehearse and plan as users and CI pipelines run them: the agreed JSON
// documents, exit codes, refusals with their way forward.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ctime>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::RunSafemig;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

const std::string kExamples = std::string(SAFEMIG_SOURCE_DIR) + "/migrations-examples/sqlite";

class CliDeployTest : public ::testing::Test {
 protected:
  std::string Flags() const { return " --dir " + kExamples + " --url sqlite:shop.db"; }

  nlohmann::json Json(const std::string& args, int expected_exit = 0) {
    auto result = RunSafemig(args + " --format json" + Flags(), dir_.path());
    EXPECT_EQ(result.exit_code, expected_exit) << args << ": " << result.err;
    return nlohmann::json::parse(result.out);
  }

  // A private migrations directory: the examples plus `extra` files.
  std::string CopyWith(const std::map<std::string, std::string>& extra) {
    std::filesystem::copy(kExamples, dir_ / "migrations");
    for (const auto& [name, text] : extra) WriteFile(dir_ / "migrations" / name, text);
    return " --dir migrations --url sqlite:shop.db";
  }

  TempDir dir_;
};

TEST_F(CliDeployTest, DeployPrintsTheAgreedDocument) {
  auto json = Json("deploy");
  EXPECT_EQ(json["command"], "deploy");
  EXPECT_TRUE(json["ok"].get<bool>());
  EXPECT_EQ(json["verdict"], "go");
  EXPECT_TRUE(json["reasons"].empty());
  EXPECT_EQ(json["environment"], "default");
  EXPECT_TRUE(std::regex_match(json["plan_hash"].get<std::string>(), std::regex("[0-9a-f]{64}")));
  ASSERT_EQ(json["pending"].size(), 8u);
  EXPECT_EQ(json["pending"][0]["irreversible"], false);
  EXPECT_TRUE(json["lint"].is_array());
  std::set<std::string> gates;
  for (const auto& gate : json["gates"]) gates.insert(gate["name"].get<std::string>());
  for (const char* name : {"drift", "protected", "approval", "promotion", "window", "backup",
                           "deadline", "rehearsal"}) {
    EXPECT_EQ(gates.count(name), 1u) << name;
  }
  EXPECT_GT(json["backup"]["raw_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(json["backup"]["reused"], false);
  const auto& rehearsal = json["rehearsal"];
  EXPECT_EQ(rehearsal["status"], "passed");
  EXPECT_EQ(rehearsal["where"], "temporary file");
  EXPECT_TRUE(rehearsal["restore_ms"].is_number());
  ASSERT_EQ(rehearsal["migrations"].size(), 8u);
  for (const auto& m : rehearsal["migrations"]) {
    EXPECT_EQ(m["outcome"], "ok") << m.dump();
    EXPECT_TRUE(m["up_ms"].is_number() && m["down_ms"].is_number() && m["reapply_ms"].is_number());
  }
  EXPECT_TRUE(json["rollback"]["by_down_ms"].is_number());
  EXPECT_EQ(json["rollback"]["by_restore_ms"], rehearsal["restore_ms"]);
  EXPECT_EQ(json["rollback"]["backup_id"], json["backup"]["id"]);
  EXPECT_EQ(json["migrations"].size(), 8u);
  EXPECT_EQ(json["verified"], true);
  EXPECT_TRUE(json["run_id"].is_string());
}

TEST_F(CliDeployTest, UpRunsThePipelineAndSaysHowFastItCouldGoBack) {
  auto up = RunSafemig("up" + Flags(), dir_.path());
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_NE(up.out.find("Rehearsal"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("GO."), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("If something goes wrong, we can be back in about"), std::string::npos)
      << up.out;
  EXPECT_NE(up.out.find("by down-migrations, or"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("Done:"), std::string::npos) << up.out;
}

TEST_F(CliDeployTest, RehearseThenPlanReportsAPassingRehearsalAndTouchesNothing) {
  ASSERT_EQ(RunSafemig("up --steps 2" + Flags(), dir_.path()).exit_code, 0);
  auto plan = Json("plan");
  EXPECT_EQ(plan["command"], "plan");
  EXPECT_EQ(plan["pending"].size(), 6u);
  EXPECT_TRUE(plan["rehearsal"].is_null());
  EXPECT_TRUE(plan["backup_estimate_bytes"].is_number());
  auto rehearse = Json("rehearse");
  EXPECT_EQ(rehearse["command"], "rehearse");
  EXPECT_EQ(rehearse["verdict"], "go");
  EXPECT_EQ(rehearse["rehearsal"]["status"], "passed");
  auto status = Json("status");
  EXPECT_EQ(status["applied"], 2) << "a rehearsal applies nothing";
  auto again = Json("plan");
  EXPECT_EQ(again["plan_hash"], rehearse["plan_hash"]);
  EXPECT_EQ(again["rehearsal"]["status"], "passed");
  EXPECT_EQ(again["rehearsal"]["journal_id"], rehearse["rehearsal"]["journal_id"]);
  EXPECT_TRUE(again["rollback"]["by_down_ms"].is_number());
  // Deploy reuses it rather than rehearsing again.
  auto deploy = Json("deploy");
  EXPECT_EQ(deploy["rehearsal"]["journal_id"], rehearse["rehearsal"]["journal_id"]);
}

TEST_F(CliDeployTest, RehearsalNoGoExitsFiveNamingTheMigrationAndChangesNothing) {
  std::string flags = CopyWith({{"20991231000000_add_url.up.sql", "ALTER TABLE customers ADD COLUMN url TEXT;\n"},
                                {"20991231000000_add_url.down.sql", "SELECT 1;\n"}});
  ASSERT_EQ(RunSafemig("up --steps 8" + flags, dir_.path()).exit_code, 0);
  auto deploy = RunSafemig("deploy --format json" + flags, dir_.path());
  EXPECT_EQ(deploy.exit_code, 5) << deploy.err;
  auto json = nlohmann::json::parse(deploy.out);
  EXPECT_FALSE(json["ok"].get<bool>());
  EXPECT_EQ(json["verdict"], "no-go");
  ASSERT_EQ(json["reasons"].size(), 1u);
  EXPECT_NE(json["reasons"][0].get<std::string>().find(
                "20991231000000_add_url: down leaves the schema different"),
            std::string::npos)
      << json["reasons"][0];
  EXPECT_EQ(json["rehearsal"]["migrations"][0]["outcome"], "down_differs");
  EXPECT_NE(deploy.err.find("hint:"), std::string::npos) << deploy.err;
  auto status = nlohmann::json::parse(
      RunSafemig("status --format json" + flags, dir_.path()).out);
  EXPECT_EQ(status["pending"], 1);
}

TEST_F(CliDeployTest, ProtectedEnvironmentWithoutYesIsRefusedInCi) {
  WriteFile(dir_ / "safemig.toml", "[environments.production]\nurl = \"sqlite:prod.db\"\n"
                                   "protected = true\nmigrations = \"" + kExamples + "\"\n");
  auto refused = RunSafemig("deploy", dir_.path());
  EXPECT_EQ(refused.exit_code, 5) << refused.err;
  EXPECT_NE(refused.err.find("approval"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--yes"), std::string::npos) << refused.err;
  auto approved = RunSafemig("deploy --yes", dir_.path());
  EXPECT_EQ(approved.exit_code, 0) << approved.err;
}

TEST_F(CliDeployTest, WindowIsEnforcedAndAMalformedOneIsAConfigError) {
  // A window that is never now: one minute on the day before today, or the day after.
  WriteFile(dir_ / "safemig.toml", "[environments.staging]\nurl = \"sqlite:shop.db\"\n"
                                   "window = \"Mon-Fri 2:00-05:00 UTC\"\nmigrations = \"" +
                                       kExamples + "\"\n");
  auto malformed = RunSafemig("deploy", dir_.path());
  EXPECT_EQ(malformed.exit_code, 2) << malformed.err;
  EXPECT_NE(malformed.err.find("is not a window"), std::string::npos) << malformed.err;

  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  const std::string other_day = days[(utc.tm_wday + 3) % 7];
  WriteFile(dir_ / "safemig.toml", "[environments.staging]\nurl = \"sqlite:shop.db\"\n"
                                   "window = \"" + other_day + " 02:00-05:00 UTC\"\n"
                                   "migrations = \"" + kExamples + "\"\n");
  auto outside = RunSafemig("deploy", dir_.path());
  EXPECT_EQ(outside.exit_code, 5) << outside.err;
  EXPECT_NE(outside.err.find("outside the deploy window"), std::string::npos) << outside.err;
  EXPECT_NE(outside.err.find("--outside-window"), std::string::npos) << outside.err;
  auto forced = RunSafemig("deploy --outside-window 'hotfix INC-7'", dir_.path());
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  auto journal = nlohmann::json::parse(
      RunSafemig("history --journal --format json", dir_.path()).out);
  EXPECT_EQ(journal["journal"][0]["details"]["outside_window_reason"], "hotfix INC-7");
}

TEST_F(CliDeployTest, SkipBackupStillWorksOutsideProtectedEnvironments) {
  auto up = RunSafemig("up --skip-backup --format json" + Flags(), dir_.path());
  ASSERT_EQ(up.exit_code, 0) << up.err;
  auto json = nlohmann::json::parse(up.out);
  EXPECT_TRUE(json["backup"].is_null());
  EXPECT_EQ(json["migrations"].size(), 8u);
  for (const auto& gate : json["gates"]) {
    if (gate["name"] == "rehearsal") {
      EXPECT_EQ(gate["status"], "skip");
    }
  }
}

}  // namespace
}  // namespace safemig
