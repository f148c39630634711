// Taking over a database another tool migrated, or one that predates any tool.
//
// `adopt` reads the history table of golang-migrate or dbmate (schema_migrations), Flyway
// (flyway_schema_history) or goose (goose_db_version) and records the same migrations in
// safemig_migrations, each with the down SQL of its file so that rollback works from day
// one. `baseline VERSION` records every migration up to VERSION as already applied. The old
// table is only read. Not thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/migration.h"
#include "driver/driver.h"

namespace safemig {

enum class ForeignTool { kGolangMigrate, kDbmate, kFlyway, kGoose };

const char* ForeignToolName(ForeignTool tool);  // "golang-migrate", "dbmate", ...
std::optional<ForeignTool> ParseForeignTool(const std::string& name);

// What the old tool says is applied.
struct ForeignHistory {
  ForeignTool tool = ForeignTool::kGolangMigrate;
  std::string table;
  // Applied, oldest first. golang-migrate keeps only its newest version: every migration
  // up to it counts as applied (see VersionsUpTo).
  std::vector<std::string> versions;
};

// Finds the history table of a known tool (only `only` when given). Throws
// Error(kNoGo) when none is found, when several are and `only` is not given, or when the
// old tool left its history in a state nobody checked (a dirty golang-migrate version, a
// failed Flyway migration).
ForeignHistory ReadForeignHistory(Driver& driver, std::optional<ForeignTool> only);

struct AdoptionRow {
  std::string version;
  std::string name;
  std::string file;
  bool already_recorded = false;  // safemig_migrations has it already
};

struct AdoptionPlan {
  std::vector<AdoptionRow> rows;  // to record (and already recorded), ascending
  std::string source;             // "golang-migrate (schema_migrations)" / "baseline"
};

// Matches `versions` (applied according to `source`) with the files. Throws Error(kNoGo)
// naming the versions that have no file (their SQL, and so their down, is unknown), and
// when safemig's history already lists versions the old tool does not.
AdoptionPlan PlanAdoption(const std::vector<std::string>& versions,
                          const std::vector<Migration>& files,
                          const std::vector<HistoryRow>& history, const std::string& source);

// Every file up to and including `version` (which must be one of them: Error(kUsage)).
std::vector<std::string> VersionsUpTo(const std::vector<Migration>& files,
                                      const std::string& version);

// Writes the plan's rows (not those already recorded) into safemig_migrations, each in its
// own transaction with no statement run, applied_by naming the source, applied_at now. REQUIRES the caller
// holds the lock and EnsureMetadata() ran. Returns how many rows were written.
int RecordAdoption(Driver& driver, const AdoptionPlan& plan, const std::vector<Migration>& files,
                   const std::string& run_id);

}  // namespace safemig
