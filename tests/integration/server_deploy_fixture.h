// What the deploy tests against the real servers share: the deploy request they send, the
// scratch databases of this process still on a server, and the URL text of another
// database on the same server (an environment's `url`, as promote_from reads it).
#pragma once

#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "config/url.h"
#include "driver/driver.h"
#include "drivers/mysql/mysql_session.h"
#include "drivers/postgres/pg_connection.h"
#include "engine/deploy.h"

namespace safemig::testing {

// A deploy of `files` to `url` in a plain environment "it", backups under `backups`,
// approved by nobody and with no policy set: each test adds the policy it is about.
inline DeployRequest ServerDeployRequest(const DatabaseUrl& url,
                                         const std::filesystem::path& backups,
                                         const std::vector<Migration>& files) {
  DeployRequest request;
  request.environment.name = "it";
  request.environment.backups = backups;
  request.environment.lock_timeout = std::chrono::seconds(5);
  request.url = url;
  request.files = files;
  request.runner = "tester pid 1";
  request.applied_by = "tester";
  request.jobs = 2;
  return request;
}

// Scratch databases of this process (ScratchPrefix) still on the server.
inline int PostgresScratchDatabases(const DatabaseUrl& server) {
  PgConn admin = ConnectLibpq(server);
  PgResult rows = ExecLibpq(
      admin.get(),
      "SELECT count(*) FROM pg_database WHERE datname LIKE '" + ScratchPrefix() + "%'");
  return std::stoi(PQgetvalue(rows.get(), 0, 0));
}

inline int MySqlScratchDatabases(const DatabaseUrl& server) {
  MySqlSession admin(server, std::string());
  return static_cast<int>(admin.Query("SHOW DATABASES LIKE '" + ScratchPrefix() + "%'").size());
}

// The URL in the environment variable `server_variable` (password included) naming
// `database` instead of the server's own: what a config file's `url` would hold.
inline std::string UrlTextOf(const char* server_variable, const std::string& database) {
  const std::string server = std::getenv(server_variable);
  const size_t path = server.find('/', server.find("://") + 3);
  const size_t query = server.find('?', path);
  return server.substr(0, path + 1) + database +
         (query == std::string::npos ? std::string() : server.substr(query));
}

}  // namespace safemig::testing
