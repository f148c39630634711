// Migration files as safemig sees them, whatever tool wrote them.
//
// A Migration is a plain value: discovered from a directory (discovery.h), or rebuilt
// from the history table when its files are gone. It holds the SQL text of both
// directions so that applying never re-reads the files.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace safemig {

// Which on-disk convention a migration came from.
enum class MigrationFormat {
  kFlatPair,    // <version>_<name>.up.sql + <version>_<name>.down.sql (golang-migrate, safemig new)
  kFolderPair,  // <version>_<name>/up.sql + down.sql (Diesel and others)
  kDbmate,      // one file, -- migrate:up / -- migrate:down
  kGoose,       // one file, -- +goose Up / -- +goose Down
  kFlyway,      // V<ver>__<desc>.sql + optional U<ver>__<desc>.sql
};

const char* FormatName(MigrationFormat format);

// Options read from the leading comments of a migration (or its up section).
struct Directives {
  bool no_transaction = false;  // safemig:no-transaction, dbmate transaction:false, goose NO TRANSACTION
  bool irreversible = false;    // safemig:irreversible: the down is deliberately empty
  std::optional<std::chrono::milliseconds> timeout;  // safemig:timeout=30s
};

struct Migration {
  std::string version;  // as written in the file name, e.g. "20240101120000", "001", "1.2.3"
  std::string name;     // human description, e.g. "create_customers"
  MigrationFormat format = MigrationFormat::kFlatPair;

  // Paths relative to the migrations directory, for messages. For single-file formats
  // both name the same file. down_path is empty when there is no down file.
  std::string up_path;
  std::string down_path;

  std::string up_sql;    // the up section / file text
  std::string down_sql;  // the down section / file text; empty if none
  // Line in up_path / down_path on which up_sql / down_sql begins (1-based), so a
  // statement's line inside the section maps back to a line in the file.
  int up_first_line = 1;
  int down_first_line = 1;

  // SHA-256 hex. `checksum` covers the bytes of the up file (for single-file formats:
  // the whole file); `down_checksum` covers down_sql exactly as stored in history.
  std::string checksum;
  std::string down_checksum;

  Directives directives;

  bool HasDown() const;  // down_sql contains something other than whitespace and comments
};

// Orders versions the way golang-migrate, goose, dbmate and Flyway do: split on '.', '_'
// and '-' (Diesel's 2024-01-01-120000) into parts; numeric parts compare as numbers of any
// length (so "001" == "1", "1.10" > "1.9", 20-digit versions work), missing trailing parts
// count as 0 ("1" == "1.0"); non-numeric parts compare as text after numeric ones.
// Returns -1, 0 or 1.
int CompareVersions(std::string_view a, std::string_view b);

struct VersionLess {
  bool operator()(const std::string& a, const std::string& b) const {
    return CompareVersions(a, b) < 0;
  }
};

}  // namespace safemig
