// The rehearsal and the deploy pipeline against a real PostgreSQL server: migrations that
// pass on an empty database but fail on real data are caught on the copy, the target is
// never touched by a rehearsal, scratch databases go away, and a failed deploy leaves the
// database as it was (reverted by downs; the restore path is covered on SQLite in
// tests/unit/deploy_test.cc).
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/status.h"
#include "engine/deploy.h"
#include "server_deploy_fixture.h"
#include "server_env.h"
#include "test_util.h"
#include "unit/deploy_fixture.h"

namespace safemig {
namespace {

using testing::MakeMigration;
using testing::ScratchPostgresDatabase;
using testing::TempDir;

class PgDeployTest : public ::testing::Test {
 protected:
  void Open(const ScratchPostgresDatabase& db) {
    db.Exec(
        "CREATE TABLE customer (id serial PRIMARY KEY, email text, phone text);"
        "INSERT INTO customer (email, phone) SELECT 'user' || (i % 40) || '@example.com', "
        "CASE WHEN i % 3 = 0 THEN NULL ELSE '555-' || i END FROM generate_series(1, 120) i;"
        "CREATE TABLE post (id serial PRIMARY KEY, title text NOT NULL);"
        "INSERT INTO post (title) VALUES ('hello'), ('again');");
    url_ = db.url();
    driver_ = OpenDriver(url_, OpenOptions{false});
    driver_->EnsureMetadata();
  }

  DeployRequest Request(const std::vector<Migration>& files) {
    return testing::ServerDeployRequest(url_, dir_ / "backups", files);
  }

  Fingerprint Data() { return driver_->TakeFingerprint(false); }

  int ScratchDatabases(const DatabaseUrl& server) {
    return testing::PostgresScratchDatabases(server);
  }

  static std::vector<Migration> FourMigrations() {
    return testing::FourMigrations("serial PRIMARY KEY");
  }

  TempDir dir_;
  DatabaseUrl url_;
  std::unique_ptr<Driver> driver_;
  Reporter reporter_;
};

TEST_F(PgDeployTest, RehearsalCatchesWhatOnlyRealDataBreaks) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase db(server);
  Open(db);
  const Fingerprint before = Data();
  struct Case {
    Migration migration;
    std::string expected;  // in the database's message
  };
  const std::vector<Case> cases = {
      {MakeMigration("1", "phone_required",
                     "ALTER TABLE customer ALTER COLUMN phone SET NOT NULL;",
                     "ALTER TABLE customer ALTER COLUMN phone DROP NOT NULL;"),
       "null values"},
      {MakeMigration("1", "tier_required", "ALTER TABLE customer ADD COLUMN tier text NOT NULL;",
                     "ALTER TABLE customer DROP COLUMN tier;"),
       "null values"},
      {MakeMigration("1", "unique_email",
                     "CREATE UNIQUE INDEX customer_email ON customer (email);",
                     "DROP INDEX customer_email;"),
       "unique index"}};
  for (const Case& c : cases) {
    DeployReport report = RehearseOnly(*driver_, Request({c.migration}), reporter_);
    EXPECT_EQ(report.verdict, "no-go") << c.migration.name;
    ASSERT_EQ(report.reasons.size(), 1u) << c.migration.name;
    EXPECT_NE(report.reasons[0].find("1_" + c.migration.name + ": up fails on a copy"),
              std::string::npos)
        << report.reasons[0];
    EXPECT_NE(report.reasons[0].find(c.expected), std::string::npos) << report.reasons[0];
    EXPECT_EQ(report.rehearsal->where, "scratch database on the same server");
    EXPECT_EQ(Data().Digest(), before.Digest()) << "the target is never changed";
    EXPECT_TRUE(driver_->ReadHistory().empty());
    EXPECT_EQ(ScratchDatabases(server), 0) << "the copy is dropped after a failure";
  }
}

TEST_F(PgDeployTest, RehearsalCatchesBadDownsAndMeasuresGoodOnes) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase db(server);
  Open(db);
  const Fingerprint before = Data();
  DeployReport failing = RehearseOnly(
      *driver_,
      Request({MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url text;",
                             "ALTER TABLE post DROP COLUMN nope;")}),
      reporter_);
  EXPECT_EQ(failing.verdict, "no-go");
  EXPECT_EQ(failing.rehearsal->migrations[0].outcome, "down_failed");

  DeployReport differs = RehearseOnly(
      *driver_,
      Request({MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url text;", "SELECT 1;")}),
      reporter_);
  EXPECT_EQ(differs.verdict, "no-go");
  EXPECT_EQ(differs.rehearsal->migrations[0].outcome, "down_differs");
  EXPECT_NE(differs.reasons[0].find("column url"), std::string::npos) << differs.reasons[0];

  DeployReport good = RehearseOnly(
      *driver_,
      Request({MakeMigration("1", "drop_phone", "ALTER TABLE customer DROP COLUMN phone;",
                             "ALTER TABLE customer ADD COLUMN phone text;")}),
      reporter_);
  EXPECT_EQ(good.verdict, "go") << ::testing::PrintToString(good.reasons);
  const MigrationRehearsal& m = good.rehearsal->migrations[0];
  EXPECT_TRUE(m.reversible);
  ASSERT_EQ(m.data_loss.size(), 1u);
  // 120 customers, every third without a phone: the NULLs are not losses.
  EXPECT_EQ(m.data_loss[0], "dropping column public.customer.phone loses 80 non-null values");
  EXPECT_EQ(Data().Digest(), before.Digest());
  EXPECT_EQ(ScratchDatabases(server), 0);
}

TEST_F(PgDeployTest, FailureInTheThirdOfFourLeavesTheDatabaseAsItWas) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase db(server);
  Open(db);
  const std::vector<Migration> files = FourMigrations();
  ASSERT_EQ(RehearseOnly(*driver_, Request(files), reporter_).verdict, "go");
  // Data the rehearsed copy did not have; the plan hash (schema) stays the same.
  db.Exec("INSERT INTO post (title) VALUES ('hello');");
  const Fingerprint before = Data();
  try {
    Deploy(driver_, Request(files), reporter_);
    FAIL() << "expected the third migration to fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed) << e.what();
    EXPECT_NE(std::string(e.what()).find("reverted"), std::string::npos) << e.what();
  }
  EXPECT_EQ(Data().Digest(), before.Digest());
  EXPECT_TRUE(driver_->ReadHistory().empty());
}

}  // namespace
}  // namespace safemig
