// A run killed in the middle of a migration that cannot roll back: the next run refuses,
// and `safemig recover` puts the database back as it was before that run.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::RunSafemig;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

// The second statement of the second migration runs for a few seconds without writing, so
// a test can read the journal and kill the run while it is there. `up` rehearses it on a
// copy first (twice), so the statement must not be so slow that the rehearsal takes ages.
constexpr const char* kSlowUp =
    "-- safemig:no-transaction\n"
    "CREATE TABLE half (id INTEGER);\n"
    "SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
    "WHERE x < 8000000) SELECT x FROM c);\n"
    "CREATE TABLE after_slow (id INTEGER);\n";

class RecoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "migrations/20260101000000_base.up.sql",
              "CREATE TABLE t (id INTEGER PRIMARY KEY);\nINSERT INTO t VALUES (1), (2);\n");
    WriteFile(dir_ / "migrations/20260101000000_base.down.sql", "DROP TABLE t;\n");
    WriteFile(dir_ / "migrations/20260102000000_slow.up.sql", kSlowUp);
    WriteFile(dir_ / "migrations/20260102000000_slow.down.sql",
              "DROP TABLE after_slow;\nDROP TABLE half;\n");
    auto base = RunSafemig("up --to 20260101000000" + Args(), dir_.path());
    ASSERT_EQ(base.exit_code, 0) << base.err;
  }

  std::string Args() const {
    return " --dir " + (dir_ / "migrations").string() + " --url sqlite:" + Db();
  }
  std::string Db() const { return (dir_ / "app.db").string(); }

  bool TableExists(const std::string& name) const {
    SQLite::Database db(Db(), SQLite::OPEN_READONLY);
    SQLite::Statement query(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    query.bind(1, name);
    return query.executeStep();
  }

  // Starts `safemig up`, waits until its journal says the slow statement has started, and
  // kills it as a power cut would.
  void KillUpDuringSlowStatement() {
    const testing::KilledRun run = testing::KillSafemigWhen(
        {"up", "--dir", (dir_ / "migrations").string(), "--url", "sqlite:" + Db()}, dir_.path(),
        {}, [&] {
          try {
            SQLite::Database db(Db(), SQLite::OPEN_READONLY);
            db.setBusyTimeout(100);
            SQLite::Statement query(db,
                                    "SELECT details FROM safemig_journal ORDER BY id DESC LIMIT 1");
            return query.executeStep() &&
                   testing::JournalAtStatement(query.getColumn(0).getString(), 2);
          } catch (const SQLite::Exception&) {
            return false;  // the writer holds the database for a moment; look again
          }
        });
    ASSERT_TRUE(run.reached) << "the run never journaled its second statement";
    ASSERT_TRUE(run.killed) << "the run finished before it could be killed";
  }

  TempDir dir_;
};

TEST_F(RecoverTest, NextRunRefusesAndNamesTheStatementAndTheCommand) {
  KillUpDuringSlowStatement();
  ASSERT_TRUE(TableExists("half"));  // statement 1 committed on its own

  auto again = RunSafemig("up" + Args(), dir_.path());
  EXPECT_EQ(again.exit_code, 9) << again.err;
  EXPECT_NE(again.err.find("statement 2 of 3"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("20260102000000"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("safemig recover"), std::string::npos) << again.err;
  EXPECT_FALSE(TableExists("after_slow"));

  // Going back is refused as well, before it takes a backup of the half-migrated state.
  const auto backups = [&] {
    std::size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_ / ".safemig/backups/default")) {
      n += entry.is_directory() ? 1 : 0;
    }
    return n;
  };
  const std::size_t before = backups();
  auto down = RunSafemig("down" + Args(), dir_.path());
  EXPECT_EQ(down.exit_code, 9) << down.err;
  EXPECT_NE(down.err.find("safemig recover"), std::string::npos) << down.err;
  EXPECT_EQ(backups(), before);
}

TEST_F(RecoverTest, RecoverRestoresTheBackupTakenBeforeTheRun) {
  KillUpDuringSlowStatement();

  auto unconfirmed = RunSafemig("recover" + Args(), dir_.path());
  EXPECT_EQ(unconfirmed.exit_code, 2) << unconfirmed.err;
  EXPECT_TRUE(TableExists("half"));

  auto recover = RunSafemig("recover --yes --format json" + Args(), dir_.path());
  ASSERT_EQ(recover.exit_code, 0) << recover.err;
  auto json = nlohmann::json::parse(recover.out);
  EXPECT_EQ(json["action"], "restored");
  EXPECT_EQ(json["interrupted"]["version"], "20260102000000");
  EXPECT_EQ(json["interrupted"]["statement"], 2);
  EXPECT_FALSE(json["safety_backup_id"].get<std::string>().empty());
  EXPECT_FALSE(TableExists("half"));
  EXPECT_TRUE(TableExists("t"));

  auto status = RunSafemig("status --format json" + Args(), dir_.path());
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(nlohmann::json::parse(status.out)["current_version"], "20260101000000");

  auto history = RunSafemig("history --journal --format json" + Args(), dir_.path());
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_EQ(nlohmann::json::parse(history.out)["journal"][0]["kind"], "recover");

  auto nothing = RunSafemig("recover" + Args(), dir_.path());
  EXPECT_EQ(nothing.exit_code, 0) << nothing.err;
  EXPECT_NE(nothing.out.find("Nothing to recover"), std::string::npos) << nothing.out;
}

TEST_F(RecoverTest, ResolvedByHandLetsRunsGoOnWithoutRestoring) {
  KillUpDuringSlowStatement();
  // The person undoes the statement that ran by hand instead, and says so.
  {
    SQLite::Database db(Db(), SQLite::OPEN_READWRITE);
    db.exec("DROP TABLE half");
  }
  auto resolved = RunSafemig("recover --resolved 'dropped half by hand'" + Args(), dir_.path());
  ASSERT_EQ(resolved.exit_code, 0) << resolved.err;
  auto journal = RunSafemig("history --journal --format json" + Args(), dir_.path());
  EXPECT_NE(journal.out.find("dropped half by hand"), std::string::npos) << journal.out;
  // ... and makes the slow statement fast before trying again.
  WriteFile(dir_ / "migrations/20260102000000_slow.up.sql",
            "-- safemig:no-transaction\nCREATE TABLE half (id INTEGER);\n"
            "CREATE TABLE after_slow (id INTEGER);\n");

  auto up = RunSafemig("up" + Args(), dir_.path());
  EXPECT_EQ(up.exit_code, 0) << up.err;
  EXPECT_TRUE(TableExists("after_slow"));
}

TEST_F(RecoverTest, AStatementThatFailsBeforeAnyRanLeavesNoTrace) {
  WriteFile(dir_ / "migrations/20260102000000_slow.up.sql",
            "-- safemig:no-transaction\nINSERT INTO no_such_table VALUES (1);\n"
            "CREATE TABLE never (id INTEGER);\n");
  auto failed = RunSafemig("up" + Args(), dir_.path());
  EXPECT_NE(failed.exit_code, 0) << failed.err;  // the rehearsal catches it: a no-go (5)
  auto recover = RunSafemig("recover" + Args(), dir_.path());
  EXPECT_EQ(recover.exit_code, 0) << recover.err;
  EXPECT_NE(recover.out.find("Nothing to recover"), std::string::npos) << recover.out;
}

}  // namespace
}  // namespace safemig
