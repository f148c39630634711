// MySQL/MariaDB fingerprint: a canonical description of one database's schema from
// information_schema and normalised SHOW CREATE output, plus per-table row counts and
// content hashes computed on the server.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/fingerprint.h"
#include "drivers/mysql/mysql_session.h"

namespace safemig {

// Tables safemig keeps for itself. safemig_lock records who holds the migration lock; it
// is never described, dumped or restored (a lock belongs to a live connection).
inline bool IsSafemigTable(const std::string& name) {
  return name == "safemig_migrations" || name == "safemig_journal" || name == "safemig_lock";
}
constexpr const char* kMySqlLockTable = "safemig_lock";

// How a column's value travels in a dump and is hashed: its text as the server sends it in
// utf8mb4 (numbers, dates, strings, JSON, ENUM/SET), its stored bytes (BLOB, BINARY,
// spatial), or for BIT its number.
enum class MySqlValueKind { kNumber, kBit, kBytes, kText };
MySqlValueKind MySqlKindOf(const std::string& data_type);  // information_schema DATA_TYPE

// The row hash of the fingerprint computed on the client from values as a dump reads them
// (NULL as nullptr, in the stored columns' name order), equal to what FingerprintMySql
// computes on the server for the same rows.
class MySqlRowHasher {
 public:
  // Sums of up to 2^63 rows of 64-bit lanes fit (GCC/Clang's 128-bit integer).
  __extension__ typedef unsigned __int128 Sum;

  void AddRow(const std::vector<const std::string*>& values);
  TableData Finish() const;

 private:
  std::string text_;
  std::int64_t rows_ = 0;
  Sum sum1_ = 0;
  Sum sum2_ = 0;
};

// Describes `database` through `session` (the caller picks the snapshot, e.g. a
// REPEATABLE READ transaction started WITH CONSISTENT SNAPSHOT: row data is then read as
// of that snapshot; information_schema is always read as it is now). Sets the session's
// time_zone to '+00:00' so TIMESTAMP values hash the same whatever the session had.
// include_metadata: also safemig_migrations and safemig_journal. Throws
// Error(kMigrationFailed) on a query failure.
// hash_rows false: fingerprint.tables is left empty (a dump fills it with MySqlRowHasher).
Fingerprint FingerprintMySql(MySqlSession& session, const std::string& database,
                             bool include_metadata, bool hash_rows = true);
// The same to `depth` (core/fingerprint.h), and in full for the tables `read_in_full`
// names: kRowCounts counts each table's rows exactly (COUNT(*)); kSchema reads no table.
Fingerprint FingerprintMySql(MySqlSession& session, const std::string& database,
                             bool include_metadata, FingerprintDepth depth,
                             const TableFilter& read_in_full = {});

// SHOW CREATE output without the parts that differ between equal objects: the DEFINER
// clause (a restore as another account changes it), "AUTO_INCREMENT=N" table options, and
// qualification by `database`. Whitespace runs outside quotes collapse to one space.
std::string NormaliseMySqlCreate(const std::string& sql, const std::string& database);

// SHOW CREATE output without its DEFINER clause, otherwise unchanged (for dumps: the
// restored object then belongs to the restoring account, which needs no SUPER).
std::string StripDefiner(const std::string& sql);

}  // namespace safemig
