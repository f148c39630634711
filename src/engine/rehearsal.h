// The rehearsal: every pending migration run up, down and up again on a staging copy of
// the real data, restored from a backup, with timings and what each down cannot bring back.
//
// Rehearse() never changes the target apart from one journal row (kind "rehearsal"): the
// copy is a scratch database (same server, the environment's rehearsal_url, or a
// temporary SQLite file) dropped afterwards, also on failure and Ctrl-C, unless kept.
// The journal row carries the whole result, so `plan` and `deploy` read it back later and
// a deploy of the same plan hash can skip rehearsing again. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backup/store.h"
#include "core/fingerprint.h"
#include "driver/driver.h"
#include "engine/migrator.h"
#include "engine/reporter.h"

namespace safemig {

// What happened to one migration on the copy.
struct MigrationRehearsal {
  std::string version;
  std::string name;
  // ok, up_failed, down_failed, down_differs, reapply_differs, irreversible, not_run
  std::string outcome = "not_run";
  std::optional<std::chrono::milliseconds> up;
  std::optional<std::chrono::milliseconds> down;
  std::optional<std::chrono::milliseconds> reapply;
  bool reversible = false;    // down ran and returned the schema
  bool irreversible = false;  // marked -- safemig:irreversible (its down is not run)
  std::vector<std::string> differences;   // schema after down vs before up, in words
  std::vector<std::string> column_order;  // column order changes, apart from the above
  std::vector<std::string> data_loss;     // what the down cannot bring back
  std::string error;                      // when up or down failed
  std::string rollback_path;              // "down" or "restore"
};

// A rehearsal as the journal remembers it (also the state `plan` reports).
struct RehearsalRecord {
  std::string status = "missing";  // passed, failed, missing, stale
  std::string at;                  // when it finished
  std::int64_t journal_id = 0;
  std::string plan_hash;
  std::string backup_id;
  std::string where;  // "scratch database on the same server", "rehearsal_url", "temporary file"
  bool kept = false;
  std::string scratch;  // name or path of the kept copy
  std::optional<std::chrono::milliseconds> restore;  // the restore estimate
  std::vector<MigrationRehearsal> migrations;
  std::chrono::milliseconds took{0};
  std::vector<std::string> reasons;  // why it failed, one per failing migration
  // Schema of the copy after every migration ran (the state a deploy must reach).
  std::string up_state_schema_digest;
  std::string up_state_schema;  // Fingerprint::ToJson of that schema (objects only)
};

// SHA-256 hex over the pending migrations' versions and checksums and the starting
// schema's digest: the same plan on the same schema has the same hash.
std::string PlanHash(const Plan& plan, const std::string& schema_digest);

// The schema part of `fingerprint` (objects only, no row data).
Fingerprint SchemaOnly(const Fingerprint& fingerprint);

// The newest rehearsal of `plan_hash` in `journal` (newest first): "passed" or "failed",
// "stale" when it passed but is older than `max_age`, "missing" when there is none.
RehearsalRecord LastRehearsal(const std::vector<JournalEntry>& journal,
                              const std::string& plan_hash,
                              std::chrono::system_clock::time_point now,
                              std::chrono::milliseconds max_age);

// The "rehearsal" object of the JSON documents (docs/json-output.md), and back (for
// journal rows). FromJson throws Error(kIntegrity) on a damaged document.
nlohmann::json RehearsalJson(const RehearsalRecord& record);
RehearsalRecord RehearsalFromJson(const nlohmann::json& json);

// Ways back after a deploy of the rehearsed plan, with the times the rehearsal measured.
struct RollbackEstimate {
  std::optional<std::chrono::milliseconds> by_down;  // nullopt: some step cannot go down
  std::optional<std::chrono::milliseconds> by_restore;
  std::string backup_id;
  std::string recommended;  // "down" or "restore"
};
RollbackEstimate EstimateRollback(const RehearsalRecord& record, const std::string& backup_id);
nlohmann::json RollbackJson(const RollbackEstimate& estimate);

struct RehearsalOptions {
  std::string environment = "default";
  std::string run_id;
  // Keep the copy afterwards (under a name that no later run clears) for inspection.
  bool keep = false;
  // Where to make the copy: another server (the environment's rehearsal_url); default
  // beside the target.
  std::optional<DatabaseUrl> rehearsal_url;
  int jobs = 0;
};

// REQUIRES: the caller holds target.Lock() and EnsureMetadata() has run; `backup_id` in
// `store` is a backup of the target in its current state; `plan` is an up plan.
// Returns the record (status "passed" or "failed") after journaling it; throws Error when
// the rehearsal itself could not run (restore failed, scratch not creatable, Ctrl-C),
// after journaling that as a failed rehearsal.
RehearsalRecord Rehearse(Driver& target, const DatabaseUrl& target_url, const Plan& plan,
                         const std::string& plan_hash, const BackupStore& store,
                         const std::string& backup_id, const RehearsalOptions& options,
                         Reporter& reporter);

}  // namespace safemig
