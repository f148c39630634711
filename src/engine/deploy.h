// The guarded deploy pipeline behind `safemig deploy`, `up`, `plan` and `rehearse`:
//
//   lock -> validate -> lint -> gates -> backup -> rehearsal -> go/no-go -> apply ->
//   verify -> journal
//
// All or nothing: when migration k of n fails, the ones this deploy applied before it are
// reverted by their downs; when that is impossible (a down fails, the engine has no
// transactional DDL, or the failed step ran partly) the pre-deploy backup is restored in
// place, and in both cases the fingerprint must show the database as it was. Plan()
// computes the same gates and estimates without changing anything. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "core/error.h"
#include "core/migration.h"
#include "driver/driver.h"
#include "engine/gates.h"
#include "engine/migrator.h"
#include "engine/rehearsal.h"
#include "engine/reporter.h"

namespace safemig {

// One finding of the linter about a pending migration. The linter plugs in through
// DeployRequest::lint; a finding of severity "error" is a no-go.
struct LintFinding {
  std::string version;
  std::string rule;
  std::string severity;  // "error", "warning", "info"
  std::string message;
};
using LintHook = std::function<std::vector<LintFinding>(const Plan& plan, Dialect dialect)>;

struct BackupSummary {
  std::string id;
  std::uint64_t bytes = 0;      // stored (compressed)
  std::uint64_t raw_bytes = 0;
  std::chrono::milliseconds took{0};
  bool reused = false;  // rehearse --from-backup
};

// Everything the JSON documents of rehearse, plan and deploy/up carry
// (docs/json-output.md); a field that does not apply stays empty.
struct DeployReport {
  std::string command;  // "rehearse", "plan", "deploy", "up"
  bool ok = false;
  std::string verdict = "no-go";
  std::vector<std::string> reasons;
  std::optional<Error> refusal;  // the no-go as an error (exit 5) with the way forward
  std::string environment;
  std::string database;  // redacted
  std::string from_version;
  std::string to_version;
  std::string plan_hash;
  std::vector<PlannedStep> pending;
  std::vector<LintFinding> lint;
  bool lint_errors_block = false;  // protected environment, or the caller asked (ci)
  std::vector<Gate> gates;
  std::optional<BackupSummary> backup;
  std::optional<std::uint64_t> backup_estimate_bytes;  // plan only
  std::optional<RehearsalRecord> rehearsal;
  std::optional<RollbackEstimate> rollback;
  std::vector<StepOutcome> migrations;  // applied now
  std::string run_id;
  std::chrono::milliseconds took{0};
  std::optional<bool> verified;
  std::vector<std::string> verify_differences;  // when verified is false
};

nlohmann::json DeployJson(const DeployReport& report);

struct DeployRequest {
  std::string command = "deploy";
  Environment environment;
  // Every environment of the config file, for promote_from.
  std::map<std::string, Environment> environments;
  DatabaseUrl url;
  std::vector<Migration> files;
  std::optional<std::string> to;
  std::optional<int> steps;
  bool skip_backup = false;
  bool yes = false;  // approval given on the command line
  // Asks a person at a terminal to type `expected` (the database's name); returns whether
  // they did. Empty when there is no terminal.
  std::function<bool(const std::string& expected)> ask_approval;
  std::string outside_window_reason;
  std::optional<std::string> from_backup;  // rehearse: use this backup instead of a new one
  bool keep_scratch = false;
  int jobs = 0;
  std::string runner;      // lock holder, "alice@host pid 42"
  std::string applied_by;  // "alice@host"
  LintHook lint;           // empty: no findings
  // Lint errors are a no-go here even when the environment is not protected (`ci`).
  bool lint_errors_block = false;
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
  // Called once the go/no-go verdict is known, before anything is applied, so a person
  // sees the summary (timings, rollback readiness) first.
  std::function<void(const DeployReport&)> on_verdict;
};

// What deploy would do: pending migrations, lint findings, gates, backup size estimate,
// rehearsal status for this plan hash, rollback estimates. Changes nothing (not even the
// journal) and takes no lock.
DeployReport PlanDeploy(Driver& driver, const DeployRequest& request, Reporter& reporter);

// Backup (or request.from_backup) and rehearsal of the pending migrations; the target
// gains one journal row. A failing rehearsal is a no-go in the report, not an exception.
DeployReport RehearseOnly(Driver& driver, const DeployRequest& request, Reporter& reporter);

// The whole pipeline. `driver` is replaced by a fresh connection when the database had to
// be restored. A no-go is returned in the report (verdict "no-go", refusal set) before
// anything changed. Throws Error(kMigrationFailed) when applying failed and the database
// was brought back to its state before the deploy (saying how), Error(kNeedsPerson) when
// that could not be established, and what the lock, backup or driver throw.
DeployReport Deploy(std::unique_ptr<Driver>& driver, const DeployRequest& request,
                    Reporter& reporter);

// The name a person types to approve a deploy to a protected environment: the database
// name, or the SQLite file's name.
std::string ApprovalName(const DatabaseUrl& url);

}  // namespace safemig
