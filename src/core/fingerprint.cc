#include "core/fingerprint.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/sha256.h"

namespace safemig {
namespace {

constexpr int kJsonFormat = 1;
constexpr std::string_view kTablePrefix = "table ";
constexpr std::string_view kColumnsPrefix = "columns ";

// Every string fed to a digest is preceded by its length as 8 big-endian bytes, so two
// different sequences of strings can never serialise to the same bytes (with a plain
// separator, a name containing that separator could forge a boundary).
void AppendField(std::string& out, std::string_view text) {
  const std::uint64_t size = text.size();
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((size >> shift) & 0xffU));
  }
  out.append(text);
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Finds the next `separator` in `text` at or after `from` that is outside SQL quotes
// ('..', "..", `..`, [..]) and outside parentheses, or npos. Lines quote names and embed
// SQL expressions, so a separator inside them must not split the line.
std::size_t FindOutside(std::string_view text, std::string_view separator, std::size_t from) {
  char quote = 0;
  int depth = 0;
  for (std::size_t i = from; i < text.size(); ++i) {
    const char c = text[i];
    if (quote != 0) {
      // A doubled quote inside a quoted run closes and reopens it, which this handles.
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"' || c == '`') {
      quote = c;
    } else if (c == '[') {
      quote = ']';
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (depth > 0) --depth;
    } else if (depth == 0 && text.compare(i, separator.size(), separator) == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

std::vector<std::string> SplitOutside(std::string_view text, std::string_view separator) {
  std::vector<std::string> parts;
  if (text.empty()) return parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = FindOutside(text, separator, start);
    if (end == std::string_view::npos) {
      parts.emplace_back(text.substr(start));
      return parts;
    }
    parts.emplace_back(text.substr(start, end - start));
    start = end + separator.size();
  }
}

// The part of `line` after "KEY: ", or the whole line if it does not start that way.
std::string_view Rest(std::string_view line, std::string_view key) {
  if (StartsWith(line, key) && line.substr(key.size(), 2) == ": ") {
    return line.substr(key.size() + 2);
  }
  return line;
}

// An item of a table line is named by its first two words ("column status", "fk (a, b)",
// "without rowid"); the remainder describes it.
std::pair<std::string, std::string> SplitItem(const std::string& item) {
  const std::size_t first = FindOutside(item, " ", 0);
  if (first == std::string::npos) return {item, ""};
  const std::size_t second = FindOutside(item, " ", first + 1);
  if (second == std::string::npos) return {item, ""};
  return {item.substr(0, second), item.substr(second + 1)};
}

// Names are shown as the fingerprint lines show them: bare when they are plain words,
// double-quoted otherwise.
std::string ShowName(const std::string& name) {
  const bool plain =
      !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
      std::all_of(name.begin(), name.end(),
                  [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
  if (plain) return name;
  std::string quoted = "\"";
  for (char c : name) {
    quoted.push_back(c);
    if (c == '"') quoted.push_back('"');
  }
  quoted.push_back('"');
  return quoted;
}

std::string Rows(std::int64_t rows) { return fmt::format("{} row{}", rows, rows == 1 ? "" : "s"); }

// Differences between two lines of the same table, item by item, so that one added column
// reads as "table orders: column status added (...)" rather than two whole lines.
void DescribeTableChange(const std::string& key, const std::string& before,
                         const std::string& after, std::vector<std::string>& out) {
  std::vector<std::string> old_items = SplitOutside(Rest(before, key), " | ");
  std::vector<std::string> new_items = SplitOutside(Rest(after, key), " | ");
  std::sort(old_items.begin(), old_items.end());
  std::sort(new_items.begin(), new_items.end());
  std::vector<std::string> removed;
  std::vector<std::string> added;
  std::set_difference(old_items.begin(), old_items.end(), new_items.begin(), new_items.end(),
                      std::back_inserter(removed));
  std::set_difference(new_items.begin(), new_items.end(), old_items.begin(), old_items.end(),
                      std::back_inserter(added));

  std::multimap<std::string, std::string> removed_by_name;
  std::multimap<std::string, std::string> added_by_name;
  std::set<std::string> names;
  for (const std::string& item : removed) {
    auto [name, rest] = SplitItem(item);
    names.insert(name);
    removed_by_name.emplace(name, rest);
  }
  for (const std::string& item : added) {
    auto [name, rest] = SplitItem(item);
    names.insert(name);
    added_by_name.emplace(name, rest);
  }
  auto with_detail = [](const std::string& rest) { return rest.empty() ? "" : " (" + rest + ")"; };
  for (const std::string& name : names) {
    auto old_range = removed_by_name.equal_range(name);
    auto new_range = added_by_name.equal_range(name);
    const auto old_count = std::distance(old_range.first, old_range.second);
    const auto new_count = std::distance(new_range.first, new_range.second);
    if (old_count == 1 && new_count == 1) {
      out.push_back(fmt::format("{}: {} changed: {} -> {}", key, name, old_range.first->second,
                                new_range.first->second));
      continue;
    }
    for (auto it = old_range.first; it != old_range.second; ++it) {
      out.push_back(fmt::format("{}: {} removed{}", key, name, with_detail(it->second)));
    }
    for (auto it = new_range.first; it != new_range.second; ++it) {
      out.push_back(fmt::format("{}: {} added{}", key, name, with_detail(it->second)));
    }
  }
  if (names.empty()) {
    // Same items, so the difference is in the line's frame (another driver's format).
    out.push_back(fmt::format("changed: {}: {} -> {}", key, Rest(before, key), Rest(after, key)));
  }
}

// Column names of a "columns TABLE: a, b" line in their declared order.
std::vector<std::string> ColumnList(const std::string& key, const std::string& line) {
  return SplitOutside(Rest(line, key), ", ");
}

// The names of `from` that are also in `keep`, in the order of `from`.
std::vector<std::string> Common(const std::vector<std::string>& from,
                                const std::set<std::string>& keep) {
  std::vector<std::string> common;
  for (const std::string& name : from) {
    if (keep.count(name) != 0) common.push_back(name);
  }
  return common;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string joined;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) joined += ", ";
    joined += names[i];
  }
  return joined;
}

[[noreturn]] void Malformed(const std::string& what) {
  throw Error(Category::kIntegrity, "malformed fingerprint: " + what,
              "the manifest or journal entry holding it was damaged or edited by hand");
}

}  // namespace

std::string Fingerprint::SchemaDigest() const {
  std::string bytes;
  AppendField(bytes, "safemig fingerprint schema 1");
  for (const auto& [key, line] : objects) {
    AppendField(bytes, key);
    AppendField(bytes, line);
  }
  return Sha256Hex(bytes);
}

std::string Fingerprint::Digest() const {
  std::string bytes;
  AppendField(bytes, "safemig fingerprint 1");
  AppendField(bytes, SchemaDigest());
  for (const auto& [name, data] : tables) {
    AppendField(bytes, name);
    AppendField(bytes, std::to_string(data.rows));
    AppendField(bytes, data.content_sha256);
  }
  return Sha256Hex(bytes);
}

std::string Fingerprint::ToJson() const {
  // nlohmann::json keeps object keys in a std::map, so the text is sorted and stable.
  nlohmann::json json_tables = nlohmann::json::object();
  for (const auto& [name, data] : tables) {
    json_tables[name] = {{"rows", data.rows}, {"sha256", data.content_sha256}};
  }
  nlohmann::json json = {
      {"format", kJsonFormat}, {"objects", objects}, {"tables", std::move(json_tables)}};
  try {
    return json.dump();
  } catch (const nlohmann::json::exception& e) {
    // JSON cannot carry bytes that are not UTF-8, and replacing them would make the
    // fingerprint read back different from what was taken.
    throw Error(Category::kMigrationFailed,
                std::string("cannot write the fingerprint as JSON: ") + e.what(),
                "a table, column or other schema name is not valid UTF-8; rename it");
  }
}

Fingerprint Fingerprint::FromJson(const std::string& text) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    Malformed(e.what());
  }
  if (!json.is_object()) Malformed("not a JSON object");
  auto format = json.find("format");
  if (format == json.end() || !format->is_number_integer()) Malformed("no \"format\" number");
  if (*format != kJsonFormat) {
    Malformed(fmt::format("format {} is not {} (written by another safemig version?)",
                          format->dump(), kJsonFormat));
  }
  Fingerprint fingerprint;
  auto objects = json.find("objects");
  if (objects == json.end() || !objects->is_object()) Malformed("no \"objects\" object");
  for (const auto& [key, line] : objects->items()) {
    if (!line.is_string()) Malformed("object '" + key + "' is not a string");
    fingerprint.objects.emplace(key, line.get<std::string>());
  }
  auto tables = json.find("tables");
  if (tables == json.end() || !tables->is_object()) Malformed("no \"tables\" object");
  for (const auto& [name, data] : tables->items()) {
    if (!data.is_object()) Malformed("table '" + name + "' is not an object");
    auto rows = data.find("rows");
    auto sha = data.find("sha256");
    // A row count is never negative, so nlohmann reads a valid one as unsigned.
    if (rows == data.end() || !rows->is_number_unsigned() ||
        rows->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      Malformed("table '" + name + "' has no valid row count");
    }
    if (sha == data.end() || !sha->is_string()) {
      Malformed("table '" + name + "' has no sha256 string");
    }
    fingerprint.tables.emplace(
        name,
        TableData{static_cast<std::int64_t>(rows->get<std::uint64_t>()), sha->get<std::string>()});
  }
  return fingerprint;
}

std::vector<std::string> DescribeDifferences(const Fingerprint& before, const Fingerprint& after) {
  std::vector<std::string> schema;
  std::vector<std::string> order;
  std::set<std::string> keys;
  for (const auto& entry : before.objects) keys.insert(entry.first);
  for (const auto& entry : after.objects) keys.insert(entry.first);

  for (const std::string& key : keys) {
    auto old_line = before.objects.find(key);
    auto new_line = after.objects.find(key);
    const bool in_old = old_line != before.objects.end();
    const bool in_new = new_line != after.objects.end();
    if (in_old && in_new && old_line->second == new_line->second) continue;

    if (StartsWith(key, kColumnsPrefix)) {
      // A table that came or went is reported by its "table" line already.
      if (!in_old || !in_new) continue;
      const std::vector<std::string> old_names = ColumnList(key, old_line->second);
      const std::vector<std::string> new_names = ColumnList(key, new_line->second);
      // Columns that were added or dropped show in the table line; only a change in the
      // relative order of the columns both sides share is news here.
      const std::set<std::string> old_set(old_names.begin(), old_names.end());
      const std::set<std::string> new_set(new_names.begin(), new_names.end());
      if (Common(old_names, new_set) != Common(new_names, old_set)) {
        order.push_back(fmt::format("column order of {} changed: {} -> {}",
                                    key.substr(kColumnsPrefix.size()), JoinNames(old_names),
                                    JoinNames(new_names)));
      } else {
        const std::string table_key = std::string(kTablePrefix) + key.substr(kColumnsPrefix.size());
        auto old_table = before.objects.find(table_key);
        auto new_table = after.objects.find(table_key);
        const bool table_same = old_table != before.objects.end() &&
                                new_table != after.objects.end() &&
                                old_table->second == new_table->second;
        if (table_same) {
          schema.push_back(fmt::format("changed: {}: {} -> {}", key, Rest(old_line->second, key),
                                       Rest(new_line->second, key)));
        }
      }
      continue;
    }
    if (!in_old) {
      schema.push_back("added: " + new_line->second);
    } else if (!in_new) {
      schema.push_back("removed: " + old_line->second);
    } else if (StartsWith(key, kTablePrefix)) {
      DescribeTableChange(key, old_line->second, new_line->second, schema);
    } else {
      schema.push_back(fmt::format("changed: {}: {} -> {}", key, Rest(old_line->second, key),
                                   Rest(new_line->second, key)));
    }
  }

  std::vector<std::string> data;
  std::set<std::string> names;
  for (const auto& entry : before.tables) names.insert(entry.first);
  for (const auto& entry : after.tables) names.insert(entry.first);
  for (const std::string& name : names) {
    auto old_data = before.tables.find(name);
    auto new_data = after.tables.find(name);
    const std::string shown = ShowName(name);
    if (old_data == before.tables.end()) {
      data.push_back(fmt::format("table {}: {}, was absent", shown, Rows(new_data->second.rows)));
    } else if (new_data == after.tables.end()) {
      data.push_back(fmt::format("table {}: absent, was {}", shown, Rows(old_data->second.rows)));
    } else if (old_data->second.rows != new_data->second.rows) {
      data.push_back(fmt::format("table {}: {}, was {}", shown, Rows(new_data->second.rows),
                                 old_data->second.rows));
    } else if (old_data->second.content_sha256 != new_data->second.content_sha256 &&
               // An empty hash: the content was not read, which says nothing about it.
               !old_data->second.content_sha256.empty() &&
               !new_data->second.content_sha256.empty()) {
      data.push_back(fmt::format("table {}: same row count ({}) but different content", shown,
                                 old_data->second.rows));
    }
  }

  std::vector<std::string> all = std::move(schema);
  all.insert(all.end(), order.begin(), order.end());
  all.insert(all.end(), data.begin(), data.end());
  return all;
}

}  // namespace safemig
