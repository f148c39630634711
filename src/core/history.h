// What the target database remembers: rows of safemig_migrations and safemig_journal.
//
// Plain values shared by the drivers (which store them) and the engine (which decides
// with them). Times are ISO 8601 UTC strings ("2026-11-26T02:47:16.123Z") so every engine
// stores and sorts them the same way.
#pragma once

#include <cstdint>
#include <string>

namespace safemig {

// One applied migration. The down SQL is stored here when the migration is applied, so a
// rollback never depends on the migration files still being on disk (invariant 4).
struct HistoryRow {
  std::string version;
  std::string name;
  std::string checksum;       // SHA-256 of the up file when applied
  std::string up_path;        // file it came from, for messages
  std::string down_sql;       // exactly the text `down` will run; empty if irreversible
  std::string down_checksum;  // SHA-256 of down_sql
  bool no_transaction = false;
  bool irreversible = false;
  std::string applied_at;
  std::string applied_by;  // user@host
  std::int64_t duration_ms = 0;
  std::string deploy_id;  // groups the migrations applied by one run
  std::string backup_id;  // the backup taken before the run, if any
};

// One operation on the database: an up/down run, and later deploys, rehearsals,
// rollbacks, restores and watches. Written as "running" before the work starts and
// finished afterwards, so a crash leaves a trace the next run can see.
struct JournalEntry {
  std::int64_t id = 0;
  std::string kind;         // "up", "down", ...
  std::string environment;  // config environment name
  std::string deploy_id;
  std::string started_at;
  std::string finished_at;  // empty while running
  std::string outcome;      // "running", "ok", "failed", "reverted"
  std::string plan_hash;
  std::string from_version;
  std::string to_version;
  std::string backup_id;
  std::string fingerprint_before;
  std::string fingerprint_after;
  std::string details = "{}";  // JSON object text; never contains secrets
};

}  // namespace safemig
