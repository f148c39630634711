// The watch engine: the pass rule of SQL checks for every kind of value, command checks
// (exit codes, captured output, a hung command stopped by its timeout), K-1 failing ticks
// versus K, the reset on a pass, the journal row, and Ctrl-C. Time is simulated: no test
// waits for the schedule.
#include "engine/watch.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/interrupt.h"
#include "test_util.h"

namespace safemig {
namespace {

using std::chrono::milliseconds;
using testing::TempDir;

QueryResult Rows(std::vector<std::vector<std::optional<std::string>>> rows) {
  QueryResult result;
  result.columns = {"ok"};
  result.rows = std::move(rows);
  return result;
}

TEST(EvaluateQueryResult, TrueAndNonZeroNumbersPass) {
  for (const char* value : {"t", "true", "TRUE", "True", "1", "42", "-3", "0.5", "1e3", " 1 "}) {
    CheckResult r = EvaluateQueryResult(Rows({{std::string(value)}}));
    EXPECT_TRUE(r.passed) << value;
    EXPECT_EQ(r.detail, "") << value;
  }
}

TEST(EvaluateQueryResult, FalseZeroAndNullFailSayingWhatCameBack) {
  for (const char* value : {"f", "false", "FALSE", "0", "0.0", "-0", "00", "0e5"}) {
    CheckResult r = EvaluateQueryResult(Rows({{std::string(value)}}));
    EXPECT_FALSE(r.passed) << value;
    EXPECT_EQ(r.detail.rfind("returned ", 0), 0u) << value << ": " << r.detail;
  }
  CheckResult null = EvaluateQueryResult(Rows({{std::nullopt}}));
  EXPECT_FALSE(null.passed);
  EXPECT_EQ(null.detail, "returned NULL");
}

TEST(EvaluateQueryResult, AnyOtherValueIsARowAndPasses) {
  for (const char* value : {"hello", "", "inf", "nan", "0x10", "2026-11-26", "f00"}) {
    EXPECT_TRUE(EvaluateQueryResult(Rows({{std::string(value)}})).passed) << value;
  }
  // Only the first column of the first row counts.
  EXPECT_TRUE(EvaluateQueryResult(Rows({{std::string("1"), std::string("0")}})).passed);
  EXPECT_FALSE(EvaluateQueryResult(Rows({{std::string("0")}, {std::string("1")}})).passed);
}

TEST(EvaluateQueryResult, NoRowsFails) {
  CheckResult r = EvaluateQueryResult(Rows({}));
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.detail, "no rows");
}

TEST(ParseCheckSpec, NamePrefixIsOptional) {
  CheckSpec named = ParseCheckSpec(CheckKind::kSql, "orders_ok: SELECT count(*) FROM orders", 1);
  EXPECT_EQ(named.name, "orders_ok");
  EXPECT_EQ(named.text, "SELECT count(*) FROM orders");
  CheckSpec plain = ParseCheckSpec(CheckKind::kSql, "SELECT 'a: b'", 2);
  EXPECT_EQ(plain.name, "sql2");
  EXPECT_EQ(plain.text, "SELECT 'a: b'");
  CheckSpec command = ParseCheckSpec(CheckKind::kCommand, "curl -fsS http://x:8080/health", 1);
  EXPECT_EQ(command.name, "cmd1");
  CheckSpec api = ParseCheckSpec(CheckKind::kCommand, "api-health: curl -fsS http://x/", 1);
  EXPECT_EQ(api.name, "api-health");
  EXPECT_EQ(api.text, "curl -fsS http://x/");
}

TEST(FailureCounter, TriggersOnKConsecutiveFailuresAndAPassResets) {
  FailureCounter counter(3);
  EXPECT_EQ(counter.Record(false), 1);
  EXPECT_EQ(counter.Record(false), 2);
  EXPECT_FALSE(counter.Triggered());
  EXPECT_EQ(counter.Record(true), 0);
  EXPECT_EQ(counter.Record(false), 1);
  EXPECT_EQ(counter.Record(false), 2);
  EXPECT_FALSE(counter.Triggered());
  EXPECT_EQ(counter.Record(false), 3);
  EXPECT_TRUE(counter.Triggered());
}

TEST(MergeWatchSettings, CommandLineBeatsEnvironmentBeatsDefaultsAndChecksAdd) {
  WatchConfig config;
  config.checks = {"orders_ok: SELECT 1"};
  config.every = milliseconds(5000);
  config.failures = 5;
  config.auto_rollback = true;
  WatchFlags flags;
  flags.every = milliseconds(50);
  flags.check_cmds = {"true"};
  WatchPlan plan = MergeWatchSettings(config, flags);
  EXPECT_EQ(plan.settings.every, milliseconds(50));
  EXPECT_EQ(plan.settings.failures, 5);
  EXPECT_TRUE(plan.settings.auto_rollback);
  EXPECT_EQ(plan.settings.duration, std::chrono::minutes(30));
  ASSERT_EQ(plan.checks.size(), 2u);
  EXPECT_EQ(plan.checks[0].name, "orders_ok");
  EXPECT_EQ(plan.checks[1].name, "cmd1");

  flags.auto_rollback = false;
  flags.skip_config_checks = true;
  plan = MergeWatchSettings(config, flags);
  EXPECT_FALSE(plan.settings.auto_rollback);
  ASSERT_EQ(plan.checks.size(), 1u);
  EXPECT_EQ(plan.checks[0].kind, CheckKind::kCommand);

  flags.check_cmds.clear();
  try {
    MergeWatchSettings(config, flags);
    ADD_FAILURE() << "no checks must be a usage error";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kUsage);
    EXPECT_NE(std::string(e.hint()).find("--check"), std::string::npos);
  }
}

TEST(PlannedTicks, ForDividedByEveryRoundedUp) {
  WatchSettings s;
  EXPECT_EQ(PlannedTicks(s), 60);  // 30 min every 30 s
  s.duration = milliseconds(200);
  s.every = milliseconds(50);
  EXPECT_EQ(PlannedTicks(s), 4);
  s.duration = milliseconds(210);
  EXPECT_EQ(PlannedTicks(s), 5);
  s.duration = milliseconds(10);
  EXPECT_EQ(PlannedTicks(s), 1);
}

// Command checks ---------------------------------------------------------------------

TEST(RunShellCommand, CapturesOutputAndExitCode) {
  CommandRun ok = RunShellCommand("echo starting; echo all good", milliseconds(5000));
  ASSERT_TRUE(ok.exit_code);
  EXPECT_EQ(*ok.exit_code, 0);
  EXPECT_EQ(ok.last_line, "all good");
  CommandRun failed =
      RunShellCommand("echo 'curl: (7) Failed to connect' >&2; echo; exit 3", milliseconds(5000));
  ASSERT_TRUE(failed.exit_code);
  EXPECT_EQ(*failed.exit_code, 3);
  EXPECT_EQ(failed.last_line, "curl: (7) Failed to connect");
  EXPECT_FALSE(failed.timed_out);
}

TEST(RunShellCommand, AHungCommandIsStoppedAtItsTimeout) {
  const auto start = std::chrono::steady_clock::now();
  CommandRun hung = RunShellCommand("echo waiting; sleep 30", milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(hung.timed_out);
  EXPECT_FALSE(hung.exit_code);
  EXPECT_EQ(hung.last_line, "waiting");
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(RunShellCommand, ABackgroundChildHoldingTheOutputDoesNotHangTheCheck) {
  const auto start = std::chrono::steady_clock::now();
  CommandRun run = RunShellCommand("sleep 20 & echo done", milliseconds(10000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_TRUE(run.exit_code);
  EXPECT_EQ(*run.exit_code, 0);
}

TEST(CommandCheck, FailureShowsExitCodeAndLastLineRedacted) {
  auto check = MakeCommandCheck(
      ParseCheckSpec(CheckKind::kCommand,
                     "api: echo 'GET postgres://app:hunter2@db/x failed'; exit 1", 1),
      milliseconds(5000));
  CheckResult r = check->Run();
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.name, "api");
  EXPECT_EQ(r.detail.rfind("exit 1: GET postgres://app:***@db/x", 0), 0u) << r.detail;
  EXPECT_EQ(r.detail.find("hunter2"), std::string::npos);
  auto timeout =
      MakeCommandCheck(ParseCheckSpec(CheckKind::kCommand, "sleep 5", 1), milliseconds(100));
  CheckResult t = timeout->Run();
  EXPECT_FALSE(t.passed);
  EXPECT_EQ(t.detail.rfind("timed out after", 0), 0u) << t.detail;
}

// SQL checks on a SQLite file ----------------------------------------------------------

class SqlCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = ParseDatabaseUrl("sqlite:" + (dir_ / "app.db").string());
    auto driver = OpenDriver(url_);
    driver->EnsureMetadata();
    driver->QueryText("CREATE TABLE orders (id INTEGER PRIMARY KEY, paid INTEGER)");
    driver->QueryText("INSERT INTO orders (paid) VALUES (1), (0)");
  }
  std::unique_ptr<CheckConnection> Connection() {
    DatabaseUrl url = url_;
    return std::make_unique<CheckConnection>(
        [url] {
          return OpenDriver(url, OpenOptions{false, 1});
        },
        milliseconds(2000));
  }
  CheckResult Run(CheckConnection& connection, const std::string& sql) {
    return MakeSqlCheck(ParseCheckSpec(CheckKind::kSql, sql, 1), connection)->Run();
  }

  TempDir dir_;
  DatabaseUrl url_;
};

TEST_F(SqlCheckTest, RowsValuesAndErrors) {
  auto connection = Connection();
  EXPECT_TRUE(Run(*connection, "SELECT count(*) FROM orders").passed);
  EXPECT_TRUE(Run(*connection, "SELECT id FROM orders WHERE paid = 1").passed);
  CheckResult none = Run(*connection, "SELECT id FROM orders WHERE paid = 7");
  EXPECT_FALSE(none.passed);
  EXPECT_EQ(none.detail, "no rows");
  EXPECT_FALSE(Run(*connection, "SELECT count(*) FROM orders WHERE paid = 7").passed);
  CheckResult broken = Run(*connection, "SELECT * FROM nowhere");
  EXPECT_FALSE(broken.passed);
  EXPECT_NE(broken.detail.find("no such table: nowhere"), std::string::npos) << broken.detail;
  // The connection comes back after an error.
  EXPECT_TRUE(Run(*connection, "SELECT 1").passed);
}

TEST_F(SqlCheckTest, ChecksCannotWrite) {
  auto connection = Connection();
  CheckResult write = Run(*connection, "DELETE FROM orders RETURNING id");
  EXPECT_FALSE(write.passed);
  EXPECT_NE(write.detail.find("readonly"), std::string::npos) << write.detail;
  auto driver = OpenDriver(url_);
  EXPECT_EQ(driver->QueryText("SELECT count(*) FROM orders").rows[0][0], "2");
}

// The loop ---------------------------------------------------------------------------

// A check whose results are scripted tick by tick (true = pass); passes once the script
// runs out. `on_run` lets a test act during a tick.
class ScriptedCheck : public Check {
 public:
  ScriptedCheck(std::string name, std::deque<bool> script)
      : spec_{CheckKind::kSql, std::move(name), "SELECT secret_token_text"},
        script_(std::move(script)) {}
  const CheckSpec& spec() const override { return spec_; }
  CheckResult Run() override {
    ++runs;
    if (on_run) on_run(runs);
    CheckResult r;
    r.name = spec_.name;
    r.passed = script_.empty() ? true : script_.front();
    if (!script_.empty()) script_.pop_front();
    if (!r.passed) r.detail = "returned 0";
    r.took = milliseconds(3);
    return r;
  }
  int runs = 0;
  std::function<void(int)> on_run;

 private:
  CheckSpec spec_;
  std::deque<bool> script_;
};

class WatchLoopTest : public SqlCheckTest {
 protected:
  void SetUp() override {
    SqlCheckTest::SetUp();
    driver_ = OpenDriver(url_);
    request_.environment.name = "production";
    request_.settings.every = milliseconds(30'000);
    request_.settings.duration = std::chrono::minutes(5);  // 10 ticks
    request_.settings.failures = 3;
    request_.clock.now = [this] { return now_; };
    request_.clock.sleep = [this](milliseconds d) {
      now_ += d;
      slept_ += d;
    };
    request_.on_tick = [this](const WatchTick& tick) { ticks_.push_back(tick); };
  }
  ScriptedCheck& Add(const std::string& name, std::deque<bool> script) {
    auto check = std::make_unique<ScriptedCheck>(name, std::move(script));
    ScriptedCheck& ref = *check;
    request_.checks.push_back(std::move(check));
    return ref;
  }
  JournalEntry Row() { return driver_->ReadJournal(1).at(0); }

  std::unique_ptr<Driver> driver_;
  WatchRequest request_;
  std::chrono::steady_clock::time_point now_{};
  milliseconds slept_{0};
  std::vector<WatchTick> ticks_;
  Reporter reporter_;
};

TEST_F(WatchLoopTest, HealthyRunsEveryTickOnScheduleAndJournalsHealthy) {
  Add("orders_ok", {});
  int triggered = 0;
  request_.on_trigger = [&](const WatchOutcome&) {
    ++triggered;
    return TriggerResponse{};
  };
  WatchOutcome outcome = Watch(driver_, request_, reporter_);
  EXPECT_EQ(outcome.verdict, WatchVerdict::kHealthy);
  EXPECT_EQ(outcome.outcome, "healthy");
  EXPECT_EQ(outcome.ticks, 10);
  EXPECT_EQ(ticks_.size(), 10u);
  EXPECT_EQ(slept_, std::chrono::minutes(5));
  EXPECT_EQ(triggered, 0);
  JournalEntry row = Row();
  EXPECT_EQ(row.kind, "watch");
  EXPECT_EQ(row.environment, "production");
  EXPECT_EQ(row.outcome, "healthy");
  EXPECT_FALSE(row.finished_at.empty());
  auto details = nlohmann::json::parse(row.details);
  EXPECT_EQ(details["ticks"], 10);
  EXPECT_EQ(details["checks"][0]["name"], "orders_ok");
  EXPECT_EQ(row.details.find("secret_token_text"), std::string::npos) << "check text journaled";
}

TEST_F(WatchLoopTest, KMinusOneFailuresThenAPassDoNotTrigger) {
  Add("orders_ok", {true, false, false, true, false, false});
  Add("api", {});
  bool triggered = false;
  request_.on_trigger = [&](const WatchOutcome&) {
    triggered = true;
    return TriggerResponse{};
  };
  WatchOutcome outcome = Watch(driver_, request_, reporter_);
  EXPECT_FALSE(triggered);
  EXPECT_EQ(outcome.verdict, WatchVerdict::kHealthy);
  EXPECT_EQ(outcome.ticks, 10);
  EXPECT_EQ(ticks_[2].consecutive_failures, 2);
  EXPECT_EQ(ticks_[3].consecutive_failures, 0);
  EXPECT_EQ(outcome.failed_ticks, (std::vector<int>{4, 0}));
  EXPECT_EQ(Row().outcome, "healthy");
}

TEST_F(WatchLoopTest, KConsecutiveFailuresTriggerOnceAndStopTheWatch) {
  Add("orders_ok", {true, false, true, false, false, false});
  Add("api", {true, true, true, true, true, false});
  std::string reason;
  request_.on_trigger = [&](const WatchOutcome& o) {
    reason = o.trigger;
    // The row is still running while the caller rolls back.
    EXPECT_EQ(Row().outcome, "running");
    TriggerResponse response;
    response.outcome = "rolled_back";
    response.details = {{"rollback", {{"strategy", "down"}}}};
    return response;
  };
  WatchOutcome outcome = Watch(driver_, request_, reporter_);
  EXPECT_EQ(outcome.verdict, WatchVerdict::kFailed);
  EXPECT_EQ(outcome.ticks, 6);
  EXPECT_EQ(reason, "watch: 3 consecutive failing checks (orders_ok, api)");
  EXPECT_EQ(outcome.outcome, "rolled_back");
  JournalEntry row = Row();
  EXPECT_EQ(row.outcome, "rolled_back");
  auto details = nlohmann::json::parse(row.details);
  EXPECT_EQ(details["consecutive_failures"], 3);
  EXPECT_EQ(details["trigger"], reason);
  EXPECT_EQ(details["rollback"]["strategy"], "down");
}

TEST_F(WatchLoopTest, ARowTakenAwayByARestoreIsWrittenAgain) {
  Add("orders_ok", {false, false, false});
  request_.on_trigger = [this](const WatchOutcome&) {
    // What an in-place restore of the pre-deploy backup does to rows written since.
    driver_->QueryText("DELETE FROM safemig_journal");
    driver_ = OpenDriver(url_);
    TriggerResponse response;
    response.outcome = "rolled_back";
    return response;
  };
  Watch(driver_, request_, reporter_);
  JournalEntry row = Row();
  EXPECT_EQ(row.kind, "watch");
  EXPECT_EQ(row.outcome, "rolled_back");
  EXPECT_EQ(nlohmann::json::parse(row.details)["ticks"], 3);
}

TEST_F(WatchLoopTest, WithoutAResponderTheWatchEndsFailed) {
  Add("orders_ok", {false, false, false});
  WatchOutcome outcome = Watch(driver_, request_, reporter_);
  EXPECT_EQ(outcome.verdict, WatchVerdict::kFailed);
  EXPECT_EQ(outcome.ticks, 3);
  EXPECT_EQ(Row().outcome, "failed");
}

TEST_F(WatchLoopTest, AFailingRollbackFinishesTheRowFailedAndPropagates) {
  Add("orders_ok", {false, false, false});
  request_.on_trigger = [](const WatchOutcome&) -> TriggerResponse {
    throw Error(Category::kNeedsPerson, "the schema differs after the rollback");
  };
  EXPECT_THROW(Watch(driver_, request_, reporter_), Error);
  JournalEntry row = Row();
  EXPECT_EQ(row.outcome, "failed");
  EXPECT_NE(row.details.find("the schema differs"), std::string::npos);
}

TEST_F(WatchLoopTest, CtrlCStopsTheWatchAndJournalsInterrupted) {
  ScriptedCheck& check = Add("orders_ok", {});
  check.on_run = [](int run) {
    if (run == 2) SetInterruptedForTesting(true);
  };
  try {
    Watch(driver_, request_, reporter_);
    ADD_FAILURE() << "an interrupt must stop the watch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("interrupted while watching"), std::string::npos);
  }
  SetInterruptedForTesting(false);
  JournalEntry row = Row();
  EXPECT_EQ(row.outcome, "interrupted");
  EXPECT_FALSE(row.finished_at.empty());
}

TEST_F(WatchLoopTest, JournalIsUpdatedEveryTick) {
  ScriptedCheck& check = Add("orders_ok", {});
  check.on_run = [this](int run) {
    if (run == 4) {
      auto details = nlohmann::json::parse(Row().details);
      EXPECT_EQ(Row().outcome, "running");
      EXPECT_EQ(details["ticks"], 3);
    }
  };
  Watch(driver_, request_, reporter_);
}

}  // namespace
}  // namespace safemig
