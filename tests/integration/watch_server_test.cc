// `safemig watch` against real PostgreSQL and MariaDB servers: the server's own values pass
// and fail as docs/watch.md says (PostgreSQL booleans "t"/"f", MariaDB 1/0), the checks'
// connection is read-only, a hung check is cut off by the statement timeout instead of
// hanging the watch, and failing checks exit 7 leaving the database as it was.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "server_env.h"
#include "test_util.h"

namespace safemig {
namespace {

using testing::RunSafemig;
using testing::TempDir;
using testing::WriteFile;

// The server's URL from the environment with another database: the password stays as
// given (RunSafemig passes it on the command line of a child process only).
std::string UrlFor(const char* variable, const std::string& database) {
  std::string url = std::getenv(variable);
  const size_t query = url.find('?');
  const size_t slash = url.rfind('/', query == std::string::npos ? url.size() : query);
  return url.substr(0, slash + 1) + database +
         (query == std::string::npos ? "" : url.substr(query));
}

class WatchServerTest : public ::testing::Test {
 protected:
  // One deployed migration adding orders.note, then the checks.
  void DeployAndWatch(const std::string& url, const std::string& truthy, const std::string& falsy,
                      const std::string& write, const std::string& hang) {
    WriteFile(dir_ / "migrations" / "1_add_note.up.sql",
              "ALTER TABLE orders ADD COLUMN note TEXT;\n");
    WriteFile(dir_ / "migrations" / "1_add_note.down.sql",
              "ALTER TABLE orders DROP COLUMN note;\n");
    const std::string flags = " --dir migrations --url '" + url + "'";
    auto deploy = RunSafemig("deploy --yes" + flags, dir_.path());
    ASSERT_EQ(deploy.exit_code, 0) << deploy.err << deploy.out;

    auto healthy =
        RunSafemig("watch --format json --every 50ms --for 150ms --check 'paid: " + truthy +
                       "' --check 'rows: SELECT id FROM orders'" + flags,
                   dir_.path());
    ASSERT_EQ(healthy.exit_code, 0) << healthy.err << healthy.out;
    auto json = nlohmann::json::parse(healthy.out);
    EXPECT_EQ(json["outcome"], "healthy");
    EXPECT_EQ(json["ticks"], 3);
    EXPECT_EQ(json["version"], "1");

    const auto start = std::chrono::steady_clock::now();
    auto failing = RunSafemig(
        "watch --format json --every 50ms --for 10s --failures 2 --check-timeout 500ms "
        "--check 'unpaid: " +
            falsy + "' --check 'write: " + write + "' --check 'hang: " + hang + "'" + flags,
        dir_.path());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8))
        << "the statement timeout must cut the hung check off";
    ASSERT_EQ(failing.exit_code, 7) << failing.err << failing.out;
    auto failed = nlohmann::json::parse(failing.out);
    EXPECT_EQ(failed["outcome"], "failed");
    EXPECT_EQ(failed["ticks"], 2);
    const auto& checks = failed["checks"];
    ASSERT_EQ(checks.size(), 3u);
    EXPECT_EQ(checks[0]["passed"], false);
    EXPECT_EQ(checks[0]["detail"].get<std::string>().rfind("returned ", 0), 0u) << checks[0];
    EXPECT_EQ(checks[1]["passed"], false);
    std::string write_detail = checks[1]["detail"];
    for (char& c : write_detail) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_NE(write_detail.find("read"), std::string::npos) << checks[1];
    EXPECT_EQ(checks[2]["passed"], false);
    EXPECT_LT(checks[2]["took_ms"].get<int>(), 3000) << checks[2];
    EXPECT_EQ(failing.err.find("error: health checks failed 2 ticks in a row"), 0u) << failing.err;

    // Nothing changed: the rows are all there, the migration still applied.
    auto status =
        nlohmann::json::parse(RunSafemig("status --format json" + flags, dir_.path()).out);
    EXPECT_EQ(status["current_version"], "1");
    auto journal = nlohmann::json::parse(
        RunSafemig("history --journal --format json" + flags, dir_.path()).out)["journal"];
    EXPECT_EQ(journal[0]["kind"], "watch");
    EXPECT_EQ(journal[0]["outcome"], "failed");
    EXPECT_EQ(journal[1]["kind"], "watch");
    EXPECT_EQ(journal[1]["outcome"], "healthy");
  }

  TempDir dir_;
};

TEST_F(WatchServerTest, PostgresChecksPassFailAndCannotWriteOrHang) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  testing::ScratchPostgresDatabase db(server);
  db.Exec(
      "CREATE TABLE orders (id serial PRIMARY KEY, paid boolean NOT NULL);"
      "INSERT INTO orders (paid) VALUES (true), (false), (true);");
  DeployAndWatch(UrlFor("SAFEMIG_TEST_POSTGRES_URL", db.name()), "SELECT bool_or(paid) FROM orders",
                 "SELECT bool_and(paid) FROM orders", "DELETE FROM orders RETURNING id",
                 "SELECT pg_sleep(20)");
  PgConn conn = ConnectLibpq(db.url());
  PgResult rows = ExecLibpq(conn.get(), "SELECT count(*) FROM orders");
  EXPECT_STREQ(PQgetvalue(rows.get(), 0, 0), "3");
}

TEST_F(WatchServerTest, MariaDbChecksPassFailAndCannotWriteOrHang) {
  SAFEMIG_REQUIRE_MYSQL(server);
  testing::ScratchMySqlDatabase db(server);
  db.Exec("CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, paid BOOLEAN NOT NULL)");
  db.Exec("INSERT INTO orders (paid) VALUES (1), (0), (1)");
  DeployAndWatch(UrlFor("SAFEMIG_TEST_MYSQL_URL", db.name()), "SELECT MAX(paid) = 1 FROM orders",
                 "SELECT MIN(paid) FROM orders", "DELETE FROM orders",
                 "SELECT SLEEP(20) FROM orders");
  auto rows = db.Query("SELECT COUNT(*) FROM orders");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "3");
}

}  // namespace
}  // namespace safemig
