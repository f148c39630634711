#include "core/discovery.h"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "core/duration.h"
#include "core/error.h"
#include "core/sha256.h"

namespace safemig {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr const char* kIrreversibleHint = "mark the migration '-- safemig:irreversible'";
constexpr const char* kDirectiveHint =
    "known directives: safemig:no-transaction, safemig:irreversible, "
    "safemig:timeout=<duration> (e.g. 500ms, 30s, 1m30s)";
// Far beyond any sane statement timeout; only there so the arithmetic cannot overflow.

[[noreturn]] void Fail(std::string message, std::string hint) {
  throw Error(Category::kConfig, std::move(message), std::move(hint));
}

std::string At(std::string_view file, int line) {
  return std::string(file) + ":" + std::to_string(line);
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

bool IsDigits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), IsDigit);
}

char ToLowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string ToLower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), ToLowerAscii);
  return lower;
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view lower_prefix) {
  return ToLower(text.substr(0, lower_prefix.size())) == lower_prefix;
}

std::string_view TrimLeft(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  return text;
}

std::string_view Trim(std::string_view text) {
  text = TrimLeft(text);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

// One line of a text: `text` excludes the '\n' and a trailing '\r'.
struct Line {
  std::string_view text;
  std::size_t begin = 0;  // offset of the line's first byte
  std::size_t next = 0;   // offset just past its '\n' (or the end of the text)
  int number = 1;
};

std::vector<Line> SplitLines(std::string_view text) {
  std::vector<Line> lines;
  std::size_t begin = 0;
  int number = 1;
  while (begin < text.size()) {
    std::size_t newline = text.find('\n', begin);
    const std::size_t next = newline == std::string_view::npos ? text.size() : newline + 1;
    std::string_view line =
        text.substr(begin, (newline == std::string_view::npos ? text.size() : newline) - begin);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(Line{line, begin, next, number++});
    begin = next;
  }
  return lines;
}

// Migration::HasDown is the one definition of "contains SQL", so an up and a down are
// judged by the same rule.
bool ContainsSql(std::string_view sql) {
  Migration probe;
  probe.down_sql = std::string(sql);
  return probe.HasDown();
}

// Offset of the first byte that breaks RFC 3629 UTF-8 (overlong forms, surrogates, code
// points above U+10FFFF, stray or missing continuation bytes), or npos.
std::size_t FindInvalidUtf8(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned char low = 0x80;  // allowed range of the second byte
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead == 0xE0) {
      length = 3;
      low = 0xA0;  // below is an overlong encoding
    } else if (lead == 0xED) {
      length = 3;
      high = 0x9F;  // above are UTF-16 surrogates
    } else if (lead >= 0xE1 && lead <= 0xEF) {
      length = 3;
    } else if (lead == 0xF0) {
      length = 4;
      low = 0x90;  // below is an overlong encoding
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      length = 4;
    } else if (lead == 0xF4) {
      length = 4;
      high = 0x8F;  // above is beyond U+10FFFF
    } else {
      return i;  // a continuation byte without a lead, C0/C1 overlongs, or F5..FF
    }
    if (i + length > bytes.size()) return i;
    const auto second = static_cast<unsigned char>(bytes[i + 1]);
    if (second < low || second > high) return i;
    for (std::size_t k = 2; k < length; ++k) {
      const auto continuation = static_cast<unsigned char>(bytes[i + k]);
      if (continuation < 0x80 || continuation > 0xBF) return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

// A migration file's raw bytes (what the checksum covers) and its text: valid UTF-8 with
// a leading byte-order mark removed, since editors on Windows add one.
struct SqlFile {
  std::string bytes;
  std::string text;
};

SqlFile LoadSqlFile(const fs::path& dir, const std::string& rel) {
  std::ifstream in(dir / rel, std::ios::binary);
  if (!in) {
    Fail(rel + ": cannot read: " + std::error_code(errno, std::generic_category()).message(),
         "check that the file exists and safemig may read it");
  }
  SqlFile file;
  file.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    Fail(rel + ": cannot read: I/O error", "check the file and the disk it is on");
  }
  const std::size_t bad = FindInvalidUtf8(file.bytes);
  if (bad != std::string::npos) {
    const auto line = 1 + std::count(file.bytes.begin(),
                                     file.bytes.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
    Fail(rel + ":" + std::to_string(line) + ": not valid UTF-8 (byte offset " +
             std::to_string(bad) + ")",
         "re-save the file as UTF-8");
  }
  file.text = StartsWith(file.bytes, kBom) ? file.bytes.substr(kBom.size()) : file.bytes;
  return file;
}

// --- Section markers of the single-file formats --------------------------------------

enum class MarkerKind {
  kNone,
  kDbmateUp,
  kDbmateDown,
  kGooseUp,
  kGooseDown,
  kGooseNoTransaction,
  kGooseEnvsubOn,
  kGooseOther,  // StatementBegin/End, ENVSUB OFF: left in the text for the splitter
  kGooseUnknown,
};

struct Marker {
  MarkerKind kind = MarkerKind::kNone;
  std::string_view rest;  // dbmate: the options after the marker; goose: the annotation
};

bool IsDbmateMarker(const Marker& marker) {
  return marker.kind == MarkerKind::kDbmateUp || marker.kind == MarkerKind::kDbmateDown;
}

bool IsGooseMarker(const Marker& marker) {
  return marker.kind != MarkerKind::kNone && !IsDbmateMarker(marker);
}

// Recognises "--migrate:up opts" the way dbmate does (at the start of the line, case
// matters) and "-- +goose Annotation" the way goose does (annotation case-insensitive).
Marker ReadMarker(std::string_view line) {
  if (!StartsWith(line, "--")) return {};
  const std::string_view body = TrimLeft(line.substr(2));
  for (const auto& [word, kind] :
       {std::pair<std::string_view, MarkerKind>{"migrate:up", MarkerKind::kDbmateUp},
        {"migrate:down", MarkerKind::kDbmateDown}}) {
    if (StartsWith(body, word) && (body.size() == word.size() || IsSpace(body[word.size()]))) {
      return {kind, Trim(body.substr(word.size()))};
    }
  }
  if (!StartsWithIgnoreCase(body, "+goose")) return {};
  const std::string_view annotation = Trim(body.substr(6));
  std::string normal;  // lower case, inner whitespace collapsed: "NO  TRANSACTION" counts
  for (char c : annotation) {
    if (IsSpace(c)) {
      if (!normal.empty() && normal.back() != ' ') normal.push_back(' ');
    } else {
      normal.push_back(ToLowerAscii(c));
    }
  }
  MarkerKind kind = MarkerKind::kGooseUnknown;
  if (normal == "up") kind = MarkerKind::kGooseUp;
  if (normal == "down") kind = MarkerKind::kGooseDown;
  if (normal == "no transaction") kind = MarkerKind::kGooseNoTransaction;
  if (normal == "envsub on") kind = MarkerKind::kGooseEnvsubOn;
  if (normal == "statementbegin" || normal == "statementend" || normal == "envsub off") {
    kind = MarkerKind::kGooseOther;
  }
  return {kind, annotation};
}

// Where the sections of a dbmate or goose file lie in its text.
struct Sections {
  MigrationFormat format = MigrationFormat::kDbmate;
  std::size_t up_begin = 0;
  std::size_t up_end = 0;
  int up_first_line = 1;
  bool has_down = false;
  std::size_t down_begin = 0;
  int down_first_line = 1;
  bool no_transaction = false;
};

bool ReadDbmateOptions(std::string_view options, const std::string& where) {
  bool no_transaction = false;
  while (!(options = TrimLeft(options)).empty()) {
    std::size_t end = 0;
    while (end < options.size() && !IsSpace(options[end])) ++end;
    const std::string_view option = options.substr(0, end);
    if (option == "transaction:false") {
      no_transaction = true;
    } else if (option != "transaction:true") {
      Fail(where + ": unknown dbmate option '" + std::string(option) + "'",
           "dbmate knows transaction:false and transaction:true");
    }
    options.remove_prefix(end);
  }
  return no_transaction;
}

// Returns nullopt when the text has neither tool's markers. Throws for a file that has
// both, a duplicated or misplaced marker, or SQL before the up marker (it would never
// run under either tool).
std::optional<Sections> FindSections(std::string_view text, const std::string& rel) {
  const std::vector<Line> lines = SplitLines(text);
  const Line* first_dbmate = nullptr;
  const Line* first_goose = nullptr;
  for (const Line& line : lines) {
    const Marker marker = ReadMarker(line.text);
    if (IsDbmateMarker(marker) && first_dbmate == nullptr) first_dbmate = &line;
    if (IsGooseMarker(marker) && first_goose == nullptr) first_goose = &line;
  }
  if (first_dbmate == nullptr && first_goose == nullptr) return std::nullopt;
  if (first_dbmate != nullptr && first_goose != nullptr) {
    Fail(At(rel, first_dbmate->number) + ": dbmate marker in a file that also has goose " +
             "markers (line " + std::to_string(first_goose->number) + ")",
         "keep the markers of one tool per file");
  }

  Sections sections;
  sections.format = first_dbmate != nullptr ? MigrationFormat::kDbmate : MigrationFormat::kGoose;
  const bool dbmate = sections.format == MigrationFormat::kDbmate;
  const char* up_word = dbmate ? "'-- migrate:up'" : "'-- +goose Up'";
  const char* down_word = dbmate ? "'-- migrate:down'" : "'-- +goose Down'";
  const Line* up = nullptr;
  const Line* down = nullptr;
  std::string_view down_options;
  for (const Line& line : lines) {
    const Marker marker = ReadMarker(line.text);
    const std::string where = At(rel, line.number);
    switch (marker.kind) {
      case MarkerKind::kDbmateUp:
      case MarkerKind::kGooseUp:
        if (up != nullptr) {
          Fail(where + ": second " + up_word + " marker (the first is on line " +
                   std::to_string(up->number) + ")",
               "keep one up section and at most one down section per file");
        }
        if (down != nullptr) {
          Fail(where + ": " + up_word + " comes after the " + down_word + " marker",
               "put the up section first");
        }
        up = &line;
        if (dbmate) sections.no_transaction = ReadDbmateOptions(marker.rest, where);
        break;
      case MarkerKind::kDbmateDown:
      case MarkerKind::kGooseDown:
        if (down != nullptr) {
          Fail(where + ": second " + down_word + " marker (the first is on line " +
                   std::to_string(down->number) + ")",
               "keep one up section and at most one down section per file");
        }
        down = &line;
        down_options = marker.rest;
        break;
      case MarkerKind::kGooseNoTransaction:
        // goose honours NO TRANSACTION wherever it stands, for both directions.
        sections.no_transaction = true;
        break;
      case MarkerKind::kGooseEnvsubOn:
        Fail(where + ": goose ENVSUB ON is not supported yet",
             "write the values into the SQL; safemig does not substitute ${VAR} in migrations");
      case MarkerKind::kGooseUnknown:
        Fail(where + ": unknown goose annotation '-- +goose " + std::string(marker.rest) + "'",
             "goose knows Up, Down, StatementBegin, StatementEnd, NO TRANSACTION and ENVSUB");
      case MarkerKind::kGooseOther:
      case MarkerKind::kNone:
        break;
    }
  }
  if (up == nullptr) {
    const std::string where = down != nullptr ? At(rel, down->number) : rel;
    Fail(where + ": no " + up_word + " marker",
         std::string("add ") + up_word + " on the line above the up SQL");
  }
  if (ContainsSql(text.substr(0, up->begin))) {
    Fail(rel + ": SQL before the " + up_word + " marker (line " + std::to_string(up->number) +
             ") would never run",
         std::string("move it below ") + up_word + " or delete it");
  }
  // Validated so a typo is caught, but not applied: Directives has no field for the down
  // direction alone, and dropping the up's transaction on its account would be worse.
  if (dbmate && down != nullptr) ReadDbmateOptions(down_options, At(rel, down->number));

  sections.up_begin = up->next;
  sections.up_first_line = up->number + 1;
  sections.up_end = down != nullptr ? down->begin : text.size();
  if (down != nullptr) {
    sections.has_down = true;
    sections.down_begin = down->next;
    sections.down_first_line = down->number + 1;
  }
  return sections;
}

// A separate up or down file that carries section markers would run its "down" part on
// the way up; a file meant to have sections must be named like one.
void RejectSectionMarkers(std::string_view text, const std::string& rel) {
  for (const Line& line : SplitLines(text)) {
    const MarkerKind kind = ReadMarker(line.text).kind;
    if (kind == MarkerKind::kDbmateUp || kind == MarkerKind::kDbmateDown ||
        kind == MarkerKind::kGooseUp || kind == MarkerKind::kGooseDown) {
      Fail(At(rel, line.number) + ": section marker '" + std::string(Trim(line.text)) +
               "' in a file that is already one direction of a pair",
           "remove the marker, or name the file <version>_<name>.sql for a dbmate/goose "
           "migration");
    }
  }
}

// --- File names ------------------------------------------------------------------------

struct VersionName {
  std::string version;
  std::string name;
};

// "<digits>_<name>", as golang-migrate, dbmate and goose name their files.
std::optional<VersionName> ParseNumericStem(std::string_view stem) {
  const std::size_t underscore = stem.find('_');
  if (underscore == std::string_view::npos || !IsDigits(stem.substr(0, underscore))) {
    return std::nullopt;
  }
  return VersionName{std::string(stem.substr(0, underscore)),
                     std::string(stem.substr(underscore + 1))};
}

// Digit groups joined by any of `separators`: "2024-01-01-120000" (Diesel), "1.1", "1_1".
bool IsDottedVersion(std::string_view version, std::string_view separators) {
  bool expect_digit = true;
  for (char c : version) {
    if (IsDigit(c)) {
      expect_digit = false;
    } else if (separators.find(c) != std::string_view::npos && !expect_digit) {
      expect_digit = true;
    } else {
      return false;
    }
  }
  return !expect_digit;
}

// A migration folder: "<version>_<name>" with a Diesel version like 2024-01-01-120000.
std::optional<VersionName> ParseFolderName(std::string_view folder) {
  const std::size_t underscore = folder.find('_');
  if (underscore == std::string_view::npos || !IsDottedVersion(folder.substr(0, underscore), "-")) {
    return std::nullopt;
  }
  return VersionName{std::string(folder.substr(0, underscore)),
                     std::string(folder.substr(underscore + 1))};
}

// What follows Flyway's V/U prefix: "<version>__<description>", version "1", "1.1", "1_1".
std::optional<VersionName> ParseFlywayStem(std::string_view rest) {
  const std::size_t separator = rest.find("__");
  if (separator == std::string_view::npos || !IsDottedVersion(rest.substr(0, separator), "._")) {
    return std::nullopt;
  }
  return VersionName{std::string(rest.substr(0, separator)),
                     std::string(rest.substr(separator + 2))};
}

const char* Describe(MigrationFormat format) {
  switch (format) {
    case MigrationFormat::kFlatPair:
      return "a golang-migrate .up.sql/.down.sql file";
    case MigrationFormat::kFolderPair:
      return "a <version>_<name>/up.sql migration folder";
    case MigrationFormat::kDbmate:
      return "a dbmate file";
    case MigrationFormat::kGoose:
      return "a goose file";
    case MigrationFormat::kFlyway:
      return "a Flyway migration";
  }
  return "a migration";
}

const char* ExpectedNames(std::optional<MigrationFormat> format) {
  if (!format) {
    return "name migrations <version>_<name>.up.sql + .down.sql, <version>_<name>/up.sql + "
           "down.sql, <version>_<name>.sql with dbmate or goose markers, or "
           "V<version>__<description>.sql; or move the file out of the migrations directory";
  }
  switch (*format) {
    case MigrationFormat::kFlatPair:
      return "name it <version>_<name>.up.sql (with a matching .down.sql), or move it out of "
             "the migrations directory";
    case MigrationFormat::kFolderPair:
      return "put it in a <version>_<name>/ folder as up.sql or down.sql, or move it out of "
             "the migrations directory";
    case MigrationFormat::kDbmate:
    case MigrationFormat::kGoose:
      return "name it <version>_<name>.sql, or move it out of the migrations directory";
    case MigrationFormat::kFlyway:
      return "name it V<version>__<description>.sql (undo: U<version>__<description>.sql), or "
             "move it out of the migrations directory";
  }
  return "";
}

// Flat pairs are the format `safemig new` writes, so a team adopting safemig from dbmate or
// goose ends up with both in one directory; every file's convention is still unambiguous
// from its name and markers. Any other mix is taken for a mistake.
bool CanShareDirectory(MigrationFormat a, MigrationFormat b) {
  const auto single = [](MigrationFormat f) {
    return f == MigrationFormat::kDbmate || f == MigrationFormat::kGoose;
  };
  return (a == MigrationFormat::kFlatPair && single(b)) ||
         (b == MigrationFormat::kFlatPair && single(a));
}

// --- Discovery -------------------------------------------------------------------------

// One migration as found on disk, before its files are read and checked.
struct Unit {
  MigrationFormat format = MigrationFormat::kFlatPair;
  std::string version;
  std::string name;
  std::string up_rel;       // empty when only a down was found
  std::string down_rel;     // empty when there is no down file
  std::string expected_up;  // file names to suggest in hints
  std::string expected_down;
  std::optional<SqlFile> single;  // dbmate/goose: the file, already read
  Sections sections;

  [[nodiscard]] const std::string& Rel() const { return up_rel.empty() ? down_rel : up_rel; }
};

bool UnitLess(const Unit& a, const Unit& b) {
  const int order = CompareVersions(a.version, b.version);
  return order != 0 ? order < 0 : a.Rel() < b.Rel();
}

void RejectDuplicateVersions(const std::vector<Unit>& sorted) {
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    const Unit& a = sorted[i - 1];
    const Unit& b = sorted[i];
    if (CompareVersions(a.version, b.version) == 0) {
      Fail(a.Rel() + " and " + b.Rel() + ": two migrations with the same version (" + a.version +
               " and " + b.version + ")",
           "give each migration its own version; versions compare as numbers, so 001 and 1 "
           "are the same");
    }
  }
}

class Scanner {
 public:
  explicit Scanner(fs::path dir) : dir_(std::move(dir)) {}

  std::vector<Unit> Scan() {
    for (const std::string& name : ListDirectory()) {
      if (name.front() == '.') continue;  // .gitkeep, editor swap files, .DS_Store
      std::error_code ec;
      const fs::file_status status = fs::status(dir_ / name, ec);
      if (fs::is_directory(status)) {
        AddFolder(name);
      } else if (EndsWith(ToLower(name), ".sql")) {
        if (!fs::is_regular_file(status)) {
          Fail(name + ": not a regular file" + (ec ? " (" + ec.message() + ")" : ""),
               "replace it with a regular file, or move it out of the migrations directory");
        }
        AddFile(name);
      }
    }
    if (!unmatched_.empty()) {
      const std::string& name = unmatched_.front();
      const bool folder = name.back() == '/';
      Fail(name + ": " + (folder ? "folder" : "file") + " name matches no migration format",
           ExpectedNames(DominantFormat()));
    }
    RejectMixedConventions();
    if (!unmarked_.empty()) RejectUnmarked(unmarked_.front());

    std::sort(units_.begin(), units_.end(), UnitLess);
    RejectDuplicateVersions(units_);
    PairFlywayUndos();
    return std::move(units_);
  }

 private:
  std::vector<std::string> ListDirectory() {
    std::error_code ec;
    const fs::file_status status = fs::status(dir_, ec);
    if (status.type() == fs::file_type::not_found) {
      Fail("migrations directory " + dir_.string() + " does not exist",
           "create it, or point safemig at the right one (migrations in safemig.toml, or "
           "--dir)");
    }
    if (ec) {
      Fail("cannot read migrations directory " + dir_.string() + ": " + ec.message(),
           "check that safemig may read the directory");
    }
    if (!fs::is_directory(status)) {
      Fail("migrations directory " + dir_.string() + " is not a directory",
           "point safemig at the directory that holds the migrations (migrations in "
           "safemig.toml, or --dir)");
    }
    std::vector<std::string> names;
    fs::directory_iterator it(dir_, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) {
      Fail("cannot read migrations directory " + dir_.string() + ": " + ec.message(),
           "check that safemig may read the directory");
    }
    // Directory order is arbitrary; sorting makes "the first offending file" repeatable.
    std::sort(names.begin(), names.end());
    return names;
  }

  void Saw(MigrationFormat format, const std::string& rel) {
    for (const auto& seen : first_seen_) {
      if (seen.first == format) return;
    }
    first_seen_.emplace_back(format, rel);
  }

  [[nodiscard]] std::optional<MigrationFormat> DominantFormat() const {
    if (first_seen_.empty()) return std::nullopt;
    return first_seen_.front().first;
  }

  [[nodiscard]] bool HasFormat(MigrationFormat format) const {
    return std::any_of(first_seen_.begin(), first_seen_.end(),
                       [format](const auto& seen) { return seen.first == format; });
  }

  // A folder named like a migration that we cannot look into is an error rather than a
  // silent skip; any other folder we cannot read is none of our business.
  bool FolderHas(const std::string& folder, const char* file, bool named_like_migration) const {
    std::error_code ec;
    const fs::file_status status = fs::status(dir_ / folder / file, ec);
    if (ec && status.type() != fs::file_type::not_found && named_like_migration) {
      Fail(folder + "/" + file + ": cannot read: " + ec.message(),
           "check that safemig may read the folder");
    }
    return fs::is_regular_file(status);
  }

  void AddFolder(const std::string& folder) {
    const std::optional<VersionName> parsed = ParseFolderName(folder);
    const bool has_up = FolderHas(folder, "up.sql", parsed.has_value());
    const bool has_down = FolderHas(folder, "down.sql", parsed.has_value());
    // Folders without migration files (docs, seeds, fixtures) are none of our business.
    if (!has_up && !has_down) return;
    if (!parsed) {
      unmatched_.push_back(folder + "/");
      return;
    }
    Unit unit;
    unit.format = MigrationFormat::kFolderPair;
    unit.version = parsed->version;
    unit.name = parsed->name;
    unit.expected_up = folder + "/up.sql";
    unit.expected_down = folder + "/down.sql";
    if (has_up) unit.up_rel = unit.expected_up;
    if (has_down) unit.down_rel = unit.expected_down;
    Saw(unit.format, unit.Rel());
    units_.push_back(std::move(unit));
  }

  void AddFile(const std::string& file) {
    if (!EndsWith(file, ".sql")) {  // ".SQL": no tool we imitate reads it
      unmatched_.push_back(file);
      return;
    }
    const std::string_view stem = std::string_view(file).substr(0, file.size() - 4);
    if (StartsWith(file, "R__")) {
      Fail(file + ": Flyway repeatable migrations (R__) are not supported yet",
           "move it out of the migrations directory, or make it a versioned "
           "V<version>__<description>.sql migration");
    }
    const char prefix = file.front();
    if (prefix == 'V' || prefix == 'U' || prefix == 'B') {
      if (const std::optional<VersionName> parsed = ParseFlywayStem(stem.substr(1))) {
        AddFlyway(file, prefix, *parsed);
        return;
      }
    }
    for (const bool up : {true, false}) {
      const std::string_view suffix = up ? ".up" : ".down";
      if (!EndsWith(stem, suffix)) continue;
      const std::string_view pair_stem = stem.substr(0, stem.size() - suffix.size());
      if (const std::optional<VersionName> parsed = ParseNumericStem(pair_stem)) {
        AddFlat(file, up, *parsed);
      } else {
        unmatched_.push_back(file);
      }
      return;
    }
    if (const std::optional<VersionName> parsed = ParseNumericStem(stem)) {
      AddSingle(file, *parsed);
      return;
    }
    unmatched_.push_back(file);
  }

  void AddFlyway(const std::string& file, char prefix, const VersionName& parsed) {
    if (prefix == 'B') {
      Fail(file + ": Flyway baseline migrations (B) are not supported yet",
           "move it out of the migrations directory; safemig applies the versioned "
           "migrations in order");
    }
    Unit unit;
    unit.format = MigrationFormat::kFlyway;
    unit.version = parsed.version;
    unit.name = parsed.name;
    unit.expected_up = "V" + parsed.version + "__" + parsed.name + ".sql";
    unit.expected_down = "U" + parsed.version + "__" + parsed.name + ".sql";
    (prefix == 'V' ? unit.up_rel : unit.down_rel) = file;
    Saw(unit.format, file);
    (prefix == 'V' ? units_ : flyway_undos_).push_back(std::move(unit));
  }

  void AddFlat(const std::string& file, bool up, const VersionName& parsed) {
    // The up and down files of a pair share "<version>_<name>" exactly; files that only
    // share the version are two migrations, and the duplicate check names them both.
    const std::string pair_stem = parsed.version + "_" + parsed.name;
    const auto [slot, inserted] = flat_pairs_.emplace(pair_stem, units_.size());
    if (inserted) {
      Unit unit;
      unit.format = MigrationFormat::kFlatPair;
      unit.version = parsed.version;
      unit.name = parsed.name;
      unit.expected_up = pair_stem + ".up.sql";
      unit.expected_down = pair_stem + ".down.sql";
      units_.push_back(std::move(unit));
    }
    Unit& unit = units_[slot->second];
    (up ? unit.up_rel : unit.down_rel) = file;
    Saw(MigrationFormat::kFlatPair, file);
  }

  void AddSingle(const std::string& file, const VersionName& parsed) {
    SqlFile loaded = LoadSqlFile(dir_, file);
    const std::optional<Sections> sections = FindSections(loaded.text, file);
    if (!sections) {
      unmarked_.push_back(file);
      return;
    }
    Unit unit;
    unit.format = sections->format;
    unit.version = parsed.version;
    unit.name = parsed.name;
    unit.up_rel = file;
    if (sections->has_down) unit.down_rel = file;
    unit.single = std::move(loaded);
    unit.sections = *sections;
    Saw(unit.format, file);
    units_.push_back(std::move(unit));
  }

  void RejectMixedConventions() const {
    for (std::size_t i = 0; i < first_seen_.size(); ++i) {
      for (std::size_t j = i + 1; j < first_seen_.size(); ++j) {
        const auto& [a_format, a_file] = first_seen_[i];
        const auto& [b_format, b_file] = first_seen_[j];
        if (CanShareDirectory(a_format, b_format)) continue;
        std::string message = a_file;
        message += " and ";
        message += b_file;
        message += ": mixed migration conventions (";
        message += Describe(a_format);
        message += ", ";
        message += Describe(b_format);
        message += ")";
        Fail(std::move(message),
             "keep one convention per directory (only golang-migrate pairs may sit next to "
             "dbmate or goose files); move one set to its own directory");
      }
    }
  }

  // A "<version>_<name>.sql" file without markers: next to .up.sql/.down.sql pairs it is
  // most likely a pair file with a missing suffix, elsewhere a dbmate/goose file that
  // lacks its markers.
  [[noreturn]] void RejectUnmarked(const std::string& file) const {
    if (HasFormat(MigrationFormat::kFlatPair) && !HasFormat(MigrationFormat::kDbmate) &&
        !HasFormat(MigrationFormat::kGoose)) {
      Fail(file + ": file name matches no migration format (this directory holds " +
               ".up.sql/.down.sql pairs)",
           ExpectedNames(MigrationFormat::kFlatPair));
    }
    Fail(file + ": neither a '-- migrate:up' (dbmate) nor a '-- +goose Up' (goose) marker",
         "add the marker on the line above the up SQL, or name the file "
         "<version>_<name>.up.sql for a golang-migrate pair");
  }

  // Flyway pairs an undo with the versioned migration of the same version; the
  // descriptions may differ.
  void PairFlywayUndos() {
    std::sort(flyway_undos_.begin(), flyway_undos_.end(), UnitLess);
    RejectDuplicateVersions(flyway_undos_);
    for (const Unit& undo : flyway_undos_) {
      auto match = std::find_if(units_.begin(), units_.end(), [&](const Unit& unit) {
        return CompareVersions(unit.version, undo.version) == 0;
      });
      if (match == units_.end()) {
        Fail(undo.down_rel + ": undo migration without a versioned migration",
             "add " + undo.expected_up + ", or delete " + undo.down_rel);
      }
      match->down_rel = undo.down_rel;
    }
  }

  fs::path dir_;
  std::vector<Unit> units_;
  std::vector<Unit> flyway_undos_;
  std::map<std::string, std::size_t> flat_pairs_;  // "<version>_<name>" -> index in units_
  std::vector<std::string> unmatched_;             // names (folders end in '/') of no format
  std::vector<std::string> unmarked_;              // <version>_<name>.sql without any markers
  std::vector<std::pair<MigrationFormat, std::string>> first_seen_;  // format, first file
};

Migration Build(const fs::path& dir, Unit unit) {
  Migration migration;
  migration.format = unit.format;
  migration.version = std::move(unit.version);
  migration.name = std::move(unit.name);
  if (unit.up_rel.empty()) {
    Fail(unit.down_rel + ": down migration without an up migration",
         "add " + unit.expected_up + ", or delete " + unit.down_rel);
  }
  migration.up_path = unit.up_rel;
  migration.down_path = unit.down_rel;

  std::string missing_down_hint;
  if (unit.single) {
    const std::string_view text = unit.single->text;
    const Sections& sections = unit.sections;
    migration.checksum = Sha256Hex(unit.single->bytes);
    migration.up_sql = text.substr(sections.up_begin, sections.up_end - sections.up_begin);
    migration.up_first_line = sections.up_first_line;
    // The header above the up marker counts as leading comments too.
    migration.directives = ParseDirectives(text.substr(0, sections.up_end), unit.up_rel);
    if (sections.no_transaction) migration.directives.no_transaction = true;
    if (sections.has_down) {
      migration.down_sql = text.substr(sections.down_begin);
      migration.down_first_line = sections.down_first_line;
    }
    missing_down_hint =
        std::string("add a ") +
        (unit.format == MigrationFormat::kDbmate ? "'-- migrate:down'" : "'-- +goose Down'") +
        " section, or " + kIrreversibleHint;
  } else {
    SqlFile up = LoadSqlFile(dir, unit.up_rel);
    RejectSectionMarkers(up.text, unit.up_rel);
    migration.checksum = Sha256Hex(up.bytes);
    migration.up_sql = std::move(up.text);
    migration.directives = ParseDirectives(migration.up_sql, unit.up_rel);
    if (!unit.down_rel.empty()) {
      SqlFile down = LoadSqlFile(dir, unit.down_rel);
      RejectSectionMarkers(down.text, unit.down_rel);
      migration.down_sql = std::move(down.text);
    }
    missing_down_hint = "add " + unit.expected_down + ", or " + kIrreversibleHint;
  }

  const std::string part = unit.single ? "section" : "migration";
  if (!ContainsSql(migration.up_sql)) {
    Fail(migration.up_path + ": the up " + part + " has no SQL (only whitespace and comments)",
         "write the migration's SQL, or delete the migration");
  }
  const bool has_down = migration.HasDown();
  if (migration.directives.irreversible && has_down) {
    Fail(migration.down_path + ": the migration is marked '-- safemig:irreversible' but its " +
             "down " + part + " has SQL",
         "delete the down SQL so rollback restores from the backup, or remove the directive");
  }
  if (!migration.directives.irreversible && !has_down) {
    if (migration.down_path.empty()) {
      Fail(migration.up_path + ": no down " + part, missing_down_hint);
    }
    Fail(migration.down_path + ": the down " + part + " is empty (only whitespace and comments)",
         "write SQL that undoes the up " + part + ", or " + kIrreversibleHint);
  }
  migration.down_checksum = Sha256Hex(migration.down_sql);
  return migration;
}

void ReadDirective(std::string_view comment, const std::string& where, Directives& directives) {
  std::string_view body = TrimLeft(comment);
  if (!StartsWithIgnoreCase(body, "safemig:")) return;
  body = TrimLeft(body.substr(8));
  std::size_t end = 0;
  while (end < body.size() && !IsSpace(body[end])) ++end;
  // Anything after the directive is a free-text note, e.g. "irreversible: drops data".
  const std::string token = ToLower(body.substr(0, end));
  if (token == "no-transaction") {
    directives.no_transaction = true;
  } else if (token == "irreversible") {
    directives.irreversible = true;
  } else if (StartsWith(token, "timeout=")) {
    std::chrono::milliseconds timeout{0};
    try {
      timeout = ParseDuration(std::string_view(token).substr(8), "safemig:timeout");
    } catch (const Error&) {
      Fail(where + ": malformed duration in 'safemig:" + std::string(body.substr(0, end)) + "'",
           "write a duration such as 500ms, 30s, 5m, 1h or 1m30s");
    }
    if (timeout.count() == 0) {
      Fail(where + ": 'safemig:" + std::string(body.substr(0, end)) + "' must be longer than zero",
           "remove the directive to use the environment's statement timeout");
    }
    directives.timeout = timeout;
  } else {
    Fail(where + ": unknown directive 'safemig:" + std::string(body.substr(0, end)) + "'",
         kDirectiveHint);
  }
}

}  // namespace

Directives ParseDirectives(std::string_view sql, std::string_view where) {
  if (StartsWith(sql, kBom)) sql.remove_prefix(kBom.size());
  Directives directives;
  bool in_block_comment = false;
  for (const Line& line : SplitLines(sql)) {
    std::string_view rest = Trim(line.text);
    if (in_block_comment) {
      const std::size_t close = rest.find("*/");
      if (close == std::string_view::npos) continue;
      in_block_comment = false;
      rest = Trim(rest.substr(close + 2));
    }
    while (StartsWith(rest, "/*")) {
      const std::size_t close = rest.find("*/", 2);
      if (close == std::string_view::npos) {
        in_block_comment = true;
        rest = {};
        break;
      }
      rest = Trim(rest.substr(close + 2));
    }
    if (rest.empty()) continue;
    if (!StartsWith(rest, "--")) break;  // the first SQL ends the leading comments
    ReadDirective(rest.substr(2), At(where, line.number), directives);
  }
  return directives;
}

std::vector<Migration> DiscoverMigrations(const std::filesystem::path& dir) {
  std::vector<Unit> units = Scanner(dir).Scan();
  std::vector<Migration> migrations;
  migrations.reserve(units.size());
  for (Unit& unit : units) migrations.push_back(Build(dir, std::move(unit)));
  return migrations;
}

}  // namespace safemig
