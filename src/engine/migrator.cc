#include "engine/migrator.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "config/url.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/sql_split.h"
#include "engine/recovery.h"

namespace safemig {
namespace {

using Clock = std::chrono::steady_clock;

std::string Label(const PlannedStep& step) { return step.version + "_" + step.name; }

// Appends the drift rows that forbid `up`, one per line, to `out`.
std::vector<std::string> BlockingDrift(const StatusReport& status) {
  std::vector<std::string> problems;
  for (const StatusRow& row : status.rows) {
    if (row.state == MigrationState::kChanged || row.state == MigrationState::kOutOfOrder) {
      problems.push_back(row.detail);
    }
  }
  return problems;
}

bool IsKnownVersion(const StatusReport& status, const std::string& version) {
  for (const StatusRow& row : status.rows) {
    if (CompareVersions(row.version, version) == 0) return true;
  }
  return false;
}

void ThrowIfPastDeadline(const RunOptions& options, const std::string& when) {
  if (options.deadline && Clock::now() >= *options.deadline) {
    throw Error(Category::kMigrationFailed,
                fmt::format("{} passed {}", options.deadline_name, when), options.deadline_hint);
  }
}

void CheckSteps(const std::optional<int>& steps) {
  if (steps && *steps < 1) {
    throw Error(Category::kUsage, fmt::format("--steps must be 1 or more, got {}", *steps));
  }
}

}  // namespace

Plan PlanUp(const StatusReport& status, const std::optional<std::string>& to,
            const std::optional<int>& steps) {
  CheckSteps(steps);
  std::vector<std::string> drift = BlockingDrift(status);
  if (!drift.empty()) {
    std::string message = fmt::format("refusing to migrate up: {}", drift.front());
    if (drift.size() > 1) message += fmt::format(" (and {} more)", drift.size() - 1);
    throw Error(Category::kNoGo, message,
                "run `safemig validate` to see every problem; restore the edited file or give "
                "the change a new migration");
  }
  if (to && !IsKnownVersion(status, *to)) {
    throw Error(Category::kUsage, fmt::format("--to {} matches no migration", *to),
                "run `safemig status` to list the versions");
  }
  Plan plan;
  plan.direction = Direction::kUp;
  plan.from_version = status.current_version;
  plan.to_version = status.current_version;
  for (const StatusRow& row : status.rows) {
    if (row.state != MigrationState::kPending) continue;
    if (to && CompareVersions(row.version, *to) > 0) break;
    if (steps && static_cast<int>(plan.steps.size()) >= *steps) break;
    const Migration& file = *row.file;
    PlannedStep step;
    step.direction = Direction::kUp;
    step.version = file.version;
    step.name = file.name;
    step.source = file.up_path;
    step.sql = file.up_sql;
    step.first_line = file.up_first_line;
    step.in_transaction = !file.directives.no_transaction;
    step.irreversible = file.directives.irreversible;
    step.timeout = file.directives.timeout;
    step.down_sql = file.down_sql;
    step.down_source = file.down_path;
    step.down_first_line = file.down_first_line;
    step.row = HistoryRowFor(file);
    plan.to_version = file.version;
    plan.steps.push_back(std::move(step));
  }
  return plan;
}

HistoryRow HistoryRowFor(const Migration& file) {
  HistoryRow row;
  row.version = file.version;
  row.name = file.name;
  row.checksum = file.checksum;
  row.up_path = file.up_path;
  row.down_sql = file.down_sql;
  row.down_checksum = file.down_checksum;
  row.no_transaction = file.directives.no_transaction;
  row.irreversible = file.directives.irreversible;
  return row;
}

Plan PlanDown(const StatusReport& status, const std::optional<std::string>& to,
              const std::optional<int>& steps, bool allow_irreversible) {
  CheckSteps(steps);
  if (to && *to != "0" && !IsKnownVersion(status, *to)) {
    throw Error(Category::kUsage, fmt::format("--to {} matches no migration", *to),
                "run `safemig history` to list the applied versions; --to 0 reverts all");
  }
  const int limit = to ? -1 : steps.value_or(1);
  Plan plan;
  plan.direction = Direction::kDown;
  plan.from_version = status.current_version;
  std::vector<const StatusRow*> applied;
  for (const StatusRow& row : status.rows) {
    if (row.applied) applied.push_back(&row);
  }
  size_t kept = applied.size();
  for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
    const StatusRow& row = **it;
    if (to && (*to == "0" ? false : CompareVersions(row.version, *to) <= 0)) break;
    if (limit >= 0 && static_cast<int>(plan.steps.size()) >= limit) break;
    const HistoryRow& stored = *row.applied;
    const bool irreversible =
        stored.irreversible || stored.down_sql.find_first_not_of(" \t\r\n") == std::string::npos;
    if (irreversible && !allow_irreversible) {
      throw Error(Category::kNoGo,
                  fmt::format("cannot migrate down past {}_{}: it is marked irreversible and "
                              "has no down",
                              stored.version, stored.name),
                  "restore the backup taken before it was applied (`safemig restore`)");
    }
    PlannedStep step;
    step.direction = Direction::kDown;
    step.version = stored.version;
    step.name = stored.name;
    step.source = fmt::format("stored down of {}_{}", stored.version, stored.name);
    step.sql = stored.down_sql;
    step.in_transaction = !stored.no_transaction;
    step.irreversible = irreversible;
    step.row = stored;
    plan.steps.push_back(std::move(step));
    --kept;
  }
  plan.to_version = kept == 0 ? "" : applied[kept - 1]->version;
  return plan;
}

PlannedStep DownStepFor(const PlannedStep& up) {
  PlannedStep down;
  down.direction = Direction::kDown;
  down.version = up.version;
  down.name = up.name;
  down.source = up.down_source.empty() ? up.source : up.down_source;
  down.first_line = up.down_first_line;
  down.sql = up.down_sql;
  down.in_transaction = up.in_transaction;
  down.irreversible = up.irreversible;
  down.row = up.row;
  return down;
}

std::vector<Statement> Migrator::SplitSection(const std::string& sql, const std::string& source,
                                              int first_line) const {
  try {
    return SplitStatements(sql, driver_.dialect());
  } catch (const Error& e) {
    std::string where = first_line > 1
                            ? fmt::format(" (lines counted from line {}, where the section starts)",
                                          first_line)
                            : "";
    throw Error(e.category(), fmt::format("{}: {}{}", source, e.what(), where), e.hint());
  }
}

ApplyStep Migrator::ToApplyStep(const PlannedStep& step, const RunOptions& options) const {
  ApplyStep apply;
  apply.direction = step.direction;
  apply.source = step.source;
  apply.first_line = step.first_line;
  apply.statements = SplitSection(step.sql, step.source, step.first_line);
  apply.in_transaction = step.in_transaction;
  apply.statement_timeout = step.timeout;
  apply.row = step.row;
  if (step.direction == Direction::kUp) {
    apply.row.applied_at = NowIso8601();
    apply.row.applied_by = options.applied_by;
    apply.row.deploy_id = options.run_id;
    apply.row.backup_id = options.backup_id;
  }
  return apply;
}

std::optional<std::string> Migrator::RevertApplied(
    const std::vector<const PlannedStep*>& applied) {
  for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
    const PlannedStep& up = **it;
    PlannedStep down = DownStepFor(up);
    if (up.irreversible || down.sql.find_first_not_of(" \t\r\n") == std::string::npos) {
      return fmt::format("{} is irreversible", Label(up));
    }
    auto started = Clock::now();
    try {
      driver_.Apply(ToApplyStep(down, RunOptions{}));
    } catch (const Error& e) {
      return e.what();
    }
    reporter_.StepReverted(up, Since(started));
  }
  return std::nullopt;
}

RunResult Migrator::Execute(const Plan& plan, const RunOptions& options) {
  // Split every step before touching the database, so a malformed file late in the plan
  // is reported before the first migration runs rather than after a revert.
  std::vector<ApplyStep> prepared;
  prepared.reserve(plan.steps.size());
  for (const PlannedStep& step : plan.steps) {
    if (step.direction == Direction::kDown && step.irreversible) {
      throw Error(Category::kNoGo, fmt::format("{} is irreversible: it has no down to run",
                                               Label(step)),
                  "restore the backup taken before it was applied (`safemig rollback "
                  "--strategy restore`)");
    }
    prepared.push_back(ToApplyStep(step, options));
  }
  for (const PlannedStep& step : plan.steps) {
    if (step.direction == Direction::kUp && !step.irreversible) {
      SplitSection(step.down_sql, step.down_source, step.down_first_line);
    }
  }

  RunResult result;
  result.from_version = plan.from_version;
  const auto run_started = Clock::now();

  driver_.SetNotifier([this](const std::string& message) { reporter_.Warning(message); });
  // A run that died halfway through a migration that cannot roll back left the database in
  // a state nobody has checked; migrating on top of it would bury that.
  RefuseIfInterruptedRun(driver_);
  JournalEntry journal;
  journal.kind = !options.journal_kind.empty()                ? options.journal_kind
                 : plan.direction == Direction::kUp ? "up"
                                                    : "down";
  journal.environment = options.environment;
  journal.deploy_id = options.run_id;
  journal.started_at = NowIso8601();
  journal.outcome = "running";
  journal.from_version = plan.from_version;
  journal.to_version = plan.to_version;
  journal.backup_id = options.backup_id;
  nlohmann::json details = {{"applied_by", options.applied_by}, {"steps", nlohmann::json::array()}};
  for (const PlannedStep& step : plan.steps) {
    details["planned"].push_back(step.version);
  }
  journal.details = details.dump();
  journal.id = driver_.InsertJournal(journal);
  result.journal_id = journal.id;

  auto finish_journal = [&](const std::string& outcome, const std::string& error) {
    journal.finished_at = NowIso8601();
    journal.outcome = outcome;
    if (!error.empty()) details["error"] = RedactSecrets(error);
    details["took_ms"] = Since(run_started).count();
    journal.details = details.dump();
    try {
      driver_.UpdateJournal(journal);
    } catch (const Error& e) {
      reporter_.Warning(fmt::format("could not finish journal entry {}: {}", journal.id,
                                    RedactSecrets(e.what())));
    }
  };

  std::vector<const PlannedStep*> applied;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const PlannedStep& step = plan.steps[i];
    reporter_.StepStarted(step, i, plan.steps.size());
    auto started = Clock::now();
    try {
      // Before each migration: a Ctrl-C here is handled like a failure, so the
      // migrations this run applied are reverted.
      ThrowIfInterrupted("migrating");
      ThrowIfPastDeadline(options, fmt::format("before {} could start", Label(step)));
      if (options.before_step) options.before_step(step);
      ApplyStep apply = std::move(prepared[i]);
      apply.row.applied_at = NowIso8601();
      const bool can_roll_back = apply.in_transaction && driver_.capabilities().transactional_ddl;
      if (!can_roll_back) {
        // Written before each statement so that a kill -9 or a lost connection halfway
        // leaves a trace saying exactly where the database stopped.
        apply.before_statement = [&](size_t index) {
          MarkStatementStarted(details, step.version, apply, index);
          journal.details = details.dump();
          driver_.UpdateJournal(journal);
        };
      }
      driver_.Apply(apply);
      if (!can_roll_back) {
        ClearStatementProgress(details);
        journal.details = details.dump();
        driver_.UpdateJournal(journal);
      }
    } catch (const Error& e) {
      reporter_.StepFailed(step, e.what());
      // Drivers say kNeedsPerson when statements of the step had already run and stay; any
      // other failure left the step's state as it was, so the trace would be a false alarm.
      if (e.category() != Category::kNeedsPerson) ClearStatementProgress(details);
      if (plan.direction == Direction::kDown || applied.empty() ||
          e.category() == Category::kNeedsPerson || !options.revert_with_downs) {
        std::string done;
        if (!applied.empty()) {
          done = fmt::format("; {} of {} steps before it completed and stay done", applied.size(),
                             plan.steps.size());
        }
        finish_journal("failed", e.what());
        throw Error(e.category(), e.what() + done, e.hint());
      }
      std::optional<std::string> revert_error = RevertApplied(applied);
      if (revert_error) {
        finish_journal("failed", fmt::format("{}; revert failed: {}", e.what(), *revert_error));
        throw Error(Category::kNeedsPerson,
                    fmt::format("{}; undoing the {} migrations this run applied before it "
                                "failed too: {}",
                                e.what(), applied.size(), *revert_error),
                    "the database is between versions: check `safemig status` and restore "
                    "the backup taken before this run");
      }
      finish_journal("reverted", e.what());
      throw Error(e.category(),
                  fmt::format("{}; the {} migrations this run had applied before it were "
                              "reverted, the database is as it was",
                              e.what(), applied.size()),
                  e.hint());
    }
    auto took = Since(started);
    reporter_.StepFinished(step, took);
    applied.push_back(&step);
    result.steps.push_back(StepOutcome{step.version, step.name, took});
    details["steps"].push_back({{"version", step.version}, {"name", step.name},
                                {"took_ms", took.count()}});
  }
  if (options.deadline && Clock::now() > *options.deadline && !applied.empty() &&
      plan.direction == Direction::kUp) {
    // Finished, but later than allowed: the deadline is a promise about the change, so
    // it is undone like a failure. (A rollback that finished late is still back.)
    const std::string why = "the migrations finished after " + options.deadline_name;
    std::optional<std::string> revert_error =
        options.revert_with_downs ? RevertApplied(applied) : std::optional<std::string>("");
    if (revert_error) {
      finish_journal("failed", why);
      throw Error(Category::kNeedsPerson,
                  revert_error->empty()
                      ? why + "; the migrations of this run stay applied"
                      : fmt::format("{}; undoing them failed: {}", why, *revert_error),
                  "restore the backup taken before this run");
    }
    finish_journal("reverted", why);
    throw Error(Category::kMigrationFailed,
                fmt::format("{}; the {} migrations this run applied were reverted, the "
                            "database is as it was",
                            why, applied.size()),
                "raise max_duration, or deploy fewer migrations at once");
  }
  result.to_version = plan.to_version;
  result.took = Since(run_started);
  finish_journal("ok", "");
  return result;
}

}  // namespace safemig
