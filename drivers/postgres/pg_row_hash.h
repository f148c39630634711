// The PostgreSQL row-content hash, computed on this side of the connection.
//
// A table's content hash (pg_fingerprint.h) is built from each row's COPY text line: the
// server hashes that line with hashtextextended() when it fingerprints a live database,
// and a backup or restore hashes the very lines it streams with HashTextExtended() below,
// which returns the same 64-bit value for the same bytes. So a backup's fingerprint costs
// no second pass over the data on the server, and is still equal to the fingerprint the
// server computes for the database it was taken from.
//
// Plain values; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/fingerprint.h"

namespace safemig {

// The value of PostgreSQL's hashtextextended(text, seed) for a text of these bytes under a
// deterministic collation (the server's hash_bytes_extended: Bob Jenkins' lookup3, with the
// seed folded in first), as the unsigned 64 bits of the server's bigint.
std::uint64_t HashTextExtended(const char* data, std::size_t size, std::uint64_t seed);

// Sums of the two hash lanes over a table's rows, as the server's fingerprint query sums
// them: exactly, as signed 64-bit values, without wrap-around.
class RowHashSums {
 public:
  // One row: its COPY text line without the newline.
  void Add(const char* line, std::size_t size);
  // Every row of a COPY text stream: lines ending in '\n'. A stream split anywhere into
  // calls gives the same sums as one call; REQUIRES: the stream's last call ends a line.
  void AddLines(const char* data, std::size_t size);
  [[nodiscard]] std::int64_t rows() const { return rows_; }
  // False while AddLines() has seen the start of a line but not its newline.
  [[nodiscard]] bool at_line_start() const { return pending_.empty(); }
  // What the fingerprint records for these rows (pg_fingerprint.h: PgTableData).
  [[nodiscard]] TableData Data() const;

 private:
  __extension__ typedef __int128 Sum;  // exact for any row count below 2^63

  std::int64_t rows_ = 0;
  Sum sum1_ = 0;
  Sum sum2_ = 0;
  std::string pending_;  // a line begun in an earlier AddLines() call
};

}  // namespace safemig
