// A canonical description of a database: its schema objects and, per table, how many rows
// it holds and a hash of their content.
//
// Two databases with equal fingerprints have the same schema and the same data, whatever
// order their objects were created in. Backups record the fingerprint of what they hold
// (a restore must reproduce it); rehearsals compare fingerprints before an up and after
// its down. Plain value; thread-compatible.
//
// A fingerprint may be taken to a lesser FingerprintDepth when only the schema or the row
// counts are wanted: reading every row is what makes a fingerprint of a large database slow.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace safemig {

// How much of the data a fingerprint reads. Every depth describes the schema alike, so
// SchemaDigest() does not depend on the depth; Digest() and the data half of
// DescribeDifferences compare only what both sides read.
enum class FingerprintDepth {
  kSchema,     // the schema objects only: `tables` stays empty and no table is read
  kRowCounts,  // also each table's exact row count; content_sha256 stays empty
  kFull,       // also each table's content hash: every row of every table is read
};

// Says, by a table's key in Fingerprint::tables, whether to read that table in full
// whatever the depth. Unset: no table.
using TableFilter = std::function<bool(const std::string& key)>;

// Whether a fingerprint to `depth` reads the table with key `key` in full.
inline bool ReadsInFull(FingerprintDepth depth, const TableFilter& read_in_full,
                        const std::string& key) {
  return depth == FingerprintDepth::kFull || (read_in_full && read_in_full(key));
}

struct TableData {
  std::int64_t rows = 0;
  // Lower-case hex SHA-256 over every row in primary-key (or rowid) order, each value
  // tagged with its type; the driver documents the exact bytes. Empty when the table's
  // content was not read (FingerprintDepth::kRowCounts).
  std::string content_sha256;
};

struct Fingerprint {
  // One canonical line per schema object, sorted by key; each line is "KEY: DETAILS", e.g.
  //   "table orders: column id INTEGER pk=1 notnull=0 default=NULL | column status ..."
  //   "index orders_customer_id_idx: on orders (customer_id ASC)"
  //   "view customer_totals: <whitespace-normalised SQL>"
  // A "table T" line lists items separated by " | ", each named by its first two words
  // ("column status", "fk (a, b)"), so DescribeDifferences can report one item at a time.
  // Column order is recorded in a separate "columns T: a, b, c" line so a reordering is
  // reported apart from other differences. Names that are not plain words are
  // double-quoted, so they cannot be mistaken for " | " or ", ".
  std::map<std::string, std::string> objects;  // key "table orders" -> canonical line
  std::map<std::string, TableData> tables;     // table name (unquoted) -> data

  // Lower-case hex SHA-256 over the objects only / over objects and data. Every string
  // hashed is preceded by its length (8 bytes, big-endian), so no two fingerprints share
  // a digest by moving text across a boundary.
  std::string SchemaDigest() const;
  std::string Digest() const;

  // Stable one-line text for manifests and the journal, keys sorted:
  //   {"format":1,"objects":{KEY:LINE,...},"tables":{NAME:{"rows":N,"sha256":HEX},...}}
  // Throws Error(kMigrationFailed) if a name or line is not valid UTF-8 (JSON cannot
  // carry it, and replacing bytes would make the fingerprint read back different).
  std::string ToJson() const;
  // Throws Error(kIntegrity) on malformed text or another "format".
  static Fingerprint FromJson(const std::string& text);
};

// Differences from `before` to `after` in words, one per line, empty when equal:
// schema first, in key order:
//   "table orders: column status added (TEXT pk=0 notnull=0 default=NULL)"
//   "table orders: column total changed: REAL ... -> NUMERIC ..." (also "... removed")
//   "added: LINE", "removed: LINE", "changed: KEY: OLD DETAILS -> NEW DETAILS"
// then column order (only when columns both sides have moved relative to each other):
//   "column order of customers changed: a, b, c -> a, c, b"
// then data:
//   "table orders: 48211 rows, was 48210"
//   "table orders: same row count (10) but different content" (only when both sides
//    read the content)
//   "table orders: 12 rows, was absent" / "table orders: absent, was 10 rows"
std::vector<std::string> DescribeDifferences(const Fingerprint& before, const Fingerprint& after);

}  // namespace safemig
