// Scratch databases: naming shared by every engine, creation dispatched per engine.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/sha256.h"
#include "driver/driver.h"
#include "drivers/mysql/mysql_driver.h"
#include "drivers/postgres/pg_driver.h"
#include "drivers/sqlite/sqlite_driver.h"

namespace safemig {
namespace {

std::string HostTag() {
  static const std::string tag = Sha256Hex("scratch-host:" + CurrentUserAtHost()).substr(0, 8);
  return tag;
}

}  // namespace

std::string ScratchPrefix() {
  return fmt::format("safemig_scratch_{}_{}_", HostTag(), static_cast<long>(::getpid()));
}

std::optional<long> ScratchOwnerPid(const std::string& name) {
  const std::string host_prefix = "safemig_scratch_" + HostTag() + "_";
  if (name.rfind(host_prefix, 0) != 0) return std::nullopt;
  const std::string rest = name.substr(host_prefix.size());
  char* end = nullptr;
  long pid = std::strtol(rest.c_str(), &end, 10);
  if (end == rest.c_str() || *end != '_' || pid <= 0) return std::nullopt;
  return pid;
}

// True when the process that made a scratch database is gone, so it is safe to drop.
bool ScratchOwnerIsGone(const std::string& name) {
  std::optional<long> pid = ScratchOwnerPid(name);
  if (!pid || *pid == static_cast<long>(::getpid())) return false;
  return ::kill(static_cast<pid_t>(*pid), 0) != 0 && errno == ESRCH;
}

std::unique_ptr<ScratchDatabase> CreateScratchDatabase(const DatabaseUrl& like) {
  switch (like.engine) {
    case Engine::kSqlite:
      return CreateSqliteScratch(like);
    case Engine::kPostgres:
      return CreatePostgresScratch(like);
    case Engine::kMySql:
      return CreateMySqlScratch(like);
  }
  throw Error(Category::kConfig,
              std::string("this build of safemig has no ") + EngineName(like.engine) +
                  " driver yet");
}

}  // namespace safemig
