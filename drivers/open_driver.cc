// OpenDriver: the only place that knows which engines this build contains.
#include "driver/driver.h"
#include "core/error.h"
#include "drivers/sqlite/sqlite_driver.h"

namespace safemig {

std::unique_ptr<Driver> OpenDriver(const DatabaseUrl& url, const OpenOptions& options) {
  switch (url.engine) {
    case Engine::kSqlite:
      return OpenSqliteDriver(url, options);
    case Engine::kPostgres:
    case Engine::kMySql:
      break;
  }
  throw Error(Category::kConfig,
              std::string("this build of safemig has no ") + EngineName(url.engine) +
                  " driver yet",
              "use a sqlite: URL; PostgreSQL and MySQL/MariaDB support is in progress");
}

}  // namespace safemig
