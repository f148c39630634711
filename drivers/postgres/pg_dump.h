// PostgreSQL backup and restore into safemig archives.
//
// Backup: one connection exports a snapshot (pg_export_snapshot) inside a REPEATABLE READ
// transaction; `pg_dump --snapshot` writes the pre-data and post-data schema sections;
// table data is copied with COPY ... TO STDOUT on `jobs` parallel connections that import
// the same snapshot, each table its own zstd part; sequence values are read in the
// snapshot. Memory is bounded by buffers whatever the table sizes. Each table's fingerprint
// entry is hashed from its COPY lines as they stream past (pg_row_hash.h), so the server
// reads and renders every row once.
//
// Restore: pre-data, then the table parts in parallel with COPY ... FROM STDIN FREEZE, then
// sequence values, then post-data: index builds and key constraints in parallel on `jobs`
// connections, then foreign keys, triggers and the rest in pg_dump's order.
#pragma once

#include <string>

#include "backup/archive.h"
#include "config/url.h"
#include "core/fingerprint.h"
#include "driver/driver.h"

namespace safemig {

// Part names and kinds written by DumpPostgres, in the order a restore needs them:
//   "pre-data.sql.zst"  kind "pg-pre-data"   pg_dump --section=pre-data (plain SQL)
//   "t<N>.copy.zst"     kind "pg-table-data-2" COPY text format of one table, columns in
//                                            name order, in the database's encoding; the
//                                            manifest part name does not carry the table
//                                            name, the first line of the part does:
//                                            "-- safemig table: \"schema\".\"table\" (cols)"
//   "sequences.sql.zst" kind "pg-sequences"  SELECT setval(...) per sequence
//   "post-data.sql.zst" kind "pg-post-data"  pg_dump --section=post-data
// Returns the fingerprint of the snapshot that was dumped (safemig's tables included).
// Refuses (Error(kConfig)) a pg_dump whose major version is older than the server's,
// naming both. Throws Error(kMigrationFailed) on any failure.
Fingerprint DumpPostgres(const DatabaseUrl& url, ArchiveWriter& archive, int jobs,
                         const ArchiveReader::Progress& progress);

// Restores into `target`: the database is created if missing; an existing non-empty
// database is refused unless options.replace_existing (then it is dropped and recreated).
// Checks every part first and compares the restored fingerprint with the manifest's: the
// catalog as the server describes it, each table's row count as the server took it in and
// its content hash from the lines sent. Refuses (Error(kUsage)) a backup whose table parts
// are of the earlier "pg-table-data" kind.
RestoreReport RestorePostgres(const ArchiveReader& archive, const DatabaseUrl& target,
                     const RestoreOptions& options, int jobs,
                     const ArchiveReader::Progress& progress);

// Strips psql meta-command lines (current pg_dump writes "\restrict KEY" and
// "\unrestrict KEY") from pg_dump's plain output so libpq can execute it.
std::string StripPsqlMetaCommands(const std::string& sql);

}  // namespace safemig
