// The deploy gates as pure policy checks, and the deploy window as written in safemig.toml.
#include "engine/gates.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_util.h"

namespace safemig {
namespace {

using std::chrono::system_clock;

// 2026-11-23 was a Monday.
system_clock::time_point At(int day_of_november, int hour, int minute) {
  std::tm tm{};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 10;
  tm.tm_mday = day_of_november;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  return system_clock::from_time_t(::timegm(&tm));
}

TEST(DeployWindow, WeekdayMorningsInUtc) {
  DeployWindow window = ParseDeployWindow("Mon-Fri 02:00-05:00 UTC", "window");
  EXPECT_TRUE(window.Contains(At(23, 2, 0)));    // Monday 02:00
  EXPECT_TRUE(window.Contains(At(27, 4, 59)));   // Friday 04:59
  EXPECT_FALSE(window.Contains(At(27, 5, 0)));   // Friday 05:00: the end is exclusive
  EXPECT_FALSE(window.Contains(At(23, 1, 59)));  // Monday before it opens
  EXPECT_FALSE(window.Contains(At(28, 3, 0)));   // Saturday
}

TEST(DeployWindow, SpanAcrossMidnightBelongsToTheDayItStarts) {
  DeployWindow window = ParseDeployWindow("Fri 22:00-02:00 UTC", "window");
  EXPECT_TRUE(window.Contains(At(27, 23, 0)));  // Friday night
  EXPECT_TRUE(window.Contains(At(28, 1, 30)));  // Saturday early morning
  EXPECT_FALSE(window.Contains(At(27, 1, 30)));  // Friday early morning is Thursday's night
  EXPECT_FALSE(window.Contains(At(28, 22, 30)));
}

TEST(DeployWindow, DayListsAndRanges) {
  DeployWindow window = ParseDeployWindow("Mon,Wed-Thu,Sun 00:00-24:00 UTC", "window");
  EXPECT_TRUE(window.Contains(At(23, 12, 0)));   // Mon
  EXPECT_FALSE(window.Contains(At(24, 12, 0)));  // Tue
  EXPECT_TRUE(window.Contains(At(26, 23, 59)));  // Thu
  EXPECT_TRUE(window.Contains(At(29, 0, 0)));    // Sun
}

TEST(DeployWindow, AnythingElseIsAConfigErrorNamingWhere) {
  for (const char* bad :
       {"Mon-Fri 2:00-05:00 UTC", "Mon-Fri 02:00-05:00", "Mon-Fri 02:00-05:00 CET",
        "Fri-Mon 02:00-05:00 UTC", "Mon-Fri 02:60-05:00 UTC", "Monday 02:00-05:00 UTC",
        "Mon-Fri  02:00-05:00 UTC", "Mon,Mon 02:00-05:00 UTC", "Mon 02:00-02:00 UTC",
        "Mon 02:00 UTC", ""}) {
    try {
      ParseDeployWindow(bad, "safemig.toml:4: environments.prod.window");
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), Category::kConfig) << bad;
      EXPECT_NE(std::string(e.what()).find("environments.prod.window"), std::string::npos);
      EXPECT_NE(e.hint().find("Mon-Fri 02:00-05:00 UTC"), std::string::npos);
    }
  }
}

TEST(DeployWindow, ConfigFileKeysAreReadAndAMalformedWindowStopsLoading) {
  testing::TempDir dir;
  testing::WriteFile(dir / "safemig.toml",
                     "[environments.staging]\nurl = \"sqlite:staging.db\"\n"
                     "[environments.prod]\nurl = \"sqlite:prod.db\"\nprotected = true\n"
                     "promote_from = \"staging\"\nwindow = \"Mon-Fri 02:00-05:00 UTC\"\n"
                     "max_duration = \"15m\"\nrehearsal_max_age = \"2h\"\n"
                     "rehearsal_url = \"sqlite:scratch.db\"\n");
  Config config = LoadConfig(dir / "safemig.toml");
  const Environment& prod = config.environments.at("prod");
  EXPECT_EQ(prod.promote_from, "staging");
  ASSERT_TRUE(prod.window);
  EXPECT_EQ(prod.window->text, "Mon-Fri 02:00-05:00 UTC");
  EXPECT_EQ(prod.max_duration, std::chrono::minutes(15));
  EXPECT_EQ(prod.rehearsal_max_age, std::chrono::hours(2));
  EXPECT_EQ(prod.rehearsal_url, "sqlite:scratch.db");
  EXPECT_EQ(config.environments.at("staging").rehearsal_max_age, std::chrono::hours(24));

  testing::WriteFile(dir / "safemig.toml",
                     "[environments.prod]\nurl = \"sqlite:prod.db\"\nwindow = \"weekdays\"\n");
  EXPECT_THROW(LoadConfig(dir / "safemig.toml"), Error);
  testing::WriteFile(dir / "safemig.toml",
                     "[environments.prod]\nurl = \"sqlite:prod.db\"\npromote_from = \"stagin\"\n");
  try {
    LoadConfig(dir / "safemig.toml");
    ADD_FAILURE() << "promote_from of an unknown environment accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kConfig);
    EXPECT_NE(std::string(e.what()).find("stagin"), std::string::npos);
  }
}

Environment Env(bool is_protected) {
  Environment env;
  env.name = "production";
  env.is_protected = is_protected;
  return env;
}

PlannedStep Step(const std::string& version, const std::string& checksum) {
  PlannedStep step;
  step.version = version;
  step.name = "m" + version;
  step.row.checksum = checksum;
  return step;
}

HistoryRow Applied(const std::string& version, const std::string& checksum) {
  HistoryRow row;
  row.version = version;
  row.checksum = checksum;
  return row;
}

TEST(Gates, ProtectedEnvironmentRefusesSkipBackupApprovalAndMissingRehearsal) {
  EXPECT_EQ(ProtectedGate(Env(false), true).status, GateStatus::kSkip);
  EXPECT_EQ(ProtectedGate(Env(true), false).status, GateStatus::kPass);
  EXPECT_EQ(ProtectedGate(Env(true), true).status, GateStatus::kFail);
  EXPECT_EQ(ApprovalGate(Env(true), false, false).status, GateStatus::kFail);
  EXPECT_EQ(ApprovalGate(Env(true), true, false).status, GateStatus::kPass);
  EXPECT_EQ(ApprovalGate(Env(true), false, true).status, GateStatus::kPass);
  EXPECT_EQ(RehearsalGate(Env(true), "missing", "none").status, GateStatus::kFail);
  EXPECT_EQ(RehearsalGate(Env(true), "stale", "old").status, GateStatus::kFail);
  EXPECT_EQ(RehearsalGate(Env(false), "missing", "none").status, GateStatus::kSkip);
  EXPECT_EQ(RehearsalGate(Env(false), "failed", "down fails").status, GateStatus::kFail);

  std::optional<Error> refusal =
      Refusal({ProtectedGate(Env(true), false), RehearsalGate(Env(true), "missing", "none")});
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->category(), Category::kNoGo);
  EXPECT_NE(std::string(refusal->what()).find("gate rehearsal"), std::string::npos);
  EXPECT_NE(refusal->hint().find("safemig rehearse"), std::string::npos);
}

TEST(Gates, PromotionNeedsEveryPendingMigrationAppliedThereWithTheSameChecksum) {
  Environment env = Env(true);
  env.promote_from = "staging";
  const std::vector<PlannedStep> pending = {Step("1", "aaa"), Step("2", "bbb")};
  EXPECT_EQ(PromotionGate(env, pending, std::vector<HistoryRow>{Applied("1", "aaa"),
                                                                Applied("2", "bbb")},
                          "")
                .status,
            GateStatus::kPass);
  Gate missing = PromotionGate(env, pending, std::vector<HistoryRow>{Applied("1", "aaa")}, "");
  EXPECT_EQ(missing.status, GateStatus::kFail);
  EXPECT_NE(missing.detail.find("2_m2 is not applied in staging"), std::string::npos);
  Gate edited = PromotionGate(
      env, pending, std::vector<HistoryRow>{Applied("1", "aaa"), Applied("2", "ccc")}, "");
  EXPECT_EQ(edited.status, GateStatus::kFail);
  EXPECT_NE(edited.detail.find("different contents"), std::string::npos);
  Gate unreachable = PromotionGate(env, pending, std::nullopt, "connection refused");
  EXPECT_EQ(unreachable.status, GateStatus::kFail);
  EXPECT_NE(unreachable.detail.find("connection refused"), std::string::npos);
  EXPECT_EQ(PromotionGate(Env(true), pending, std::nullopt, "").status, GateStatus::kSkip);
}

TEST(Gates, WindowPassesInsideOrWithAReason) {
  Environment env = Env(false);
  env.window = ParseDeployWindow("Mon-Fri 02:00-05:00 UTC", "window");
  EXPECT_EQ(WindowGate(env, At(23, 3, 0), "").status, GateStatus::kPass);
  Gate outside = WindowGate(env, At(23, 12, 0), "");
  EXPECT_EQ(outside.status, GateStatus::kFail);
  EXPECT_NE(outside.hint.find("--outside-window"), std::string::npos);
  Gate forced = WindowGate(env, At(23, 12, 0), "incident 42");
  EXPECT_EQ(forced.status, GateStatus::kPass);
  EXPECT_NE(forced.detail.find("incident 42"), std::string::npos);
  EXPECT_EQ(WindowGate(Env(false), At(23, 12, 0), "").status, GateStatus::kSkip);
}

}  // namespace
}  // namespace safemig
