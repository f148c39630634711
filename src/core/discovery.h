// Finds the migrations in a directory, detecting the file convention per directory.
//
// Conventions, recognised by name (the top level of the directory only):
//   <version>_<name>.up.sql + .down.sql      flat pair (golang-migrate); version = digits
//   <version>_<name>/up.sql + down.sql       folder pair (Diesel); version = digits with
//                                            optional dashes, 2024-01-01-120000
//   <version>_<name>.sql                     dbmate or goose, told apart by the markers
//                                            inside (-- migrate:up / -- +goose Up)
//   V<version>__<desc>.sql + U<version>__... Flyway; version 1, 1.1, 1_1, 2024.01.01;
//                                            the undo pairs by version alone
// A directory holds one convention. The one exception: flat pairs may sit next to dbmate
// or goose files, because a team moving from those tools may add pairs beside them and
// every file's convention is unambiguous from its name and markers. Any
// other mix (Flyway with anything, folders with anything, dbmate with goose) is an error
// naming the first file of each convention. Sections never hide in pair files: a
// .up.sql/.down.sql (or up.sql, V...sql) file holding a migrate:up/down or +goose Up/Down
// marker is an error, since its "down" part would otherwise run on the way up.
//
// Ignored: hidden entries, files not ending in .sql, and subdirectories holding neither
// up.sql nor down.sql. Not supported yet (an error, not silence): Flyway repeatable (R__)
// and baseline (B) migrations, goose ENVSUB ON.
//
// Thread-safe (reads files only). Errors are Error(kConfig) whose message is one line
// naming the offending file (relative to the directory, with :line where one applies)
// and whose hint says what to do. When several things are wrong, the checks run in a fixed
// order (names sorted, then migrations by version), so repeated runs give the same message.
#pragma once

#include <filesystem>
#include <vector>

#include "core/migration.h"

namespace safemig {

// Returns the migrations in `dir` sorted by CompareVersions. Files that are not SQL
// (README.md, .gitkeep, hidden files) are ignored. Throws Error(kConfig) for: a missing
// or unreadable directory; a *.sql file (or folder) whose name matches no format; mixed
// conventions (above); two migrations with the same version; an up without a down, or a
// down with only whitespace/comments (unless irreversible); an irreversible migration
// whose down has SQL; a down without an up; an up with no SQL in it; a dbmate/goose file
// without its up marker, or with markers duplicated, out of order, or after SQL; a file
// that is not valid UTF-8 (a leading BOM is accepted and left out of up_sql/down_sql,
// though the checksum covers the file's bytes as they are).
//
// Directives are read from the leading comments of the up file, or for dbmate/goose of
// the file header plus the up section. dbmate's `transaction:false` on the migrate:up
// line and goose's NO TRANSACTION (anywhere in the file, as goose reads it) set
// no_transaction; dbmate options on the migrate:down line are validated but not applied.
std::vector<Migration> DiscoverMigrations(const std::filesystem::path& dir);

// Parses the directives in the leading comment lines of `sql` (stops at the first line
// that is neither blank nor a comment; /* */ comments are skipped, directives are read
// from -- comments only). Directives are case-insensitive and may be followed by a note:
// `-- safemig:irreversible drops the legacy table`. Durations combine ms, s, m and h
// terms ("1m30s") and must be positive. Throws Error(kConfig) for a malformed or unknown
// safemig: directive (a typo must not silently run a migration in a transaction), naming
// `where` and the line.
Directives ParseDirectives(std::string_view sql, std::string_view where);

}  // namespace safemig
