#include "drivers/table_restore.h"

#include <map>

#include <fmt/format.h>

namespace safemig {
namespace {

// "column NAME ..." items of the "table KEY" line, by their first two words.
std::optional<std::map<std::string, std::string>> ColumnItems(const Fingerprint& fingerprint,
                                                              const std::string& key) {
  auto it = fingerprint.objects.find("table " + key);
  if (it == fingerprint.objects.end()) return std::nullopt;
  const std::string& line = it->second;
  const std::string prefix = "table " + key + ": ";
  std::string body = line.compare(0, prefix.size(), prefix) == 0 ? line.substr(prefix.size())
                                                                 : line;
  std::map<std::string, std::string> items;
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t end = body.find(" | ", start);
    if (end == std::string::npos) end = body.size();
    const std::string item = body.substr(start, end - start);
    if (item.rfind("column ", 0) == 0) {
      const std::size_t name_end = item.find(' ', 7);
      items[item.substr(0, name_end)] = item;
    }
    start = end + 3;
  }
  return items;
}

}  // namespace

std::optional<std::string> ColumnMismatch(const Fingerprint& backup, const Fingerprint& target,
                                          const std::string& key) {
  const auto before = ColumnItems(backup, key);
  const auto after = ColumnItems(target, key);
  if (!after) return std::string("it no longer exists");
  if (!before) return std::string("the backup does not describe it");
  for (const auto& [name, item] : *before) {
    auto it = after->find(name);
    if (it == after->end()) return fmt::format("{} was dropped (backup: {})", name, item);
    if (it->second != item) return fmt::format("{} changed: {} -> {}", name, item, it->second);
  }
  for (const auto& [name, item] : *after) {
    if (before->count(name) == 0) return fmt::format("{} was added ({})", name, item);
  }
  return std::nullopt;
}

void RefuseChangedColumns(const Fingerprint& backup, const Fingerprint& target,
                          const std::vector<std::string>& keys, const std::string& database,
                          const std::string& backup_id) {
  for (const std::string& key : keys) {
    if (auto why = ColumnMismatch(backup, target, key)) {
      throw Error(Category::kNoGo,
                  fmt::format("table {} in {} no longer matches backup {}: {}; nothing was "
                              "changed",
                              key, database, backup_id, *why),
                  "restore the table into a new database instead (leave out --in-place, or "
                  "pass --into URL) and copy the rows you need");
    }
  }
}

Error MissingTablePart(const std::string& backup_id, const std::string& key) {
  return {Category::kIntegrity,
          fmt::format("backup {} lists table {} but has no part with its rows", backup_id, key),
          "the backup cannot be trusted; use another one"};
}

Error ForeignKeyRefusal(const std::string& constraint, const std::string& child,
                        const std::string& parent, std::int64_t violations) {
  return {Category::kNoGo,
          fmt::format("restoring would leave {} row{} of {} pointing at no row of {} (foreign key "
                      "{}); nothing was changed",
                      violations, violations == 1 ? "" : "s", child, parent, constraint),
          "restore the referencing and referenced tables together (--tables a,b), or restore "
          "into a new database instead"};
}

}  // namespace safemig
