// MySQL/MariaDB fingerprint: a canonical description of one database's schema from
// information_schema and normalised SHOW CREATE output, plus per-table row counts and
// content hashes computed on the server.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
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

// Sums over some rows of a table of each row's hash (the MD5 of its values, as two 64-bit
// lanes), and how many rows. The sums of disjoint sets of rows add up to the sums of their
// union, so a table can be hashed in parts, on several sessions, in any order.
struct MySqlRowSums {
  // Sums of up to 2^63 rows of 64-bit lanes fit (GCC/Clang's 128-bit integer).
  __extension__ typedef unsigned __int128 Sum;
  std::int64_t rows = 0;
  Sum lane1 = 0;
  Sum lane2 = 0;

  void Add(const MySqlRowSums& other);
  TableData Finish() const;  // the fingerprint's entry for these rows
};

// The row hash of the fingerprint computed on the client from values as a dump reads them
// (NULL as nullptr, in the stored columns' name order), equal to what FingerprintMySql
// computes on the server for the same rows. In two steps, so they can run on different
// threads: the text a row is hashed as, appended to `out`, and hashing such a text.
class MySqlRowHasher {
 public:
  static void AppendRowText(std::string& out, const std::vector<const std::string*>& values);
  void AddRowText(std::string_view text);
  const MySqlRowSums& sums() const { return sums_; }

 private:
  MySqlRowSums sums_;
};

// Describes `database` through `session` (the caller picks the snapshot, e.g. a
// REPEATABLE READ transaction started WITH CONSISTENT SNAPSHOT: row data is then read as
// of that snapshot; information_schema is always read as it is now). Sets the session's
// time_zone to '+00:00' so TIMESTAMP values hash the same whatever the session had.
// include_metadata: also safemig_migrations and safemig_journal. To `depth`
// (core/fingerprint.h), and in full for the tables `read_in_full` names: kFull hashes
// every table's rows, kRowCounts counts them exactly (COUNT(*)), kSchema reads no table
// (fingerprint.tables is left empty; a dump fills it with MySqlRowHasher). Throws
// Error(kMigrationFailed) on a query failure.
Fingerprint FingerprintMySql(MySqlSession& session, const std::string& database,
                             bool include_metadata, FingerprintDepth depth,
                             const TableFilter& read_in_full = {});

// The row sums of `table` on the server, as FingerprintMySql computes them, over the rows
// `where` selects (a condition from MySqlHashRanges; "" for every row). Sets the
// session's time_zone to '+00:00'. Throws Error(kMigrationFailed) on a query failure.
MySqlRowSums HashMySqlRows(MySqlSession& session, const std::string& database,
                           const std::string& table, const std::string& where = "");

// Conditions that split `table`'s rows into `parts` disjoint ranges of its primary key
// which together cover every row, so the ranges can be hashed at once on several
// sessions. A single "" (every row) when parts < 2 or the primary key is not one integer
// column.
std::vector<std::string> MySqlHashRanges(MySqlSession& session, const std::string& database,
                                         const std::string& table, int parts);

// SHOW CREATE output without the parts that differ between equal objects: the DEFINER
// clause (a restore as another account changes it), "AUTO_INCREMENT=N" table options, and
// qualification by `database`. Whitespace runs outside quotes collapse to one space.
std::string NormaliseMySqlCreate(const std::string& sql, const std::string& database);

// `text` without the qualifier "`database`." wherever it follows `before` (anywhere when
// `before` is empty), e.g. before "nextval(" in a table's column default.
std::string WithoutQualifier(std::string text, const std::string& database,
                             const std::string& before = "");

// SHOW CREATE output without its DEFINER clause, otherwise unchanged (for dumps: the
// restored object then belongs to the restoring account, which needs no SUPER).
std::string StripDefiner(const std::string& sql);

}  // namespace safemig
