// Taking over a database from golang-migrate, dbmate, Flyway or goose, and baselining one.
// The old tools' tables are created here exactly as those tools create them on SQLite.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::RunSafemig;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

class AdoptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"20260101000000", "20260102000000", "20260103000000"}) {
      std::string name = std::string(v) + "_step";
      WriteFile(dir_ / "migrations" / (name + ".up.sql"),
                "CREATE TABLE t" + std::string(v) + " (id int);\n");
      WriteFile(dir_ / "migrations" / (name + ".down.sql"),
                "DROP TABLE t" + std::string(v) + ";\n");
    }
  }

  // The schema the old tool built: the first two migrations ran.
  void Exec(const std::string& sql) {
    SQLite::Database db(Db(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(sql);
  }
  void ApplyFirstTwoByHand() {
    Exec("CREATE TABLE t20260101000000 (id int); CREATE TABLE t20260102000000 (id int);");
  }

  std::string Db() const { return (dir_ / "app.db").string(); }
  std::string Args() const {
    return " --dir " + (dir_ / "migrations").string() + " --url sqlite:" + Db();
  }
  nlohmann::json Status() {
    auto status = RunSafemig("status --format json" + Args(), dir_.path());
    EXPECT_EQ(status.exit_code, 0) << status.err;
    return nlohmann::json::parse(status.out);
  }
  void ExpectAdopted(const std::string& tool_table) {
    auto dry = RunSafemig("adopt" + Args(), dir_.path());
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_NE(dry.out.find("run again with --yes"), std::string::npos) << dry.out;
    EXPECT_EQ(Status()["applied"], 0);  // showing changes nothing

    auto adopt = RunSafemig("adopt --yes --format json" + Args(), dir_.path());
    ASSERT_EQ(adopt.exit_code, 0) << adopt.err;
    auto json = nlohmann::json::parse(adopt.out);
    EXPECT_EQ(json["recorded"], 2);
    EXPECT_NE(json["source"].get<std::string>().find(tool_table), std::string::npos);

    auto status = Status();
    EXPECT_EQ(status["current_version"], "20260102000000");
    EXPECT_EQ(status["applied"], 2);
    EXPECT_EQ(status["pending"], 1);
    EXPECT_EQ(status["drifted"], 0);

    // The stored downs make rollback work from day one.
    auto down = RunSafemig("down --skip-backup" + Args(), dir_.path());
    EXPECT_EQ(down.exit_code, 0) << down.err;
    EXPECT_EQ(Status()["current_version"], "20260101000000");

    SQLite::Database db(Db(), SQLite::OPEN_READONLY);
    EXPECT_TRUE(db.tableExists(tool_table));  // left as it was
  }

  TempDir dir_;
};

TEST_F(AdoptTest, FromGolangMigrate) {
  ApplyFirstTwoByHand();
  Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version uint64, dirty bool);"
       "CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);"
       "INSERT INTO schema_migrations (version, dirty) VALUES (20260102000000, false);");
  ExpectAdopted("schema_migrations");
}

TEST_F(AdoptTest, RefusesADirtyGolangMigrateVersion) {
  ApplyFirstTwoByHand();
  Exec("CREATE TABLE schema_migrations (version uint64, dirty bool);"
       "INSERT INTO schema_migrations VALUES (20260102000000, true);");
  auto adopt = RunSafemig("adopt --yes" + Args(), dir_.path());
  EXPECT_EQ(adopt.exit_code, 5);
  EXPECT_NE(adopt.err.find("dirty"), std::string::npos) << adopt.err;
  EXPECT_EQ(Status()["applied"], 0);
}

TEST_F(AdoptTest, FromDbmate) {
  ApplyFirstTwoByHand();
  Exec("CREATE TABLE IF NOT EXISTS \"schema_migrations\" (version varchar(128) primary key);"
       "INSERT INTO schema_migrations (version) VALUES ('20260101000000'), ('20260102000000');");
  ExpectAdopted("schema_migrations");
}

TEST_F(AdoptTest, FromFlywayIgnoringUndoneVersions) {
  ApplyFirstTwoByHand();
  Exec("CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL PRIMARY KEY, "
       "version VARCHAR(50), description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, "
       "script VARCHAR(1000) NOT NULL, checksum INT, installed_by VARCHAR(100) NOT NULL, "
       "installed_on TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')), "
       "execution_time INT NOT NULL, success BOOLEAN NOT NULL);"
       "INSERT INTO flyway_schema_history VALUES "
       "(1, '20260101000000', 'step', 'SQL', 'V20260101000000__step.sql', 1, 'app', "
       "'2026-01-01 00:00:00', 3, 1),"
       "(2, '20260102000000', 'step', 'SQL', 'V20260102000000__step.sql', 2, 'app', "
       "'2026-01-02 00:00:00', 3, 1),"
       "(3, '20260103000000', 'step', 'SQL', 'V20260103000000__step.sql', 3, 'app', "
       "'2026-01-03 00:00:00', 3, 1),"
       "(4, '20260103000000', 'step', 'UNDO_SQL', 'U20260103000000__step.sql', 3, 'app', "
       "'2026-01-03 01:00:00', 3, 1),"
       "(5, NULL, 'views', 'SQL', 'R__views.sql', 4, 'app', '2026-01-04 00:00:00', 1, 1);");
  ExpectAdopted("flyway_schema_history");
}

TEST_F(AdoptTest, FromGooseUsingTheLastRowOfEachVersion) {
  ApplyFirstTwoByHand();
  Exec("CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, "
       "version_id INTEGER NOT NULL, is_applied INTEGER NOT NULL, "
       "tstamp TIMESTAMP DEFAULT (datetime('now')));"
       "INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), "
       "(20260101000000, 1), (20260102000000, 1), (20260103000000, 1), (20260103000000, 0);");
  ExpectAdopted("goose_db_version");
}

TEST_F(AdoptTest, VersionsWithoutFilesAreRefused) {
  Exec("CREATE TABLE schema_migrations (version varchar(128) primary key);"
       "INSERT INTO schema_migrations VALUES ('20251231000000'), ('20260101000000');");
  auto adopt = RunSafemig("adopt --yes" + Args(), dir_.path());
  EXPECT_EQ(adopt.exit_code, 5);
  EXPECT_NE(adopt.err.find("20251231000000"), std::string::npos) << adopt.err;
  EXPECT_EQ(Status()["applied"], 0);
}

TEST_F(AdoptTest, NoKnownTableSuggestsBaseline) {
  Exec("CREATE TABLE customers (id int);");
  auto adopt = RunSafemig("adopt" + Args(), dir_.path());
  EXPECT_EQ(adopt.exit_code, 5);
  EXPECT_NE(adopt.err.find("safemig baseline"), std::string::npos) << adopt.err;
}

TEST_F(AdoptTest, BaselineRecordsEverythingUpToTheVersionOnce) {
  ApplyFirstTwoByHand();
  auto unknown = RunSafemig("baseline 20250101000000 --yes" + Args(), dir_.path());
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
  auto baseline = RunSafemig("baseline 20260102000000 --yes" + Args(), dir_.path());
  ASSERT_EQ(baseline.exit_code, 0) << baseline.err;
  EXPECT_EQ(Status()["current_version"], "20260102000000");
  auto again = RunSafemig("baseline 20260102000000 --yes" + Args(), dir_.path());
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("nothing to do"), std::string::npos) << again.out;
  EXPECT_EQ(Status()["applied"], 2);
}

}  // namespace
}  // namespace safemig
