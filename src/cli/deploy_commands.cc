// `deploy`, `up` (the same pipeline), `rehearse` and `plan`: options, wiring and the
// go/no-go rendering. The pipeline itself is engine/deploy.h.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/deploy.h"
#include "report/report.h"

namespace safemig::cli {
namespace {

using std::chrono::milliseconds;

std::string Ms(const std::optional<milliseconds>& value) {
  return value ? FormatDuration(*value) : std::string("-");
}

// "If something goes wrong, we can be back in about ..." from the rehearsal's timings.
std::string RollbackReadiness(const DeployReport& report) {
  if (!report.rollback) return "";
  const RollbackEstimate& rollback = *report.rollback;
  std::string restore =
      rollback.by_restore ? fmt::format("{} by restore", FormatDuration(*rollback.by_restore))
                          : std::string();
  if (rollback.by_down && !restore.empty()) {
    return fmt::format("If something goes wrong, we can be back in about {} by down-migrations, "
                       "or {}.",
                       FormatDuration(*rollback.by_down), restore);
  }
  if (rollback.by_down) {
    return fmt::format("If something goes wrong, we can be back in about {} by down-migrations.",
                       FormatDuration(*rollback.by_down));
  }
  if (!restore.empty()) {
    return fmt::format("If something goes wrong, we can be back in about {} (some migrations "
                       "cannot go down).",
                       restore);
  }
  return "";
}

void PrintRehearsalTable(const Console& console, const RehearsalRecord& record) {
  size_t width = 4;
  for (const MigrationRehearsal& m : record.migrations) {
    width = std::max(width, m.version.size() + 1 + m.name.size());
  }
  console.Line(fmt::format("  {:<{}}  {:>9}  {:>9}  {:>9}  {}", "MIGRATION", width, "UP", "DOWN",
                           "UP AGAIN", "RESULT"));
  for (const MigrationRehearsal& m : record.migrations) {
    std::string result = m.outcome == "ok"             ? "reversible"
                         : m.outcome == "irreversible" ? "irreversible: rollback must restore"
                                                       : m.outcome;
    console.Line(fmt::format("  {:<{}}  {:>9}  {:>9}  {:>9}  {}", m.version + "_" + m.name, width,
                             Ms(m.up), Ms(m.down), Ms(m.reapply), result));
    for (const std::string& line : m.column_order) console.Line("      note: " + line);
    for (const std::string& line : m.data_loss) console.Line("      data: " + line);
    for (const std::string& line : m.differences) console.Line("      differs: " + line);
    if (!m.error.empty()) console.Line("      error: " + m.error);
  }
}

// The go/no-go summary a person reads before anything is applied.
void PrintSummary(const Console& console, const DeployReport& report) {
  if (console.json()) return;
  console.Line("");
  console.Line(fmt::format("Plan {}: {} migration{} on {} (environment {}), version {} -> {}",
                           report.plan_hash.substr(0, 12), report.pending.size(),
                           report.pending.size() == 1 ? "" : "s", report.database,
                           report.environment, VersionOrNone(report.from_version),
                           VersionOrNone(report.to_version)));
  console.Line("Gates:");
  for (const Gate& gate : report.gates) {
    console.Line(fmt::format("  {:<4}  {:<9}  {}", GateStatusName(gate.status), gate.name,
                             gate.detail));
  }
  for (const LintFinding& finding : report.lint) {
    console.Line(fmt::format("  lint {} {} {}: {}", finding.severity, finding.version,
                             finding.rule, finding.message));
  }
  if (report.rehearsal && !report.rehearsal->migrations.empty()) {
    const RehearsalRecord& r = *report.rehearsal;
    console.Line(fmt::format("Rehearsal #{} {} ({}; restore {}, total {}):", r.journal_id,
                             r.status, r.where.empty() ? "copy of the real data" : r.where,
                             Ms(r.restore), FormatDuration(r.took)));
    PrintRehearsalTable(console, r);
    if (r.kept) console.Line(fmt::format("  the copy is kept: {}", r.scratch));
  }
  if (report.verdict == "go") {
    console.Line("GO.");
  } else {
    console.Line("NO-GO:");
    for (const std::string& reason : report.reasons) console.Line("  - " + reason);
  }
  std::string readiness = RollbackReadiness(report);
  if (!readiness.empty()) console.Line(readiness);
}


}  // namespace

std::function<bool(const std::string&)> ApprovalPrompt(const GlobalOptions& options,
                                                       const std::string& environment) {
  if (!::isatty(STDIN_FILENO) || options.json()) return {};
  return [environment](const std::string& expected) {
    std::cerr << fmt::format("Environment {} is protected. Type the database name ({}) to "
                             "approve: ",
                             environment, expected)
              << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    return answer == expected;
  };
}

namespace {

DeployRequest MakeRequest(const GlobalOptions& options, const Target& target,
                          const DeployFlags& flags, const std::string& command) {
  DeployRequest request;
  request.command = command;
  request.environment = target.resolved.environment;
  request.environments = target.resolved.config.environments;
  request.url = target.url;
  request.files = LoadMigrations(target.resolved);
  if (!flags.to.empty()) request.to = flags.to;
  if (flags.steps != 0) request.steps = flags.steps;
  request.skip_backup = flags.skip_backup;
  request.yes = options.yes;
  request.outside_window_reason = flags.outside_window;
  if (!flags.from_backup.empty()) request.from_backup = flags.from_backup;
  request.keep_scratch = flags.keep;
  request.jobs = options.jobs;
  request.runner = RunnerName();
  request.applied_by = CurrentUserAtHost();
  request.lint = MakeLintHook(target.resolved, request.files);
  request.ask_approval = ApprovalPrompt(options, target.resolved.environment.name);
  return request;
}

// --report and --summary: the go/no-go page and its Markdown twin, from the same document
// --format json prints.
void WriteReports(const DeployFlags& flags, const DeployReport& report) {
  if (flags.report.empty() && flags.summary.empty()) return;
  const nlohmann::json document = DeployJson(report);
  auto write = [](const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      throw Error(Category::kUsage, fmt::format("cannot write {}", path),
                  "check the path and its directory's permissions");
    }
  };
  if (!flags.report.empty()) write(flags.report, RenderHtmlReport(document));
  if (!flags.summary.empty()) write(flags.summary, RenderMarkdownSummary(document));
}

// `rehearse` and `plan`: run `pipeline` and print its document or summary. Both exit 5
// when deploy would refuse; plan changes nothing, rehearse only the journal.
void RunReadOnlyStage(const GlobalOptions& options, const DeployFlags& flags,
                      const std::string& command, int& exit_code) {
  Console console(options);
  Target target = OpenTarget(options, /*create_if_missing=*/false);
  DeployRequest request = MakeRequest(options, target, flags, command);
  auto reporter = MakeReporter(console);
  DeployReport report = command == "plan"
                            ? PlanDeploy(*target.driver, request, *reporter)
                            : RehearseOnly(*target.driver, request, *reporter);
  WriteReports(flags, report);
  if (console.json()) {
    console.Json(DeployJson(report));
  } else if (report.pending.empty() && !report.refusal) {
    console.Line(fmt::format("Nothing to {}: {} is at version {}.",
                             command == "plan" ? "deploy" : "rehearse", report.database,
                             VersionOrNone(report.to_version)));
  } else {
    PrintSummary(console, report);
    if (report.backup_estimate_bytes) {
      console.Line(fmt::format("Backup: about {} (the size of the newest backup).",
                               Bytes(*report.backup_estimate_bytes)));
    }
  }
  if (report.refusal) Refuse(report, exit_code);
}

void AddPlanOptions(CLI::App& command, DeployFlags& flags) {
  auto* to = command.add_option("--to", flags.to, "up to and including this version");
  command.add_option("--steps", flags.steps, "number of migrations")->excludes(to);
  command.add_option("--report", flags.report,
                     "write the go/no-go page for the release meeting (self-contained HTML)");
  command.add_option("--summary", flags.summary,
                     "write the same as Markdown (pull requests, CI step summaries)");
}

}  // namespace

// A no-go: the document (JSON) or summary (text) was printed; the reason and the way
// forward go to stderr, and the exit code is 5.
void Refuse(const DeployReport& report, int& exit_code) { Refuse(*report.refusal, exit_code); }

void Refuse(const Error& refusal, int& exit_code) {
  std::cerr << "error: " << RedactSecrets(refusal.what()) << '\n';
  if (!refusal.hint().empty()) std::cerr << "hint: " << RedactSecrets(refusal.hint()) << '\n';
  exit_code = ExitCodeFor(Category::kNoGo);
}

void AddDeployOptions(CLI::App& command, DeployFlags& flags) {
  AddPlanOptions(command, flags);
  command.add_flag("--skip-backup", flags.skip_backup,
                   "do not back up first, and so do not rehearse (refused in protected "
                   "environments)");
  command.add_option("--outside-window", flags.outside_window,
                     "deploy outside the environment's window; the REASON is journaled");
  AddDeployWatchOptions(command, flags.watch);
}

void RunDeploy(const GlobalOptions& options, const DeployFlags& flags, const std::string& command,
               int& exit_code) {
  Console console(options);
  if (flags.skip_backup) {
    // Invariant 2, checked before anything is opened, so a refusal touches nothing (a
    // SQLite file is not even created).
    Environment env = Resolve(ToSelection(options)).environment;
    Gate gate = ProtectedGate(env, /*skip_backup=*/true);
    if (gate.status == GateStatus::kFail) throw Error(Category::kNoGo, gate.detail, gate.hint);
  }
  Target target = OpenTarget(options, /*create_if_missing=*/true);
  DeployRequest request = MakeRequest(options, target, flags, command);
  request.on_verdict = [&console](const DeployReport& report) { PrintSummary(console, report); };
  auto reporter = MakeReporter(console);
  if (flags.skip_backup) {
    console.Warning("no backup taken (--skip-backup): only the down-migrations can undo this");
  }
  DeployReport report = Deploy(target.driver, request, *reporter);
  WriteReports(flags, report);
  // Nothing applied, nothing to watch: a watch could only roll back an earlier deploy.
  const bool watch = flags.watch.enabled && !report.refusal && !report.migrations.empty();
  if (console.json() && !watch) console.Json(DeployJson(report));
  if (report.refusal) {
    Refuse(report, exit_code);
    return;
  }
  if (report.pending.empty()) {
    console.Line(fmt::format("Nothing to apply: {} is at version {}.", report.database,
                             VersionOrNone(report.to_version)));
    if (flags.watch.enabled) console.Line("Nothing was deployed, so there is nothing to watch.");
    return;
  }
  std::string verified = !report.verified ? ""
                         : *report.verified
                             ? "; schema verified against the rehearsal"
                             : "; WARNING: the schema differs from the rehearsal's";
  console.Line(fmt::format("Done: {} is at version {} ({} migration{} in {}{}).", report.database,
                           VersionOrNone(report.to_version), report.migrations.size(),
                           report.migrations.size() == 1 ? "" : "s", FormatDuration(report.took),
                           verified));
  std::string readiness = RollbackReadiness(report);
  if (!readiness.empty()) console.Line(readiness);
  if (watch) {
    nlohmann::json document = DeployJson(report);
    WatchAfterDeploy(options, flags.watch, target, report.run_id, document, exit_code);
    if (console.json()) console.Json(document);
  }
}

void SetupDeployCommands(CLI::App& app, GlobalOptions& options, int& exit_code) {
  auto deploy_flags = std::make_shared<DeployFlags>();
  auto* deploy = app.add_subcommand(
      "deploy",
      "back up, rehearse on a copy, check the gates, then apply pending migrations all or "
      "nothing");
  AddDeployOptions(*deploy, *deploy_flags);
  deploy->callback([&options, deploy_flags, &exit_code] {
    RunDeploy(options, *deploy_flags, "deploy", exit_code);
  });

  auto rehearse_flags = std::make_shared<DeployFlags>();
  auto* rehearse = app.add_subcommand(
      "rehearse",
      "run each pending migration up, down and up again on a copy restored from a backup");
  AddPlanOptions(*rehearse, *rehearse_flags);
  rehearse->add_flag("--keep", rehearse_flags->keep, "keep the copy afterwards for inspection");
  rehearse->add_option("--from-backup", rehearse_flags->from_backup,
                       "restore this backup (id, prefix or 'latest') instead of taking one");
  rehearse->callback([&options, rehearse_flags, &exit_code] {
    RunReadOnlyStage(options, *rehearse_flags, "rehearse", exit_code);
  });

  auto plan_flags = std::make_shared<DeployFlags>();
  auto* plan = app.add_subcommand(
      "plan", "show what deploy would do (gates, rehearsal status, rollback estimates); "
              "changes nothing");
  AddPlanOptions(*plan, *plan_flags);
  plan->add_flag("--skip-backup", plan_flags->skip_backup, "plan a deploy with --skip-backup");
  plan->add_option("--outside-window", plan_flags->outside_window,
                   "plan a deploy with --outside-window REASON");
  plan->callback(
      [&options, plan_flags, &exit_code] {
        RunReadOnlyStage(options, *plan_flags, "plan", exit_code);
      });
}

}  // namespace safemig::cli
