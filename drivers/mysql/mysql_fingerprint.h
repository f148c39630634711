// MySQL/MariaDB fingerprint: a canonical description of one database's schema from
// information_schema and normalised SHOW CREATE output, plus per-table row counts and
// content hashes computed on the server.
#pragma once

#include <string>

#include "core/fingerprint.h"
#include "drivers/mysql/mysql_session.h"

namespace safemig {

// Tables safemig keeps for itself. safemig_lock records who holds the migration lock; it
// is never described, dumped or restored (a lock belongs to a live connection).
inline bool IsSafemigTable(const std::string& name) {
  return name == "safemig_migrations" || name == "safemig_journal" || name == "safemig_lock";
}
constexpr const char* kMySqlLockTable = "safemig_lock";

// Describes `database` through `session` (the caller picks the snapshot, e.g. a
// REPEATABLE READ transaction started WITH CONSISTENT SNAPSHOT: row data is then read as
// of that snapshot; information_schema is always read as it is now). Sets the session's
// time_zone to '+00:00' so TIMESTAMP values hash the same whatever the session had.
// include_metadata: also safemig_migrations and safemig_journal. Throws
// Error(kMigrationFailed) on a query failure.
Fingerprint FingerprintMySql(MySqlSession& session, const std::string& database,
                             bool include_metadata);

// SHOW CREATE output without the parts that differ between equal objects: the DEFINER
// clause (a restore as another account changes it), "AUTO_INCREMENT=N" table options, and
// qualification by `database`. Whitespace runs outside quotes collapse to one space.
std::string NormaliseMySqlCreate(const std::string& sql, const std::string& database);

// SHOW CREATE output without its DEFINER clause, otherwise unchanged (for dumps: the
// restored object then belongs to the restoring account, which needs no SUPER).
std::string StripDefiner(const std::string& sql);

}  // namespace safemig
