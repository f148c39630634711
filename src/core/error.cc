#include "core/error.h"

namespace safemig {

int ExitCodeFor(Category category) {
  switch (category) {
    case Category::kMigrationFailed: return 1;
    case Category::kUsage: return 2;
    case Category::kConfig: return 2;
    case Category::kConnection: return 3;
    case Category::kLockHeld: return 4;
    case Category::kNoGo: return 5;
    case Category::kIntegrity: return 6;
    case Category::kWatchFailed: return 7;
    case Category::kNeedsPerson: return 9;
    case Category::kInternal: return 70;
  }
  return 70;
}

const char* CategoryName(Category category) {
  switch (category) {
    case Category::kMigrationFailed: return "failed";
    case Category::kUsage: return "usage";
    case Category::kConfig: return "config";
    case Category::kConnection: return "connection";
    case Category::kLockHeld: return "lock_held";
    case Category::kNoGo: return "no_go";
    case Category::kIntegrity: return "integrity";
    case Category::kWatchFailed: return "watch_failed";
    case Category::kNeedsPerson: return "needs_person";
    case Category::kInternal: return "internal";
  }
  return "internal";
}

}  // namespace safemig
