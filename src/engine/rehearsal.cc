#include "engine/rehearsal.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <fmt/format.h>

#include "backup/archive.h"
#include "config/url.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/sha256.h"
#include "core/sql_quote.h"
#include "engine/json_fields.h"

namespace safemig {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string Label(const PlannedStep& step) { return step.version + "_" + step.name; }

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Splits `text` on `separator` (no quoting rules: used on names the fingerprint printed).
std::vector<std::string> Split(std::string_view text, std::string_view separator) {
  std::vector<std::string> parts;
  if (text.empty()) return parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + separator.size();
  }
}

// "KEY: DETAILS" -> DETAILS.
std::string_view Details(const std::string& key, const std::string& line) {
  std::string_view view(line);
  if (StartsWith(view, key) && view.substr(key.size(), 2) == ": ") {
    return view.substr(key.size() + 2);
  }
  return view;
}

// The fingerprint's data entry for the table a "table T" line names: keys of
// Fingerprint::tables are raw names, lines show odd names double-quoted.
std::map<std::string, TableData>::const_iterator DataEntry(const Fingerprint& fingerprint,
                                                           const std::string& shown) {
  auto found = fingerprint.tables.find(shown);
  if (found != fingerprint.tables.end()) return found;
  std::string raw;
  for (char c : shown) {
    if (c != '"') raw.push_back(c);
  }
  return fingerprint.tables.find(raw);
}

const TableData* DataOf(const Fingerprint& fingerprint, const std::string& shown) {
  auto found = DataEntry(fingerprint, shown);
  return found == fingerprint.tables.end() ? nullptr : &found->second;
}

// Whether the rows are provably the same: a table whose content was not read (an empty
// hash) is not, whatever its row count.
bool DataEqual(const TableData* a, const TableData* b) {
  if (a == nullptr || b == nullptr) return a == b;
  return a->rows == b->rows && !a->content_sha256.empty() &&
         a->content_sha256 == b->content_sha256;
}

// Whether column `column` of the table line is declared NOT NULL (SQLite's "notnull=1",
// PostgreSQL's "not null", MySQL's "null=NO"): then every row holds a value.
bool ColumnIsNotNull(const std::string& table_line, const std::string& column) {
  for (const std::string& item : Split(table_line, " | ")) {
    if (!StartsWith(item, "column " + column + " ")) continue;
    return item.find("notnull=1") != std::string::npos ||
           item.find(" not null") != std::string::npos ||
           item.find(" null=NO ") != std::string::npos;
  }
  return false;
}

// 48211 -> "48,211": loss counts are read by people deciding whether to go ahead.
std::string Grouped(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string text;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) text.push_back(',');
    text.push_back(digits[i]);
  }
  return n < 0 ? "-" + text : text;
}

std::string Counted(std::int64_t n, const char* one, const char* many) {
  return fmt::format("{} {}", Grouped(n), n == 1 ? one : many);
}

// The parts of a name as the fingerprint shows it (public.customer, or double-quoted parts
// for odd names): split at dots outside quotes, quotes removed and doubled quotes undone.
std::vector<std::string> NameParts(const std::string& shown) {
  std::vector<std::string> parts(1);
  bool quoted = false;
  for (size_t i = 0; i < shown.size(); ++i) {
    const char c = shown[i];
    if (c == '"') {
      if (quoted && i + 1 < shown.size() && shown[i + 1] == '"') {
        parts.back().push_back('"');
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == '.' && !quoted) {
      parts.emplace_back();
    } else {
      parts.back().push_back(c);
    }
  }
  return parts;
}

// A shown name as SQL for `dialect`: MySQL quotes with backticks (double quotes are string
// literals there unless ANSI_QUOTES is on), the others with double quotes.
std::string QuotedFor(Dialect dialect, const std::string& shown) {
  std::string sql;
  for (const std::string& part : NameParts(shown)) {
    if (!sql.empty()) sql.push_back('.');
    sql += dialect == Dialect::kMySql ? QuoteMySqlIdentifier(part) : QuoteIdentifier(part);
  }
  return sql;
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The words of `sql` in lower case; quotes and backticks end a word, so "phone", `phone`
// and phone are all the word phone.
std::set<std::string> Words(const std::string& sql) {
  std::set<std::string> words;
  std::string word;
  for (char c : sql) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' ||
        static_cast<unsigned char>(c) >= 0x80) {
      word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!word.empty()) {
      words.insert(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.insert(std::move(word));
  return words;
}

// Whether the SQL whose `words` and lower-cased `text` are given names `name` (one part of
// a shown name): as a word, or, for a name that is not one word ("the note"), anywhere.
bool Names(const std::set<std::string>& words, const std::string& text, const std::string& name) {
  const std::string lower = Lower(name);
  if (words.count(lower) != 0) return true;
  const std::set<std::string> own = Words(lower);
  return !(own.size() == 1 && *own.begin() == lower) && text.find(lower) != std::string::npos;
}

// Non-NULL values per nullable column, keyed by CountKey of the names the fingerprint shows.
using ValueCounts = std::map<std::string, std::int64_t>;

std::string CountKey(const std::string& table, const std::string& column) {
  return table + "\n" + column;
}

// Counts, on the copy before `up` runs, the non-NULL values of the nullable columns the up
// may drop: those of tables holding rows whose table and column names both occur in an
// up that says DROP. A NOT NULL column needs no query (every row holds a value), nor does
// a dropped table (the fingerprint counts its rows exactly). One query per table, so a
// migration that drops nothing costs nothing; a column dropped without being named (a
// table rebuilt under another name) keeps the row count as its upper bound.
ValueCounts CountDroppableValues(Driver& copy, const Fingerprint& before, const std::string& up) {
  ValueCounts counts;
  const std::set<std::string> words = Words(up);
  if (words.count("drop") == 0) return counts;
  const std::string text = Lower(up);
  for (const auto& [key, line] : before.objects) {
    if (!StartsWith(key, "columns ")) continue;
    const std::string table = key.substr(8);
    const TableData* data = DataOf(before, table);
    if (data == nullptr || data->rows == 0) continue;
    if (!Names(words, text, NameParts(table).back())) continue;
    auto table_line = before.objects.find("table " + table);
    if (table_line == before.objects.end()) continue;
    std::vector<std::string> columns;
    for (const std::string& column : Split(Details(key, line), ", ")) {
      if (!Names(words, text, NameParts(column).back())) continue;
      if (ColumnIsNotNull(table_line->second, column)) continue;
      columns.push_back(column);
    }
    if (columns.empty()) continue;
    std::string sql = "SELECT ";
    for (size_t i = 0; i < columns.size(); ++i) {
      if (i > 0) sql += ", ";
      sql += "COUNT(" + QuotedFor(copy.dialect(), columns[i]) + ")";
    }
    sql += " FROM " + QuotedFor(copy.dialect(), table);
    try {
      QueryResult result = copy.QueryText(sql);
      if (result.rows.size() != 1 || result.rows[0].size() != columns.size()) continue;
      for (size_t i = 0; i < columns.size(); ++i) {
        const std::optional<std::string>& value = result.rows[0][i];
        if (value) counts[CountKey(table, columns[i])] = std::stoll(*value);
      }
    } catch (const Error& e) {
      // A name this reading of the fingerprint got wrong: the bound is reported instead.
      if (e.category() == Category::kInternal) throw;
    }
  }
  return counts;
}

// The state before `up` runs, as much as the report needs and no more (hashing every row
// of a large database several times per migration dwarfed the migrations): each table's
// exact row count, for the figures of DataLoss, and in full the tables named by an up that
// may remove tables or columns (drop, rename, MySQL's CHANGE, CREATE OR REPLACE), so that
// a down that brings their data back is told from one that does not. A table removed
// without being named keeps its exact row count but cannot be proven brought back, so its
// loss is reported.
Fingerprint StateBefore(Driver& copy, const std::string& up) {
  const std::set<std::string> words = Words(up);
  TableFilter named;
  if (words.count("drop") != 0 || words.count("rename") != 0 || words.count("change") != 0 ||
      words.count("replace") != 0) {
    named = [words, text = Lower(up)](const std::string& key) {
      return Names(words, text, NameParts(key).back());
    };
  }
  return copy.TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kRowCounts, named);
}

// The state after a down: its schema, and in full the tables whose rows or columns the up
// removed and whose content `before` holds, for DataLoss to see whether they came back.
Fingerprint StateAfterDown(Driver& copy, const Fingerprint& before, const Fingerprint& after_up) {
  std::set<std::string> removed_from;  // keys of Fingerprint::tables
  for (const auto& [key, line] : before.objects) {
    if (!StartsWith(key, "columns ")) continue;
    auto now = after_up.objects.find(key);
    if (now != after_up.objects.end() && now->second == line) continue;
    auto data = DataEntry(before, key.substr(8));
    if (data == before.tables.end() || data->second.rows == 0 ||
        data->second.content_sha256.empty()) {
      continue;
    }
    removed_from.insert(data->first);
  }
  TableFilter read_in_full;
  if (!removed_from.empty()) {
    read_in_full = [removed_from](const std::string& key) { return removed_from.count(key) != 0; };
  }
  return copy.TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kSchema,
                              read_in_full);
}

// What applying the up from `before` to `after` destroys that `restored` (the state after
// the down, or nullptr when no down runs) does not bring back: rows of dropped tables and
// values of dropped columns (exact where `counts` has them, else bounded by the rows).
std::vector<std::string> DataLoss(const Fingerprint& before, const Fingerprint& after,
                                  const Fingerprint* restored, const ValueCounts& counts) {
  std::vector<std::string> loss;
  for (const auto& [key, line] : before.objects) {
    if (StartsWith(key, "table ")) {
      const std::string table = key.substr(6);
      const TableData* had = DataOf(before, table);
      if (had == nullptr || had->rows == 0 || after.objects.count(key) != 0) continue;
      if (restored != nullptr && DataEqual(had, DataOf(*restored, table))) continue;
      loss.push_back(
          fmt::format("dropping table {} loses {}", table, Counted(had->rows, "row", "rows")));
    } else if (StartsWith(key, "columns ")) {
      const std::string table = key.substr(8);
      auto now = after.objects.find(key);
      if (now == after.objects.end()) continue;  // the table went: reported above
      const TableData* had = DataOf(before, table);
      if (had == nullptr || had->rows == 0) continue;
      if (restored != nullptr && DataEqual(had, DataOf(*restored, table))) continue;
      std::vector<std::string> remaining = Split(Details(now->first, now->second), ", ");
      std::set<std::string> kept(remaining.begin(), remaining.end());
      auto table_line = before.objects.find("table " + table);
      for (const std::string& column : Split(Details(key, line), ", ")) {
        if (kept.count(column) != 0) continue;
        std::optional<std::int64_t> values;
        if (table_line != before.objects.end() && ColumnIsNotNull(table_line->second, column)) {
          values = had->rows;
        } else if (auto counted = counts.find(CountKey(table, column)); counted != counts.end()) {
          values = counted->second;
        }
        if (values && *values == 0) continue;  // only NULLs: nothing to lose
        loss.push_back(values ? fmt::format("dropping column {}.{} loses {}", table, column,
                                            Counted(*values, "non-null value", "non-null values"))
                              : fmt::format("dropping column {}.{} loses up to {} (one per "
                                            "row; NULLs not told apart)",
                                            table, column, Counted(had->rows, "value", "values")));
      }
    }
  }
  return loss;
}

// Differences of schema from `from` to `to`, with column order apart.
struct SchemaComparison {
  std::vector<std::string> differences;
  std::vector<std::string> column_order;
};

SchemaComparison CompareSchemas(const Fingerprint& from, const Fingerprint& to) {
  SchemaComparison comparison;
  for (std::string& line : DescribeDifferences(SchemaOnly(from), SchemaOnly(to))) {
    (StartsWith(line, "column order of ") ? comparison.column_order : comparison.differences)
        .push_back(std::move(line));
  }
  return comparison;
}

std::string Joined(const std::vector<std::string>& lines, size_t most) {
  std::string text;
  for (size_t i = 0; i < lines.size() && i < most; ++i) {
    if (i > 0) text += "; ";
    text += lines[i];
  }
  if (lines.size() > most) text += fmt::format(" (and {} more)", lines.size() - most);
  return text;
}

// Where the copy of a kept rehearsal goes: a name no scratch clean-up matches, beside the
// target (a file next to it for SQLite, a database on the same server otherwise).
DatabaseUrl KeptCopyUrl(const DatabaseUrl& like, const std::string& run_id) {
  std::string tag;
  for (char c : run_id) {
    tag.push_back(std::isalnum(static_cast<unsigned char>(c))
                      ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                      : '_');
  }
  DatabaseUrl url = like;
  if (like.engine == Engine::kSqlite) {
    std::filesystem::path near(like.path == ":memory:" ? "rehearsal.db" : like.path);
    url.path = (near.parent_path() / fmt::format("{}.rehearsal-{}.db", near.stem().string(), tag))
                   .string();
  } else {
    url.database = "safemig_rehearsal_" + tag;
  }
  return url;
}

std::string ShownName(const DatabaseUrl& url) {
  return url.engine == Engine::kSqlite ? url.path : url.database;
}

// Runs one planned step on the copy and returns how long the migration itself took.
milliseconds RunOne(Migrator& migrator, const PlannedStep& step, const RunOptions& options) {
  Plan plan;
  plan.direction = step.direction;
  plan.steps.push_back(step);
  plan.to_version = step.version;
  RunResult result = migrator.Execute(plan, options);
  return result.steps.empty() ? result.took : result.steps.front().took;
}

std::optional<milliseconds> OptionalMs(const nlohmann::json& value) {
  if (value.is_null()) return std::nullopt;
  return milliseconds(value.get<std::int64_t>());
}

}  // namespace

std::string PlanHash(const Plan& plan, const std::string& schema_digest) {
  std::string text = "safemig plan 1\n";
  for (const PlannedStep& step : plan.steps) {
    text += fmt::format("{} {}\n", step.version, step.row.checksum);
  }
  text += "schema " + schema_digest + "\n";
  return Sha256Hex(text);
}

Fingerprint SchemaOnly(const Fingerprint& fingerprint) {
  Fingerprint schema;
  schema.objects = fingerprint.objects;
  return schema;
}

nlohmann::json RehearsalJson(const RehearsalRecord& record) {
  nlohmann::json migrations = nlohmann::json::array();
  for (const MigrationRehearsal& m : record.migrations) {
    nlohmann::json j = {{"version", m.version},
                        {"name", m.name},
                        {"outcome", m.outcome},
                        {"up_ms", MsOrNull(m.up)},
                        {"down_ms", MsOrNull(m.down)},
                        {"reapply_ms", MsOrNull(m.reapply)},
                        {"reversible", m.reversible},
                        {"irreversible", m.irreversible},
                        {"differences", m.differences},
                        {"column_order", m.column_order},
                        {"data_loss", m.data_loss},
                        {"rollback_path", m.rollback_path}};
    j["error"] = m.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.error);
    migrations.push_back(std::move(j));
  }
  nlohmann::json json = {{"status", record.status},
                         {"at", record.at.empty() ? nlohmann::json(nullptr)
                                                  : nlohmann::json(record.at)},
                         {"journal_id", record.journal_id == 0
                                            ? nlohmann::json(nullptr)
                                            : nlohmann::json(record.journal_id)},
                         {"where", record.where.empty() ? nlohmann::json(nullptr)
                                                        : nlohmann::json(record.where)},
                         {"kept", record.kept},
                         {"restore_ms", MsOrNull(record.restore)},
                         {"migrations", migrations},
                         {"took_ms", record.took.count()}};
  json["scratch"] = record.kept ? nlohmann::json(record.scratch) : nlohmann::json(nullptr);
  return json;
}

RehearsalRecord RehearsalFromJson(const nlohmann::json& json) {
  try {
    RehearsalRecord record;
    record.status = json.at("status").get<std::string>();
    if (json.contains("at") && !json["at"].is_null()) record.at = json["at"].get<std::string>();
    if (json.contains("where") && !json["where"].is_null()) record.where = json["where"];
    record.kept = json.value("kept", false);
    if (json.contains("scratch") && !json["scratch"].is_null()) record.scratch = json["scratch"];
    record.restore = OptionalMs(json.value("restore_ms", nlohmann::json(nullptr)));
    record.took = milliseconds(json.value("took_ms", std::int64_t{0}));
    for (const nlohmann::json& j : json.at("migrations")) {
      MigrationRehearsal m;
      m.version = j.at("version");
      m.name = j.at("name");
      m.outcome = j.at("outcome");
      m.up = OptionalMs(j.at("up_ms"));
      m.down = OptionalMs(j.at("down_ms"));
      m.reapply = OptionalMs(j.at("reapply_ms"));
      m.reversible = j.at("reversible");
      m.irreversible = j.at("irreversible");
      m.differences = j.at("differences").get<std::vector<std::string>>();
      m.column_order = j.at("column_order").get<std::vector<std::string>>();
      m.data_loss = j.at("data_loss").get<std::vector<std::string>>();
      if (!j.at("error").is_null()) m.error = j["error"];
      m.rollback_path = j.at("rollback_path");
      record.migrations.push_back(std::move(m));
    }
    return record;
  } catch (const nlohmann::json::exception& e) {
    throw Error(Category::kIntegrity, fmt::format("malformed rehearsal record: {}", e.what()),
                "the journal row holding it was damaged or edited by hand; rehearse again");
  }
}

RehearsalRecord LastRehearsal(const std::vector<JournalEntry>& journal,
                              const std::string& plan_hash,
                              std::chrono::system_clock::time_point now,
                              milliseconds max_age) {
  for (const JournalEntry& entry : journal) {
    if (entry.kind != "rehearsal" || entry.plan_hash != plan_hash) continue;
    if (entry.outcome != "ok" && entry.outcome != "failed") continue;  // running or crashed
    nlohmann::json details = nlohmann::json::parse(entry.details, nullptr, false);
    if (details.is_discarded() || !details.contains("rehearsal")) continue;
    RehearsalRecord record = RehearsalFromJson(details["rehearsal"]);
    record.journal_id = entry.id;
    record.plan_hash = entry.plan_hash;
    record.backup_id = entry.backup_id;
    record.at = entry.finished_at;
    record.reasons = details.value("reasons", std::vector<std::string>{});
    record.up_state_schema_digest = details.value("up_state_schema_digest", std::string());
    record.up_state_schema = entry.fingerprint_after;
    // A malformed time counts as old.
    const auto finished = ParseIso8601(entry.finished_at).value_or(
        std::chrono::system_clock::time_point{});
    if (record.status == "passed" && now - finished > max_age) {
      record.status = "stale";
    }
    return record;
  }
  RehearsalRecord missing;
  missing.plan_hash = plan_hash;
  return missing;
}

RollbackEstimate EstimateRollback(const RehearsalRecord& record, const std::string& backup_id) {
  RollbackEstimate estimate;
  estimate.backup_id = backup_id;
  estimate.by_restore = record.restore;
  bool all_down = !record.migrations.empty();
  milliseconds total{0};
  for (const MigrationRehearsal& m : record.migrations) {
    if (m.rollback_path != "down" || !m.down) {
      all_down = false;
      break;
    }
    total += *m.down;
  }
  if (all_down) estimate.by_down = total;
  estimate.recommended = estimate.by_down ? "down" : "restore";
  return estimate;
}

nlohmann::json RollbackJson(const RollbackEstimate& estimate) {
  return {{"by_down_ms", MsOrNull(estimate.by_down)},
          {"by_restore_ms", MsOrNull(estimate.by_restore)},
          {"backup_id", estimate.backup_id.empty() ? nlohmann::json(nullptr)
                                                   : nlohmann::json(estimate.backup_id)},
          {"recommended", estimate.recommended}};
}

RehearsalRecord Rehearse(Driver& target, const DatabaseUrl& target_url, const Plan& plan,
                         const std::string& plan_hash, const BackupStore& store,
                         const std::string& backup_id, const RehearsalOptions& options,
                         Reporter& reporter) {
  const auto started = Clock::now();
  RehearsalRecord record;
  record.plan_hash = plan_hash;
  record.backup_id = backup_id;
  record.kept = options.keep;
  record.where = options.rehearsal_url ? "rehearsal_url"
                 : target_url.engine == Engine::kSqlite ? "temporary file"
                                                        : "scratch database on the same server";

  JournalEntry journal;
  journal.kind = "rehearsal";
  journal.environment = options.environment;
  journal.deploy_id = options.run_id;
  journal.started_at = NowIso8601();
  journal.outcome = "running";
  journal.plan_hash = plan_hash;
  journal.from_version = plan.from_version;
  journal.to_version = plan.to_version;
  journal.backup_id = backup_id;
  journal.id = target.InsertJournal(journal);
  record.journal_id = journal.id;

  auto finish_journal = [&](const std::string& outcome, const nlohmann::json& extra) {
    journal.finished_at = NowIso8601();
    journal.outcome = outcome;
    nlohmann::json details = extra;
    details["rehearsal"] = RehearsalJson(record);
    details["reasons"] = record.reasons;
    details["up_state_schema_digest"] = record.up_state_schema_digest;
    journal.fingerprint_after = record.up_state_schema;
    journal.details = RedactSecrets(details.dump());
    try {
      target.UpdateJournal(journal);
    } catch (const Error& e) {
      reporter.Warning(fmt::format("could not finish journal entry {}: {}", journal.id,
                                   RedactSecrets(e.what())));
    }
    record.at = journal.finished_at;
  };

  const DatabaseUrl like = options.rehearsal_url ? *options.rehearsal_url : target_url;
  try {
    // The copy: a scratch database dropped when `scratch` goes out of scope (also on an
    // exception or Ctrl-C), or a kept one under a name no clean-up touches.
    std::unique_ptr<ScratchDatabase> scratch;
    DatabaseUrl copy_url;
    if (options.keep) {
      copy_url = KeptCopyUrl(like, options.run_id);
      record.scratch = ShownName(copy_url);
    } else {
      scratch = CreateScratchDatabase(like);
      copy_url = scratch->url();
    }
    ThrowIfInterrupted("rehearsing");
    reporter.Note(fmt::format("Rehearsal: restoring backup {} into a {}", backup_id,
                              options.rehearsal_url ? "database on rehearsal_url" : record.where));
    const auto restore_started = Clock::now();
    {
      ArchiveReader reader = ArchiveReader::Open(store.Find(backup_id).dir);
      RestoreOptions restore_options;
      restore_options.replace_existing = true;  // the empty scratch database is ours
      restore_options.jobs = options.jobs;
      RestoreArchive(reader, copy_url, restore_options,
                     [&reporter](std::uint64_t done, std::uint64_t total) {
                       reporter.Progress("restore", done, total);
                     });
    }
    record.restore = Since(restore_started);
    // Invariant 3: the backup has now been restored and its fingerprint matched.
    store.MarkVerified(backup_id, "rehearsal");
    reporter.Note(fmt::format("  restored in {} (the restore estimate)",
                              FormatDuration(*record.restore)));

    std::unique_ptr<Driver> copy = OpenDriver(copy_url, OpenOptions{false, options.jobs});
    copy->EnsureMetadata();
    Reporter quiet;
    Migrator migrator(*copy, quiet);
    RunOptions run;
    run.environment = options.environment;
    run.run_id = options.run_id;
    run.applied_by = "rehearsal";
    // The state before step `i` runs: what StateBefore reads, or once past the last step
    // the schema alone (the up state recorded for deploy's verify).
    auto state_before = [&](size_t i) {
      return i < plan.steps.size()
                 ? StateBefore(*copy, plan.steps[i].sql)
                 : copy->TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kSchema);
    };
    Fingerprint current = state_before(0);
    bool stopped = false;
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      const PlannedStep& step = plan.steps[i];
      MigrationRehearsal m;
      m.version = step.version;
      m.name = step.name;
      m.irreversible = step.irreversible;
      m.rollback_path = step.irreversible ? "restore" : "down";
      if (stopped) {
        record.migrations.push_back(std::move(m));
        continue;
      }
      ThrowIfInterrupted("rehearsing");
      const Fingerprint before = current;
      const ValueCounts counts = CountDroppableValues(*copy, before, step.sql);
      try {
        m.up = RunOne(migrator, step, run);
      } catch (const Error& e) {
        if (e.category() == Category::kInternal) throw;
        m.outcome = "up_failed";
        m.error = RedactSecrets(e.what());
        m.rollback_path = "restore";
        record.reasons.push_back(fmt::format("{}: up fails on a copy of the real data: {}",
                                             Label(step), m.error));
        record.migrations.push_back(std::move(m));
        stopped = true;
        continue;
      }
      // DataLoss needs only the schema after the up; an irreversible up's state is also the
      // next step's starting state.
      const Fingerprint after_up =
          step.irreversible
              ? state_before(i + 1)
              : copy->TakeFingerprint(/*include_metadata=*/false, FingerprintDepth::kSchema);
      if (step.irreversible) {
        m.outcome = "irreversible";
        m.data_loss = DataLoss(before, after_up, nullptr, counts);
        current = after_up;
        reporter.Note(fmt::format("  {}: up {}; marked irreversible, its down is not run: "
                                  "rollback must restore",
                                  Label(step), FormatDuration(*m.up)));
        record.migrations.push_back(std::move(m));
        continue;
      }
      try {
        m.down = RunOne(migrator, DownStepFor(step), run);
      } catch (const Error& e) {
        if (e.category() == Category::kInternal) throw;
        m.outcome = "down_failed";
        m.error = RedactSecrets(e.what());
        m.rollback_path = "restore";
        record.reasons.push_back(fmt::format("{}: down fails: {}", Label(step), m.error));
        record.migrations.push_back(std::move(m));
        stopped = true;
        continue;
      }
      const Fingerprint after_down = StateAfterDown(*copy, before, after_up);
      SchemaComparison back = CompareSchemas(before, after_down);
      m.differences = back.differences;
      m.column_order = back.column_order;
      m.data_loss = DataLoss(before, after_up, &after_down, counts);
      if (!back.differences.empty()) {
        m.outcome = "down_differs";
        m.rollback_path = "restore";
        record.reasons.push_back(fmt::format("{}: down leaves the schema different: {}",
                                             Label(step), Joined(back.differences, 3)));
        record.migrations.push_back(std::move(m));
        stopped = true;
        continue;
      }
      m.reversible = true;
      try {
        m.reapply = RunOne(migrator, step, run);
      } catch (const Error& e) {
        if (e.category() == Category::kInternal) throw;
        m.outcome = "reapply_differs";
        m.error = RedactSecrets(e.what());
        record.reasons.push_back(fmt::format("{}: up fails when applied again after its down: {}",
                                             Label(step), m.error));
        record.migrations.push_back(std::move(m));
        stopped = true;
        continue;
      }
      current = state_before(i + 1);
      SchemaComparison again = CompareSchemas(after_up, current);
      if (!again.differences.empty()) {
        m.outcome = "reapply_differs";
        m.differences = again.differences;
        record.reasons.push_back(fmt::format("{}: up after its down gives a different schema "
                                             "than the first up: {}",
                                             Label(step), Joined(again.differences, 3)));
        record.migrations.push_back(std::move(m));
        stopped = true;
        continue;
      }
      m.outcome = "ok";
      reporter.Note(fmt::format("  {}: up {}, down {}, up again {}{}", Label(step),
                                FormatDuration(*m.up), FormatDuration(*m.down),
                                FormatDuration(*m.reapply),
                                m.data_loss.empty() ? "; reversible"
                                                    : "; reversible, but " + Joined(m.data_loss, 2)));
      record.migrations.push_back(std::move(m));
    }
    record.status = record.reasons.empty() ? "passed" : "failed";
    if (!stopped) {
      Fingerprint schema = SchemaOnly(current);
      record.up_state_schema_digest = schema.SchemaDigest();
      record.up_state_schema = schema.ToJson();
    }
    copy.reset();
  } catch (const Error& e) {
    record.status = "failed";
    record.took = Since(started);
    finish_journal("failed", {{"error", RedactSecrets(e.what())}});
    throw;
  }
  record.took = Since(started);
  finish_journal(record.status == "passed" ? "ok" : "failed", nlohmann::json::object());
  return record;
}

}  // namespace safemig
