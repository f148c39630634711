// A run killed with SIGKILL in the middle of a MariaDB migration, whose DDL commits statement
// by statement: the next run refuses (exit 9) and names `safemig recover`, which puts the
// database back exactly as it was before that run; after that, runs go on.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "core/fingerprint.h"
#include "driver/driver.h"
#include "server_env.h"
#include "test_util.h"

namespace safemig {
namespace {

using testing::CommandLineUrl;
using testing::RunSafemig;
using testing::ScratchMySqlDatabase;
using testing::ShellQuote;
using testing::TempDir;
using testing::WriteFile;

// Statement 2 waits without writing, so the test can see it start in the journal and kill
// the run there; statement 1 has committed by then (MariaDB DDL commits itself).
constexpr const char* kSlowUp =
    "CREATE TABLE half (id INT);\n"
    "DO SLEEP(3);\n"
    "CREATE TABLE after_slow (id INT);\n";

class MySqlRecoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SAFEMIG_REQUIRE_MYSQL(server);
    db_ = std::make_unique<ScratchMySqlDatabase>(server);
    WriteFile(dir_ / "migrations/20260101000000_base.up.sql",
              "CREATE TABLE t (id INT PRIMARY KEY);\nINSERT INTO t VALUES (1), (2);\n");
    WriteFile(dir_ / "migrations/20260101000000_base.down.sql", "DROP TABLE t;\n");
    WriteFile(dir_ / "migrations/20260102000000_slow.up.sql", kSlowUp);
    WriteFile(dir_ / "migrations/20260102000000_slow.down.sql",
              "DROP TABLE after_slow;\nDROP TABLE half;\n");
    url_ = CommandLineUrl("SAFEMIG_TEST_MYSQL_URL", db_->name());
    auto base = Run("up --to 20260101000000");
    ASSERT_EQ(base.exit_code, 0) << base.err;
  }

  // The URL travels in the environment, never on a command line.
  testing::CommandResult Run(const std::string& command) {
    return RunSafemig(command + " --dir " + ShellQuote((dir_ / "migrations").string()),
                      dir_.path(), "SAFEMIG_DATABASE_URL=" + ShellQuote(url_));
  }

  bool TableExists(const std::string& name) const {
    return !db_->Query("SHOW TABLES LIKE '" + name + "'").empty();
  }

  Fingerprint Schema() const {
    return OpenDriver(db_->url(), OpenOptions{false})->TakeFingerprint(false);
  }

  // Starts `safemig up`, waits until its journal says statement 2 has started, and kills
  // it as a power cut would.
  void KillUpDuringStatement2() {
    const testing::KilledRun run = testing::KillSafemigWhen(
        {"up", "--dir", (dir_ / "migrations").string()}, dir_.path(),
        {{"SAFEMIG_DATABASE_URL", url_}}, [&] {
          try {
            for (const MySqlRow& row :
                 db_->Query("SELECT details FROM safemig_journal ORDER BY id DESC LIMIT 1")) {
              return testing::JournalAtStatement(row[0].value_or(""), 2);
            }
          } catch (const std::exception&) {
            // The journal table is not there yet; look again.
          }
          return false;
        });
    ASSERT_TRUE(run.reached) << "the run never journaled its second statement";
    ASSERT_TRUE(run.killed) << "the run finished before it could be killed";
  }

  std::unique_ptr<ScratchMySqlDatabase> db_;
  TempDir dir_;
  std::string url_;
};

TEST_F(MySqlRecoverTest, AKilledRunIsRefusedThenRecoverPutsTheDatabaseBack) {
  const Fingerprint before = Schema();
  KillUpDuringStatement2();
  ASSERT_TRUE(TableExists("half"));  // statement 1 committed on its own
  EXPECT_FALSE(TableExists("after_slow"));

  auto again = Run("up");
  EXPECT_EQ(again.exit_code, 9) << again.err;
  EXPECT_NE(again.err.find("statement 2 of 3"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("20260102000000"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("safemig recover"), std::string::npos) << again.err;

  auto recover = Run("recover --yes --format json");
  ASSERT_EQ(recover.exit_code, 0) << recover.err;
  auto json = nlohmann::json::parse(recover.out);
  EXPECT_EQ(json["action"], "restored");
  EXPECT_EQ(json["interrupted"]["version"], "20260102000000");
  EXPECT_EQ(json["interrupted"]["statement"], 2);
  EXPECT_FALSE(json["safety_backup_id"].get<std::string>().empty());
  EXPECT_EQ(recover.out.find(url_.substr(url_.find("://"))), std::string::npos)
      << "the URL with its password reached the output";

  // Exactly as before the killed run: schema and rows.
  const Fingerprint after = Schema();
  EXPECT_EQ(after.Digest(), before.Digest())
      << ::testing::PrintToString(DescribeDifferences(before, after));
  EXPECT_FALSE(TableExists("half"));

  auto status = Run("status --format json");
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(nlohmann::json::parse(status.out)["current_version"], "20260101000000");

  // And runs go on: the migration applies whole this time.
  auto up = Run("up");
  EXPECT_EQ(up.exit_code, 0) << up.err;
  EXPECT_TRUE(TableExists("after_slow"));
}

}  // namespace
}  // namespace safemig
