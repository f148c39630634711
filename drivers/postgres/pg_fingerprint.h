// PostgreSQL fingerprint: a canonical description of the schema from the catalog, plus
// per-table row counts and content hashes computed on the server.
#pragma once

#include <cstdint>
#include <functional>
#include <pqxx/transaction_base>
#include <string>
#include <string_view>

#include "core/fingerprint.h"

namespace safemig {

// The seeds of the two hashtextextended() lanes summed per table (pg_fingerprint.cc).
constexpr std::uint64_t kPgRowHashSeed1 = 1;
constexpr std::uint64_t kPgRowHashSeed2 = 2;

// Says whether the server hashes the rows of the table with this key (PgTableDataKey)
// itself. Tables it declines get an empty TableData for the caller to fill in with
// RowHashSums (pg_row_hash.h) from the rows it streams anyway.
using HashOnServer = std::function<bool(const std::string& key)>;

// Reads through `tx` (the caller picks isolation and snapshot, e.g. a REPEATABLE READ
// transaction that imported an exported snapshot). include_metadata: also safemig's own
// tables (safemig_migrations, safemig_journal). Every schema except pg_catalog,
// information_schema, pg_toast* and pg_temp* is described. `hash_on_server` unset: every
// table is hashed on the server. When some table is left to the caller, first checks that
// the server's hashtextextended() agrees with HashTextExtended(), and throws
// Error(kMigrationFailed) if not (a big-endian server). Throws Error(kMigrationFailed) on
// a query failure.
Fingerprint FingerprintPostgres(pqxx::transaction_base& tx, bool include_metadata,
                                const HashOnServer& hash_on_server = {});
// The same to `depth` (core/fingerprint.h), and in full for the tables `read_in_full`
// names: kRowCounts counts each table's rows exactly (count(*)); kSchema reads no table.
// `hash_on_server` applies to the tables read in full.
Fingerprint FingerprintPostgres(pqxx::transaction_base& tx, bool include_metadata,
                                FingerprintDepth depth, const TableFilter& read_in_full = {},
                                const HashOnServer& hash_on_server = {});

// The key of table `schema`.`table` in Fingerprint::tables.
std::string PgTableDataKey(const std::string& schema, const std::string& table);

// What a table's entry holds for `rows` rows whose hash lanes sum to `sum1` and `sum2`
// (decimal integers).
TableData PgTableData(std::int64_t rows, std::string_view sum1, std::string_view sum2);

// The session settings under which a row's COPY text line is what the fingerprint hashes,
// as one SQL script: dates, intervals, floats, bytea, money and names print the same on
// every session and server; client_encoding is left to the caller (the database's own).
extern const char* const kPgRowTextSettings;

}  // namespace safemig
