// `rollback` against the real PostgreSQL and MariaDB servers, as an operator runs it: by
// down after the application's migration files were rolled back, by restore with the data
// exact and the written-since state kept in a safety backup, auto choosing for the right
// reason, the deadline before and during the run, and the check against the schema the
// deploy recorded.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "server_deploy_fixture.h"
#include "server_env.h"
#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::RunSafemig;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

const std::string kLast = "20260127110000";
const std::string kSixth = "20260114093000";
const std::string kSeventh = "20260120160000";

// One test database on one server, reachable by SQL and by the safemig command line.
class ServerDatabase {
 public:
  virtual ~ServerDatabase() = default;
  virtual void Exec(const std::string& sql) = 0;
  // The first column of the first row ("" when there is none or it is NULL).
  virtual std::string Query(const std::string& sql) = 0;
  std::string url_text;
  std::string examples;
  std::string sleep_sql;  // a statement sleeping (SELECT n FROM knob) seconds
};

class PostgresDatabase : public ServerDatabase {
 public:
  explicit PostgresDatabase(const DatabaseUrl& server) : db_(server) {
    url_text = safemig::testing::UrlTextOf("SAFEMIG_TEST_POSTGRES_URL", db_.name());
    examples = std::string(SAFEMIG_SOURCE_DIR) + "/migrations-examples/postgres";
    sleep_sql = "SELECT pg_sleep((SELECT n FROM knob));";
  }
  void Exec(const std::string& sql) override { db_.Exec(sql); }
  std::string Query(const std::string& sql) override {
    PgConn conn = ConnectLibpq(db_.url());
    PgResult rows = ExecLibpq(conn.get(), sql);
    if (PQntuples(rows.get()) == 0 || PQgetisnull(rows.get(), 0, 0)) return "";
    return PQgetvalue(rows.get(), 0, 0);
  }

 private:
  safemig::testing::ScratchPostgresDatabase db_;
};

class MySqlDatabase : public ServerDatabase {
 public:
  explicit MySqlDatabase(const DatabaseUrl& server) : db_(server) {
    url_text = safemig::testing::UrlTextOf("SAFEMIG_TEST_MYSQL_URL", db_.name());
    examples = std::string(SAFEMIG_SOURCE_DIR) + "/migrations-examples/mysql";
    sleep_sql = "DO SLEEP((SELECT n FROM knob));";
  }
  void Exec(const std::string& sql) override { db_.Exec(sql); }
  std::string Query(const std::string& sql) override {
    std::vector<MySqlRow> rows = db_.Query(sql);
    if (rows.empty() || rows[0].empty() || !rows[0][0]) return "";
    return *rows[0][0];
  }

 private:
  safemig::testing::ScratchMySqlDatabase db_;
};

class ServerRollbackTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      SAFEMIG_REQUIRE_POSTGRES(server);
      db_ = std::make_unique<PostgresDatabase>(server);
    } else {
      SAFEMIG_REQUIRE_MYSQL(server);
      db_ = std::make_unique<MySqlDatabase>(server);
    }
    std::filesystem::copy(db_->examples, dir_ / "migrations");
  }

  safemig::testing::CommandResult Run(const std::string& args) {
    // The URL (with its password) goes through the environment, as operators pass it.
    return RunSafemig(args + " --dir migrations", dir_.path(),
                      "SAFEMIG_DATABASE_URL='" + db_->url_text + "'");
  }

  nlohmann::json Json(const std::string& args, int expected_exit = 0) {
    auto result = Run(args + " --format json");
    EXPECT_EQ(result.exit_code, expected_exit) << args << ": " << result.err;
    return result.out.empty() ? nlohmann::json() : nlohmann::json::parse(result.out);
  }

  void DeployTwice() {
    ASSERT_TRUE(Json("deploy --steps 6")["ok"].get<bool>());
    db_->Exec("INSERT INTO customers (email, name) VALUES ('first@example.com', 'Before')");
    ASSERT_TRUE(Json("deploy")["ok"].get<bool>());
  }

  std::string Version() { return db_->Query("SELECT max(version) FROM safemig_migrations"); }

  void RemoveFiles(const std::string& version) {
    for (const auto& entry : std::filesystem::directory_iterator(dir_ / "migrations")) {
      if (entry.path().filename().string().rfind(version, 0) == 0) {
        std::filesystem::remove(entry.path());
      }
    }
  }

  std::unique_ptr<ServerDatabase> db_;
  TempDir dir_;
};

TEST_P(ServerRollbackTest, ByDownAfterTheFilesAreGoneKeepsWhatWasWrittenSince) {
  DeployTwice();
  RemoveFiles(kLast);
  RemoveFiles(kSeventh);
  db_->Exec("INSERT INTO customers (email, name) VALUES ('late@example.com', 'After')");
  auto json = Json("rollback --yes");
  ASSERT_TRUE(json["ok"].get<bool>()) << json.dump();
  EXPECT_EQ(json["plan"]["chosen"], "down");
  EXPECT_EQ(json["plan"]["missing_files"].size(), 2u);
  EXPECT_TRUE(json["plan"]["restore"]["writes_since"].is_number()) << json["plan"].dump();
  EXPECT_EQ(json["strategy"], "down");
  EXPECT_EQ(json["verified"], true);
  EXPECT_EQ(json["reached_version"], kSixth);
  EXPECT_EQ(Version(), kSixth);
  EXPECT_EQ(db_->Query("SELECT name FROM customers WHERE email = 'late@example.com'"), "After");
}

TEST_P(ServerRollbackTest, ByRestoreIsExactAndKeepsTheLaterStateInASafetyBackup) {
  DeployTwice();
  db_->Exec("INSERT INTO customers (email, name) VALUES ('late@example.com', 'After')");
  auto json = Json("rollback --strategy restore --yes");
  ASSERT_TRUE(json["ok"].get<bool>()) << json.dump();
  EXPECT_EQ(json["strategy"], "restore");
  EXPECT_EQ(json["verified"], true);
  EXPECT_EQ(Version(), kSixth);
  EXPECT_EQ(db_->Query("SELECT count(*) FROM customers WHERE email = 'late@example.com'"), "0");
  EXPECT_EQ(db_->Query("SELECT name FROM customers WHERE email = 'first@example.com'"),
            "Before");
  const std::string safety = json["safety_backup_id"].get<std::string>();
  auto show = Run("backup show " + safety);
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find(kLast), std::string::npos) << show.out;
  EXPECT_EQ(db_->Query("SELECT kind FROM safemig_journal ORDER BY id DESC"), "rollback");
}

TEST_P(ServerRollbackTest, AutoRestoresWhenADownWasNeverRehearsed) {
  DeployTwice();
  auto rehearsed = Json("rollback --dry-run");
  EXPECT_EQ(rehearsed["plan"]["chosen"], "down") << rehearsed["plan"].dump();
  db_->Exec("DELETE FROM safemig_journal WHERE kind = 'rehearsal'");
  auto json = Json("rollback --dry-run");
  EXPECT_EQ(json["plan"]["chosen"], "restore");
  EXPECT_NE(json["plan"]["why"].get<std::string>().find("never rehearsed"), std::string::npos);
  EXPECT_EQ(Version(), kLast);
}

TEST_P(ServerRollbackTest, AnEstimateOverTheDeadlineIsRefused) {
  DeployTwice();
  auto refused = Run("rollback --deadline 1ms --yes");
  EXPECT_EQ(refused.exit_code, 5) << refused.err;
  EXPECT_NE(refused.err.find("longer than the deadline"), std::string::npos) << refused.err;
  EXPECT_EQ(Version(), kLast);
}

TEST_P(ServerRollbackTest, TheDeadlineStopsTheRollbackAtAConsistentVersion) {
  // The newest down is quick; the one before it sleeps as long as a knob says, which was 0
  // in the rehearsal and is 4 s now.
  ASSERT_TRUE(Json("deploy --steps 6")["ok"].get<bool>());
  WriteFile(dir_ / "migrations" / "20260201000000_knob.up.sql",
            "CREATE TABLE knob (n INTEGER NOT NULL);\nINSERT INTO knob VALUES (0);\n");
  WriteFile(dir_ / "migrations" / "20260201000000_knob.down.sql",
            db_->sleep_sql + "\nDROP TABLE knob;\n");
  WriteFile(dir_ / "migrations" / "20260202000000_quick.up.sql",
            "CREATE TABLE quick (id INTEGER PRIMARY KEY);\n");
  WriteFile(dir_ / "migrations" / "20260202000000_quick.down.sql", "DROP TABLE quick;\n");
  ASSERT_TRUE(Json("deploy")["ok"].get<bool>());
  db_->Exec("UPDATE knob SET n = 4");
  auto result = Run("rollback --to " + kSixth + " --strategy down --skip-backup --deadline 2s --yes");
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_NE(result.err.find("rollback stopped"), std::string::npos) << result.err;
  if (GetParam() == "postgres") {
    // The sleeping down was cancelled at the deadline and its transaction rolled back.
    EXPECT_EQ(Version(), "20260201000000");
    EXPECT_EQ(db_->Query("SELECT n FROM knob"), "4");
  } else {
    // MariaDB commits DDL statement by statement, so a running down is not cancelled: it
    // finished, and no further down started.
    EXPECT_EQ(Version(), kLast);
  }
  EXPECT_NE(result.err.find("consistent at version " + Version()), std::string::npos)
      << result.err;
}

TEST_P(ServerRollbackTest, ASchemaChangedByHandAfterTheDeployFailsTheCheckLoudly) {
  DeployTwice();
  db_->Exec("CREATE TABLE hotfix_audit (id INTEGER PRIMARY KEY)");
  auto result = Run("rollback --strategy down --yes");
  EXPECT_EQ(result.exit_code, 9) << result.out << result.err;
  EXPECT_NE(result.err.find("hotfix_audit"), std::string::npos) << result.err;
  EXPECT_EQ(Version(), kSixth);
}

INSTANTIATE_TEST_SUITE_P(Servers, ServerRollbackTest, ::testing::Values("postgres", "mysql"),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace safemig
