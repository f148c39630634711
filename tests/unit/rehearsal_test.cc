// The rehearsal on a SQLite copy of real data: what it catches, what it measures, and that
// the target and the disk are left as they were.
#include "engine/rehearsal.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/interrupt.h"
#include "deploy_fixture.h"
#include "engine/backups.h"

namespace safemig {
namespace {

using testing::MakeMigration;

class RehearsalTest : public testing::SqliteShop {
 protected:
  RehearsalRecord Run(const std::vector<Migration>& files, bool keep = false) {
    Backup();
    return RehearseFromBackup(files, keep);
  }

  void Backup() {
    BackupRequest request;
    request.environment = "test";
    backup_id_ = TakeBackup(*driver_, BackupStore(dir_ / "backups"), request, reporter_).manifest.id;
  }

  RehearsalRecord RehearseFromBackup(const std::vector<Migration>& files, bool keep = false) {
    Plan plan = PendingPlan(files);
    BackupStore store(dir_ / "backups");
    RehearsalOptions options;
    options.environment = "test";
    options.run_id = "20261126T000000Z-test";
    options.keep = keep;
    return Rehearse(*driver_, url_, plan, PlanHash(plan, Data().SchemaDigest()), store,
                    backup_id_, options, reporter_);
  }

  static bool Mentions(const std::vector<std::string>& lines, const std::string& text) {
    for (const std::string& line : lines) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

  std::string backup_id_;
};

TEST_F(RehearsalTest, ReversibleMigrationsPassWithTimingsAndLeaveTheTargetUntouched) {
  const Fingerprint before = Data();
  RehearsalRecord record =
      Run({MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url TEXT;",
                         "ALTER TABLE post DROP COLUMN url;"),
           MakeMigration("2", "index_email", "CREATE INDEX customer_email ON customer (email);",
                         "DROP INDEX customer_email;")});
  EXPECT_EQ(record.status, "passed");
  EXPECT_TRUE(record.reasons.empty());
  ASSERT_EQ(record.migrations.size(), 2u);
  for (const MigrationRehearsal& m : record.migrations) {
    EXPECT_EQ(m.outcome, "ok") << m.version;
    EXPECT_TRUE(m.reversible);
    EXPECT_TRUE(m.up && m.down && m.reapply);
    EXPECT_EQ(m.rollback_path, "down");
  }
  EXPECT_TRUE(record.restore.has_value());
  EXPECT_EQ(record.where, "temporary file");
  EXPECT_FALSE(record.up_state_schema_digest.empty());
  // The target: same schema and data, nothing applied; only the journal row is new.
  EXPECT_EQ(Data().Digest(), before.Digest());
  EXPECT_TRUE(driver_->ReadHistory().empty());
  auto journal = Journal();
  ASSERT_FALSE(journal.empty());
  EXPECT_EQ(journal[0].kind, "rehearsal");
  EXPECT_EQ(journal[0].outcome, "ok");
  EXPECT_EQ(journal[0].id, record.journal_id);
  EXPECT_EQ(journal[0].backup_id, backup_id_);
  EXPECT_TRUE(ScratchFiles().empty());
  // The backup was restored, so it counts as verified.
  EXPECT_TRUE(BackupStore(dir_ / "backups").Find(backup_id_).verified);
}

TEST_F(RehearsalTest, DownThatFailsIsANoGoNamingTheMigration) {
  const Fingerprint before = Data();
  RehearsalRecord record = Run({MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url TEXT;",
                                              "ALTER TABLE no_such_table DROP COLUMN url;"),
                                MakeMigration("2", "later", "CREATE TABLE later (id INTEGER);",
                                              "DROP TABLE later;")});
  EXPECT_EQ(record.status, "failed");
  ASSERT_EQ(record.reasons.size(), 1u);
  EXPECT_NE(record.reasons[0].find("1_add_url: down fails"), std::string::npos)
      << record.reasons[0];
  EXPECT_EQ(record.migrations[0].outcome, "down_failed");
  EXPECT_NE(record.migrations[0].error.find("no_such_table"), std::string::npos);
  EXPECT_EQ(record.migrations[1].outcome, "not_run");
  EXPECT_FALSE(record.migrations[1].up.has_value());
  EXPECT_EQ(Data().Digest(), before.Digest());
  EXPECT_EQ(Journal()[0].outcome, "failed");
  EXPECT_TRUE(ScratchFiles().empty()) << "the copy is dropped after a failure too";
}

TEST_F(RehearsalTest, DownThatLeavesTheSchemaDifferentSaysWhatDiffers) {
  RehearsalRecord record =
      Run({MakeMigration("20260301090000", "add_url", "ALTER TABLE post ADD COLUMN url TEXT;",
                         "SELECT 1;")});
  EXPECT_EQ(record.status, "failed");
  const MigrationRehearsal& m = record.migrations[0];
  EXPECT_EQ(m.outcome, "down_differs");
  EXPECT_FALSE(m.reversible);
  EXPECT_TRUE(Mentions(m.differences, "column url")) << ::testing::PrintToString(m.differences);
  ASSERT_EQ(record.reasons.size(), 1u);
  EXPECT_NE(record.reasons[0].find("20260301090000_add_url: down leaves the schema different"),
            std::string::npos)
      << record.reasons[0];
  EXPECT_TRUE(ScratchFiles().empty());
}

TEST_F(RehearsalTest, UniqueIndexOverDuplicatesFailsOnRealDataThoughAnEmptyDatabaseTakesIt) {
  const Migration unique = MakeMigration("1", "unique_email",
                                         "CREATE UNIQUE INDEX customer_email ON customer (email);",
                                         "DROP INDEX customer_email;");
  // On an empty database of the same schema the migration is fine...
  {
    DatabaseUrl empty_url;
    empty_url.engine = Engine::kSqlite;
    empty_url.path = (dir_ / "empty.db").string();
    auto empty = OpenDriver(empty_url, OpenOptions{});
    empty->EnsureMetadata();
    Reporter quiet;
    Migrator migrator(*empty, quiet);
    Plan schema;
    schema.steps.push_back(PendingPlan({MakeMigration(
                                           "0", "schema",
                                           "CREATE TABLE customer (id INTEGER PRIMARY KEY, "
                                           "email TEXT, phone TEXT);",
                                           "DROP TABLE customer;")})
                               .steps.front());
    migrator.Execute(schema, RunOptions{});
    Plan plan;
    plan.steps.push_back(PendingPlan({unique}).steps.front());
    EXPECT_NO_THROW(migrator.Execute(plan, RunOptions{}));
  }
  std::filesystem::remove(dir_ / "empty.db");
  // ...but the copy of the real data has duplicate e-mails.
  const Fingerprint before = Data();
  RehearsalRecord record = Run({unique});
  EXPECT_EQ(record.status, "failed");
  EXPECT_EQ(record.migrations[0].outcome, "up_failed");
  EXPECT_NE(record.migrations[0].error.find("UNIQUE"), std::string::npos)
      << record.migrations[0].error;
  EXPECT_NE(record.reasons[0].find("1_unique_email: up fails on a copy of the real data"),
            std::string::npos);
  EXPECT_EQ(Data().Digest(), before.Digest());
  EXPECT_TRUE(ScratchFiles().empty());
}

TEST_F(RehearsalTest, DroppedColumnIsReversibleInSchemaButReportsTheValuesItLoses) {
  RehearsalRecord record =
      Run({MakeMigration("1", "drop_phone", "ALTER TABLE customer DROP COLUMN phone;",
                         "ALTER TABLE customer ADD COLUMN phone TEXT;"),
           MakeMigration("2", "drop_post", "DROP TABLE post;",
                         "CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT NOT NULL);")});
  EXPECT_EQ(record.status, "passed") << ::testing::PrintToString(record.reasons);
  ASSERT_EQ(record.migrations.size(), 2u);
  EXPECT_TRUE(record.migrations[0].reversible);
  // 300 customers, every third without a phone: the NULLs are not counted as losses.
  EXPECT_EQ(record.migrations[0].data_loss,
            std::vector<std::string>{"dropping column customer.phone loses 200 non-null values"});
  EXPECT_TRUE(Mentions(record.migrations[1].data_loss, "dropping table post loses 2 rows"))
      << ::testing::PrintToString(record.migrations[1].data_loss);
}

TEST_F(RehearsalTest, DroppedColumnsCountExactlyTheValuesTheDownCannotBringBack) {
  // Names that need quoting; one column holds only NULLs, so dropping it loses nothing.
  Exec("CREATE TABLE \"order\" (id INTEGER PRIMARY KEY, \"the note\" TEXT, empty TEXT, "
       "code TEXT NOT NULL DEFAULT '');");
  Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) "
       "INSERT INTO \"order\" (\"the note\", code) SELECT CASE WHEN i % 4 = 0 THEN NULL "
       "ELSE 'note ' || i END, 'c' || i FROM n;");
  Reopen();
  const Fingerprint before = Data();
  RehearsalRecord record = Run({MakeMigration(
      "1", "drop_notes",
      "ALTER TABLE \"order\" DROP COLUMN \"the note\";\nALTER TABLE \"order\" DROP COLUMN "
      "empty;\nALTER TABLE \"order\" DROP COLUMN code;",
      "ALTER TABLE \"order\" ADD COLUMN \"the note\" TEXT;\nALTER TABLE \"order\" ADD COLUMN "
      "empty TEXT;\nALTER TABLE \"order\" ADD COLUMN code TEXT NOT NULL DEFAULT '';")});
  ASSERT_EQ(record.migrations.size(), 1u);
  const std::vector<std::string>& loss = record.migrations[0].data_loss;
  EXPECT_TRUE(Mentions(loss, "dropping column order.\"the note\" loses 1,125 non-null values"))
      << ::testing::PrintToString(loss);
  EXPECT_TRUE(Mentions(loss, "dropping column order.code loses 1,500 non-null values"))
      << ::testing::PrintToString(loss);
  EXPECT_FALSE(Mentions(loss, "empty")) << ::testing::PrintToString(loss);
  EXPECT_FALSE(Mentions(loss, "up to")) << ::testing::PrintToString(loss);
  EXPECT_EQ(Data().Digest(), before.Digest()) << "the counting ran on the copy only";
}

TEST_F(RehearsalTest, ADownThatBringsTheDataBackLosesNothing) {
  // The rehearsal reads most tables' rows as counts only; the tables an up that renames or
  // drops names are read in full, so their data coming back is seen.
  RehearsalRecord record = Run(
      {MakeMigration("1", "rename_phone", "ALTER TABLE customer RENAME COLUMN phone TO telephone;",
                     "ALTER TABLE customer RENAME COLUMN telephone TO phone;"),
       MakeMigration("2", "move_post",
                     "CREATE TABLE post_archive AS SELECT * FROM post;\nDROP TABLE post;",
                     "CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT NOT NULL);\n"
                     "INSERT INTO post SELECT id, title FROM post_archive;\n"
                     "DROP TABLE post_archive;")});
  EXPECT_EQ(record.status, "passed") << ::testing::PrintToString(record.reasons);
  ASSERT_EQ(record.migrations.size(), 2u);
  EXPECT_TRUE(record.migrations[0].data_loss.empty())
      << ::testing::PrintToString(record.migrations[0].data_loss);
  EXPECT_TRUE(record.migrations[1].data_loss.empty())
      << ::testing::PrintToString(record.migrations[1].data_loss);
}

TEST_F(RehearsalTest, IrreversibleMigrationIsNotANoGoButRollbackMustRestore) {
  Migration drop = MakeMigration("1", "drop_post", "-- safemig:irreversible\nDROP TABLE post;", "");
  drop.directives.irreversible = true;
  RehearsalRecord record = Run({drop});
  EXPECT_EQ(record.status, "passed");
  const MigrationRehearsal& m = record.migrations[0];
  EXPECT_EQ(m.outcome, "irreversible");
  EXPECT_FALSE(m.down.has_value()) << "its down is not run";
  EXPECT_EQ(m.rollback_path, "restore");
  EXPECT_TRUE(Mentions(m.data_loss, "dropping table post loses 2 rows"));
  RollbackEstimate rollback = EstimateRollback(record, backup_id_);
  EXPECT_FALSE(rollback.by_down.has_value());
  EXPECT_EQ(rollback.recommended, "restore");
  EXPECT_EQ(rollback.by_restore, record.restore);
}

TEST_F(RehearsalTest, KeepLeavesACopyThatLooksLikeTheUpState) {
  RehearsalRecord record =
      Run({MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url TEXT;",
                         "ALTER TABLE post DROP COLUMN url;")},
          /*keep=*/true);
  ASSERT_TRUE(record.kept);
  ASSERT_TRUE(std::filesystem::exists(record.scratch)) << record.scratch;
  DatabaseUrl kept;
  kept.engine = Engine::kSqlite;
  kept.path = record.scratch;
  auto copy = OpenDriver(kept, OpenOptions{false});
  EXPECT_EQ(copy->TakeFingerprint(false).SchemaDigest(), record.up_state_schema_digest);
}

TEST_F(RehearsalTest, CtrlCDropsTheCopyAndJournalsAFailedRehearsal) {
  Backup();
  SetInterruptedForTesting(true);
  EXPECT_THROW(RehearseFromBackup({MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url TEXT;",
                                  "ALTER TABLE post DROP COLUMN url;")}),
               Error);
  SetInterruptedForTesting(false);
  EXPECT_TRUE(ScratchFiles().empty());
  auto journal = Journal();
  ASSERT_FALSE(journal.empty());
  EXPECT_EQ(journal[0].kind, "rehearsal");
  EXPECT_EQ(journal[0].outcome, "failed");
}

TEST_F(RehearsalTest, JournalRemembersTheRehearsalByPlanHashAndAge) {
  const std::vector<Migration> files = {MakeMigration(
      "1", "add_url", "ALTER TABLE post ADD COLUMN url TEXT;", "ALTER TABLE post DROP COLUMN url;")};
  RehearsalRecord record = Run(files);
  const auto now = std::chrono::system_clock::now();
  RehearsalRecord found =
      LastRehearsal(Journal(), record.plan_hash, now, std::chrono::hours(24));
  EXPECT_EQ(found.status, "passed");
  EXPECT_EQ(found.journal_id, record.journal_id);
  EXPECT_EQ(found.up_state_schema_digest, record.up_state_schema_digest);
  ASSERT_EQ(found.migrations.size(), 1u);
  EXPECT_EQ(found.migrations[0].down, record.migrations[0].down);
  EXPECT_EQ(LastRehearsal(Journal(), record.plan_hash, now + std::chrono::hours(25),
                          std::chrono::hours(24))
                .status,
            "stale");
  EXPECT_EQ(LastRehearsal(Journal(), "another plan", now, std::chrono::hours(24)).status,
            "missing");
}

TEST(PlanHash, ChangesWithAChecksumOrTheStartingSchema) {
  Plan plan;
  PlannedStep step;
  step.version = "1";
  step.row.checksum = "aaaa";
  plan.steps.push_back(step);
  const std::string hash = PlanHash(plan, "schema-1");
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(PlanHash(plan, "schema-1"), hash);
  EXPECT_NE(PlanHash(plan, "schema-2"), hash);
  plan.steps[0].row.checksum = "bbbb";
  EXPECT_NE(PlanHash(plan, "schema-1"), hash);
}

}  // namespace
}  // namespace safemig
