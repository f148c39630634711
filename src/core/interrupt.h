// Ctrl-C and SIGTERM turned into an orderly stop.
//
// The first signal only sets a flag; long-running loops check it at safe points and throw,
// so destructors run: scratch databases are dropped, partial backups removed, the
// migration in progress rolled back. A second signal ends the process at once. Thread-safe.
#pragma once

#include <string_view>

namespace safemig {

// Installs the handlers (main() calls it once).
void InstallInterruptHandlers();

bool InterruptRequested();

// Throws Error(kMigrationFailed) "interrupted while <what>" if a signal arrived.
void ThrowIfInterrupted(std::string_view what);

// For tests: pretend a signal arrived (or clear it).
void SetInterruptedForTesting(bool interrupted);

}  // namespace safemig
