#include "engine/gates.h"

#include <map>

#include <fmt/format.h>

#include "core/clock.h"

namespace safemig {
namespace {

Gate Make(const char* name, GateStatus status, std::string detail, std::string hint = {}) {
  return Gate{name, status, std::move(detail), std::move(hint)};
}

}  // namespace

const char* GateStatusName(GateStatus status) {
  switch (status) {
    case GateStatus::kPass:
      return "pass";
    case GateStatus::kFail:
      return "fail";
    case GateStatus::kSkip:
      break;
  }
  return "skip";
}

Gate ProtectedGate(const Environment& env, bool skip_backup) {
  if (!env.is_protected) {
    return Make("protected", GateStatus::kSkip,
                fmt::format("environment {} is not protected", env.name));
  }
  if (skip_backup) {
    return Make("protected", GateStatus::kFail,
                fmt::format("environment {} is protected: --skip-backup is refused", env.name),
                "run without --skip-backup; the backup is what makes a rollback possible");
  }
  return Make("protected", GateStatus::kPass,
              fmt::format("environment {} is protected: backup, passing rehearsal and approval "
                          "are required",
                          env.name));
}

Gate BackupGate(const Environment& env, bool skip_backup) {
  if (skip_backup) {
    return Make("backup", env.is_protected ? GateStatus::kFail : GateStatus::kSkip,
                "no backup (--skip-backup): only the down-migrations can undo this, and there "
                "is nothing to rehearse on",
                "run without --skip-backup");
  }
  return Make("backup", GateStatus::kPass, "a backup is taken and checked before any change");
}

Gate ApprovalGate(const Environment& env, bool yes, bool can_ask) {
  if (!env.is_protected) {
    return Make("approval", GateStatus::kSkip, "not needed outside protected environments");
  }
  if (yes) return Make("approval", GateStatus::kPass, "approved with --yes");
  if (can_ask) {
    return Make("approval", GateStatus::kPass,
                "the database name is asked for at the terminal before applying");
  }
  return Make("approval", GateStatus::kFail,
              fmt::format("environment {} is protected and this run cannot ask for approval "
                          "(no terminal)",
                          env.name),
              "pass --yes to approve a non-interactive deploy");
}

Gate PromotionGate(const Environment& env, const std::vector<PlannedStep>& pending,
                   const std::optional<std::vector<HistoryRow>>& source_history,
                   const std::string& source_error) {
  if (!env.promote_from) {
    return Make("promotion", GateStatus::kSkip, "no promote_from for this environment");
  }
  const std::string& source = *env.promote_from;
  if (!source_history) {
    return Make("promotion", GateStatus::kFail,
                fmt::format("cannot read the history of environment {}: {}", source,
                            source_error),
                fmt::format("make the {} database reachable from here, or deploy there first",
                            source));
  }
  std::map<std::string, const HistoryRow*> applied;
  for (const HistoryRow& row : *source_history) applied[row.version] = &row;
  for (const PlannedStep& step : pending) {
    auto found = applied.find(step.version);
    if (found == applied.end()) {
      return Make("promotion", GateStatus::kFail,
                  fmt::format("{}_{} is not applied in {} yet", step.version, step.name, source),
                  fmt::format("deploy to {} first (safemig -e {} deploy), then promote", source,
                              source));
    }
    if (found->second->checksum != step.row.checksum) {
      return Make("promotion", GateStatus::kFail,
                  fmt::format("{}_{} was applied in {} with different contents (checksum {}, "
                              "here {})",
                              step.version, step.name, source,
                              found->second->checksum.substr(0, 12),
                              step.row.checksum.substr(0, 12)),
                  fmt::format("deploy exactly what ran in {}; a changed file needs a new "
                              "migration",
                              source));
    }
  }
  return Make("promotion", GateStatus::kPass,
              fmt::format("all {} pending migrations are applied in {} with the same checksums",
                          pending.size(), source));
}

Gate WindowGate(const Environment& env, std::chrono::system_clock::time_point now,
                const std::string& outside_reason) {
  if (!env.window) return Make("window", GateStatus::kSkip, "no deploy window configured");
  if (env.window->Contains(now)) {
    return Make("window", GateStatus::kPass,
                fmt::format("now ({}) is inside the window {}", FormatIso8601(now),
                            env.window->text));
  }
  if (!outside_reason.empty()) {
    return Make("window", GateStatus::kPass,
                fmt::format("outside the window {}, allowed with --outside-window: {}",
                            env.window->text, outside_reason));
  }
  return Make("window", GateStatus::kFail,
              fmt::format("now ({}) is outside the deploy window {}", FormatIso8601(now),
                          env.window->text),
              "deploy inside the window, or pass --outside-window \"REASON\" (recorded in "
              "the journal)");
}

Gate DriftGate(const StatusReport& status) {
  std::vector<std::string> problems;
  for (const StatusRow& row : status.rows) {
    if (row.state == MigrationState::kChanged || row.state == MigrationState::kOutOfOrder) {
      problems.push_back(row.detail);
    }
  }
  if (problems.empty()) {
    return Make("drift", GateStatus::kPass, "applied migrations match their files");
  }
  std::string detail = problems.front();
  if (problems.size() > 1) detail += fmt::format(" (and {} more)", problems.size() - 1);
  return Make("drift", GateStatus::kFail, detail,
              "run `safemig validate` to see every problem; restore the edited file or give "
              "the change a new migration");
}

Gate DeadlineGate(const Environment& env) {
  if (!env.max_duration) return Make("deadline", GateStatus::kSkip, "no max_duration");
  return Make("deadline", GateStatus::kPass,
              fmt::format("the apply must finish within {}, or it is rolled back",
                          FormatDuration(*env.max_duration)));
}

Gate RehearsalGate(const Environment& env, const std::string& status, const std::string& detail) {
  if (status == "passed") return Make("rehearsal", GateStatus::kPass, detail);
  if (status == "failed") {
    return Make("rehearsal", GateStatus::kFail, detail,
                "fix the migrations named above, then run `safemig rehearse` again");
  }
  if (env.is_protected) {
    return Make("rehearsal", GateStatus::kFail,
                fmt::format("environment {} is protected and has no passing rehearsal of this "
                            "plan ({})",
                            env.name, detail),
                "run `safemig rehearse` (or deploy without --skip-backup so it rehearses)");
  }
  return Make("rehearsal", GateStatus::kSkip, detail);
}

std::optional<Error> Refusal(const std::vector<Gate>& gates) {
  for (const Gate& gate : gates) {
    if (gate.status == GateStatus::kFail) {
      return Error(Category::kNoGo, fmt::format("gate {}: {}", gate.name, gate.detail),
                   gate.hint);
    }
  }
  return std::nullopt;
}

}  // namespace safemig
