// Checks shared by the drivers' table restores (RestoreOptions::tables): whether a table in
// the target still has the columns it had in the backup, and the errors a refusal raises.
// Works on fingerprints, whose "table T" lines every driver writes as " | "-separated items
// starting "column NAME ..." (core/fingerprint.h), so no engine is named here.
// Plain functions; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fingerprint.h"

namespace safemig {

// How the columns of table `key` differ from `backup` to `target`, naming the first column
// that differs ("column status added (TEXT ...)", "column total changed: ... -> ...",
// "it no longer exists"), or nullopt when they are equal. Only the "column" items of the
// "table KEY" lines are compared: indexes and constraints may differ.
std::optional<std::string> ColumnMismatch(const Fingerprint& backup, const Fingerprint& target,
                                          const std::string& key);

// Throws Error(kNoGo) "table KEY in DATABASE no longer matches backup ID: WHY" with the
// advice to restore into a new database, when ColumnMismatch finds a difference for any
// of `keys`.
void RefuseChangedColumns(const Fingerprint& backup, const Fingerprint& target,
                          const std::vector<std::string>& keys, const std::string& database,
                          const std::string& backup_id);

// The error for a backup whose manifest lists table `key` but holds no part with its rows.
Error MissingTablePart(const std::string& backup_id, const std::string& key);

// The refusal when replacing the rows would leave `violations` rows of `child` without
// their row in `parent` under foreign key `constraint`.
Error ForeignKeyRefusal(const std::string& constraint, const std::string& child,
                        const std::string& parent, std::int64_t violations);

}  // namespace safemig
