// MySQL/MariaDB backup and restore into safemig archives.
//
// Backup: one session in a REPEATABLE READ transaction started WITH CONSISTENT SNAPSHOT
// reads everything: SHOW CREATE for the schema, every table's rows through a forward-only
// (unbuffered) statement, and the fingerprint, so the three describe one instant. Non-InnoDB
// tables are not covered by the snapshot; the notifier warns about each.
//
// Parts, in the order a restore (or a person) replays them; each is plain SQL that
// `zstd -dc parts/NAME | mariadb DB` runs as it is (docs/backup-format.md):
//   "schema.sql.zst"  kind "mysql-schema"      session settings, CREATE TABLE per table
//                                              (AUTO_INCREMENT counters kept)
//   "t<N>.sql.zst"    kind "mysql-table-data"  one table: first line "-- safemig table:
//                                              `name`", then one statement per line:
//                                              multi-row INSERTs of at most ~1 MiB
//   "post.sql.zst"    kind "mysql-post"        functions, procedures, views (dependencies
//                                              first), triggers, events, each with its
//                                              sql_mode, bodies between DELIMITER ;; lines
#pragma once

#include <functional>
#include <string>

#include "backup/archive.h"
#include "config/url.h"
#include "core/fingerprint.h"
#include "driver/driver.h"

namespace safemig {

// Returns the fingerprint of the snapshot that was dumped (safemig's tables included).
// Throws Error(kMigrationFailed) on any failure (the archive is then abandoned).
Fingerprint DumpMySql(const DatabaseUrl& url, ArchiveWriter& archive, int jobs,
                      const ArchiveReader::Progress& progress,
                      const std::function<void(const std::string&)>& notifier);

// Restores into `target`: a missing database is created; an existing empty one is restored
// into; an existing non-empty one is refused (Error(kUsage)) unless
// options.replace_existing, in which case the copy is built and checked in a temporary
// database first and then swapped in, so a failure leaves the target as it was. Checks
// every part first and compares the restored fingerprint with the manifest's
// (Error(kIntegrity) when they differ).
RestoreReport RestoreMySql(const ArchiveReader& archive, const DatabaseUrl& target,
                  const RestoreOptions& options, int jobs,
                  const ArchiveReader::Progress& progress);

}  // namespace safemig
