// `watch` and `deploy --watch`: options, wiring and the live tick lines. The loop and the
// decision are engine/watch.h; what happens on the trigger (the rollback plan printed, or
// the rollback run) is wired here.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <iostream>

#include "cli/commands.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/rollback.h"
#include "engine/watch.h"

namespace safemig::cli {
namespace {

using std::chrono::milliseconds;

bool UnderCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) != "" && std::string(ci) != "false";
}

std::string Clock(std::chrono::system_clock::time_point when) {
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm local{};
  ::localtime_r(&t, &local);
  char text[16];
  std::strftime(text, sizeof(text), "%H:%M:%S", &local);
  return text;
}

// "12:03:30  tick 4/60  ok    orders_ok ✓ 12 ms  api_health ✗ exit 1 (1/3)"
std::string TickLine(const WatchTick& tick, int failures) {
  std::string line = fmt::format("{}  tick {}/{}  {:<4}", Clock(tick.at), tick.number, tick.planned,
                                 tick.passed ? "ok" : "FAIL");
  for (const CheckResult& r : tick.results) {
    line += fmt::format("  {} {} {}", r.name, r.passed ? "\u2713" : "\u2717",
                        r.passed || r.detail.empty() ? FormatDuration(r.took) : r.detail);
  }
  if (!tick.passed) line += fmt::format(" ({}/{})", tick.consecutive_failures, failures);
  return line;
}

// One line per tick on stdout; on a terminal (stderr, not JSON, not CI) the passing ticks
// are redrawn in place and only failing ticks, and the first pass after them, stay.
class TickPrinter {
 public:
  TickPrinter(const Console& console, int failures)
      : console_(console),
        failures_(failures),
        live_(!console.json() && !console.options().quiet && !UnderCi() &&
              ::isatty(STDERR_FILENO)) {}
  ~TickPrinter() { Clear(); }

  void Print(const WatchTick& tick) {
    const std::string line = TickLine(tick, failures_);
    if (live_ && tick.passed && previous_passed_) {
      std::cerr << "\r\033[K" << RedactSecrets(line) << std::flush;
      drawn_ = true;
    } else {
      Clear();
      console_.Line(line);
    }
    previous_passed_ = tick.passed;
  }

  void Clear() {
    if (drawn_) std::cerr << "\r\033[K" << std::flush;
    drawn_ = false;
  }

 private:
  const Console& console_;
  int failures_;
  bool live_;
  bool drawn_ = false;
  bool previous_passed_ = true;
};

std::optional<milliseconds> Duration(const std::string& text, const std::string& flag) {
  if (text.empty()) return std::nullopt;
  return ParseDuration(text, flag);
}

WatchFlags ToFlags(const WatchOptions& o, const std::string& prefix) {
  WatchFlags flags;
  flags.duration = Duration(o.duration, "--" + prefix + "for");
  flags.every = Duration(o.every, "--" + prefix + "every");
  flags.check_timeout = Duration(o.check_timeout, "--" + prefix + "check-timeout");
  flags.rollback_deadline = Duration(o.rollback_deadline, "--rollback-deadline");
  if (o.failures != 0) flags.failures = o.failures;
  if (o.auto_rollback) flags.auto_rollback = true;
  if (o.no_auto_rollback) flags.auto_rollback = false;
  flags.checks = o.checks;
  flags.check_cmds = o.check_cmds;
  flags.skip_config_checks = o.no_config_checks;
  return flags;
}

// "orders_ok: returned 0; api: exit 1: HTTP 503" (with details) or "orders_ok, api".
std::string FailingChecks(const WatchOutcome& outcome, const char* separator, bool details) {
  std::string text;
  for (const CheckResult& r : outcome.last) {
    if (r.passed) continue;
    if (!text.empty()) text += separator;
    text += r.name;
    if (details && !r.detail.empty()) text += ": " + r.detail;
  }
  return text;
}

// What the trigger led to: for the journal row, the JSON document and the last text line.
struct Response {
  TriggerResponse journal;
  nlohmann::json plan;      // rollback_plan in the JSON document
  nlohmann::json rollback;  // rollback in the JSON document
  std::string summary;      // the last text line
};

// The rollback a watch asks for: the state before the watched deploy, approved by whoever
// asked for the watch, with the reason in its journal row.
RollbackRequest MakeWatchRollback(const GlobalOptions& options, const Target& target,
                                  const WatchSettings& settings, const std::string& deploy_id,
                                  const std::string& reason) {
  RollbackRequest request = RollbackRequestFor(options, target);
  if (!deploy_id.empty()) request.deploy_id = deploy_id;
  request.deadline = settings.rollback_deadline;
  request.yes = true;
  request.reason = reason;
  return request;
}

// On the trigger: without --auto-rollback the plan is printed and nothing changes; with
// it, the rollback runs by the strategy the plan picks.
Response RespondToTrigger(const GlobalOptions& options, const Console& console, Target& target,
                          const WatchSettings& settings, const std::string& deploy_id,
                          const WatchOutcome& outcome) {
  Response response;
  RollbackRequest request =
      MakeWatchRollback(options, target, settings, deploy_id, outcome.trigger);
  const std::string again = fmt::format("safemig -e {} rollback", target.resolved.environment.name);
  if (!settings.auto_rollback) {
    try {
      RollbackPlan plan = PlanRollback(*target.driver, request);
      PrintRollbackPlan(console, plan);
      response.plan = RollbackPlanJson(plan);
      response.journal.details = {
          {"rollback_plan",
           {{"chosen", RollbackStrategyName(plan.chosen)}, {"to_version", plan.to_version}}}};
      response.summary = "Not rolled back (no --auto-rollback). To take this way back: " + again;
    } catch (const Error& e) {
      response.journal.details = {{"rollback_plan", {{"error", RedactSecrets(e.what())}}}};
      response.summary = "No rollback plan: " + std::string(e.what());
    }
    return response;
  }
  request.on_plan = [&console](const RollbackPlan& plan) { PrintRollbackPlan(console, plan); };
  auto reporter = MakeReporter(console);
  RollbackOutcome rolled = Rollback(target.driver, request, *reporter);
  response.rollback = RollbackOutcomeJson(rolled);
  if (rolled.refusal) {
    response.journal.details = {{"rollback", {{"refused", RedactSecrets(rolled.refusal->what())}}}};
    response.summary = fmt::format("The rollback was refused: {} ({}). Nothing was changed.",
                                   rolled.refusal->what(), rolled.refusal->hint());
    return response;
  }
  response.journal.outcome = "rolled_back";
  response.journal.details = {{"rollback",
                               {{"strategy", rolled.strategy_used},
                                {"reached_version", rolled.reached_version},
                                {"journal_id", rolled.journal_id},
                                {"took_ms", rolled.took.count()}}}};
  response.summary =
      fmt::format("Rolled back to version {} by {} in {} (journal row {}).",
                  rolled.reached_version.empty() ? "none" : rolled.reached_version,
                  rolled.strategy_used, FormatDuration(rolled.took), rolled.journal_id);
  return response;
}

struct WatchRun {
  WatchOutcome outcome;
  WatchSettings settings;
  Response response;
};

// Runs the watch on `target`, printing the tick lines and the summary in text mode.
WatchRun RunWatchOn(const GlobalOptions& options, const WatchOptions& watch,
                    const std::string& prefix, Target& target, const std::string& deploy_id) {
  Console console(options);
  WatchPlan plan = MergeWatchSettings(target.resolved.environment.watch, ToFlags(watch, prefix));
  WatchRun run;
  run.settings = plan.settings;
  const DatabaseUrl url = target.url;
  CheckConnection connection(
      [url] {
        return OpenDriver(url, OpenOptions{/*create_if_missing=*/false, /*jobs=*/1});
      },
      plan.settings.check_timeout);
  WatchRequest request;
  request.environment = target.resolved.environment;
  request.settings = plan.settings;
  request.deploy_id = deploy_id;
  for (CheckSpec& spec : plan.checks) {
    request.checks.push_back(spec.kind == CheckKind::kSql
                                 ? MakeSqlCheck(std::move(spec), connection)
                                 : MakeCommandCheck(std::move(spec), plan.settings.check_timeout));
  }
  auto reporter = MakeReporter(console);
  TickPrinter printer(console, plan.settings.failures);
  request.on_tick = [&printer](const WatchTick& tick) { printer.Print(tick); };
  request.on_trigger = [&](const WatchOutcome& outcome) {
    printer.Clear();
    run.response = RespondToTrigger(options, console, target, run.settings, deploy_id, outcome);
    return run.response.journal;
  };
  console.Line(fmt::format(
      "Watching {} (environment {}): {} check{} every {} for {}; {} failing tick{} in a row {}.",
      target.url.Redacted(), target.resolved.environment.name, request.checks.size(),
      request.checks.size() == 1 ? "" : "s", FormatDuration(plan.settings.every),
      FormatDuration(plan.settings.duration), plan.settings.failures,
      plan.settings.failures == 1 ? "" : "s",
      plan.settings.auto_rollback ? "roll back" : "stop the watch"));
  run.outcome = Watch(target.driver, request, *reporter);
  printer.Clear();
  const WatchOutcome& o = run.outcome;
  if (o.verdict == WatchVerdict::kHealthy) {
    console.Line(fmt::format(
        "Healthy: {} tick{} over {}, never {} failing in a row{} (journal "
        "row {}).",
        o.ticks, o.ticks == 1 ? "" : "s", FormatDuration(o.took), run.settings.failures,
        o.consecutive_failures > 0 ? fmt::format("; the last {} failed", o.consecutive_failures)
                                   : "",
        o.journal_id));
  } else {
    console.Line(fmt::format("Unhealthy: {} failing tick{} in a row ({}).", o.consecutive_failures,
                             o.consecutive_failures == 1 ? "" : "s",
                             FailingChecks(o, ", ", false)));
    if (!run.response.summary.empty()) console.Line(run.response.summary);
  }
  return run;
}

nlohmann::json WatchDocument(const WatchRun& run) {
  nlohmann::json document = WatchJson(run.outcome, run.settings);
  document["rollback_plan"] = run.response.plan;
  document["rollback"] = run.response.rollback;
  return document;
}

// The failure after the document or summary was printed: error and hint on stderr, exit 7.
void WatchFailed(const WatchRun& run, nlohmann::json* document, int& exit_code) {
  const bool rolled_back = run.outcome.outcome == "rolled_back";
  const int ticks = run.outcome.consecutive_failures;
  const std::string message = fmt::format(
      "health checks failed {} tick{} in a row ({}){}", ticks, ticks == 1 ? "" : "s",
      FailingChecks(run.outcome, "; ", true), rolled_back ? "; the deploy was rolled back" : "");
  const std::string hint =
      rolled_back ? "see `safemig status` and `safemig history --journal`"
                  : "roll back with `safemig rollback`, or watch with --auto-rollback to do it "
                    "automatically";
  std::cerr << "error: " << RedactSecrets(message) << '\n'
            << "hint: " << RedactSecrets(hint) << '\n';
  const Category category = Category::kWatchFailed;
  exit_code = ExitCodeFor(category);
  if (document != nullptr) {
    (*document)["ok"] = false;
    (*document)["error"] = {{"category", CategoryName(category)},
                            {"exit_code", exit_code},
                            {"message", RedactSecrets(message)},
                            {"hint", RedactSecrets(hint)}};
  }
}

void AddSharedOptions(CLI::App& command, WatchOptions& watch, const std::string& prefix,
                      CLI::Option* needs) {
  auto add = [&](CLI::Option* option) {
    if (needs != nullptr) option->needs(needs);
  };
  add(command.add_option("--" + prefix + "for", watch.duration,
                         "how long to watch, e.g. 30m (default 30m)"));
  add(command.add_option("--" + prefix + "every", watch.every,
                         "time between ticks, e.g. 30s or 500ms (default 30s)"));
  add(command.add_option("--" + prefix + "check", watch.checks,
                         "SQL that must return true, a non-zero number or a row; "
                         "'NAME: SQL' names it (repeatable)"));
  add(command.add_option("--" + prefix + "check-cmd", watch.check_cmds,
                         "shell command that must exit 0; 'NAME: CMD' names it (repeatable)"));
  add(command.add_option("--" + prefix + "check-timeout", watch.check_timeout,
                         "longest one check may run (default 10s)"));
  add(command
          .add_option("--" + prefix + "failures", watch.failures,
                      "failing ticks in a row that trigger (default 3)")
          ->check(CLI::Range(1, 1000)));
  auto* on = command.add_flag("--auto-rollback", watch.auto_rollback,
                              "roll back when the checks fail, by the strategy the plan picks");
  auto* off = command.add_flag("--no-auto-rollback", watch.no_auto_rollback,
                               "only print the rollback plan (overrides auto_rollback = true)");
  on->excludes(off);
  add(on);
  add(off);
  add(command.add_option("--rollback-deadline", watch.rollback_deadline,
                         "refuse a rollback estimated to take longer; stop one that runs past it"));
}

void RunWatchCommand(const GlobalOptions& options, const WatchOptions& watch, int& exit_code) {
  Console console(options);
  Target target = OpenTarget(options, /*create_if_missing=*/false);
  WatchRun run = RunWatchOn(options, watch, "", target, "");
  nlohmann::json document = {{"command", "watch"},
                             {"ok", run.outcome.verdict == WatchVerdict::kHealthy},
                             {"environment", target.resolved.environment.name},
                             {"database", target.url.Redacted()}};
  document.update(WatchDocument(run));
  if (run.outcome.verdict != WatchVerdict::kHealthy) WatchFailed(run, &document, exit_code);
  if (console.json()) console.Json(document);
}

}  // namespace

void AddDeployWatchOptions(CLI::App& command, WatchOptions& watch) {
  auto* flag = command.add_flag(
      "--watch", watch.enabled,
      "after a deploy that applied migrations, run the environment's health checks "
      "(see `safemig watch --help`)");
  AddSharedOptions(command, watch, "watch-", flag);
}

void WatchAfterDeploy(const GlobalOptions& options, const WatchOptions& watch, Target& target,
                      const std::string& deploy_id, nlohmann::json& document, int& exit_code) {
  WatchRun run = RunWatchOn(options, watch, "watch-", target, deploy_id);
  document["watch"] = WatchDocument(run);
  if (run.outcome.verdict != WatchVerdict::kHealthy) WatchFailed(run, &document, exit_code);
}

void SetupWatchCommand(CLI::App& app, GlobalOptions& options, int& exit_code) {
  auto watch = std::make_shared<WatchOptions>();
  auto* command = app.add_subcommand(
      "watch",
      "run health checks every tick for a while; K failing ticks in a row exit 7 with the "
      "rollback plan, or roll back with --auto-rollback");
  AddSharedOptions(*command, *watch, "", nullptr);
  command->add_flag("--no-config-checks", watch->no_config_checks,
                    "run only the checks given here, not the environment's");
  command->callback([&options, watch, &exit_code] { RunWatchCommand(options, *watch, exit_code); });
}

}  // namespace safemig::cli
