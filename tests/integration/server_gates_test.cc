// The deploy gates, the all-or-nothing apply and what the rehearsal catches, on real
// PostgreSQL and MariaDB servers (tests/unit/deploy_test.cc has the same on SQLite). Every
// refusal must leave the target as it was: same fingerprint (safemig's journal aside), no
// history row, and no scratch database of this process left on the server. Each test has
// a database of its own.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "backup/store.h"
#include "core/error.h"
#include "core/status.h"
#include "engine/deploy.h"
#include "engine/migrator.h"
#include "server_deploy_fixture.h"
#include "server_env.h"
#include "test_util.h"
#include "unit/deploy_fixture.h"

namespace safemig {
namespace {

using testing::MakeMigration;

// A test database on one server, and the SQL that differs between the engines.
class ServerDatabase {
 public:
  virtual ~ServerDatabase() = default;
  virtual const DatabaseUrl& url() const = 0;
  virtual const std::string& name() const = 0;
  virtual std::string UrlText() const = 0;  // with the password, as a config file holds it
  virtual void Exec(const std::string& sql) const = 0;  // one statement
  virtual int ScratchDatabases() const = 0;
  // Another empty database on the same server.
  virtual std::unique_ptr<ServerDatabase> Another() const = 0;

  virtual std::string Key() const = 0;  // an auto-numbered integer primary key
  virtual std::string DropIndex(const std::string& index, const std::string& table) const = 0;
  // Makes customer.phone NOT NULL, and back.
  virtual std::string RequirePhone() const = 0;
  virtual std::string AllowNullPhone() const = 0;
  virtual std::string Sleep() const = 0;  // a statement that takes about 0.3 s
  // How the fingerprint names a table of the default schema.
  virtual std::string Table(const std::string& table) const = 0;
};

class PostgresDatabase : public ServerDatabase {
 public:
  explicit PostgresDatabase(const DatabaseUrl& server) : server_(server), db_(server) {}
  const DatabaseUrl& url() const override { return db_.url(); }
  const std::string& name() const override { return db_.name(); }
  std::string UrlText() const override {
    return testing::UrlTextOf("SAFEMIG_TEST_POSTGRES_URL", db_.name());
  }
  void Exec(const std::string& sql) const override { db_.Exec(sql); }
  int ScratchDatabases() const override { return testing::PostgresScratchDatabases(server_); }
  std::unique_ptr<ServerDatabase> Another() const override {
    return std::make_unique<PostgresDatabase>(server_);
  }
  std::string Key() const override { return "serial PRIMARY KEY"; }
  std::string DropIndex(const std::string& index, const std::string& /*table*/) const override {
    return "DROP INDEX " + index + ";";
  }
  std::string RequirePhone() const override {
    return "ALTER TABLE customer ALTER COLUMN phone SET NOT NULL;";
  }
  std::string AllowNullPhone() const override {
    return "ALTER TABLE customer ALTER COLUMN phone DROP NOT NULL;";
  }
  std::string Sleep() const override { return "SELECT pg_sleep(0.3);"; }
  std::string Table(const std::string& table) const override { return "public." + table; }

 private:
  DatabaseUrl server_;
  testing::ScratchPostgresDatabase db_;
};

class MariaDbDatabase : public ServerDatabase {
 public:
  explicit MariaDbDatabase(const DatabaseUrl& server) : server_(server), db_(server) {}
  const DatabaseUrl& url() const override { return db_.url(); }
  const std::string& name() const override { return db_.name(); }
  std::string UrlText() const override {
    return testing::UrlTextOf("SAFEMIG_TEST_MYSQL_URL", db_.name());
  }
  void Exec(const std::string& sql) const override { db_.Exec(sql); }
  int ScratchDatabases() const override { return testing::MySqlScratchDatabases(server_); }
  std::unique_ptr<ServerDatabase> Another() const override {
    return std::make_unique<MariaDbDatabase>(server_);
  }
  std::string Key() const override { return "INT AUTO_INCREMENT PRIMARY KEY"; }
  std::string DropIndex(const std::string& index, const std::string& table) const override {
    return "DROP INDEX " + index + " ON " + table + ";";
  }
  std::string RequirePhone() const override {
    return "ALTER TABLE customer MODIFY phone VARCHAR(40) NOT NULL;";
  }
  std::string AllowNullPhone() const override {
    return "ALTER TABLE customer MODIFY phone VARCHAR(40) NULL;";
  }
  std::string Sleep() const override { return "DO SLEEP(0.3);"; }
  std::string Table(const std::string& table) const override { return table; }

 private:
  DatabaseUrl server_;
  testing::ScratchMySqlDatabase db_;
};

// The shop every test starts from: 120 customers whose e-mails repeat and every third of
// whom has no phone, two posts, three notes. With `rows` false, the same tables empty.
void CreateShop(const ServerDatabase& db, bool rows = true) {
  db.Exec("CREATE TABLE customer (id " + db.Key() + ", email VARCHAR(100), phone VARCHAR(40))");
  db.Exec("CREATE TABLE post (id " + db.Key() + ", title VARCHAR(100) NOT NULL)");
  db.Exec("CREATE TABLE note (body VARCHAR(100))");
  if (!rows) return;
  std::string values;
  for (int i = 1; i <= 120; ++i) {
    if (i > 1) values += ", ";
    values += "('user" + std::to_string(i % 40) + "@example.com', " +
              (i % 3 == 0 ? std::string("NULL") : "'555-" + std::to_string(i) + "'") + ")";
  }
  db.Exec("INSERT INTO customer (email, phone) VALUES " + values);
  db.Exec("INSERT INTO post (title) VALUES ('hello'), ('again')");
  db.Exec("INSERT INTO note (body) VALUES ('a'), ('b'), ('c')");
}

class ServerGatesTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      SAFEMIG_REQUIRE_POSTGRES(server);
      db_ = std::make_unique<PostgresDatabase>(server);
    } else {
      SAFEMIG_REQUIRE_MYSQL(server);
      db_ = std::make_unique<MariaDbDatabase>(server);
    }
    CreateShop(*db_);
    Reopen();
  }

  // A fresh connection: a restore in place replaces the database under the old one.
  void Reopen() {
    driver_ = OpenDriver(db_->url(), OpenOptions{false});
    driver_->EnsureMetadata();
  }

  DeployRequest Request(const std::vector<Migration>& files) {
    return testing::ServerDeployRequest(db_->url(), dir_ / "backups", files);
  }

  Fingerprint Data() { return driver_->TakeFingerprint(/*include_metadata=*/false); }
  std::size_t Backups() { return BackupStore(dir_ / "backups").List().size(); }

  // Four reversible migrations; the third, a unique index on post.title, fails once two
  // posts share a title.
  std::vector<Migration> FourMigrations() const {
    return {MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url TEXT;",
                          "ALTER TABLE post DROP COLUMN url;"),
            MakeMigration("2", "create_tag", "CREATE TABLE tag (id " + db_->Key() + ");",
                          "DROP TABLE tag;"),
            MakeMigration("3", "unique_title", "CREATE UNIQUE INDEX post_title ON post (title);",
                          db_->DropIndex("post_title", "post")),
            MakeMigration("4", "index_email", "CREATE INDEX customer_email ON customer (email);",
                          db_->DropIndex("customer_email", "customer"))};
  }

  // The target as it was before `what`: same schema and data, nothing applied, and no
  // scratch database left behind.
  void ExpectUntouched(const Fingerprint& before, const std::string& what) {
    Reopen();
    const Fingerprint now = Data();
    EXPECT_EQ(now.Digest(), before.Digest())
        << what << ": " << ::testing::PrintToString(DescribeDifferences(before, now));
    EXPECT_TRUE(driver_->ReadHistory().empty()) << what;
    EXPECT_EQ(db_->ScratchDatabases(), 0) << what;
  }

  // A refusal before anything changed: exit 5 with `reason` in the message, no backup.
  void ExpectRefusedBeforeTheBackup(const DeployReport& report, const std::string& reason) {
    EXPECT_EQ(report.verdict, "no-go");
    ASSERT_TRUE(report.refusal);
    EXPECT_EQ(report.refusal->category(), Category::kNoGo);
    EXPECT_NE(std::string(report.refusal->what()).find(reason), std::string::npos)
        << report.refusal->what();
    EXPECT_FALSE(report.refusal->hint().empty());
    EXPECT_EQ(Backups(), 0u) << "refused before the backup";
  }

  DeployReport Deploy(const DeployRequest& request) {
    return safemig::Deploy(driver_, request, reporter_);
  }

  testing::TempDir dir_;
  std::unique_ptr<ServerDatabase> db_;
  std::unique_ptr<Driver> driver_;
  Reporter reporter_;
};

TEST_P(ServerGatesTest, ProtectedEnvironmentWithoutApprovalOrPassingRehearsalIsANoGo) {
  const Fingerprint before = Data();
  DeployRequest request = Request(FourMigrations());
  request.environment.is_protected = true;
  ExpectRefusedBeforeTheBackup(Deploy(request), "approval: ");
  ExpectUntouched(before, "no approval");

  request.yes = true;
  request.skip_backup = true;
  ExpectRefusedBeforeTheBackup(Deploy(request), "--skip-backup is refused");
  ExpectUntouched(before, "--skip-backup");

  // Approved, but its rehearsal fails: the second migration's down forgets an index.
  std::vector<Migration> files = FourMigrations();
  files[1] = MakeMigration("2", "create_tag",
                           "CREATE TABLE tag (id " + db_->Key() + ");\n"
                           "CREATE INDEX post_title_plain ON post (title);",
                           "DROP TABLE tag;");
  request = Request(files);
  request.environment.is_protected = true;
  request.yes = true;
  DeployReport failed = Deploy(request);
  EXPECT_EQ(failed.verdict, "no-go");
  ASSERT_TRUE(failed.refusal);
  EXPECT_EQ(failed.refusal->category(), Category::kNoGo);
  ASSERT_FALSE(failed.reasons.empty());
  EXPECT_NE(failed.reasons[0].find("2_create_tag: down leaves the schema different"),
            std::string::npos)
      << failed.reasons[0];
  EXPECT_TRUE(failed.migrations.empty());
  ExpectUntouched(before, "failed rehearsal");
}

TEST_P(ServerGatesTest, PromotionIsANoGoWhileTheSourceLacksAPendingMigration) {
  const std::vector<Migration> files = FourMigrations();
  // Staging, on the same server, has the first two only.
  std::unique_ptr<ServerDatabase> staging = db_->Another();
  CreateShop(*staging);
  {
    std::unique_ptr<Driver> driver = OpenDriver(staging->url(), OpenOptions{false});
    driver->EnsureMetadata();
    Reporter quiet;
    Migrator(*driver, quiet)
        .Execute(PlanUp(ComputeStatus(files, {}), std::string("2"), std::nullopt), RunOptions{});
  }
  const Fingerprint before = Data();
  DeployRequest request = Request(files);
  request.environment.promote_from = "staging";
  Environment source;
  source.name = "staging";
  source.url = staging->UrlText();
  request.environments["staging"] = source;
  DeployReport report = Deploy(request);
  ExpectRefusedBeforeTheBackup(report, "3_unique_title is not applied in staging");
  EXPECT_NE(report.refusal->hint().find("deploy to staging first"), std::string::npos);
  ExpectUntouched(before, "promotion");
}

TEST_P(ServerGatesTest, OutsideTheWindowIsANoGo) {
  const Fingerprint before = Data();
  DeployRequest request = Request(FourMigrations());
  request.environment.window = ParseDeployWindow("Mon-Fri 02:00-05:00 UTC", "test");
  // Thursday 2026-11-26 12:00 UTC.
  request.now = [] { return std::chrono::system_clock::from_time_t(1795694400); };
  DeployReport report = Deploy(request);
  ExpectRefusedBeforeTheBackup(report, "outside the deploy window");
  EXPECT_NE(report.refusal->hint().find("--outside-window"), std::string::npos);
  ExpectUntouched(before, "window");
}

TEST_P(ServerGatesTest, DeadlinePassedDuringTheApplyStopsAndRollsBack) {
  std::vector<Migration> files = FourMigrations();
  files[0] = MakeMigration("1", "slow", "CREATE TABLE slow_marker (id INT);\n" + db_->Sleep(),
                           "DROP TABLE slow_marker;");
  files.resize(2);
  DeployRequest request = Request(files);
  request.environment.max_duration = std::chrono::milliseconds(100);
  const Fingerprint before = Data();
  try {
    Deploy(request);
    FAIL() << "expected the deadline to stop the deploy";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed) << e.what();
    EXPECT_NE(std::string(e.what()).find("deadline"), std::string::npos) << e.what();
  }
  ExpectUntouched(before, "deadline");
}

TEST_P(ServerGatesTest, FailureInTheThirdOfFourLeavesTheDatabaseAsItWas) {
  const std::vector<Migration> files = FourMigrations();
  DeployReport rehearsal = RehearseOnly(*driver_, Request(files), reporter_);
  ASSERT_EQ(rehearsal.verdict, "go") << ::testing::PrintToString(rehearsal.reasons);
  // A duplicate title arrives after the rehearsal, as it would in production; the plan hash
  // (schema, not data) stays the same, so the deploy reuses the rehearsal.
  db_->Exec("INSERT INTO post (title) VALUES ('hello')");
  Reopen();
  const Fingerprint before = Data();
  try {
    Deploy(Request(files));
    FAIL() << "expected the third migration to fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed) << e.what();
    EXPECT_NE(std::string(e.what()).find("3_unique_title.up.sql"), std::string::npos) << e.what();
  }
  ExpectUntouched(before, "third of four");
}

TEST_P(ServerGatesTest, RehearsalCatchesADownThatFailsAndADownThatLeavesTheSchemaDifferent) {
  const Fingerprint before = Data();
  DeployReport failing = RehearseOnly(
      *driver_,
      Request({MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url TEXT;",
                             "ALTER TABLE post DROP COLUMN nope;")}),
      reporter_);
  EXPECT_EQ(failing.verdict, "no-go");
  ASSERT_TRUE(failing.rehearsal);
  EXPECT_EQ(failing.rehearsal->migrations[0].outcome, "down_failed");
  ASSERT_FALSE(failing.reasons.empty());
  EXPECT_NE(failing.reasons[0].find("1_add_url: down fails"), std::string::npos)
      << failing.reasons[0];
  ExpectUntouched(before, "failing down");

  DeployReport differs = RehearseOnly(
      *driver_,
      Request({MakeMigration("1", "add_url",
                             "ALTER TABLE post ADD COLUMN url TEXT;\n"
                             "CREATE INDEX post_title_plain ON post (title);",
                             "ALTER TABLE post DROP COLUMN url;")}),
      reporter_);
  EXPECT_EQ(differs.verdict, "no-go");
  ASSERT_TRUE(differs.rehearsal);
  EXPECT_EQ(differs.rehearsal->migrations[0].outcome, "down_differs");
  ASSERT_FALSE(differs.reasons.empty());
  EXPECT_NE(differs.reasons[0].find("post_title_plain"), std::string::npos) << differs.reasons[0];
  ExpectUntouched(before, "down that differs");
  const std::vector<JournalEntry> journal = driver_->ReadJournal(5);
  ASSERT_GE(journal.size(), 2u);
  EXPECT_EQ(journal[0].kind, "rehearsal");
  EXPECT_EQ(journal[0].outcome, "failed");
}

TEST_P(ServerGatesTest, RehearsalCatchesUpsThatPassOnAnEmptyDatabaseButFailOnTheRealData) {
  // The same tables without rows: what a CI database built from the migrations looks like.
  std::unique_ptr<ServerDatabase> empty = db_->Another();
  CreateShop(*empty, /*rows=*/false);
  std::unique_ptr<Driver> empty_driver = OpenDriver(empty->url(), OpenOptions{false});
  empty_driver->EnsureMetadata();
  const Fingerprint before = Data();
  const std::vector<Migration> breaking = {
      MakeMigration("1", "phone_required", db_->RequirePhone(), db_->AllowNullPhone()),
      MakeMigration("1", "unique_email", "CREATE UNIQUE INDEX customer_email ON customer (email);",
                    db_->DropIndex("customer_email", "customer"))};
  for (const Migration& migration : breaking) {
    DeployRequest on_empty =
        testing::ServerDeployRequest(empty->url(), dir_ / "empty-backups", {migration});
    DeployReport passes = RehearseOnly(*empty_driver, on_empty, reporter_);
    EXPECT_EQ(passes.verdict, "go")
        << migration.name << ": " << ::testing::PrintToString(passes.reasons);

    DeployReport report = RehearseOnly(*driver_, Request({migration}), reporter_);
    EXPECT_EQ(report.verdict, "no-go") << migration.name;
    ASSERT_TRUE(report.rehearsal) << migration.name;
    EXPECT_EQ(report.rehearsal->migrations[0].outcome, "up_failed") << migration.name;
    ASSERT_EQ(report.reasons.size(), 1u) << migration.name;
    EXPECT_NE(report.reasons[0].find("1_" + migration.name + ": up fails on a copy of the real data"),
              std::string::npos)
        << report.reasons[0];
    ExpectUntouched(before, migration.name);
  }
}

TEST_P(ServerGatesTest, RehearsalCountsExactlyWhatTheDownsCannotBringBack) {
  const Fingerprint before = Data();
  DeployReport report = RehearseOnly(
      *driver_,
      Request({MakeMigration("1", "drop_phone", "ALTER TABLE customer DROP COLUMN phone;",
                             "ALTER TABLE customer ADD COLUMN phone VARCHAR(40);"),
               MakeMigration("2", "drop_note", "DROP TABLE note;",
                             "CREATE TABLE note (body VARCHAR(100));")}),
      reporter_);
  EXPECT_EQ(report.verdict, "go") << ::testing::PrintToString(report.reasons);
  ASSERT_TRUE(report.rehearsal);
  ASSERT_EQ(report.rehearsal->migrations.size(), 2u);
  // 120 customers, 40 of them without a phone.
  EXPECT_EQ(report.rehearsal->migrations[0].data_loss,
            std::vector<std::string>{"dropping column " + db_->Table("customer") +
                                     ".phone loses 80 non-null values"});
  EXPECT_EQ(report.rehearsal->migrations[1].data_loss,
            std::vector<std::string>{"dropping table " + db_->Table("note") + " loses 3 rows"});
  EXPECT_TRUE(report.rehearsal->migrations[0].reversible);
  ExpectUntouched(before, "dropping rehearsal");
}

INSTANTIATE_TEST_SUITE_P(Servers, ServerGatesTest, ::testing::Values("postgres", "mariadb"),
                         [](const ::testing::TestParamInfo<std::string>& server) {
                           return server.param;
                         });

}  // namespace
}  // namespace safemig
