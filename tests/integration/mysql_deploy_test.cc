// The deploy pipeline against a real MariaDB server, where DDL commits itself: a migration
// that fails on its third statement must leave the database exactly as before the deploy
// (restored from the backup just taken), with no history row.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "engine/deploy.h"
#include "server_deploy_fixture.h"
#include "server_env.h"
#include "test_util.h"
#include "unit/deploy_fixture.h"

namespace safemig {
namespace {

using testing::MakeMigration;
using testing::ScratchMySqlDatabase;
using testing::TempDir;

class MySqlDeployTest : public ::testing::Test {
 protected:
  DeployRequest Request(const DatabaseUrl& url, const std::vector<Migration>& files) {
    return testing::ServerDeployRequest(url, dir_ / "backups", files);
  }

  TempDir dir_;
  Reporter reporter_;
};

TEST_F(MySqlDeployTest, ThirdStatementFailingRestoresTheStateBeforeTheDeploy) {
  SAFEMIG_REQUIRE_MYSQL(server);
  ScratchMySqlDatabase db(server);
  db.Exec("CREATE TABLE post (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(100) NOT NULL)");
  db.Exec("INSERT INTO post (title) VALUES ('hello'), ('again')");
  std::vector<Migration> files = {
      MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url TEXT;",
                    "ALTER TABLE post DROP COLUMN url;"),
      MakeMigration("2", "tags_and_unique_title",
                    "CREATE TABLE tag_a (id INT);\nCREATE TABLE tag_b (id INT);\n"
                    "CREATE UNIQUE INDEX post_title ON post (title);\n",
                    "DROP INDEX post_title ON post;\nDROP TABLE tag_b;\nDROP TABLE tag_a;\n")};
  std::unique_ptr<Driver> driver = OpenDriver(db.url(), OpenOptions{false});
  driver->EnsureMetadata();
  // The rehearsal passes on the data as it is; then a duplicate title arrives, as it would in
  // production between the rehearsal and the deploy, and the same plan is deployed.
  DeployReport rehearsal = RehearseOnly(*driver, Request(db.url(), files), reporter_);
  ASSERT_EQ(rehearsal.verdict, "go") << ::testing::PrintToString(rehearsal.reasons);
  db.Exec("INSERT INTO post (title) VALUES ('hello')");
  driver = OpenDriver(db.url(), OpenOptions{false});
  const Fingerprint before = driver->TakeFingerprint(false);
  try {
    Deploy(driver, Request(db.url(), files), reporter_);
    FAIL() << "expected the third statement of migration 2 to fail";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.category(), Category::kMigrationFailed) << message;
    EXPECT_NE(message.find("restored the pre-deploy backup"), std::string::npos) << message;
  }
  driver = OpenDriver(db.url(), OpenOptions{false});
  EXPECT_EQ(driver->TakeFingerprint(false).Digest(), before.Digest())
      << DescribeDifferences(before, driver->TakeFingerprint(false)).size();
  EXPECT_TRUE(driver->ReadHistory().empty());
  EXPECT_TRUE(db.Query("SHOW TABLES LIKE 'tag_a'").empty());
  EXPECT_TRUE(db.Query("SHOW COLUMNS FROM post LIKE 'url'").empty());
  EXPECT_EQ(db.Query("SELECT COUNT(*) FROM post")[0][0], "3");
}

}  // namespace
}  // namespace safemig
