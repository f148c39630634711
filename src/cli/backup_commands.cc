// `backup create|list|show|verify|prune` and `restore`.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

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

void RunBackupList(const GlobalOptions& options) {
  Console console(options);
  Resolved resolved = Resolve(ToSelection(options));
  BackupStore store(BackupDir(resolved));
  std::vector<BackupEntry> entries = store.List();
  if (console.json()) {
    nlohmann::json list = nlohmann::json::array();
    for (const BackupEntry& entry : entries) list.push_back(EntryJson(entry));
    console.Json({{"command", "backup list"}, {"ok", true}, {"store", store.dir().string()},
                  {"backups", list}});
    return;
  }
  if (entries.empty()) {
    console.Line(fmt::format("No backups in {}.", store.dir().string()));
    return;
  }
  console.Line(fmt::format("  {:<44} {:<24} {:<16} {:>10} {:>10}  {}", "ID", "CREATED",
                           "VERSION", "RAW", "STORED", "VERIFIED"));
  for (const BackupEntry& entry : entries) {
    if (!entry.manifest) {
      console.Line(fmt::format("  {:<44} DAMAGED: {}", entry.id, entry.problem));
      continue;
    }
    const Manifest& m = *entry.manifest;
    console.Line(fmt::format("  {:<44} {:<24} {:<16} {:>10} {:>10}  {}", entry.id, m.created_at,
                             m.migration_version.empty() ? "none" : m.migration_version,
                             Bytes(m.RawBytes()), Bytes(m.StoredBytes()),
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

void RunRestore(const GlobalOptions& options, const std::string& id, const std::string& into,
                bool in_place) {
  Console console(options);
  Resolved resolved = Resolve(ToSelection(options));
  DatabaseUrl source = ParseDatabaseUrl(resolved.environment.url);
  BackupStore store(BackupDir(resolved));
  BackupEntry entry = store.Find(id);
  DatabaseUrl target = !into.empty() ? ParseDatabaseUrl(into)
                       : in_place    ? source
                                     : DefaultRestoreTarget(source, entry.id);
  std::unique_ptr<Driver> current;
  std::unique_ptr<MigrationLock> lock;
  if (in_place) {
    Confirm(options, fmt::format("replace {} with backup {} (the current state is backed up "
                                 "first)",
                                 target.Redacted(), entry.id));
    current = OpenDriver(target, OpenOptions{false, options.jobs});
    lock = current->Lock(resolved.environment.lock_timeout, RunnerName());
    current->EnsureMetadata();
  }
  auto reporter = MakeReporter(console);
  RestoreResult result = RestoreBackup(store, entry.id, target, std::move(current),
                                       resolved.environment.name, *reporter, options.jobs);
  JournalRestore(target, result, resolved.environment.name, "restore",
                 nlohmann::json{{"in_place", in_place}});
  if (console.json()) {
    console.Json({{"command", "restore"}, {"ok", true}, {"id", result.manifest.id},
                  {"target", target.Redacted()}, {"in_place", in_place},
                  {"safety_backup_id", result.safety_backup_id},
                  {"migration_version", result.manifest.migration_version},
                  {"took_ms", result.took.count()}});
    return;
  }
  console.Line(fmt::format("Restored backup {} into {} in {}: version {}, fingerprint checked.",
                           result.manifest.id, target.Redacted(), FormatDuration(result.took),
                           result.manifest.migration_version.empty()
                               ? "none"
                               : result.manifest.migration_version));
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

  backup->add_subcommand("list", "list this environment's backups")
      ->callback([&options] { RunBackupList(options); });

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

  auto restore_id = std::make_shared<std::string>();
  auto into = std::make_shared<std::string>();
  auto in_place = std::make_shared<bool>(false);
  auto* restore = app.add_subcommand(
      "restore", "restore a backup into a new database (default), --into URL, or --in-place");
  restore->add_option("id", *restore_id, "backup id, unique prefix, or 'latest'")->required();
  auto* into_option = restore->add_option("--into", *into, "target database URL (must not exist)");
  restore->add_flag("--in-place", *in_place,
                    "replace the environment's database (backs up its current state first)")
      ->excludes(into_option);
  restore->callback([&options, restore_id, into, in_place] {
    RunRestore(options, *restore_id, *into, *in_place);
  });
}

}  // namespace safemig::cli
