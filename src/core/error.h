// The one error type of safemig.
//
// Every failure that reaches the user is a safemig::Error carrying a Category (which
// main() alone maps to an exit code, see docs/exit-codes.md) and a hint: one line
// saying what to do next. Drivers translate their library's exceptions into Error at
// their edge, so nothing above src/driver ever sees a database library's exception.
// Messages must never contain secrets; callers pass text through RedactSecrets() first.
#pragma once

#include <stdexcept>
#include <string>

namespace safemig {

enum class Category {
  kUsage,            // wrong flags or arguments                       -> 2
  kConfig,           // bad config file, migration directory, URL       -> 2
  kConnection,       // cannot connect or authenticate                  -> 3
  kLockHeld,         // another runner holds the migration lock         -> 4
  kMigrationFailed,  // an operation failed; database left as it was    -> 1
  kNoGo,             // a gate refused (drift, pairing, lint, policy)    -> 5
  kIntegrity,        // a backup failed its checks                      -> 6
  kWatchFailed,      // health checks failed after a deploy             -> 7
  kNeedsPerson,      // state uncertain; a person must look             -> 9
  kInternal,         // a bug in safemig                                -> 70
};

class Error : public std::runtime_error {
 public:
  Error(Category category, std::string message, std::string hint = {})
      : std::runtime_error(std::move(message)), category_(category), hint_(std::move(hint)) {}

  Category category() const { return category_; }
  // One line telling the user what to do; may be empty.
  const std::string& hint() const { return hint_; }

 private:
  Category category_;
  std::string hint_;
};

// The process exit code for a category (the table in docs/exit-codes.md).
int ExitCodeFor(Category category);
// A short stable name ("usage", "lock_held", ...) used in JSON output.
const char* CategoryName(Category category);

}  // namespace safemig
