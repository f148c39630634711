// The post-deploy watch behind `safemig watch` and `deploy --watch`: health checks run
// every tick for a while; K consecutive failing ticks are the signal to roll back.
//
//   journal "running" -> tick: run every check -> decide -> sleep -> ... ->
//   journal "healthy" | "failed" | "rolled_back" | "interrupted"
//
// A check is SQL run on a connection of its own (read-only, with a statement timeout) or a
// shell command (with a timeout, its output captured). The loop holds no migration lock:
// watching must not block a rollback, which takes the lock itself. What happens on the
// trigger (printing the rollback plan, or rolling back) is the caller's, through
// WatchRequest::on_trigger; this module only decides. Time comes from an injected clock so
// tests do not wait. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "driver/driver.h"
#include "engine/reporter.h"

namespace safemig {

enum class CheckKind { kSql, kCommand };

// One check as written: "orders_ok: SELECT count(*) > 0 FROM orders" names it orders_ok;
// without a "NAME: " prefix it is called sql1, sql2, ... or cmd1, cmd2, ... by position.
// `text` may hold secrets (a token in a curl command): it is never printed or journaled.
struct CheckSpec {
  CheckKind kind = CheckKind::kSql;
  std::string name;
  std::string text;
};

// Splits an optional "NAME: " prefix (NAME: letters, digits, '_', '-', '.'; a colon and a
// space after it) from `text`. `position` (1-based, per kind) makes the default name.
CheckSpec ParseCheckSpec(CheckKind kind, std::string_view text, int position);

struct CheckResult {
  std::string name;
  CheckKind kind = CheckKind::kSql;
  bool passed = false;
  // What a person needs to see, redacted: "no rows", "returned 0", "exit 1: curl: (7) ...",
  // "timed out after 10 s", "error: ...". Empty for a plain pass.
  std::string detail;
  std::chrono::milliseconds took{0};
};

// The pass rule of an SQL check, on the first column of the first row: "t", "true", "1"
// or any non-zero number pass; "f", "false", "0" (any zero number) and NULL fail; any other
// value passes (the check returned a row); no rows fail. Case-insensitive; surrounding
// blanks ignored. Pure.
CheckResult EvaluateQueryResult(const QueryResult& result);

// A check the loop can run. Run() never throws for a failing check: errors are a failed
// CheckResult.
class Check {
 public:
  virtual ~Check() = default;
  virtual const CheckSpec& spec() const = 0;
  virtual CheckResult Run() = 0;
};

// Opens the connection SQL checks run on (a fresh one each time it is called).
using DriverOpener = std::function<std::unique_ptr<Driver>()>;

// The connection every SQL check of one watch shares, apart from the one that writes the
// journal: opened on first use, made read-only, each statement limited to `timeout`
// (PostgreSQL statement_timeout, MariaDB max_statement_time / MySQL max_execution_time;
// SQLite: query_only and a busy timeout), and reopened after an error so a restarted
// server does not fail every later tick.
class CheckConnection {
 public:
  CheckConnection(DriverOpener open, std::chrono::milliseconds timeout);
  // Throws what the driver throws.
  QueryResult Query(const std::string& sql);
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  void Open();
  DriverOpener open_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Driver> driver_;
};

std::unique_ptr<Check> MakeSqlCheck(CheckSpec spec, CheckConnection& connection);
// Runs `spec.text` with /bin/sh -c; passes on exit 0.
std::unique_ptr<Check> MakeCommandCheck(CheckSpec spec, std::chrono::milliseconds timeout);

// One run of a shell command with its output captured (never mixed into ours).
struct CommandRun {
  std::optional<int> exit_code;  // nullopt when killed by a signal or the timeout
  int signal = 0;
  bool timed_out = false;
  bool interrupted = false;  // Ctrl-C arrived while it ran; it was stopped
  std::string last_line;     // last non-blank line of stdout+stderr, at most 200 characters
  std::chrono::milliseconds took{0};
};
// Runs `command` with /bin/sh -c in a process group of its own, stdin from /dev/null, and
// stops the whole group when `timeout` passes or an interrupt arrives (SIGTERM, then
// SIGKILL). Memory stays bounded whatever it prints. Throws Error(kInternal) when the shell
// cannot be started.
CommandRun RunShellCommand(const std::string& command, std::chrono::milliseconds timeout);

// The settings of one watch after merging the environment's [watch] table and the command
// line (docs/watch.md).
struct WatchSettings {
  std::chrono::milliseconds duration{std::chrono::minutes(30)};  // --for
  std::chrono::milliseconds every{std::chrono::seconds(30)};
  int failures = 3;  // consecutive failing ticks that trigger
  bool auto_rollback = false;
  std::chrono::milliseconds check_timeout{std::chrono::seconds(10)};
  std::optional<std::chrono::milliseconds> rollback_deadline;
};

// Merges: a value given on the command line beats the environment's, which beats the
// default. Checks: the environment's first, then the command line's (unless
// `skip_config_checks`). Throws Error(kUsage) when no check is left or a value is out of
// range (every and for must be positive, failures at least 1).
struct WatchFlags {
  std::optional<std::chrono::milliseconds> duration;
  std::optional<std::chrono::milliseconds> every;
  std::optional<int> failures;
  std::optional<bool> auto_rollback;
  std::optional<std::chrono::milliseconds> check_timeout;
  std::optional<std::chrono::milliseconds> rollback_deadline;
  std::vector<std::string> checks;      // SQL
  std::vector<std::string> check_cmds;  // shell
  bool skip_config_checks = false;
};
struct WatchPlan {
  WatchSettings settings;
  std::vector<CheckSpec> checks;
};
WatchPlan MergeWatchSettings(const WatchConfig& config, const WatchFlags& flags);

// How many ticks a watch runs when nothing triggers: for / every, rounded up, at least 1.
int PlannedTicks(const WatchSettings& settings);

struct WatchTick {
  int number = 0;  // 1-based
  int planned = 0;
  std::chrono::system_clock::time_point at;
  std::vector<CheckResult> results;
  bool passed = false;
  int consecutive_failures = 0;  // including this tick
};

// What the loop decided. kFailed: `failures` consecutive failing ticks.
enum class WatchVerdict { kHealthy, kFailed, kInterrupted };
const char* WatchVerdictName(WatchVerdict verdict);  // "healthy", "failed", "interrupted"

// Counts consecutive failing ticks and says when they trigger. Pure; the loop's decision.
class FailureCounter {
 public:
  explicit FailureCounter(int threshold) : threshold_(threshold) {}
  // Records one tick; returns the consecutive failures including it (0 after a pass).
  int Record(bool tick_passed);
  bool Triggered() const { return consecutive_ >= threshold_; }
  int consecutive() const { return consecutive_; }

 private:
  int threshold_;
  int consecutive_ = 0;
};

// Time as the loop sees it; tests replace both so no real time passes.
struct WatchClock {
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
  std::function<std::chrono::system_clock::time_point()> wall = [] {
    return std::chrono::system_clock::now();
  };
  // Sleeps up to `duration`, returning early when an interrupt arrives.
  std::function<void(std::chrono::milliseconds)> sleep;  // empty: real, interruptible sleep
};

struct WatchOutcome {
  WatchVerdict verdict = WatchVerdict::kHealthy;
  // The journal's final outcome: "healthy", "failed", "rolled_back", "interrupted".
  std::string outcome;
  int ticks = 0;
  int planned_ticks = 0;
  int consecutive_failures = 0;
  std::string trigger;            // "watch: 3 consecutive failing checks (orders_ok)"
  std::vector<CheckResult> last;  // the last tick's results
  std::vector<int> failed_ticks;  // per check (as ordered in the plan), all ticks
  std::chrono::milliseconds took{0};
  std::int64_t journal_id = 0;
  std::string deploy_id;    // the deploy being watched, when there is one
  std::string version;      // the database's version while watching
  nlohmann::json response;  // what on_trigger returned (rollback plan or outcome)
};

// What to do on the trigger; returns the final journal outcome ("failed" or
// "rolled_back") and what to record about it. May throw (a rollback that fails): the
// journal row is then finished "failed" with the error, and the exception propagates.
struct TriggerResponse {
  std::string outcome = "failed";
  nlohmann::json details = nlohmann::json::object();
};

struct WatchRequest {
  Environment environment;
  WatchSettings settings;
  std::vector<std::unique_ptr<Check>> checks;
  std::string deploy_id;  // the watched deploy; empty: the newest one in history
  WatchClock clock;
  std::function<void(const WatchTick&)> on_tick;
  std::function<TriggerResponse(const WatchOutcome&)> on_trigger;
};

// The watch. `journal` is the target's connection, used only for history and the journal
// row (never for checks); on_trigger may replace it (a restore-based rollback), and a row
// the restore took away is written again. Throws Error(kMigrationFailed) "interrupted
// while watching" after journaling "interrupted", and what on_trigger throws. Journal
// write failures are reported as warnings and do not stop the watch (the database may be
// what is failing).
WatchOutcome Watch(std::unique_ptr<Driver>& journal, WatchRequest& request, Reporter& reporter);

// The document of docs/json-output.md ("watch"), without "command" and "ok".
nlohmann::json WatchJson(const WatchOutcome& outcome, const WatchSettings& settings);

// "watch: 3 consecutive failing checks (orders_ok, api_health)": the rollback's reason.
std::string TriggerReason(int failures, const std::vector<CheckResult>& last);

}  // namespace safemig
