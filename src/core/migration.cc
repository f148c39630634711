#include "core/migration.h"

#include <cstddef>
#include <vector>

namespace safemig {
namespace {

bool IsVersionSeparator(char c) { return c == '.' || c == '_' || c == '-'; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::vector<std::string_view> SplitVersion(std::string_view version) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= version.size(); ++i) {
    if (i == version.size() || IsVersionSeparator(version[i])) {
      parts.push_back(version.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

bool IsNumeric(std::string_view part) {
  for (char c : part) {
    if (!IsDigit(c)) return false;
  }
  return true;  // an empty part ("1..2") counts as 0, like a missing one
}

int Sign(int value) { return (value > 0) - (value < 0); }

// Timestamps and Flyway parts can exceed 64 bits, so numbers are compared as digit strings:
// without leading zeros, the longer one is larger, and equal lengths compare as text.
int CompareNumeric(std::string_view a, std::string_view b) {
  while (!a.empty() && a.front() == '0') a.remove_prefix(1);
  while (!b.empty() && b.front() == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return Sign(a.compare(b));
}

int ComparePart(std::string_view a, std::string_view b) {
  const bool a_numeric = IsNumeric(a);
  const bool b_numeric = IsNumeric(b);
  if (a_numeric && b_numeric) return CompareNumeric(a, b);
  if (a_numeric != b_numeric) return a_numeric ? -1 : 1;
  return Sign(a.compare(b));
}

// Skips a block comment starting at `i` (which points at "/*"). PostgreSQL nests block
// comments; honouring nesting means "/* a /* b */ c */" counts as all comment, so such a
// down is reported as empty up front rather than failing at rollback time.
std::size_t SkipBlockComment(std::string_view sql, std::size_t i) {
  int depth = 0;
  while (i < sql.size()) {
    if (sql.compare(i, 2, "/*") == 0) {
      ++depth;
      i += 2;
    } else if (sql.compare(i, 2, "*/") == 0) {
      i += 2;
      if (--depth == 0) return i;
    } else {
      ++i;
    }
  }
  return i;  // unterminated: the rest is comment
}

}  // namespace

const char* FormatName(MigrationFormat format) {
  switch (format) {
    case MigrationFormat::kFlatPair:
      return "flat_pair";
    case MigrationFormat::kFolderPair:
      return "folder_pair";
    case MigrationFormat::kDbmate:
      return "dbmate";
    case MigrationFormat::kGoose:
      return "goose";
    case MigrationFormat::kFlyway:
      return "flyway";
  }
  return "unknown";
}

bool Migration::HasDown() const {
  const std::string_view sql = down_sql;
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    if (sql.compare(i, 2, "--") == 0) {
      const std::size_t newline = sql.find('\n', i);
      if (newline == std::string_view::npos) return false;
      i = newline + 1;
    } else if (sql.compare(i, 2, "/*") == 0) {
      i = SkipBlockComment(sql, i);
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
               c == ';') {
      // A lone ';' executes nothing, so it does not make a down real either.
      ++i;
    } else {
      return true;
    }
  }
  return false;
}

int CompareVersions(std::string_view a, std::string_view b) {
  const std::vector<std::string_view> a_parts = SplitVersion(a);
  const std::vector<std::string_view> b_parts = SplitVersion(b);
  const std::size_t count = a_parts.size() > b_parts.size() ? a_parts.size() : b_parts.size();
  for (std::size_t i = 0; i < count; ++i) {
    const std::string_view a_part = i < a_parts.size() ? a_parts[i] : std::string_view("0");
    const std::string_view b_part = i < b_parts.size() ? b_parts[i] : std::string_view("0");
    const int result = ComparePart(a_part, b_part);
    if (result != 0) return result;
  }
  return 0;
}

}  // namespace safemig
