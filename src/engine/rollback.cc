#include "engine/rollback.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "backup/store.h"
#include "core/clock.h"
#include "core/interrupt.h"
#include "core/status.h"
#include "engine/backups.h"
#include "engine/deploy.h"
#include "engine/gates.h"
#include "engine/json_fields.h"
#include "engine/recovery.h"
#include "engine/rehearsal.h"

namespace safemig {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

bool IsDeploy(const JournalEntry& entry) {
  return (entry.kind == "deploy" || entry.kind == "up") && entry.outcome == "ok";
}

// The journal as a rollback reads it: deploys and the rehearsals they relied on.
struct Memory {
  std::vector<JournalEntry> journal;  // newest first
  std::vector<HistoryRow> history;
};

// The deploy a rollback undoes when no target is named: the newest one that still has
// migrations applied.
const JournalEntry* NewestAppliedDeploy(const Memory& memory) {
  std::set<std::string> applied_runs;
  for (const HistoryRow& row : memory.history) applied_runs.insert(row.deploy_id);
  for (const JournalEntry& entry : memory.journal) {
    if (IsDeploy(entry) && applied_runs.count(entry.deploy_id) != 0) return &entry;
  }
  return nullptr;
}

const JournalEntry* DeployById(const Memory& memory, const std::string& id) {
  for (const JournalEntry& entry : memory.journal) {
    if (IsDeploy(entry) && entry.deploy_id == id) return &entry;
  }
  return nullptr;
}

// The newest deploy that started at `version` and ended at `to`: the one whose recorded
// "before" is the state a rollback to `version` must reach.
const JournalEntry* DeployFrom(const Memory& memory, const std::string& version,
                               const std::string& to) {
  for (const JournalEntry& entry : memory.journal) {
    if (IsDeploy(entry) && entry.from_version == version && entry.to_version == to &&
        !entry.fingerprint_before.empty()) {
      return &entry;
    }
  }
  return nullptr;
}

// Rehearsals, the deploy's own first, then the others newest first.
std::vector<RehearsalRecord> Rehearsals(const Memory& memory, const JournalEntry* deploy) {
  std::int64_t preferred = 0;
  if (deploy != nullptr) {
    preferred = DetailsObject(deploy->details).value("rehearsal_journal_id", std::int64_t{0});
  }
  std::vector<RehearsalRecord> records;
  for (const JournalEntry& entry : memory.journal) {
    if (entry.kind != "rehearsal") continue;
    nlohmann::json details = DetailsObject(entry.details);
    if (!details.contains("rehearsal")) continue;
    RehearsalRecord record;
    try {
      record = RehearsalFromJson(details["rehearsal"]);
    } catch (const Error&) {
      continue;  // a damaged row says nothing; the estimate says "not rehearsed"
    }
    record.journal_id = entry.id;
    record.backup_id = entry.backup_id;
    if (entry.id == preferred) {
      records.insert(records.begin(), std::move(record));
    } else {
      records.push_back(std::move(record));
    }
  }
  return records;
}

const MigrationRehearsal* RehearsalOf(const std::vector<RehearsalRecord>& records,
                                      const std::string& version) {
  for (const RehearsalRecord& record : records) {
    for (const MigrationRehearsal& m : record.migrations) {
      if (m.version == version && m.outcome != "not_run") return &m;
    }
  }
  return nullptr;
}

std::optional<milliseconds> BackupDuration(const Manifest& manifest) {
  auto created = ParseIso8601(manifest.created_at);
  auto finished = ParseIso8601(manifest.finished_at);
  if (!created || !finished || *finished < *created) return std::nullopt;
  return std::chrono::duration_cast<milliseconds>(*finished - *created);
}

// The backup a restore-based rollback brings back: the deploy's own, else the newest one
// taken at the target version (before the deploy, when its time is known).
std::optional<BackupEntry> ChooseBackup(const BackupStore& store, const JournalEntry* deploy,
                                        const std::string& version) {
  std::vector<BackupEntry> backups = store.List();
  if (deploy != nullptr && !deploy->backup_id.empty()) {
    for (const BackupEntry& entry : backups) {
      if (entry.id == deploy->backup_id && entry.manifest) return entry;
    }
  }
  for (auto it = backups.rbegin(); it != backups.rend(); ++it) {
    if (!it->manifest || it->manifest->migration_version != version) continue;
    if (deploy != nullptr && !deploy->started_at.empty() &&
        it->manifest->created_at > deploy->started_at) {
      continue;
    }
    return *it;
  }
  return std::nullopt;
}

// How long restoring `backup` takes: measured by the rehearsal that restored it, else
// scaled from another rehearsal's restore rate.
std::pair<std::optional<milliseconds>, std::string> RestoreTime(
    const std::vector<RehearsalRecord>& records, const BackupStore& store,
    const Manifest& backup) {
  for (const RehearsalRecord& record : records) {
    if (record.restore && record.backup_id == backup.id) {
      return {record.restore, fmt::format("restore {} as the rehearsal measured it",
                                          FormatDuration(*record.restore))};
    }
  }
  for (const RehearsalRecord& record : records) {
    if (!record.restore || record.backup_id.empty()) continue;
    std::optional<BackupEntry> other;
    try {
      other = store.Find(record.backup_id);
    } catch (const Error&) {
      continue;
    }
    if (!other->manifest || other->manifest->RawBytes() == 0) continue;
    const double scale = static_cast<double>(backup.RawBytes()) /
                         static_cast<double>(other->manifest->RawBytes());
    const milliseconds scaled(static_cast<std::int64_t>(record.restore->count() * scale));
    return {scaled, fmt::format("restore {}, scaled by size from the rehearsal's restore of {}",
                                FormatDuration(scaled), record.backup_id)};
  }
  return {std::nullopt, "no rehearsal has measured a restore of this database"};
}

void PlanDownWay(RollbackPlan& plan, std::optional<milliseconds> backup_time,
                 milliseconds verify_time, bool skip_backup) {
  RollbackWay& way = plan.down;
  way.available = true;
  milliseconds downs{0};
  std::string unrehearsed;
  for (const RollbackStepInfo& step : plan.steps) {
    if (step.irreversible && way.available) {
      way.available = false;
      way.unavailable = fmt::format("{}_{} is irreversible: it has no down", step.version,
                                    step.name);
    }
    if (step.rehearsed_down) {
      downs += *step.rehearsed_down;
    } else if (unrehearsed.empty()) {
      unrehearsed = step.version + "_" + step.name;
    }
    for (const std::string& loss : step.data_loss) way.loses.push_back(loss);
  }
  way.loses.push_back(way.loses.empty()
                          ? "nothing the rehearsal saw: what was written since the deploy stays"
                          : "nothing else: what was written since the deploy stays");
  if (!way.available) return;
  if (!unrehearsed.empty()) {
    way.estimate_basis = fmt::format("no estimate: the down of {} was never rehearsed",
                                     unrehearsed);
    return;
  }
  std::vector<std::string> parts = {fmt::format("downs {} as rehearsed", FormatDuration(downs))};
  milliseconds total = downs + verify_time;
  if (!skip_backup) {
    if (!backup_time) {
      way.estimate_basis = "no estimate: the time of a backup of this database is not known";
      return;
    }
    total += *backup_time;
    parts.insert(parts.begin(),
                 fmt::format("backup first {} (as the last one took)", FormatDuration(*backup_time)));
  }
  parts.push_back(fmt::format("verify {} (measured now)", FormatDuration(verify_time)));
  way.estimate = total;
  way.estimate_basis = fmt::format("{}", fmt::join(parts, " + "));
}

void PlanRestoreWay(RollbackPlan& plan, const BackupStore& store,
                    const std::optional<BackupEntry>& backup,
                    const std::vector<RehearsalRecord>& records, milliseconds verify_time,
                    std::optional<std::int64_t> writes_since) {
  RollbackWay& way = plan.restore;
  if (!backup) {
    way.unavailable = fmt::format("no backup at version {} in {}", VersionOrNone(plan.to_version),
                                  store.dir().string());
    return;
  }
  const Manifest& manifest = *backup->manifest;
  way.available = true;
  way.backup_id = backup->id;
  way.backup_bytes = manifest.StoredBytes();
  way.backup_verified = backup->verified;
  way.backup_taken_at = manifest.created_at;
  way.writes_since = writes_since;
  auto [restore, restore_basis] = RestoreTime(records, store, manifest);
  std::optional<milliseconds> safety = BackupDuration(manifest);
  if (restore && safety) {
    way.estimate = *safety + *restore + verify_time;
    way.estimate_basis =
        fmt::format("safety backup {} (as this backup took) + {} + verify {} (measured now)",
                    FormatDuration(*safety), restore_basis, FormatDuration(verify_time));
  } else {
    way.estimate_basis = "no estimate: " + restore_basis;
  }
  std::string writes = "the engine keeps no write statistics to say how many";
  if (writes_since) {
    writes = fmt::format("about {} rows written since the deploy, by the engine's statistics",
                         *writes_since);
  }
  way.loses.push_back(fmt::format("every write since {} ({}); they stay in the safety backup",
                                  manifest.created_at, writes));
}

void Choose(RollbackPlan& plan, RollbackStrategy strategy) {
  bool all_rehearsed = !plan.steps.empty();
  std::string first_gap;
  for (const RollbackStepInfo& step : plan.steps) {
    if (step.rehearsal_outcome != "ok") {
      all_rehearsed = false;
      if (first_gap.empty()) {
        first_gap = step.rehearsal_outcome.empty()
                        ? fmt::format("the down of {}_{} was never rehearsed", step.version,
                                      step.name)
                        : fmt::format("the rehearsal of {}_{} ended {}", step.version, step.name,
                                      step.rehearsal_outcome);
      }
    }
  }
  switch (strategy) {
    case RollbackStrategy::kDown:
      plan.chosen = RollbackStrategy::kDown;
      plan.why = "asked for (--strategy down)";
      return;
    case RollbackStrategy::kRestore:
      plan.chosen = RollbackStrategy::kRestore;
      plan.why = "asked for (--strategy restore)";
      return;
    case RollbackStrategy::kAuto:
      break;
  }
  if (plan.down.available && all_rehearsed) {
    plan.chosen = RollbackStrategy::kDown;
    plan.why = "every down passed the rehearsal, and downs keep the data written since";
  } else if (plan.restore.available) {
    plan.chosen = RollbackStrategy::kRestore;
    plan.why = plan.down.available ? first_gap : plan.down.unavailable;
  } else {
    plan.chosen = RollbackStrategy::kDown;
    plan.why = fmt::format("{}, but there is no backup to restore", first_gap);
  }
}

const RollbackWay& ChosenWay(const RollbackPlan& plan) {
  return plan.chosen == RollbackStrategy::kDown ? plan.down : plan.restore;
}

// Updates the rollback's journal row with what the plan estimated and what happened.
void CompleteJournal(Driver& driver, std::int64_t journal_id, const RollbackPlan& plan,
                     const RollbackRequest& request, const RollbackOutcome& outcome,
                     const Fingerprint& after, Reporter& reporter) {
  try {
    for (JournalEntry& entry : driver.ReadJournal(20)) {
      if (entry.id != journal_id) continue;
      nlohmann::json details = DetailsObject(entry.details);
      details["strategy"] = outcome.strategy_used;
      details["why"] = plan.why;
      details["reason"] = RedactSecrets(request.reason);
      details["estimate_ms"] = MsOrNull(ChosenWay(plan).estimate);
      details["actual_ms"] = outcome.took.count();
      details["undid_deploy"] = OrNull(plan.deploy_id);
      details["verified"] =
          outcome.verified ? nlohmann::json(*outcome.verified) : nlohmann::json(nullptr);
      entry.details = details.dump();
      entry.fingerprint_after = SchemaOnly(after).ToJson();
      driver.UpdateJournal(entry);
      return;
    }
  } catch (const Error& e) {
    reporter.Warning(fmt::format("could not complete journal entry {}: {}", journal_id,
                                 RedactSecrets(e.what())));
  }
}

// Compares the schema reached with the one recorded before the deploy.
void Verify(RollbackOutcome& outcome, const Fingerprint& after) {
  if (outcome.plan.expected_schema.empty()) return;
  const Fingerprint expected = Fingerprint::FromJson(outcome.plan.expected_schema);
  outcome.verified = expected.SchemaDigest() == after.SchemaDigest();
  if (!*outcome.verified) outcome.differences = DescribeDifferences(expected, SchemaOnly(after));
}

[[noreturn]] void ThrowUnverified(const RollbackOutcome& outcome) {
  throw Error(Category::kNeedsPerson,
              fmt::format("rolled back to version {} by {}, but the schema differs from the one "
                          "recorded before the deploy: {}",
                          VersionOrNone(outcome.reached_version), outcome.strategy_used,
                          outcome.differences.empty()
                              ? std::string("digest")
                              : fmt::format("{}", fmt::join(outcome.differences, "; "))),
              outcome.strategy_used == "down"
                  ? "someone changed the schema after the deploy: look at the difference, or "
                    "roll back with --strategy restore"
                  : "compare the database with the backup's manifest before going on");
}

void RollBackByDown(std::unique_ptr<Driver>& driver, const RollbackRequest& request,
                    RollbackOutcome& outcome, const BackupStore& store, Reporter& reporter,
                    Clock::time_point started) {
  const RollbackPlan& plan = outcome.plan;
  const Environment& env = request.environment;
  RunOptions run;
  run.environment = env.name;
  run.run_id = NewRunId();
  run.applied_by = request.applied_by;
  run.journal_kind = "rollback";
  if (!request.skip_backup) {
    BackupRequest backup;
    backup.environment = env.name;
    backup.reason = "before-rollback";
    backup.migration_version = plan.from_version;
    backup.label = fmt::format("before rollback to {}", VersionOrNone(plan.to_version));
    BackupResult taken = TakeBackup(*driver, store, backup, reporter);
    reporter.Note(fmt::format("Backup {} of the current state in {}", taken.manifest.id,
                              FormatDuration(taken.took)));
    run.backup_id = outcome.safety_backup_id = taken.manifest.id;
  }
  if (request.deadline) {
    run.deadline = started + *request.deadline;
    run.deadline_name =
        fmt::format("the rollback deadline ({})", FormatDuration(*request.deadline));
    run.deadline_hint = "run `safemig rollback` again to finish, with a longer --deadline";
    const bool transactional = driver->capabilities().transactional_ddl;
    Driver& target = *driver;
    // A statement still running at the deadline is cancelled; only where its migration is
    // one transaction, so the cancel leaves the database at the version before it.
    run.before_step = [&target, &env, &run, transactional](const PlannedStep& step) {
      if (!transactional || !step.in_transaction) return;
      auto remaining = std::chrono::duration_cast<milliseconds>(*run.deadline - Clock::now());
      remaining = std::max(remaining, milliseconds(1));
      if (env.statement_timeout) remaining = std::min(remaining, *env.statement_timeout);
      target.SetTimeouts(env.lock_timeout, remaining);
    };
  }
  Migrator migrator(*driver, reporter);
  RunResult result;
  try {
    result = migrator.Execute(plan.downs, run);
  } catch (const Error& e) {
    if (e.category() != Category::kMigrationFailed) throw;
    const StatusReport now = ComputeStatus(request.files, driver->ReadHistory());
    throw Error(Category::kMigrationFailed,
                fmt::format("rollback stopped: {}; the database is consistent at version {}",
                            e.what(), VersionOrNone(now.current_version)),
                e.hint());
  }
  driver->SetTimeouts(env.lock_timeout, env.statement_timeout);
  outcome.strategy_used = "down";
  outcome.reached_version = result.to_version;
  outcome.journal_id = result.journal_id;
  // Verify compares schemas only (and PlanRollback timed a fingerprint of this depth).
  const Fingerprint after =
      driver->TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kSchema);
  Verify(outcome, after);
  outcome.took = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
  CompleteJournal(*driver, result.journal_id, plan, request, outcome, after, reporter);
}

void RollBackByRestore(std::unique_ptr<Driver>& driver, const RollbackRequest& request,
                       RollbackOutcome& outcome, const BackupStore& store, Reporter& reporter,
                       Clock::time_point started) {
  const RollbackPlan& plan = outcome.plan;
  const Environment& env = request.environment;
  reporter.Note(fmt::format("Restoring backup {} in place (version {})", plan.restore.backup_id,
                            VersionOrNone(plan.to_version)));
  // Once a restore has started it runs to the end: stopped halfway, the database would be
  // neither state. The deadline was weighed against the estimate before.
  RestoreResult restored = RestoreBackup(store, plan.restore.backup_id, request.url,
                                         std::move(driver), env.name, reporter, request.jobs);
  driver = OpenDriver(request.url, OpenOptions{/*create_if_missing=*/false, request.jobs});
  driver->SetTimeouts(env.lock_timeout, env.statement_timeout);
  outcome.strategy_used = "restore";
  outcome.safety_backup_id = restored.safety_backup_id;
  outcome.reached_version = restored.manifest.migration_version;
  // The restore proved the data against the backup's manifest; Verify compares schemas.
  const Fingerprint after =
      driver->TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kSchema);
  Verify(outcome, after);
  outcome.took = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
  outcome.journal_id = JournalRestore(
      request.url, restored, env.name, "rollback",
      {{"strategy", "restore"},
       {"why", plan.why},
       {"reason", RedactSecrets(request.reason)},
       {"estimate_ms", MsOrNull(plan.restore.estimate)},
       {"actual_ms", outcome.took.count()},
       {"undid_deploy", OrNull(plan.deploy_id)},
       {"from_version", plan.from_version},
       {"verified", outcome.verified ? nlohmann::json(*outcome.verified) : nlohmann::json()}});
}

}  // namespace

RollbackStrategy ParseRollbackStrategy(const std::string& text) {
  if (text == "auto") return RollbackStrategy::kAuto;
  if (text == "down") return RollbackStrategy::kDown;
  if (text == "restore") return RollbackStrategy::kRestore;
  throw Error(Category::kUsage, fmt::format("unknown rollback strategy \"{}\"", text),
              "use auto, down or restore");
}

const char* RollbackStrategyName(RollbackStrategy strategy) {
  switch (strategy) {
    case RollbackStrategy::kAuto:
      return "auto";
    case RollbackStrategy::kDown:
      return "down";
    case RollbackStrategy::kRestore:
      return "restore";
  }
  return "auto";
}

RollbackPlan PlanRollback(Driver& driver, const RollbackRequest& request) {
  const int targets = (request.to ? 1 : 0) + (request.steps ? 1 : 0) + (request.deploy_id ? 1 : 0);
  if (targets > 1) {
    throw Error(Category::kUsage, "--to, --steps and --deploy name the target three ways",
                "give at most one of them");
  }
  Memory memory{driver.ReadJournal(500), driver.ReadHistory()};
  const StatusReport status = ComputeStatus(request.files, memory.history);
  if (status.applied == 0 && status.current_version.empty()) {
    throw Error(Category::kNoGo,
                fmt::format("nothing to roll back: no migration is applied to {}",
                            driver.Describe()));
  }

  const JournalEntry* deploy = nullptr;
  std::optional<std::string> to = request.to;
  if (request.deploy_id) {
    deploy = DeployById(memory, *request.deploy_id);
    if (deploy == nullptr) {
      throw Error(Category::kUsage,
                  fmt::format("no deploy {} in the journal of {}", *request.deploy_id,
                              driver.Describe()),
                  "`safemig history --journal` lists the deploys");
    }
  } else if (!request.to && !request.steps) {
    deploy = NewestAppliedDeploy(memory);
    if (deploy == nullptr) {
      throw Error(Category::kNoGo,
                  "no deploy in the journal has migrations still applied, so \"before the last "
                  "deploy\" names nothing",
                  "name the target: --to VERSION or --steps N");
    }
  }
  if (deploy != nullptr) to = deploy->from_version.empty() ? "0" : deploy->from_version;

  RollbackPlan plan;
  plan.environment = request.environment.name;
  plan.database = request.url.Redacted();
  plan.deadline = request.deadline;
  plan.downs = PlanDown(status, to, request.steps, /*allow_irreversible=*/true);
  plan.from_version = plan.downs.from_version;
  plan.to_version = plan.downs.to_version;
  if (plan.downs.steps.empty()) {
    throw Error(Category::kNoGo,
                fmt::format("nothing to roll back: {} is at version {} already", driver.Describe(),
                            VersionOrNone(status.current_version)));
  }
  if (deploy == nullptr) deploy = DeployFrom(memory, plan.to_version, plan.from_version);
  if (deploy != nullptr) {
    plan.deploy_id = deploy->deploy_id;
    plan.deployed_at = deploy->finished_at;
    plan.expected_schema = deploy->fingerprint_before;
  }

  std::set<std::string> files;
  for (const Migration& file : request.files) files.insert(file.version);
  const std::vector<RehearsalRecord> records = Rehearsals(memory, deploy);
  for (const PlannedStep& step : plan.downs.steps) {
    RollbackStepInfo info;
    info.version = step.version;
    info.name = step.name;
    info.deploy_id = step.row.deploy_id;
    info.irreversible = step.irreversible;
    info.file_present = files.count(step.version) != 0;
    if (!info.file_present) plan.missing_files.push_back(step.version);
    if (const MigrationRehearsal* m = RehearsalOf(records, step.version)) {
      info.rehearsal_outcome = m->outcome;
      info.rehearsed_down = m->down;
      info.data_loss = m->data_loss;
    }
    plan.steps.push_back(std::move(info));
  }

  // The current state: how long a fingerprint takes here (the down way verifies with
  // one of the same depth, schema only), and whether someone changed the schema since the
  // deploy.
  const auto fingerprint_started = Clock::now();
  const Fingerprint current =
      driver.TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kSchema);
  const milliseconds verify_time = Since(fingerprint_started);
  if (deploy != nullptr && deploy->to_version == plan.from_version &&
      !deploy->fingerprint_after.empty()) {
    const Fingerprint deployed = Fingerprint::FromJson(deploy->fingerprint_after);
    if (deployed.SchemaDigest() != current.SchemaDigest()) {
      plan.changed_since_deploy = DescribeDifferences(deployed, SchemaOnly(current));
      if (plan.changed_since_deploy.empty()) plan.changed_since_deploy.push_back("digest differs");
    }
  }

  std::optional<std::int64_t> writes_since;
  if (deploy != nullptr) {
    const nlohmann::json details = DetailsObject(deploy->details);
    std::optional<std::int64_t> now;
    try {
      now = driver.WriteCount();
    } catch (const Error&) {
      // Statistics are a nicety: the estimate says it does not know.
    }
    if (now && details.contains("writes_after") && details["writes_after"].is_number_integer()) {
      const std::int64_t then = details["writes_after"].get<std::int64_t>();
      if (*now >= then) writes_since = *now - then;
    }
  }

  const BackupStore store(request.environment.backups);
  const std::optional<BackupEntry> backup = ChooseBackup(store, deploy, plan.to_version);
  std::optional<milliseconds> backup_time;
  if (backup) backup_time = BackupDuration(*backup->manifest);
  PlanDownWay(plan, backup_time, verify_time, request.skip_backup);
  PlanRestoreWay(plan, store, backup, records, verify_time, writes_since);
  Choose(plan, request.strategy);
  const RollbackWay& chosen = ChosenWay(plan);
  plan.over_deadline = request.deadline && chosen.estimate && *chosen.estimate > *request.deadline;
  return plan;
}

RollbackOutcome Rollback(std::unique_ptr<Driver>& driver, const RollbackRequest& request,
                         Reporter& reporter) {
  const auto started = Clock::now();
  const Environment& env = request.environment;
  RollbackOutcome outcome;
  outcome.dry_run = request.dry_run;
  auto lock = driver->Lock(env.lock_timeout, request.runner);
  driver->EnsureMetadata();
  RefuseIfInterruptedRun(*driver);
  outcome.plan = PlanRollback(*driver, request);
  const RollbackPlan& plan = outcome.plan;
  if (request.on_plan) request.on_plan(plan);

  const RollbackWay& way = ChosenWay(plan);
  const char* strategy = RollbackStrategyName(plan.chosen);
  if (!way.available) {
    outcome.refusal = Error(Category::kNoGo,
                            fmt::format("cannot roll back by {}: {}", strategy, way.unavailable),
                            plan.chosen == RollbackStrategy::kDown
                                ? "roll back with --strategy restore"
                                : "roll back with --strategy down, or restore a backup by hand");
  } else if (plan.chosen == RollbackStrategy::kRestore && request.skip_backup) {
    outcome.refusal =
        Error(Category::kUsage, "a restore-based rollback always backs up the current state first",
              "drop --skip-backup");
  } else if (request.skip_backup && ProtectedGate(env, true).status == GateStatus::kFail) {
    const Gate gate = ProtectedGate(env, true);
    outcome.refusal = Error(Category::kNoGo, gate.detail, gate.hint);
  } else if (plan.over_deadline && !request.force) {
    outcome.refusal = Error(
        Category::kNoGo,
        fmt::format("rolling back by {} is estimated at {}, longer than the deadline {}", strategy,
                    FormatDuration(*way.estimate), FormatDuration(*request.deadline)),
        "roll back anyway with --force, or choose the other way with --strategy");
  }
  if (outcome.refusal || request.dry_run) {
    outcome.ok = !outcome.refusal;
    outcome.took = Since(started);
    return outcome;
  }
  if (env.is_protected && !request.yes) {
    const std::string expected = ApprovalName(request.url);
    if (!request.ask_approval || !request.ask_approval(expected)) {
      outcome.refusal =
          Error(Category::kNoGo,
                fmt::format("not approved: the database name {} was not typed", expected),
                "type the name exactly, or pass --yes in a non-interactive run");
      outcome.took = Since(started);
      return outcome;
    }
  }

  const BackupStore store(env.backups);
  if (plan.chosen == RollbackStrategy::kDown) {
    RollBackByDown(driver, request, outcome, store, reporter, started);
  } else {
    lock.reset();  // the restore replaces the database; its own safety backup comes first
    RollBackByRestore(driver, request, outcome, store, reporter, started);
  }
  if (outcome.verified && !*outcome.verified) ThrowUnverified(outcome);
  outcome.ok = true;
  return outcome;
}

nlohmann::json RollbackPlanJson(const RollbackPlan& plan) {
  nlohmann::json steps = nlohmann::json::array();
  for (const RollbackStepInfo& step : plan.steps) {
    steps.push_back({{"version", step.version},
                     {"name", step.name},
                     {"deploy_id", OrNull(step.deploy_id)},
                     {"irreversible", step.irreversible},
                     {"file_present", step.file_present},
                     {"rehearsal_outcome", OrNull(step.rehearsal_outcome)},
                     {"rehearsed_down_ms", MsOrNull(step.rehearsed_down)},
                     {"data_loss", step.data_loss}});
  }
  auto way_json = [](const RollbackWay& way) {
    return nlohmann::json{{"available", way.available},
                          {"unavailable", OrNull(way.unavailable)},
                          {"estimate_ms", MsOrNull(way.estimate)},
                          {"estimate_basis", way.estimate_basis},
                          {"loses", way.loses}};
  };
  nlohmann::json restore = way_json(plan.restore);
  restore["backup_id"] = OrNull(plan.restore.backup_id);
  restore["backup_bytes"] = plan.restore.backup_bytes;
  restore["backup_verified"] = plan.restore.backup_verified;
  restore["backup_taken_at"] = OrNull(plan.restore.backup_taken_at);
  restore["writes_since"] = plan.restore.writes_since ? nlohmann::json(*plan.restore.writes_since)
                                                      : nlohmann::json(nullptr);
  return {{"environment", plan.environment},
          {"database", plan.database},
          {"from_version", plan.from_version},
          {"to_version", plan.to_version},
          {"deploy_id", OrNull(plan.deploy_id)},
          {"deployed_at", OrNull(plan.deployed_at)},
          {"steps", steps},
          {"down", way_json(plan.down)},
          {"restore", restore},
          {"chosen", RollbackStrategyName(plan.chosen)},
          {"why", plan.why},
          {"deadline_ms", MsOrNull(plan.deadline)},
          {"over_deadline", plan.over_deadline},
          {"verifiable", !plan.expected_schema.empty()},
          {"changed_since_deploy", plan.changed_since_deploy},
          {"missing_files", plan.missing_files}};
}

nlohmann::json RollbackOutcomeJson(const RollbackOutcome& outcome) {
  return {{"command", "rollback"},
          {"ok", outcome.ok},
          {"dry_run", outcome.dry_run},
          {"plan", RollbackPlanJson(outcome.plan)},
          {"strategy", OrNull(outcome.strategy_used)},
          {"safety_backup_id", OrNull(outcome.safety_backup_id)},
          {"reached_version", outcome.strategy_used.empty()
                                  ? nlohmann::json(nullptr)
                                  : nlohmann::json(outcome.reached_version)},
          {"took_ms", outcome.took.count()},
          {"verified", outcome.verified ? nlohmann::json(*outcome.verified)
                                        : nlohmann::json(nullptr)},
          {"differences", outcome.differences},
          {"journal_id", outcome.journal_id == 0 ? nlohmann::json(nullptr)
                                                 : nlohmann::json(outcome.journal_id)}};
}

}  // namespace safemig
