// `backup create|list|show|verify|prune` and `restore`.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/backups.h"

namespace safemig::cli {
namespace {

namespace fs = std::filesystem;

int IntSetting(const Environment& env, const std::string& key, int fallback, int low, int high) {
  auto it = env.raw.find(key);
  if (it == env.raw.end()) return fallback;
  try {
    size_t used = 0;
    int value = std::stoi(it->second, &used);
    if (used == it->second.size() && value >= low && value <= high) return value;
  } catch (const std::exception&) {
  }
  throw Error(Category::kConfig,
              fmt::format("environments.{}.{} must be a whole number from {} to {}", env.name,
                          key, low, high));
}

nlohmann::json EntryJson(const BackupEntry& entry) {
  nlohmann::json j = {{"id", entry.id}, {"dir", entry.dir.string()}, {"verified", entry.verified}};
  if (entry.verified) j["verified_at"] = entry.verified_at;
  if (entry.manifest) {
    const Manifest& m = *entry.manifest;
    j["created_at"] = m.created_at;
    j["engine"] = m.engine;
    j["environment"] = m.environment;
    j["migration_version"] = m.migration_version;
    j["reason"] = m.reason;
    j["label"] = m.label;
    j["raw_bytes"] = m.RawBytes();
    j["stored_bytes"] = m.StoredBytes();
  } else {
    j["problem"] = entry.problem;
  }
  return j;
}

void RunBackupCreate(const GlobalOptions& options, const std::string& label) {
  Console console(options);
  Target target = OpenTarget(options, /*create_if_missing=*/false);
  BackupStore store(BackupDir(target.resolved));
  BackupRequest request;
  request.environment = target.resolved.environment.name;
  request.label = label;
  request.compression_level =
      IntSetting(target.resolved.environment, "compression_level", 3, 1, 19);
  request.migration_version = CurrentVersion(*target.driver);
  auto reporter = MakeReporter(console);
  BackupResult result = TakeBackup(*target.driver, store, request, *reporter);
  const Manifest& m = result.manifest;
  if (console.json()) {
    console.Json({{"command", "backup create"}, {"ok", true}, {"id", m.id},
                  {"dir", result.dir.string()}, {"raw_bytes", m.RawBytes()},
                  {"stored_bytes", m.StoredBytes()}, {"took_ms", result.took.count()}});
    return;
  }
  console.Line(fmt::format("Backup {} of {}: {} -> {} stored in {}", m.id, m.database,
                           Bytes(m.RawBytes()), Bytes(m.StoredBytes()),
                           FormatDuration(result.took)));
  console.Line(fmt::format("  {}", result.dir.string()));
}

// `backup list` filters as typed; times are parsed when the command runs.
struct ListFilterOptions {
  std::string before;
  std::string after;
  std::string version;
  std::string reason;
  bool verified = false;
  int limit = 0;
};

BackupFilter ToFilter(const ListFilterOptions& flags) {
  const auto now = std::chrono::system_clock::now();
  BackupFilter filter;
  if (!flags.before.empty()) filter.before = ParseBackupTime(flags.before, "--before", now);
  if (!flags.after.empty()) filter.after = ParseBackupTime(flags.after, "--after", now);
  if (!flags.version.empty()) filter.version = flags.version;
  if (!flags.reason.empty()) filter.reason = flags.reason;
  filter.verified_only = flags.verified;
  if (flags.limit > 0) filter.limit = flags.limit;
  return filter;
}

void RunBackupList(const GlobalOptions& options, const ListFilterOptions& flags) {
  Console console(options);
  Resolved resolved = Resolve(ToSelection(options));
  BackupStore store(BackupDir(resolved));
  const BackupFilter filter = ToFilter(flags);
  std::vector<BackupEntry> entries = FilterBackups(store.List(), filter);
  if (console.json()) {
    nlohmann::json list = nlohmann::json::array();
    for (const BackupEntry& entry : entries) list.push_back(EntryJson(entry));
    console.Json({{"command", "backup list"}, {"ok", true}, {"store", store.dir().string()},
                  {"backups", list}});
    return;
  }
  const bool filtered = filter.before || filter.after || filter.version || filter.reason ||
                        filter.verified_only;
  if (entries.empty()) {
    console.Line(fmt::format("No backups{} in {}.", filtered ? " match" : "",
                             store.dir().string()));
    return;
  }
  std::size_t width = 2;
  for (const BackupEntry& entry : entries) width = std::max(width, entry.id.size());
  console.Line(fmt::format("  {:<{}} {:<24} {:<16} {:<15} {:>10} {:>10}  {}", "ID", width,
                           "CREATED", "VERSION", "REASON", "RAW", "STORED", "VERIFIED"));
  for (const BackupEntry& entry : entries) {
    if (!entry.manifest) {
      console.Line(fmt::format("  {:<{}} DAMAGED: {}", entry.id, width, entry.problem));
      continue;
    }
    const Manifest& m = *entry.manifest;
    console.Line(fmt::format("  {:<{}} {:<24} {:<16} {:<15} {:>10} {:>10}  {}", entry.id,
                             width, m.created_at,
                             m.migration_version.empty() ? "none" : m.migration_version,
                             m.reason, Bytes(m.RawBytes()), Bytes(m.StoredBytes()),
                             entry.verified ? "yes (" + entry.verified_by + ")" : "no"));
  }
}

void RunBackupShow(const GlobalOptions& options, const std::string& id) {
  Console console(options);
  Resolved resolved = Resolve(ToSelection(options));
  BackupStore store(BackupDir(resolved));
  BackupEntry entry = store.Find(id);
  ArchiveReader reader = ArchiveReader::Open(entry.dir);
  const Manifest& m = reader.manifest();
  if (console.json()) {
    nlohmann::json j = nlohmann::json::parse(m.ToJson());
    j["command"] = "backup show";
    j["ok"] = true;
    j["dir"] = entry.dir.string();
    j["verified"] = entry.verified;
    console.Json(j);
    return;
  }
  console.Line(fmt::format("Backup      {}", m.id));
  console.Line(fmt::format("Directory   {}", entry.dir.string()));
  console.Line(fmt::format("Database    {} ({}), environment {}", m.database, m.server_version,
                           m.environment));
  console.Line(fmt::format("Version     {}", m.migration_version.empty() ? "none"
                                                                         : m.migration_version));
  console.Line(fmt::format("Created     {} .. {} by safemig {}", m.created_at, m.finished_at,
                           m.tool_version));
  console.Line(fmt::format("Reason      {}{}", m.reason, m.label.empty() ? "" : " (" + m.label + ")"));
  console.Line(fmt::format("Size        {} raw, {} stored (zstd level {})", Bytes(m.RawBytes()),
                           Bytes(m.StoredBytes()), m.compression_level));
  console.Line(fmt::format("Verified    {}", entry.verified
                                                 ? entry.verified_at + " by " + entry.verified_by
                                                 : std::string("no")));
  console.Line(fmt::format("Contents    {} tables, fingerprint {}", m.fingerprint.tables.size(),
                           m.fingerprint.Digest().substr(0, 16)));
  for (const auto& [table, data] : m.fingerprint.tables) {
    if (table == "sqlite_sequence") continue;
    console.Line(fmt::format("  table {}  {} rows", table, data.rows));
  }
  for (const PartInfo& part : m.parts) {
    console.Line(fmt::format("  part {}  {}  {} raw, {} stored, sha256 {}", part.name, part.kind,
                             Bytes(part.raw_bytes), Bytes(part.stored_bytes),
                             part.sha256.substr(0, 16)));
  }
}

void RunBackupVerify(const GlobalOptions& options, const std::string& id) {
  Console console(options);
  Resolved resolved = Resolve(ToSelection(options));
  BackupStore store(BackupDir(resolved));
  auto reporter = MakeReporter(console);
  auto started = std::chrono::steady_clock::now();
  Manifest m = VerifyBackup(store, id, *reporter);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  if (console.json()) {
    console.Json({{"command", "backup verify"}, {"ok", true}, {"id", m.id},
                  {"parts", m.parts.size()}, {"raw_bytes", m.RawBytes()},
                  {"took_ms", took.count()}});
    return;
  }
  console.Line(fmt::format("OK: backup {} ({} part{}, {} raw) passed every checksum and a full "
                           "decompression in {}.",
                           m.id, m.parts.size(), m.parts.size() == 1 ? "" : "s",
                           Bytes(m.RawBytes()), FormatDuration(took)));
}

void RunBackupPrune(const GlobalOptions& options, bool dry_run) {
  Console console(options);
  Resolved resolved = Resolve(ToSelection(options));
  const Environment& env = resolved.environment;
  Retention retention;
  if (env.raw.count("backup_keep_last")) {
    retention.keep_last = IntSetting(env, "backup_keep_last", 0, 1, 1'000'000);
  }
  if (auto it = env.raw.find("backup_max_age"); it != env.raw.end()) {
    retention.max_age = ParseDuration(it->second, "environments." + env.name + ".backup_max_age");
  }
  if (!retention.keep_last && !retention.max_age) {
    throw Error(Category::kConfig,
                fmt::format("environment {} sets no retention, so nothing would be pruned",
                            env.name),
                "set backup_keep_last = 10 and/or backup_max_age = \"30d\" in its section of "
                "safemig.toml");
  }
  BackupStore store(BackupDir(resolved));
  std::vector<std::string> abandoned = dry_run ? std::vector<std::string>{}
                                               : store.RemoveAbandoned();
  std::vector<std::string> removed = store.Prune(retention, {}, dry_run);
  if (console.json()) {
    console.Json({{"command", "backup prune"}, {"ok", true}, {"dry_run", dry_run},
                  {"removed", removed}, {"abandoned_removed", abandoned}});
    return;
  }
  for (const std::string& id : removed) {
    console.Line(fmt::format("{} {}", dry_run ? "would remove" : "removed", id));
  }
  console.Line(fmt::format("{} backup{} {}; kept {}.", removed.size(),
                           removed.size() == 1 ? "" : "s", dry_run ? "to remove" : "removed",
                           store.List().size() - (dry_run ? removed.size() : 0)));
}

// Where a restore goes when neither --into nor --in-place is given: beside the original,
// never over it.
DatabaseUrl DefaultRestoreTarget(const DatabaseUrl& source, const std::string& id) {
  DatabaseUrl target = source;
  if (source.engine == Engine::kSqlite) {
    fs::path path(source.path);
    target.path = (path.parent_path() /
                   (path.stem().string() + ".restored-" + id.substr(0, id.find('_')) + path.extension().string()))
                      .string();
    return target;
  }
  // A new database on the same server; the restore creates it.
  std::string stamp = id.substr(0, id.find('_'));
  stamp.erase(std::remove_if(stamp.begin(), stamp.end(),
                             [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }),
              stamp.end());
  target.database = source.database + "_restored_" + stamp;
  std::transform(target.database.begin(), target.database.end(), target.database.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return target;
}

struct RestoreFlags {
  std::string id;
  std::string before;
  std::string version;
  std::vector<std::string> tables;
  std::string into;
  bool in_place = false;
};

// The backup a restore uses, and in words why that one (empty when named by id).
std::pair<BackupEntry, std::string> ChooseBackup(const BackupStore& store,
                                                 const RestoreFlags& flags,
                                                 const std::string& environment) {
  const int given = static_cast<int>(!flags.id.empty()) + static_cast<int>(!flags.before.empty()) +
                    static_cast<int>(!flags.version.empty());
  if (given != 1) {
    throw Error(Category::kUsage,
                "restore needs exactly one of a backup ID, --before TIME or --version V",
                "list the backups with `safemig backup list`");
  }
  if (!flags.id.empty()) return {store.Find(flags.id), std::string()};
  BackupFilter filter;
  std::string condition;
  if (!flags.before.empty()) {
    filter.before = ParseBackupTime(flags.before, "--before", std::chrono::system_clock::now());
    condition = "taken before " + FormatIso8601(*filter.before);
  } else {
    filter.version = flags.version;
    condition = "taken at version " + flags.version;
  }
  std::vector<BackupEntry> candidates = FilterBackups(store.List(), filter);
  if (candidates.empty()) {
    throw Error(Category::kUsage,
                fmt::format("no backup of environment {} was {} (store {})", environment,
                            condition, store.dir().string()),
                "list the backups with `safemig backup list`");
  }
  return {candidates.back(),
          fmt::format("the newest backup of environment {} {}", environment, condition)};
}

void RunRestore(const GlobalOptions& options, const RestoreFlags& flags) {
  const std::string& into = flags.into;
  const bool in_place = flags.in_place;
  Console console(options);
  Resolved resolved = Resolve(ToSelection(options));
  DatabaseUrl source = ParseDatabaseUrl(resolved.environment.url);
  BackupStore store(BackupDir(resolved));
  auto [entry, why] = ChooseBackup(store, flags, resolved.environment.name);
  if (!why.empty()) {
    const Manifest& m = *entry.manifest;
    const std::string line = fmt::format(
        "Chose backup {} (created {}, version {}, reason {}{}): {}.", entry.id, m.created_at,
        m.migration_version.empty() ? "none" : m.migration_version, m.reason,
        entry.verified ? ", verified" : ", not verified yet", why);
    console.Line(line);  // JSON carries it as chosen_because
  }
  const std::string what =
      flags.tables.empty() ? std::string() : fmt::format(" (tables {})", fmt::join(flags.tables, ", "));
  DatabaseUrl target = !into.empty() ? ParseDatabaseUrl(into)
                       : in_place    ? source
                                     : DefaultRestoreTarget(source, entry.id);
  std::unique_ptr<Driver> current;
  std::unique_ptr<MigrationLock> lock;
  if (in_place) {
    Confirm(options, fmt::format("replace {}{} with backup {} (the current state is backed up "
                                 "first)",
                                 target.Redacted(), what, entry.id));
    current = OpenDriver(target, OpenOptions{false, options.jobs});
    lock = current->Lock(resolved.environment.lock_timeout, RunnerName());
    current->EnsureMetadata();
  }
  auto reporter = MakeReporter(console);
  RestoreResult result = RestoreBackup(store, entry.id, target, std::move(current),
                                       resolved.environment.name, *reporter, options.jobs,
                                       flags.tables);
  nlohmann::json tables = nlohmann::json::array();
  for (const TableRestored& table : result.tables) {
    tables.push_back({{"table", table.table}, {"rows", table.rows},
                      {"took_ms", table.took.count()}, {"checked", true}});
  }
  nlohmann::json details = {{"in_place", in_place}};
  if (!result.tables.empty()) details["tables"] = tables;
  JournalRestore(target, result, resolved.environment.name, "restore", details);
  if (console.json()) {
    nlohmann::json out = {{"command", "restore"}, {"ok", true}, {"id", result.manifest.id},
                          {"target", target.Redacted()}, {"in_place", in_place},
                          {"safety_backup_id", result.safety_backup_id},
                          {"migration_version", result.manifest.migration_version},
                          {"took_ms", result.took.count()}};
    out["chosen_because"] = why.empty() ? nlohmann::json() : nlohmann::json(why);
    out["tables"] = result.tables.empty() ? nlohmann::json() : tables;
    console.Json(out);
    return;
  }
  if (!result.tables.empty()) {
    for (const TableRestored& table : result.tables) {
      console.Line(fmt::format("  {:<32} {:>10} rows  {}  rows and content hash equal the "
                               "backup's",
                               table.table, table.rows,
                               in_place ? FormatDuration(table.took) : std::string("-")));
    }
    console.Line(fmt::format("Restored {} table{} of backup {} {} {} in {}.",
                             result.tables.size(), result.tables.size() == 1 ? "" : "s",
                             result.manifest.id, in_place ? "in place in" : "into",
                             target.Redacted(), FormatDuration(result.took)));
  } else {
    console.Line(fmt::format("Restored backup {} into {} in {}: version {}, fingerprint checked.",
                             result.manifest.id, target.Redacted(), FormatDuration(result.took),
                             result.manifest.migration_version.empty()
                                 ? "none"
                                 : result.manifest.migration_version));
  }
  if (!result.safety_backup_id.empty()) {
    console.Line(fmt::format("The state it replaced is backup {}.", result.safety_backup_id));
  }
}

}  // namespace

void SetupBackupCommands(CLI::App& app, GlobalOptions& options) {
  auto* backup = app.add_subcommand("backup", "create, list, show, verify and prune backups");
  backup->require_subcommand(1);

  auto label = std::make_shared<std::string>();
  auto* create = backup->add_subcommand("create", "take a compressed, checksummed backup now");
  create->add_option("--label", *label, "free text stored in the manifest");
  create->callback([&options, label] { RunBackupCreate(options, *label); });

  auto list_flags = std::make_shared<ListFilterOptions>();
  auto* list = backup->add_subcommand("list", "list this environment's backups");
  list->add_option("--before", list_flags->before,
                   "only those taken before TIME (2026-11-26T02:00:00Z, or 2h for two hours ago)");
  list->add_option("--after", list_flags->after, "only those taken at or after TIME");
  list->add_option("--version", list_flags->version,
                   "only those taken at migration version V (0: none applied)");
  list->add_option("--reason", list_flags->reason,
                   "only those taken for REASON: manual, before-up, before-down, "
                   "before-restore, before-rollback");
  list->add_flag("--verified", list_flags->verified,
                 "only those proven good by a verify, restore or rehearsal");
  list->add_option("--limit", list_flags->limit, "only the newest N")
      ->check(CLI::PositiveNumber);
  list->callback([&options, list_flags] { RunBackupList(options, *list_flags); });

  auto show_id = std::make_shared<std::string>();
  auto* show = backup->add_subcommand("show", "show one backup's manifest");
  show->add_option("id", *show_id, "backup id, unique prefix, or 'latest'")->required();
  show->callback([&options, show_id] { RunBackupShow(options, *show_id); });

  auto verify_id = std::make_shared<std::string>();
  auto* verify = backup->add_subcommand(
      "verify", "check every part's checksum and decompress it fully (exit 6 on damage)");
  verify->add_option("id", *verify_id, "backup id, unique prefix, or 'latest'")->required();
  verify->callback([&options, verify_id] { RunBackupVerify(options, *verify_id); });

  auto dry_run = std::make_shared<bool>(false);
  auto* prune = backup->add_subcommand("prune", "apply the environment's retention settings");
  prune->add_flag("--dry-run", *dry_run, "list what would be removed");
  prune->callback([&options, dry_run] { RunBackupPrune(options, *dry_run); });

  auto restore_flags = std::make_shared<RestoreFlags>();
  auto* restore = app.add_subcommand(
      "restore", "restore a backup into a new database (default), --into URL, or --in-place");
  restore->add_option("id", restore_flags->id, "backup id, unique prefix, or 'latest'");
  restore->add_option("--before", restore_flags->before,
                      "instead of an id: the newest backup taken before TIME "
                      "(2026-11-26T02:00:00Z, or 2h for two hours ago)");
  restore->add_option("--version", restore_flags->version,
                      "instead of an id: the newest backup taken at migration version V");
  restore->add_option("--tables", restore_flags->tables, "only these tables (a,b)")
      ->delimiter(',');
  auto* into_option =
      restore->add_option("--into", restore_flags->into, "target database URL (must not exist)");
  restore->add_flag("--in-place", restore_flags->in_place,
                    "replace the environment's database, or with --tables those tables' rows "
                    "(backs up its current state first)")
      ->excludes(into_option);
  restore->callback([&options, restore_flags] { RunRestore(options, *restore_flags); });
}

}  // namespace safemig::cli
