// `rollback`: the guarded, timed way back (engine/rollback.h). Shows both ways back with
// their estimates, then takes the chosen one against the deadline.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/duration.h"
#include "core/error.h"
#include "cli/commands.h"

namespace safemig::cli {

namespace {

struct RollbackFlags {
  std::string to;
  int steps = 0;
  std::string deploy;
  std::string strategy = "auto";
  std::string deadline;
  bool force = false;
  bool dry_run = false;
  bool skip_backup = false;
};

std::string EstimateText(const RollbackWay& way) {
  if (!way.available) return "not available";
  return way.estimate ? "about " + FormatDuration(*way.estimate) : "unknown";
}

void PrintWay(const Console& console, const std::string& title, const RollbackWay& way,
              bool chosen) {
  console.Line(fmt::format("  {} {}: {}", chosen ? "->" : "  ", title, EstimateText(way)));
  if (!way.available) {
    console.Line(fmt::format("       {}", way.unavailable));
    return;
  }
  if (!way.estimate_basis.empty()) console.Line(fmt::format("       {}", way.estimate_basis));
  for (const std::string& loss : way.loses) console.Line(fmt::format("       loses: {}", loss));
}

std::string StepLine(const RollbackStepInfo& step) {
  std::string rehearsal =
      step.irreversible            ? "irreversible (no down)"
      : step.rehearsal_outcome.empty() ? "down never rehearsed"
      : step.rehearsal_outcome == "ok"
          ? fmt::format("down rehearsed, {}",
                        step.rehearsed_down ? FormatDuration(*step.rehearsed_down) : "?")
          : fmt::format("rehearsal: {}", step.rehearsal_outcome);
  return fmt::format("    {}_{}  {}{}", step.version, step.name, rehearsal,
                     step.file_present ? "" : "  (file gone: stored down SQL is used)");
}

RollbackRequest MakeRollbackRequest(const GlobalOptions& options, const Target& target,
                                    const RollbackFlags& flags) {
  RollbackRequest request = RollbackRequestFor(options, target);
  if (!flags.to.empty()) request.to = flags.to;
  if (flags.steps != 0) request.steps = flags.steps;
  if (!flags.deploy.empty()) request.deploy_id = flags.deploy;
  request.strategy = ParseRollbackStrategy(flags.strategy);
  if (!flags.deadline.empty()) request.deadline = ParseDuration(flags.deadline, "--deadline");
  request.force = flags.force;
  request.dry_run = flags.dry_run;
  request.skip_backup = flags.skip_backup;
  request.yes = options.yes;
  request.ask_approval = ApprovalPrompt(options, target.resolved.environment.name);
  return request;
}

void RunRollback(const GlobalOptions& options, const RollbackFlags& flags, int& exit_code) {
  Console console(options);
  Target target = OpenTarget(options, /*create_if_missing=*/false);
  RollbackRequest request = MakeRollbackRequest(options, target, flags);
  request.on_plan = [&console](const RollbackPlan& plan) { PrintRollbackPlan(console, plan); };
  auto reporter = MakeReporter(console);
  RollbackOutcome outcome = Rollback(target.driver, request, *reporter);
  if (console.json()) console.Json(RollbackOutcomeJson(outcome));
  if (outcome.refusal) {
    Refuse(*outcome.refusal, exit_code);
    return;
  }
  if (outcome.dry_run) {
    console.Line("Dry run: nothing was changed.");
    return;
  }
  const std::string estimate =
      outcome.plan.chosen == RollbackStrategy::kDown ? EstimateText(outcome.plan.down)
                                                     : EstimateText(outcome.plan.restore);
  console.Line(fmt::format("Rolled back to version {} by {} in {} (estimated {}).",
                           VersionOrNone(outcome.reached_version), outcome.strategy_used,
                           FormatDuration(outcome.took), estimate));
  if (outcome.verified) {
    console.Line("Schema checked: it equals the one recorded before the deploy.");
  } else {
    console.Line("No schema was recorded before this point, so there was nothing to check "
                 "it against.");
  }
  if (!outcome.safety_backup_id.empty()) {
    console.Line(fmt::format("The state it replaced is backup {}.", outcome.safety_backup_id));
  }
}

}  // namespace

RollbackRequest RollbackRequestFor(const GlobalOptions& options, const Target& target) {
  RollbackRequest request;
  request.environment = target.resolved.environment;
  request.url = target.url;
  // After a code rollback the files may be gone or fewer: that is the case rollback is for,
  // and the stored down SQL is what runs.
  try {
    request.files = LoadMigrations(target.resolved);
  } catch (const Error&) {
  }
  request.jobs = options.jobs;
  request.runner = RunnerName();
  request.applied_by = CurrentUserAtHost();
  return request;
}

void PrintRollbackPlan(const Console& console, const RollbackPlan& plan) {
  if (console.json()) return;
  console.Line(fmt::format("Rollback of {} ({}): version {} -> {}", plan.environment,
                           plan.database, VersionOrNone(plan.from_version),
                           VersionOrNone(plan.to_version)));
  if (!plan.deploy_id.empty()) {
    console.Line(fmt::format("  undoes deploy {} (finished {})", plan.deploy_id,
                             plan.deployed_at.empty() ? "?" : plan.deployed_at));
  }
  console.Line(fmt::format("  {} migration{} to revert, newest first:", plan.steps.size(),
                           plan.steps.size() == 1 ? "" : "s"));
  for (const RollbackStepInfo& step : plan.steps) console.Line(StepLine(step));
  console.Line("  Ways back:");
  PrintWay(console, "down-migrations (stored SQL)", plan.down,
           plan.chosen == RollbackStrategy::kDown);
  PrintWay(console,
           plan.restore.backup_id.empty()
               ? std::string("restore the backup")
               : fmt::format("restore backup {} ({}, {})", plan.restore.backup_id,
                             Bytes(plan.restore.backup_bytes),
                             plan.restore.backup_verified ? "verified" : "not verified yet"),
           plan.restore, plan.chosen == RollbackStrategy::kRestore);
  console.Line(fmt::format("  Chosen: {} ({})", RollbackStrategyName(plan.chosen), plan.why));
  if (plan.deadline) {
    console.Line(fmt::format("  Deadline {}: {}", FormatDuration(*plan.deadline),
                             plan.over_deadline ? "the estimate is longer" : "fits"));
  }
  if (!plan.changed_since_deploy.empty()) {
    console.Warning(fmt::format("the schema changed after the deploy: {}",
                                fmt::join(plan.changed_since_deploy, "; ")));
  }
  if (plan.expected_schema.empty()) {
    console.Warning("no deploy recorded the schema of the target version: the result cannot "
                    "be checked against it");
  }
}

void SetupRollbackCommand(CLI::App& app, GlobalOptions& options, int& exit_code) {
  auto flags = std::make_shared<RollbackFlags>();
  auto* rollback = app.add_subcommand(
      "rollback",
      "go back to the state before the last deploy (or --to/--steps/--deploy), by "
      "down-migrations or by restoring the pre-deploy backup, whichever the plan picks");
  rollback->add_option("--to", flags->to, "version to end at (0: before every migration)");
  rollback->add_option("--steps", flags->steps, "revert this many migrations");
  rollback->add_option("--deploy", flags->deploy, "the state before this deploy (its run id)");
  rollback->add_option("--strategy", flags->strategy, "auto (default), down or restore")
      ->check(CLI::IsMember({"auto", "down", "restore"}));
  rollback->add_option("--deadline", flags->deadline,
                       "longest the rollback may take (e.g. 5m): refused beforehand when the "
                       "estimate is longer, stopped cleanly when it passes");
  rollback->add_flag("--force", flags->force, "roll back even when the estimate exceeds --deadline");
  rollback->add_flag("--dry-run", flags->dry_run, "show the plan and change nothing");
  rollback->add_flag("--skip-backup", flags->skip_backup,
                     "down-migrations only: no backup of the current state first (refused in "
                     "protected environments)");
  rollback->callback([&options, flags, &exit_code] { RunRollback(options, *flags, exit_code); });
}

}  // namespace safemig::cli
