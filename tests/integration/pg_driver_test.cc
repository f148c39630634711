// PostgreSQL-specific driver behaviour beyond the shared conformance suite.
#include "drivers/postgres/pg_driver.h"

#include <gtest/gtest.h>

#include <thread>

#include "core/error.h"
#include "core/sql_split.h"
#include "server_env.h"

namespace safemig {
namespace {

ApplyStep AlterStep() {
  ApplyStep step;
  step.source = "2_add_note.up.sql";
  step.statements = SplitStatements("ALTER TABLE busy ADD COLUMN note text;", Dialect::kPostgres);
  step.row.version = "2";
  step.row.name = "add_note";
  step.row.checksum = "c";
  step.row.up_path = step.source;
  step.row.down_sql = "ALTER TABLE busy DROP COLUMN note";
  step.row.down_checksum = "d";
  step.row.applied_at = "2026-01-01T00:00:00.000Z";
  step.row.applied_by = "tester@host";
  step.row.deploy_id = "run";
  return step;
}

TEST(PostgresDriver, LockTimeoutIsRetriedWithBackoffAndEachTryReported) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  testing::ScratchPostgresDatabase db(server);
  db.Exec("CREATE TABLE busy (id int)");
  auto driver = OpenPostgresDriver(db.url(), OpenOptions{});
  driver->EnsureMetadata();
  driver->SetTimeouts(std::chrono::milliseconds(100), std::nullopt);
  std::vector<std::string> reports;
  driver->SetNotifier([&](const std::string& message) { reports.push_back(message); });

  // Another session holds a lock that conflicts with ALTER TABLE for about 1.5 s.
  PgConn holder = ConnectLibpq(db.url());
  ExecLibpq(holder.get(), "BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE");
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    ExecLibpq(holder.get(), "COMMIT");
  });
  EXPECT_NO_THROW(driver->Apply(AlterStep()));
  release.join();
  ASSERT_GE(reports.size(), 1u);
  EXPECT_NE(reports[0].find("55P03"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("try 1 of"), std::string::npos) << reports[0];
  EXPECT_EQ(driver->ReadHistory().size(), 1u);
}

TEST(PostgresDriver, LockTimeoutGivesUpAfterBoundedRetries) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  testing::ScratchPostgresDatabase db(server);
  db.Exec("CREATE TABLE busy (id int)");
  auto driver = OpenPostgresDriver(db.url(), OpenOptions{});
  driver->EnsureMetadata();
  driver->SetTimeouts(std::chrono::milliseconds(50), std::nullopt);
  int tries = 0;
  driver->SetNotifier([&](const std::string&) { ++tries; });
  PgConn holder = ConnectLibpq(db.url());
  ExecLibpq(holder.get(), "BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE");
  try {
    driver->Apply(AlterStep());
    FAIL() << "expected the lock timeout to win";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed);
    EXPECT_NE(std::string(e.what()).find("2_add_note.up.sql:1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(tries, 3);
  EXPECT_TRUE(driver->ReadHistory().empty());
  ExecLibpq(holder.get(), "COMMIT");
}

TEST(PostgresDriver, LockHolderIsNamedWithPidAndApplication) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  testing::ScratchPostgresDatabase db(server);
  auto first = OpenPostgresDriver(db.url(), OpenOptions{});
  auto lock = first->Lock(std::chrono::seconds(1), "first");
  auto second = OpenPostgresDriver(db.url(), OpenOptions{});
  try {
    second->Lock(std::chrono::milliseconds(200), "second");
    FAIL();
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("held by pid "), std::string::npos) << message;
    EXPECT_NE(message.find("safemig as safemig from 127.0.0.1"), std::string::npos) << message;
    EXPECT_EQ(message.find("safemig-test-pw"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace safemig
