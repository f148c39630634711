// PostgreSQL fingerprint: a canonical description of the schema from the catalog, plus
// per-table row counts and content hashes computed on the server.
#pragma once

#include <pqxx/transaction_base>

#include "core/fingerprint.h"

namespace safemig {

// Reads through `tx` (the caller picks isolation and snapshot, e.g. a REPEATABLE READ
// transaction that imported an exported snapshot). include_metadata: also safemig's own
// tables (safemig_migrations, safemig_journal). Every schema except pg_catalog,
// information_schema, pg_toast* and pg_temp* is described. Throws Error(kMigrationFailed)
// on a query failure.
Fingerprint FingerprintPostgres(pqxx::transaction_base& tx, bool include_metadata);

}  // namespace safemig
