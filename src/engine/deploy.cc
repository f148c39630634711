#include "engine/json_fields.h"
#include "engine/deploy.h"

#include <filesystem>

#include <fmt/format.h>

#include "backup/store.h"
#include "config/url.h"
#include "core/clock.h"
#include "core/status.h"
#include "engine/backups.h"
#include "engine/recovery.h"

namespace safemig {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string Joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) {
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text;
}

// What every pipeline reads before deciding anything.
struct Prepared {
  StatusReport status;
  Plan plan;
  // The target's schema before any change, safemig's tables left out. Only schemas are
  // compared and journaled, so no row is read (FingerprintDepth::kSchema).
  Fingerprint before;
  bool drift_free = false;
};

// The history of the environment promote_from names, read without changing it.
std::optional<std::vector<HistoryRow>> PromotionSource(const DeployRequest& request,
                                                       std::string* error) {
  auto found = request.environments.find(*request.environment.promote_from);
  if (found == request.environments.end()) {
    *error = "it is not defined in the config file";
    return std::nullopt;
  }
  try {
    DatabaseUrl url = ParseDatabaseUrl(found->second.url);
    std::unique_ptr<Driver> source = OpenDriver(url, OpenOptions{/*create_if_missing=*/false});
    return source->ReadHistory();
  } catch (const Error& e) {
    *error = RedactSecrets(e.what());
    return std::nullopt;
  }
}

// Validate, lint and the gates that need no change to the target.
Prepared Prepare(Driver& driver, const DeployRequest& request, DeployReport& report) {
  const Environment& env = request.environment;
  report.environment = env.name;
  report.database = request.url.Redacted();
  Prepared prepared;
  prepared.status = ComputeStatus(request.files, driver.ReadHistory());
  report.from_version = prepared.status.current_version;
  report.to_version = prepared.status.current_version;
  Gate drift = DriftGate(prepared.status);
  report.gates.push_back(drift);
  if (drift.status == GateStatus::kFail) return prepared;
  prepared.drift_free = true;
  prepared.plan = PlanUp(prepared.status, request.to, request.steps);
  report.to_version = prepared.plan.to_version;
  report.pending = prepared.plan.steps;
  if (prepared.plan.steps.empty()) return prepared;
  prepared.before = driver.TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kSchema);
  report.plan_hash = PlanHash(prepared.plan, prepared.before.SchemaDigest());
  if (request.lint) report.lint = request.lint(prepared.plan, driver.dialect());
  // Lint errors stop deploys where a mistake costs most; elsewhere they are shown and the
  // person decides.
  report.lint_errors_block = request.lint_errors_block || env.is_protected;
  report.gates.push_back(ProtectedGate(env, request.skip_backup));
  report.gates.push_back(ApprovalGate(env, request.yes, static_cast<bool>(request.ask_approval)));
  std::string source_error;
  std::optional<std::vector<HistoryRow>> source;
  if (env.promote_from) source = PromotionSource(request, &source_error);
  report.gates.push_back(PromotionGate(env, prepared.plan.steps, source, source_error));
  report.gates.push_back(WindowGate(env, request.now(), request.outside_window_reason));
  report.gates.push_back(BackupGate(env, request.skip_backup));
  report.gates.push_back(DeadlineGate(env));
  return prepared;
}

void SetGate(DeployReport& report, Gate gate) {
  for (Gate& existing : report.gates) {
    if (existing.name == gate.name) {
      existing = std::move(gate);
      return;
    }
  }
  report.gates.push_back(std::move(gate));
}

// Turns failing gates, a failed rehearsal and lint errors into the verdict.
void Decide(DeployReport& report) {
  report.reasons.clear();
  std::string hint;
  for (const Gate& gate : report.gates) {
    if (gate.status != GateStatus::kFail) continue;
    if (gate.name == "rehearsal" && report.rehearsal && !report.rehearsal->reasons.empty()) {
      for (const std::string& reason : report.rehearsal->reasons) report.reasons.push_back(reason);
    } else {
      report.reasons.push_back(fmt::format("{}: {}", gate.name, gate.detail));
    }
    if (hint.empty()) hint = gate.hint;
  }
  for (const LintFinding& finding : report.lint) {
    if (finding.severity != "error" || !report.lint_errors_block) continue;
    report.reasons.push_back(
        fmt::format("{}: lint {}: {}", finding.version, finding.rule, finding.message));
    if (hint.empty()) hint = "change the migration, or waive the rule in the lint settings";
  }
  report.verdict = report.reasons.empty() ? "go" : "no-go";
  report.ok = report.reasons.empty();
  report.refusal.reset();
  if (!report.reasons.empty()) {
    std::string message = "no-go: " + report.reasons.front();
    if (report.reasons.size() > 1) {
      message += fmt::format(" (and {} more reason{})", report.reasons.size() - 1,
                             report.reasons.size() == 2 ? "" : "s");
    }
    report.refusal = Error(Category::kNoGo, message, hint);
  }
}

std::string RehearsalDetail(const RehearsalRecord& record) {
  if (record.status == "missing") return "no rehearsal of this plan on this schema";
  std::string when = record.at.empty() ? "" : " at " + record.at;
  if (record.status == "stale") {
    return fmt::format("the passing rehearsal #{}{} is older than rehearsal_max_age",
                       record.journal_id, when);
  }
  if (record.status == "failed") {
    return fmt::format("rehearsal #{}{} failed: {}", record.journal_id, when,
                       record.reasons.empty() ? "see its journal entry" : record.reasons.front());
  }
  return fmt::format("rehearsal #{}{} passed on a copy of the real data", record.journal_id,
                     when);
}

BackupSummary Summarize(const Manifest& manifest, milliseconds took, bool reused) {
  return BackupSummary{manifest.id, manifest.StoredBytes(), manifest.RawBytes(), took, reused};
}

BackupSummary TakeDeployBackup(Driver& driver, const BackupStore& store,
                               const DeployRequest& request, const Prepared& prepared,
                               Reporter& reporter) {
  BackupRequest backup;
  backup.environment = request.environment.name;
  backup.reason = "before-up";
  backup.migration_version = prepared.status.current_version;
  backup.label = fmt::format("before {} to {}", request.command,
                             prepared.plan.to_version.empty() ? "none" : prepared.plan.to_version);
  BackupResult taken = TakeBackup(driver, store, backup, reporter);
  reporter.Note(fmt::format("Backup {}: {} bytes, {} stored, in {}", taken.manifest.id,
                            taken.manifest.RawBytes(), taken.manifest.StoredBytes(),
                            FormatDuration(taken.took)));
  return Summarize(taken.manifest, taken.took, false);
}

RehearsalOptions RehearsalOptionsFor(const DeployRequest& request, const std::string& run_id) {
  RehearsalOptions options;
  options.environment = request.environment.name;
  options.run_id = run_id;
  options.keep = request.keep_scratch;
  options.jobs = request.jobs;
  if (request.environment.rehearsal_url) {
    options.rehearsal_url = ParseDatabaseUrl(*request.environment.rehearsal_url);
  }
  return options;
}

// The rehearsal gate and the rollback estimate from `record`.
void RecordRehearsal(DeployReport& report, const Environment& env, RehearsalRecord record,
                     const std::string& missing_detail = {}) {
  std::string detail = record.status == "missing" && !missing_detail.empty()
                           ? missing_detail
                           : RehearsalDetail(record);
  SetGate(report, RehearsalGate(env, record.status, detail));
  if (!record.migrations.empty()) {
    report.rollback = EstimateRollback(record, report.backup ? report.backup->id : "");
  }
  report.rehearsal = std::move(record);
}

// Brings the database back to where it was after applying failed, or says it could not.
[[noreturn]] void Recover(std::unique_ptr<Driver>& driver, const DeployRequest& request,
                          const DeployReport& report, const Prepared& prepared,
                          const BackupStore& store, const Error& failure, Reporter& reporter) {
  const std::string what = failure.what();
  const bool reverted_by_downs = failure.category() == Category::kMigrationFailed &&
                                 driver->capabilities().transactional_ddl;
  if (reverted_by_downs) {
    const Fingerprint now =
        driver->TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kSchema);
    if (now.SchemaDigest() == prepared.before.SchemaDigest()) {
      throw Error(Category::kMigrationFailed,
                  what + " (checked: the schema fingerprint equals the one before the deploy)",
                  failure.hint());
    }
    std::vector<std::string> differences =
        DescribeDifferences(SchemaOnly(prepared.before), SchemaOnly(now));
    reporter.Warning(fmt::format("after reverting, the schema differs from before the deploy "
                                 "({}); restoring the backup",
                                 differences.empty() ? "digest" : differences.front()));
  }
  if (!report.backup) {
    throw Error(Category::kNeedsPerson,
                what + "; no backup was taken (--skip-backup), so the state before the deploy "
                       "cannot be restored",
                "inspect the database with `safemig status` and undo what ran by hand");
  }
  const std::string& id = report.backup->id;
  reporter.Note(fmt::format("Restoring backup {} in place (the state before this deploy)", id));
  RestoreResult restored;
  try {
    restored = RestoreBackup(store, id, request.url, std::move(driver), request.environment.name,
                             reporter, request.jobs);
  } catch (const Error& e) {
    throw Error(Category::kNeedsPerson,
                fmt::format("{}; restoring backup {} failed too: {}", what, id, e.what()),
                fmt::format("restore it by hand: safemig restore {} --in-place", id));
  }
  driver = OpenDriver(request.url, OpenOptions{/*create_if_missing=*/false, request.jobs});
  driver->SetTimeouts(request.environment.lock_timeout, request.environment.statement_timeout);
  // The restore itself proved the data against the backup's manifest; what is left to
  // check is that the schema is the one before the deploy.
  const Fingerprint now =
      driver->TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kSchema);
  if (now.SchemaDigest() != prepared.before.SchemaDigest()) {
    std::vector<std::string> differences =
        DescribeDifferences(SchemaOnly(prepared.before), SchemaOnly(now));
    throw Error(Category::kNeedsPerson,
                fmt::format("{}; backup {} was restored, but the schema still differs from "
                            "before the deploy: {}",
                            what, id, differences.empty() ? "digest" : differences.front()),
                "compare with `safemig status` and the backup's manifest before going on");
  }
  // The restore brought back the journal as the backup held it: record what happened.
  JournalEntry journal;
  journal.kind = request.command;
  journal.environment = request.environment.name;
  journal.deploy_id = report.run_id;
  journal.started_at = NowIso8601();
  journal.finished_at = journal.started_at;
  journal.outcome = "restored";
  journal.plan_hash = report.plan_hash;
  journal.from_version = report.from_version;
  journal.to_version = report.to_version;
  journal.backup_id = id;
  journal.details = nlohmann::json{{"error", RedactSecrets(what)},
                                   {"restore_ms", restored.took.count()},
                                   {"safety_backup_id", restored.safety_backup_id}}
                        .dump();
  try {
    driver->InsertJournal(journal);
  } catch (const Error& e) {
    reporter.Warning(fmt::format("could not journal the restore: {}", RedactSecrets(e.what())));
  }
  throw Error(Category::kMigrationFailed,
              fmt::format("{}; restored the pre-deploy backup {} in place in {}: the database is "
                          "as it was (checked by fingerprint; the failed state was saved as "
                          "backup {})",
                          what, id, FormatDuration(restored.took), restored.safety_backup_id),
              failure.hint().empty() ? "fix the migration and deploy again" : failure.hint());
}

// Completes the journal row the migrator wrote with what the pipeline knows.
void FinishJournal(Driver& driver, std::int64_t journal_id, const DeployReport& report,
                   const DeployRequest& request, const Fingerprint& before,
                   const Fingerprint& after, Reporter& reporter) {
  // The engine's write counter now, so a rollback can say how many writes since the
  // deploy a restore would discard.
  std::optional<std::int64_t> writes;
  try {
    writes = driver.WriteCount();
  } catch (const Error& e) {
    reporter.Warning(fmt::format("could not read the write statistics: {}", e.what()));
  }
  try {
    for (JournalEntry& entry : driver.ReadJournal(20)) {
      if (entry.id != journal_id) continue;
      entry.plan_hash = report.plan_hash;
      entry.fingerprint_before = SchemaOnly(before).ToJson();
      entry.fingerprint_after = SchemaOnly(after).ToJson();
      nlohmann::json details = DetailsObject(entry.details);
      nlohmann::json gates = nlohmann::json::array();
      for (const Gate& gate : report.gates) {
        gates.push_back({{"name", gate.name},
                         {"status", GateStatusName(gate.status)},
                         {"detail", gate.detail}});
      }
      details["gates"] = gates;
      if (!request.outside_window_reason.empty()) {
        details["outside_window_reason"] = request.outside_window_reason;
      }
      if (report.rehearsal && report.rehearsal->journal_id != 0) {
        details["rehearsal_journal_id"] = report.rehearsal->journal_id;
      }
      details["verified"] =
          report.verified ? nlohmann::json(*report.verified) : nlohmann::json(nullptr);
      if (writes) details["writes_after"] = *writes;
      entry.details = RedactSecrets(details.dump());
      driver.UpdateJournal(entry);
      return;
    }
  } catch (const Error& e) {
    reporter.Warning(fmt::format("could not complete journal entry {}: {}", journal_id,
                                 RedactSecrets(e.what())));
  }
}

}  // namespace

std::string ApprovalName(const DatabaseUrl& url) {
  if (url.engine == Engine::kSqlite) return std::filesystem::path(url.path).filename().string();
  return url.database;
}

nlohmann::json DeployJson(const DeployReport& report) {
  nlohmann::json pending = nlohmann::json::array();
  for (const PlannedStep& step : report.pending) {
    pending.push_back({{"version", step.version},
                       {"name", step.name},
                       {"file", step.source},
                       {"irreversible", step.irreversible},
                       {"no_transaction", !step.in_transaction}});
  }
  nlohmann::json lint = nlohmann::json::array();
  for (const LintFinding& finding : report.lint) {
    lint.push_back({{"version", finding.version},
                    {"rule", finding.rule},
                    {"severity", finding.severity},
                    {"message", finding.message}});
  }
  nlohmann::json gates = nlohmann::json::array();
  for (const Gate& gate : report.gates) {
    gates.push_back(
        {{"name", gate.name}, {"status", GateStatusName(gate.status)}, {"detail", gate.detail}});
  }
  nlohmann::json json = {{"command", report.command},
                         {"ok", report.ok},
                         {"verdict", report.verdict},
                         {"reasons", report.reasons},
                         {"environment", report.environment},
                         {"database", report.database},
                         {"from_version", report.from_version},
                         {"to_version", report.to_version},
                         {"plan_hash", OrNull(report.plan_hash)},
                         {"pending", pending},
                         {"lint", lint},
                         {"gates", gates}};
  if (report.backup) {
    json["backup"] = {{"id", report.backup->id},
                      {"bytes", report.backup->bytes},
                      {"raw_bytes", report.backup->raw_bytes},
                      {"took_ms", report.backup->took.count()},
                      {"reused", report.backup->reused},
                      // The name `up` documents used before `bytes`; fields are never removed.
                      {"stored_bytes", report.backup->bytes}};
  } else {
    json["backup"] = nullptr;
  }
  if (report.command == "plan") {
    json["backup_estimate_bytes"] = report.backup_estimate_bytes
                                        ? nlohmann::json(*report.backup_estimate_bytes)
                                        : nlohmann::json(nullptr);
  }
  json["rehearsal"] = report.rehearsal ? RehearsalJson(*report.rehearsal) : nlohmann::json(nullptr);
  if (report.rehearsal && report.rehearsal->journal_id != 0) {
    json["rehearsal"]["journal_id"] = report.rehearsal->journal_id;
  }
  json["rollback"] = report.rollback ? RollbackJson(*report.rollback) : nlohmann::json(nullptr);
  if (report.command == "deploy" || report.command == "up") {
    nlohmann::json migrations = nlohmann::json::array();
    for (const StepOutcome& step : report.migrations) {
      migrations.push_back(
          {{"version", step.version}, {"name", step.name}, {"took_ms", step.took.count()}});
    }
    json["migrations"] = migrations;
    json["verified"] = report.verified ? nlohmann::json(*report.verified) : nlohmann::json(nullptr);
  }
  json["run_id"] = OrNull(report.run_id);
  json["took_ms"] = report.took.count();
  return json;
}

DeployReport PlanDeploy(Driver& driver, const DeployRequest& request, Reporter& /*reporter*/) {
  const auto started = Clock::now();
  DeployReport report;
  report.command = "plan";
  Prepared prepared = Prepare(driver, request, report);
  if (!prepared.plan.steps.empty()) {
    const Environment& env = request.environment;
    RehearsalRecord last = LastRehearsal(driver.ReadJournal(200), report.plan_hash,
                                         request.now(), env.rehearsal_max_age);
    // The size of the newest backup is the best guess of the next one's.
    std::vector<BackupEntry> backups = BackupStore(env.backups).List();
    for (auto it = backups.rbegin(); it != backups.rend(); ++it) {
      if (it->manifest) {
        report.backup_estimate_bytes = it->manifest->RawBytes();
        break;
      }
    }
    if (last.status != "passed" && !request.skip_backup) {
      // deploy would rehearse now; the gate's verdict waits for that rehearsal.
      std::string detail = RehearsalDetail(last) + "; deploy rehearses before applying";
      report.gates.push_back({"rehearsal", GateStatus::kSkip, detail, ""});
      if (last.status != "missing") report.rehearsal = last;
      if (!last.migrations.empty()) report.rollback = EstimateRollback(last, "");
    } else {
      RecordRehearsal(report, env, last, "no backup, so nothing to rehearse on (--skip-backup)");
    }
  }
  Decide(report);
  report.took = Since(started);
  return report;
}

DeployReport RehearseOnly(Driver& driver, const DeployRequest& request, Reporter& reporter) {
  const auto started = Clock::now();
  DeployReport report;
  report.command = "rehearse";
  report.run_id = NewRunId();
  auto lock = driver.Lock(request.environment.lock_timeout, request.runner);
  driver.EnsureMetadata();
  RefuseIfInterruptedRun(driver);
  Prepared prepared = Prepare(driver, request, report);
  // Only validation matters here: the policy gates are for deploys, and `plan` shows them.
  std::vector<Gate> kept;
  for (const Gate& gate : report.gates) {
    if (gate.name == "drift") kept.push_back(gate);
  }
  report.gates = kept;
  if (!prepared.drift_free || prepared.plan.steps.empty()) {
    Decide(report);
    report.took = Since(started);
    return report;
  }
  const BackupStore store(request.environment.backups);
  if (request.from_backup) {
    BackupEntry entry = store.Find(*request.from_backup);
    ArchiveReader reader = ArchiveReader::Open(entry.dir);
    const Manifest& manifest = reader.manifest();
    // A backup of another schema would rehearse a different plan than the one named.
    if (manifest.migration_version != prepared.status.current_version) {
      throw Error(Category::kUsage,
                  fmt::format("backup {} holds version {}, the database is at {}", manifest.id,
                              manifest.migration_version.empty() ? "none"
                                                                 : manifest.migration_version,
                              prepared.status.current_version.empty()
                                  ? "none"
                                  : prepared.status.current_version),
                  "rehearse from a backup taken at the current version, or without "
                  "--from-backup");
    }
    report.backup = Summarize(manifest, milliseconds(0), true);
  } else {
    report.backup = TakeDeployBackup(driver, store, request, prepared, reporter);
  }
  RehearsalRecord record =
      Rehearse(driver, request.url, prepared.plan, report.plan_hash, store, report.backup->id,
               RehearsalOptionsFor(request, report.run_id), reporter);
  RecordRehearsal(report, request.environment, std::move(record));
  Decide(report);
  report.took = Since(started);
  return report;
}

DeployReport Deploy(std::unique_ptr<Driver>& driver, const DeployRequest& request,
                    Reporter& reporter) {
  const auto started = Clock::now();
  const Environment& env = request.environment;
  DeployReport report;
  report.command = request.command;
  report.run_id = NewRunId();
  auto lock = driver->Lock(env.lock_timeout, request.runner);
  driver->EnsureMetadata();
  // Before the backup: a backup of a half-migrated state is not one to deploy from.
  RefuseIfInterruptedRun(*driver);
  Prepared prepared = Prepare(*driver, request, report);
  if (prepared.drift_free && prepared.plan.steps.empty()) {
    report.ok = true;
    report.verdict = "go";
    report.took = Since(started);
    return report;
  }
  Decide(report);
  if (!report.ok) {
    // Refused before anything changed: no backup, no journal row.
    if (request.on_verdict) request.on_verdict(report);
    report.took = Since(started);
    return report;
  }

  const BackupStore store(env.backups);
  if (!request.skip_backup) {
    report.backup = TakeDeployBackup(*driver, store, request, prepared, reporter);
  }
  RehearsalRecord last = LastRehearsal(driver->ReadJournal(200), report.plan_hash,
                                       request.now(), env.rehearsal_max_age);
  if (last.status == "passed") {
    reporter.Note(fmt::format("Rehearsal: {} (reused: same plan, same starting schema)",
                              RehearsalDetail(last)));
    RecordRehearsal(report, env, std::move(last));
  } else if (report.backup) {
    RehearsalRecord record =
        Rehearse(*driver, request.url, prepared.plan, report.plan_hash, store, report.backup->id,
                 RehearsalOptionsFor(request, report.run_id), reporter);
    RecordRehearsal(report, env, std::move(record));
  } else {
    RecordRehearsal(report, env, RehearsalRecord{},
                    "no backup, so nothing to rehearse on (--skip-backup)");
  }
  Decide(report);
  if (request.on_verdict) request.on_verdict(report);
  if (!report.ok) {
    report.took = Since(started);
    return report;
  }
  if (env.is_protected && !request.yes) {
    const std::string expected = ApprovalName(request.url);
    if (!request.ask_approval || !request.ask_approval(expected)) {
      SetGate(report, Gate{"approval", GateStatus::kFail,
                           fmt::format("not approved: the database name {} was not typed", expected),
                           "type the name exactly, or pass --yes in a non-interactive run"});
      Decide(report);
      report.took = Since(started);
      return report;
    }
  }

  Migrator migrator(*driver, reporter);
  RunOptions run;
  run.environment = env.name;
  run.run_id = report.run_id;
  run.backup_id = report.backup ? report.backup->id : "";
  run.applied_by = request.applied_by;
  run.journal_kind = request.command;
  // Without transactional DDL a failed step may have left part of itself behind, which no
  // down is written to undo: the backup is the way back.
  run.revert_with_downs = driver->capabilities().transactional_ddl || !report.backup;
  if (env.max_duration) run.deadline = Clock::now() + *env.max_duration;
  RunResult result;
  try {
    result = migrator.Execute(prepared.plan, run);
  } catch (const Error& e) {
    if (e.category() != Category::kMigrationFailed && e.category() != Category::kNeedsPerson) {
      throw;
    }
    Recover(driver, request, report, prepared, store, e, reporter);
  }
  report.migrations = result.steps;

  // Verify compares schemas and the journal keeps schemas only: no row needs reading.
  const Fingerprint after =
      driver->TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kSchema);
  if (report.rehearsal && !report.rehearsal->up_state_schema_digest.empty()) {
    report.verified = after.SchemaDigest() == report.rehearsal->up_state_schema_digest;
    if (!*report.verified) {
      if (!report.rehearsal->up_state_schema.empty()) {
        report.verify_differences =
            DescribeDifferences(Fingerprint::FromJson(report.rehearsal->up_state_schema),
                                SchemaOnly(after));
      }
      reporter.Warning(fmt::format(
          "the schema after the deploy differs from the rehearsal's: {}",
          report.verify_differences.empty() ? std::string("digest")
                                            : Joined(report.verify_differences)));
    }
  }
  FinishJournal(*driver, result.journal_id, report, request, prepared.before, after, reporter);
  report.ok = true;
  report.verdict = "go";
  report.took = Since(started);
  return report;
}

}  // namespace safemig
