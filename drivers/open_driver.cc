// OpenDriver: the only place that knows which engines this build contains.
#include "driver/driver.h"

#include <algorithm>
#include <thread>

#include "core/error.h"
#include "drivers/mysql/mysql_driver.h"
#include "drivers/mysql/mysql_dump.h"
#include "drivers/postgres/pg_driver.h"
#include "drivers/postgres/pg_dump.h"
#include "drivers/sqlite/sqlite_driver.h"

namespace safemig {

std::unique_ptr<Driver> OpenDriver(const DatabaseUrl& url, const OpenOptions& options) {
  switch (url.engine) {
    case Engine::kSqlite:
      return OpenSqliteDriver(url, options);
    case Engine::kPostgres:
      return OpenPostgresDriver(url, options);
    case Engine::kMySql:
      return OpenMySqlDriver(url, options);
  }
  throw Error(Category::kConfig,
              std::string("this build of safemig has no ") + EngineName(url.engine) + " driver");
}

RestoreReport RestoreArchive(const ArchiveReader& archive, const DatabaseUrl& target,
                             const RestoreOptions& options,
                             const ArchiveReader::Progress& progress) {
  const std::string& engine = archive.manifest().engine;
  if (engine != EngineName(target.engine)) {
    throw Error(Category::kUsage,
                "backup " + archive.manifest().id + " holds a " + engine +
                    " database; it cannot be restored into a " + EngineName(target.engine) +
                    " target",
                "pass --into with a " + engine + " URL");
  }
  switch (target.engine) {
    case Engine::kSqlite:
      return RestoreSqliteArchive(archive, target, options, progress);
    case Engine::kPostgres: {
      int jobs = options.jobs > 0 ? options.jobs
                                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      return RestorePostgres(archive, target, options, jobs, progress);
    }
    case Engine::kMySql: {
      int jobs = options.jobs > 0 ? options.jobs
                                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      return RestoreMySql(archive, target, options, jobs, progress);
    }
  }
  throw Error(Category::kConfig,
              std::string("this build of safemig has no ") + EngineName(target.engine) +
                  " driver yet");
}

}  // namespace safemig
