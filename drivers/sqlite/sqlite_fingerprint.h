// The fingerprint (core/fingerprint.h) of a SQLite database's main schema.
//
// Objects, one line each, named so that creation order never shows:
//   "table T"        columns sorted by name (declared type upper-cased, notnull, default,
//                    pk position, collation, generated expression, autoincrement), CHECK
//                    constraints, foreign keys, and the WITHOUT ROWID / STRICT options
//   "columns T"      the column names in declared order
//   "index I"        key columns in order with direction and collation, unique, WHERE
//   "primary key on T (a, b)", "unique on T (a)"
//                    indexes SQLite creates for constraints, named by what they cover
//                    because their sqlite_autoindex_T_N names depend on declaration order
//   "view V", "trigger G", "virtual table T"
//                    their SQL after the name, whitespace and comments collapsed to one
//                    space (quoted text untouched, keyword case kept)
// Data: per table the row count and a SHA-256 over the rows (serialisation documented in
// the .cc), plus an entry "sqlite_sequence" with the AUTOINCREMENT counters of the
// fingerprinted tables when there are any, since they decide the next ids. Below
// FingerprintDepth::kFull a table's rows are counted (count(*)) or not read at all.
//
// Limitations: expressions (CHECK, defaults, WHERE, views, triggers) are compared as
// text, so `a>0` and `a > 0` differ; ON CONFLICT clauses and DEFERRABLE on foreign keys
// are not recorded; the rows of a rowid table are hashed in rowid order, so the same rows
// inserted in another order (without an INTEGER PRIMARY KEY) hash differently.
#pragma once

#include "core/fingerprint.h"

namespace SQLite {
class Database;
}  // namespace SQLite

namespace safemig {

// Fingerprints the main database of `db`. With !include_metadata, objects belonging to
// tables named safemig_* (safemig's own bookkeeping) are left out; SQLite's internal
// sqlite_* tables never appear as tables.
//
// Only reads: the database file is unchanged afterwards. Runs inside one read transaction
// so all tables are seen at the same instant; when the caller already has a transaction
// open on `db`, runs inside that one instead (and sees its uncommitted changes). Memory
// stays bounded by the schema size, not the data size. Throws Error(kMigrationFailed)
// when SQLite fails. `depth` and `read_in_full`: how much of the data is read
// (core/fingerprint.h).
Fingerprint FingerprintSqlite(SQLite::Database& db, bool include_metadata,
                              FingerprintDepth depth = FingerprintDepth::kFull,
                              const TableFilter& read_in_full = {});

}  // namespace safemig
