#include "engine/adopt.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/clock.h"
#include "core/error.h"
#include "engine/migrator.h"

namespace safemig {

namespace {

struct ToolTable {
  ForeignTool tool;
  const char* table;
};

// golang-migrate and dbmate share a table name; the `dirty` column tells them apart.
constexpr ToolTable kTables[] = {
    {ForeignTool::kGolangMigrate, "schema_migrations"},
    {ForeignTool::kFlyway, "flyway_schema_history"},
    {ForeignTool::kGoose, "goose_db_version"},
};

bool Truthy(const std::optional<std::string>& value) {
  if (!value) return false;
  std::string v = *value;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "1" || v == "t" || v == "true";
}

const std::optional<std::string>& Cell(const QueryResult& result, size_t row,
                                       const std::string& column) {
  static const std::optional<std::string> kMissing;
  for (size_t i = 0; i < result.columns.size(); ++i) {
    std::string name = result.columns[i];
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (name == column) return result.rows[row][i];
  }
  return kMissing;
}

bool HasColumn(const QueryResult& result, const std::string& column) {
  return std::any_of(result.columns.begin(), result.columns.end(), [&](std::string name) {
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return name == column;
  });
}

// Versions in a stable order without duplicates.
void AddVersion(ForeignHistory& history, const std::string& version) {
  for (const std::string& known : history.versions) {
    if (CompareVersions(known, version) == 0) return;
  }
  history.versions.push_back(version);
}

ForeignHistory ReadSchemaMigrations(Driver& driver) {
  ForeignHistory history;
  history.table = "schema_migrations";
  QueryResult result = driver.QueryText("SELECT * FROM schema_migrations");
  if (!HasColumn(result, "dirty")) {
    history.tool = ForeignTool::kDbmate;
    for (size_t i = 0; i < result.rows.size(); ++i) {
      if (const auto& version = Cell(result, i, "version")) AddVersion(history, *version);
    }
    return history;
  }
  history.tool = ForeignTool::kGolangMigrate;
  for (size_t i = 0; i < result.rows.size(); ++i) {
    const auto& version = Cell(result, i, "version");
    if (!version) continue;
    if (Truthy(Cell(result, i, "dirty"))) {
      throw Error(Category::kNoGo,
                  fmt::format("golang-migrate marks version {} dirty: it failed part-way and "
                              "the database may be half-migrated",
                              *version),
                  "put the database right by hand, clear the flag with `migrate force "
                  "VERSION`, then adopt");
    }
    // golang-migrate keeps only the newest version: everything up to it is applied.
    AddVersion(history, *version);
  }
  return history;
}

ForeignHistory ReadFlyway(Driver& driver) {
  ForeignHistory history;
  history.tool = ForeignTool::kFlyway;
  history.table = "flyway_schema_history";
  QueryResult result = driver.QueryText(
      "SELECT version, type, success FROM flyway_schema_history ORDER BY "
      "installed_rank");
  for (size_t i = 0; i < result.rows.size(); ++i) {
    const auto& version = result.rows[i][0];
    const std::string type = result.rows[i][1].value_or("");
    if (!version) continue;  // repeatable migrations have no version
    if (!Truthy(result.rows[i][2])) {
      throw Error(Category::kNoGo,
                  fmt::format("Flyway recorded migration {} as failed: the database may be "
                              "half-migrated",
                              *version),
                  "put the database right by hand and run `flyway repair`, then adopt");
    }
    if (type.rfind("UNDO", 0) == 0) {
      auto& versions = history.versions;
      for (size_t k = 0; k < versions.size(); ++k) {
        if (CompareVersions(versions[k], *version) == 0) {
          versions.erase(versions.begin() + static_cast<long>(k));
          break;
        }
      }
      continue;
    }
    AddVersion(history, *version);
  }
  return history;
}

ForeignHistory ReadGoose(Driver& driver) {
  ForeignHistory history;
  history.tool = ForeignTool::kGoose;
  history.table = "goose_db_version";
  QueryResult result =
      driver.QueryText("SELECT version_id, is_applied FROM goose_db_version ORDER BY id");
  // goose appends a row per up and per down; the last row of a version decides.
  std::map<std::string, bool, VersionLess> state;
  for (const auto& row : result.rows) {
    if (!row[0] || CompareVersions(*row[0], "0") == 0) continue;  // goose's own first row
    state[*row[0]] = Truthy(row[1]);
  }
  for (const auto& [version, applied] : state) {
    if (applied) AddVersion(history, version);
  }
  return history;
}

}  // namespace

const char* ForeignToolName(ForeignTool tool) {
  switch (tool) {
    case ForeignTool::kGolangMigrate: return "golang-migrate";
    case ForeignTool::kDbmate: return "dbmate";
    case ForeignTool::kFlyway: return "flyway";
    case ForeignTool::kGoose: return "goose";
  }
  return "?";
}

std::optional<ForeignTool> ParseForeignTool(const std::string& name) {
  for (ForeignTool tool : {ForeignTool::kGolangMigrate, ForeignTool::kDbmate,
                           ForeignTool::kFlyway, ForeignTool::kGoose}) {
    if (name == ForeignToolName(tool)) return tool;
  }
  return std::nullopt;
}

ForeignHistory ReadForeignHistory(Driver& driver, std::optional<ForeignTool> only) {
  std::vector<ForeignHistory> found;
  for (const ToolTable& candidate : kTables) {
    if (!driver.HasTable(candidate.table)) continue;
    ForeignHistory history = candidate.tool == ForeignTool::kFlyway ? ReadFlyway(driver)
                             : candidate.tool == ForeignTool::kGoose
                                 ? ReadGoose(driver)
                                 : ReadSchemaMigrations(driver);
    if (!only || *only == history.tool) found.push_back(std::move(history));
  }
  if (found.empty()) {
    throw Error(Category::kNoGo,
                only ? fmt::format("no {} history table in this database", ForeignToolName(*only))
                     : "no history table of golang-migrate, dbmate, Flyway or goose in this "
                       "database",
                "to start from the database as it is, record a version with `safemig baseline "
                "VERSION`");
  }
  if (found.size() > 1) {
    std::vector<std::string> names;
    for (const ForeignHistory& h : found) names.push_back(ForeignToolName(h.tool));
    throw Error(Category::kNoGo,
                fmt::format("history tables of several tools found ({})", fmt::join(names, ", ")),
                "say which one is true with --from TOOL");
  }
  return found.front();
}

std::vector<std::string> VersionsUpTo(const std::vector<Migration>& files,
                                      const std::string& version) {
  bool known = std::any_of(files.begin(), files.end(), [&](const Migration& m) {
    return CompareVersions(m.version, version) == 0;
  });
  if (!known) {
    throw Error(Category::kUsage, fmt::format("no migration file has version {}", version),
                "name a version that `safemig status` lists");
  }
  std::vector<std::string> versions;
  for (const Migration& m : files) {
    if (CompareVersions(m.version, version) <= 0) versions.push_back(m.version);
  }
  return versions;
}

AdoptionPlan PlanAdoption(const std::vector<std::string>& versions,
                          const std::vector<Migration>& files,
                          const std::vector<HistoryRow>& history, const std::string& source) {
  AdoptionPlan plan;
  plan.source = source;
  std::vector<std::string> missing;
  for (const std::string& version : versions) {
    auto file = std::find_if(files.begin(), files.end(), [&](const Migration& m) {
      return CompareVersions(m.version, version) == 0;
    });
    if (file == files.end()) {
      missing.push_back(version);
      continue;
    }
    AdoptionRow row;
    row.version = file->version;
    row.name = file->name;
    row.file = file->up_path;
    row.already_recorded = std::any_of(history.begin(), history.end(), [&](const HistoryRow& h) {
      return CompareVersions(h.version, version) == 0;
    });
    plan.rows.push_back(std::move(row));
  }
  if (!missing.empty()) {
    throw Error(Category::kNoGo,
                fmt::format("{} lists version{} {} with no migration file here, so its SQL and "
                            "its down are unknown",
                            source, missing.size() == 1 ? "" : "s", fmt::join(missing, ", ")),
                "point --dir at the directory the old tool used, or restore the missing files");
  }
  std::sort(plan.rows.begin(), plan.rows.end(), [](const AdoptionRow& a, const AdoptionRow& b) {
    return CompareVersions(a.version, b.version) < 0;
  });
  return plan;
}

int RecordAdoption(Driver& driver, const AdoptionPlan& plan, const std::vector<Migration>& files,
                   const std::string& run_id) {
  int written = 0;
  const std::string by = fmt::format("{} ({})", CurrentUserAtHost(), plan.source);
  for (const AdoptionRow& row : plan.rows) {
    if (row.already_recorded) continue;
    const Migration& file = *std::find_if(files.begin(), files.end(), [&](const Migration& m) {
      return m.version == row.version;
    });
    ApplyStep step;
    step.direction = Direction::kUp;
    step.source = file.up_path;
    step.row = HistoryRowFor(file);
    step.row.applied_at = NowIso8601();
    step.row.applied_by = by;
    step.row.deploy_id = run_id;
    driver.Apply(step);
    ++written;
  }
  return written;
}

}  // namespace safemig
