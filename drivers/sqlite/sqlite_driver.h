// The SQLite driver (SQLiteCpp over the system libsqlite3): the embedded default engine.
//
// Owns one connection to one database file. Not thread-safe. The migration lock is an
// flock() on "<file>.safemig.lock" beside the database: the kernel drops it when the
// holder exits, however it exits, so a crashed runner never leaves a stale lock. The file
// holds one line naming the current holder, which a waiting runner quotes when it gives
// up.
#pragma once

#include <memory>

#include "driver/driver.h"

namespace safemig {

// REQUIRES: url.engine == Engine::kSqlite. Throws Error(kConnection) when the file
// cannot be opened (or is missing and !options.create_if_missing).
std::unique_ptr<Driver> OpenSqliteDriver(const DatabaseUrl& url, const OpenOptions& options);

// CreateScratchDatabase for SQLite (see driver.h): a file beside like.path.
std::unique_ptr<ScratchDatabase> CreateSqliteScratch(const DatabaseUrl& like);

// RestoreArchive for SQLite targets (see driver.h).
// With options.tables in place, the backup is decompressed and checked beside the target,
// ATTACHed, and the tables' rows replaced in one transaction.
RestoreReport RestoreSqliteArchive(const ArchiveReader& archive, const DatabaseUrl& target,
                                   const RestoreOptions& options,
                                   const ArchiveReader::Progress& progress);

}  // namespace safemig
