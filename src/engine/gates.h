// The policy checks a deploy passes before it changes anything: protected environments,
// approval, promotion from another environment, the deploy window, the rehearsal, the
// backup, drift and the apply deadline.
//
// Each check is a pure function of facts the caller gathered (configuration, the clock,
// histories, the journal), so `plan` shows the same verdicts `deploy` acts on, and tests
// need no database. A failing gate carries the way forward as its hint. Thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "core/history.h"
#include "core/status.h"
#include "engine/migrator.h"

namespace safemig {

enum class GateStatus { kPass, kFail, kSkip };
const char* GateStatusName(GateStatus status);  // "pass", "fail", "skip"

struct Gate {
  std::string name;  // protected, approval, promotion, window, rehearsal, backup, drift, deadline
  GateStatus status = GateStatus::kSkip;
  std::string detail;  // one sentence
  std::string hint;    // failing gates: what to do instead
};

// protected = true: a backup is mandatory, so --skip-backup fails this gate.
Gate ProtectedGate(const Environment& env, bool skip_backup);

// Whether a backup is taken first (skip, with its consequence, for --skip-backup).
Gate BackupGate(const Environment& env, bool skip_backup);

// Protected environments need an explicit approval: --yes, or the database name typed at a
// terminal (`can_ask`). Fails when neither is possible.
Gate ApprovalGate(const Environment& env, bool yes, bool can_ask);

// promote_from = "staging": every pending migration must already be applied there with the
// same checksum. `source_history` is that database's history; nullopt with
// `source_error` when it could not be read.
Gate PromotionGate(const Environment& env, const std::vector<PlannedStep>& pending,
                   const std::optional<std::vector<HistoryRow>>& source_history,
                   const std::string& source_error);

// window = "...": `now` must fall inside it, or `outside_reason` (--outside-window REASON)
// must say why not.
Gate WindowGate(const Environment& env, std::chrono::system_clock::time_point now,
                const std::string& outside_reason);

// Drift that forbids applying: an edited applied migration, or a pending one older than
// the current version.
Gate DriftGate(const StatusReport& status);

// max_duration: how long the apply may take before it is stopped and rolled back.
Gate DeadlineGate(const Environment& env);

// The rehearsal requirement. `status` is "passed", "failed", "missing" or "stale" for
// this plan; `detail` says which rehearsal and when. A protected environment needs
// "passed"; elsewhere a missing rehearsal (no backup to rehearse from) is a skip.
Gate RehearsalGate(const Environment& env, const std::string& status, const std::string& detail);

// The first failing gate as Error(kNoGo) "gate NAME: DETAIL" with its hint; nullopt when
// none fails.
std::optional<Error> Refusal(const std::vector<Gate>& gates);

}  // namespace safemig
