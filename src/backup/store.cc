#include "backup/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/duration.h"
#include "core/error.h"

namespace safemig {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPartialSuffix = ".partial";
constexpr const char* kVerifiedName = "verified.json";

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Environment names are restricted by the config loader; versions may hold dots.
std::string IdSafe(const std::string& text) {
  std::string out;
  for (char c : text) {
    out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '-');
  }
  return out;
}

bool TakenBeforeChange(const BackupEntry& entry) {
  return entry.manifest &&
         (entry.manifest->reason == "before-up" || entry.manifest->reason == "before-down");
}

}  // namespace

std::chrono::system_clock::time_point ParseBackupTime(const std::string& text,
                                                      const std::string& flag,
                                                      std::chrono::system_clock::time_point now) {
  if (auto point = ParseIso8601(text)) return *point;
  try {
    return now - ParseDuration(text, flag);
  } catch (const Error&) {
    throw Error(Category::kUsage,
                fmt::format("{} '{}' is neither a time nor a duration ago", flag, text),
                fmt::format("write {} 2026-11-26T02:00:00Z (UTC unless it says +01:00) or "
                            "{} 2h (two hours ago)",
                            flag, flag));
  }
}

std::vector<BackupEntry> FilterBackups(std::vector<BackupEntry> entries,
                                       const BackupFilter& filter) {
  const bool conditions = filter.before || filter.after || filter.version || filter.reason ||
                          filter.verified_only;
  std::vector<BackupEntry> kept;
  for (BackupEntry& entry : entries) {
    if (conditions) {
      if (!entry.manifest) continue;
      const Manifest& m = *entry.manifest;
      const auto created = ParseIso8601(m.created_at);
      if ((filter.before || filter.after) && !created) continue;
      if (filter.before && !(*created < *filter.before)) continue;
      if (filter.after && *created < *filter.after) continue;
      if (filter.version) {
        const bool none = *filter.version == "0" || *filter.version == "none";
        if (m.migration_version != (none ? std::string() : *filter.version)) continue;
      }
      if (filter.reason && m.reason != *filter.reason) continue;
      if (filter.verified_only && !entry.verified) continue;
    }
    kept.push_back(std::move(entry));
  }
  if (filter.limit && kept.size() > static_cast<std::size_t>(std::max(0, *filter.limit))) {
    kept.erase(kept.begin(), kept.end() - std::max(0, *filter.limit));
  }
  return kept;
}

std::string BackupStore::NewId(const std::string& environment,
                               const std::string& migration_version) const {
  // 20261126T030536.123Z: milliseconds keep ids in creation order within one second.
  std::string iso = NowIso8601();  // 2026-11-26T03:05:36.123Z
  std::string stamp = iso.substr(0, 4) + iso.substr(5, 2) + iso.substr(8, 5) + iso.substr(14, 2) +
                      iso.substr(17);
  std::string base = fmt::format("{}_{}_v{}", stamp, IdSafe(environment),
                                 migration_version.empty() ? "0" : IdSafe(migration_version));
  std::string id = base;
  for (int n = 2; fs::exists(dir_ / id) || fs::exists(dir_ / (id + kPartialSuffix)); ++n) {
    id = fmt::format("{}-{}", base, n);
  }
  return id;
}

std::vector<std::string> BackupStore::RemoveAbandoned() const {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return removed;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    const bool partial = EndsWith(name, kPartialSuffix);
    const bool staging = name.front() == '.' && EndsWith(name, kArchiveStagingSuffix);
    if (!entry.is_directory() || (!partial && !staging)) continue;
    int fd = ::open((entry.path() / ".writer.lock").c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      bool in_use = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
      ::close(fd);
      if (in_use) continue;  // another safemig is writing it right now
    }
    std::error_code ignored;
    if (staging) {
      // Only a minute after it was made: a writer may be between mkdir and its lock.
      const auto age = fs::file_time_type::clock::now() - fs::last_write_time(entry.path(), ignored);
      if (ignored || age < std::chrono::minutes(1)) continue;
      fs::remove_all(entry.path(), ignored);
      continue;
    }
    fs::remove_all(entry.path(), ignored);
    removed.push_back(name.substr(0, name.size() - std::string(kPartialSuffix).size()));
  }
  return removed;
}

std::vector<BackupEntry> BackupStore::List() const {
  std::vector<BackupEntry> entries;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return entries;
  for (const auto& item : fs::directory_iterator(dir_, ec)) {
    const std::string name = item.path().filename().string();
    if (!item.is_directory() || EndsWith(name, kPartialSuffix) || name.front() == '.') continue;
    if (!fs::exists(item.path() / "manifest.json")) continue;
    BackupEntry entry;
    entry.id = name;
    entry.dir = item.path();
    try {
      entry.manifest = ArchiveReader::Open(item.path()).manifest();
    } catch (const Error& e) {
      entry.problem = e.what();
    }
    std::ifstream verified(item.path() / kVerifiedName);
    if (verified) {
      nlohmann::json j = nlohmann::json::parse(verified, nullptr, false);
      if (j.is_object()) {
        entry.verified = true;
        entry.verified_at = j.value("verified_at", "");
        entry.verified_by = j.value("how", "");
      }
    }
    entries.push_back(std::move(entry));
  }
  // Creation time first (ids of another clock or hand-renamed directories may not sort).
  auto created = [](const BackupEntry& e) { return e.manifest ? e.manifest->created_at : e.id; };
  std::sort(entries.begin(), entries.end(), [&](const BackupEntry& a, const BackupEntry& b) {
    return std::make_pair(created(a), a.id) < std::make_pair(created(b), b.id);
  });
  return entries;
}

BackupEntry BackupStore::Find(const std::string& id_or_prefix) const {
  std::vector<BackupEntry> entries = List();
  if (id_or_prefix == "latest" && !entries.empty()) return entries.back();
  std::vector<const BackupEntry*> matches;
  for (const BackupEntry& entry : entries) {
    if (entry.id == id_or_prefix) return entry;
    if (entry.id.compare(0, id_or_prefix.size(), id_or_prefix) == 0) matches.push_back(&entry);
  }
  if (matches.size() == 1) return *matches.front();
  if (matches.empty()) {
    throw Error(Category::kUsage,
                fmt::format("no backup '{}' in {}", id_or_prefix, dir_.string()),
                "list them with `safemig backup list`");
  }
  throw Error(Category::kUsage,
              fmt::format("'{}' matches {} backups in {}", id_or_prefix, matches.size(),
                          dir_.string()),
              "give more of the id");
}

void BackupStore::MarkVerified(const std::string& id, const std::string& how) const {
  fs::path path = dir_ / id / kVerifiedName;
  std::error_code ignored;
  fs::remove(path, ignored);
  FileSink sink(path);
  const std::string text = nlohmann::json{{"verified_at", NowIso8601()}, {"how", how}}.dump() + "\n";
  sink.Write(text.data(), text.size());
  sink.Finish();
}

std::vector<std::string> BackupStore::Prune(const Retention& retention,
                                            const std::set<std::string>& keep,
                                            bool dry_run) const {
  std::vector<BackupEntry> entries = List();  // oldest first
  std::set<std::string> protect = keep;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->verified) {
      protect.insert(it->id);
      break;
    }
  }
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (TakenBeforeChange(*it)) {
      protect.insert(it->id);
      break;
    }
  }
  const auto now = std::chrono::system_clock::now();
  std::vector<std::string> removed;
  for (size_t i = 0; i < entries.size(); ++i) {
    const BackupEntry& entry = entries[i];
    if (protect.count(entry.id)) continue;
    // Each rule names backups to keep; a backup goes when no configured rule keeps it.
    const size_t newer = entries.size() - 1 - i;
    bool kept = false;
    if (retention.keep_last && static_cast<int>(newer) < *retention.keep_last) kept = true;
    if (retention.max_age) {
      std::optional<std::chrono::system_clock::time_point> created;
      if (entry.manifest) created = ParseIso8601(entry.manifest->created_at);
      if (!created || now - *created <= *retention.max_age) kept = true;
    }
    if (!retention.keep_last && !retention.max_age) kept = true;
    if (kept) continue;
    removed.push_back(entry.id);
    if (!dry_run) {
      std::error_code ec;
      fs::remove_all(entry.dir, ec);
      if (ec) {
        throw Error(Category::kMigrationFailed,
                    fmt::format("cannot remove backup {}: {}", entry.dir.string(), ec.message()));
      }
    }
  }
  return removed;
}

}  // namespace safemig
