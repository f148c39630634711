// Backups through the command line: automatic backups before changes, the backup commands,
// exit 6 on damage, policies, restore.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <csignal>
#include <thread>

#include "test_util.h"

namespace safemig {
namespace {

namespace fs = std::filesystem;
using safemig::testing::ReadFile;
using safemig::testing::RunSafemig;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

const std::string kExamples = std::string(SAFEMIG_SOURCE_DIR) + "/migrations-examples/sqlite";

class CliBackupTest : public ::testing::Test {
 protected:
  std::string Flags() const { return " --dir " + kExamples + " --url sqlite:app.db"; }
  nlohmann::json Json(const std::string& args) {
    auto result = RunSafemig(args + " --format json" + Flags(), dir_.path());
    EXPECT_EQ(result.exit_code, 0) << args << ": " << result.err;
    return nlohmann::json::parse(result.out);
  }
  TempDir dir_;
};

TEST_F(CliBackupTest, UpTakesABackupFirstAndHistoryRecordsIt) {
  ASSERT_EQ(RunSafemig("up --steps 2" + Flags(), dir_.path()).exit_code, 0);
  auto up = Json("up");
  ASSERT_TRUE(up["backup"].is_object()) << up.dump();
  const std::string id = up["backup"]["id"];
  EXPECT_NE(id.find("_default_v"), std::string::npos);
  auto history = Json("history");
  EXPECT_EQ(history["applied"].back()["backup_id"], id);
  auto journal = Json("history --journal");
  EXPECT_EQ(journal["journal"][0]["backup_id"], id);
  auto list = Json("backup list");
  EXPECT_EQ(list["backups"].size(), 2u);
  // The backup holds the database as it was before this run: version after the first two.
  EXPECT_EQ(list["backups"][1]["migration_version"], history["applied"][1]["version"]);
}

TEST_F(CliBackupTest, SkipBackupIsAllowedOnlyOutsideProtectedEnvironments) {
  auto skipped = RunSafemig("up --skip-backup" + Flags(), dir_.path());
  EXPECT_EQ(skipped.exit_code, 0) << skipped.err;
  EXPECT_NE(skipped.err.find("no backup taken"), std::string::npos);
  EXPECT_EQ(Json("backup list")["backups"].size(), 0u);

  WriteFile(dir_ / "safemig.toml",
            "[environments.production]\nurl = \"sqlite:prod.db\"\nprotected = true\n");
  auto refused = RunSafemig("up --skip-backup --dir " + kExamples, dir_.path());
  EXPECT_EQ(refused.exit_code, 5);
  EXPECT_NE(refused.err.find("protected"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(dir_ / "prod.db")) << "refused before touching anything";
}

TEST_F(CliBackupTest, VerifyExitsSixNamingTheDamagedPart) {
  ASSERT_EQ(RunSafemig("up" + Flags(), dir_.path()).exit_code, 0);
  auto created = Json("backup create --label nightly");
  const std::string dir = created["dir"];
  EXPECT_EQ(RunSafemig("backup verify latest" + Flags(), dir_.path()).exit_code, 0);
  fs::path part = fs::path(dir_.path()) / dir / "parts" / "database.sqlite3.zst";
  std::string bytes = ReadFile(part);
  bytes[bytes.size() / 2] ^= 0x10;
  WriteFile(part, bytes);
  auto verify = RunSafemig("backup verify latest --format json" + Flags(), dir_.path());
  EXPECT_EQ(verify.exit_code, 6);
  auto json = nlohmann::json::parse(verify.out);
  EXPECT_EQ(json["error"]["category"], "integrity");
  EXPECT_NE(json["error"]["message"].get<std::string>().find("database.sqlite3.zst"),
            std::string::npos);
}

TEST_F(CliBackupTest, DamagedBackupRestoreExitsSixAndLeavesTheDatabaseUntouched) {
  ASSERT_EQ(RunSafemig("up --steps 1" + Flags(), dir_.path()).exit_code, 0);
  auto created = Json("backup create");
  ASSERT_EQ(RunSafemig("up" + Flags(), dir_.path()).exit_code, 0);
  fs::path part = fs::path(dir_.path()) / created["dir"].get<std::string>() / "parts" /
                  "database.sqlite3.zst";
  fs::resize_file(part, fs::file_size(part) - 7);
  const std::string before = ReadFile(dir_ / "app.db");
  auto restore = RunSafemig("restore " + created["id"].get<std::string>() + " --in-place --yes" +
                                Flags(),
                            dir_.path());
  EXPECT_EQ(restore.exit_code, 6) << restore.err;
  EXPECT_NE(restore.err.find("truncated"), std::string::npos) << restore.err;
  EXPECT_EQ(ReadFile(dir_ / "app.db"), before);
}

TEST_F(CliBackupTest, InPlaceRestoreNeedsConfirmationAndKeepsASafetyBackup) {
  ASSERT_EQ(RunSafemig("up --steps 1" + Flags(), dir_.path()).exit_code, 0);
  auto created = Json("backup create");
  ASSERT_EQ(RunSafemig("up" + Flags(), dir_.path()).exit_code, 0);
  auto unconfirmed = RunSafemig("restore latest --in-place" + Flags(), dir_.path());
  EXPECT_EQ(unconfirmed.exit_code, 2);
  auto restored = Json("restore " + created["id"].get<std::string>() + " --in-place --yes");
  const std::string safety = restored["safety_backup_id"];
  EXPECT_FALSE(safety.empty());
  auto status = Json("status");
  EXPECT_EQ(status["applied"], 1);
  // And the state it replaced can be brought back.
  Json("restore " + safety + " --in-place --yes");
  EXPECT_EQ(Json("status")["pending"], 0);
}

TEST_F(CliBackupTest, RestoreDefaultsToANewFileBesideTheDatabase) {
  ASSERT_EQ(RunSafemig("up" + Flags(), dir_.path()).exit_code, 0);
  Json("backup create");
  auto restored = Json("restore latest");
  EXPECT_FALSE(restored["in_place"].get<bool>());
  const std::string target = restored["target"];
  EXPECT_NE(target.find("app.restored-"), std::string::npos) << target;
  auto again = RunSafemig("restore latest" + Flags(), dir_.path());
  EXPECT_EQ(again.exit_code, 2) << "never overwrites the earlier restore";
}

TEST_F(CliBackupTest, PruneAppliesRetentionFromTheConfig) {
  WriteFile(dir_ / "safemig.toml",
            "migrations = \"" + kExamples + "\"\n[environments.dev]\nurl = \"sqlite:dev.db\"\n" +
                "backup_keep_last = 2\n");
  ASSERT_EQ(RunSafemig("up", dir_.path()).exit_code, 0);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(RunSafemig("backup create", dir_.path()).exit_code, 0);
  }
  auto prune = RunSafemig("backup prune --format json", dir_.path());
  ASSERT_EQ(prune.exit_code, 0) << prune.err;
  auto json = nlohmann::json::parse(prune.out);
  // Five backups (one before up): the newest two stay, and so does the pre-change one.
  EXPECT_EQ(json["removed"].size(), 2u) << prune.out;
  auto list = nlohmann::json::parse(RunSafemig("backup list --format json", dir_.path()).out);
  EXPECT_EQ(list["backups"].size(), 3u);
}

// --- restore --tables, --before, --version and list filters ----------------------------

// Runs SQL on a SQLite file and returns the rows of the last statement, one string a row
// ("1|a@x|Ann"), in the order the query gives.
std::vector<std::string> Sql(const fs::path& db_path, const std::string& sql) {
  SQLite::Database db(db_path.string(), SQLite::OPEN_READWRITE);
  std::vector<std::string> rows;
  SQLite::Statement query(db, sql);
  while (query.executeStep()) {
    std::string row;
    for (int i = 0; i < query.getColumnCount(); ++i) {
      row += (i > 0 ? "|" : "") + query.getColumn(i).getString();
    }
    rows.push_back(row);
  }
  return rows;
}
void Exec(const fs::path& db_path, const std::string& sql) {
  SQLite::Database db(db_path.string(), SQLite::OPEN_READWRITE);
  db.exec(sql);
}

class CliTableRestoreTest : public CliBackupTest {
 protected:
  // The shop at its newest version, two customers and two products, then a backup.
  void SetUp() override {
    ASSERT_EQ(RunSafemig("up" + Flags(), dir_.path()).exit_code, 0);
    Exec(dir_ / "app.db",
         "INSERT INTO customers (id, email, name) VALUES (1, 'ann@example.com', 'Ann'), "
         "(2, 'bob@example.com', 'Bob');"
         "INSERT INTO products (sku, name, price_cents) VALUES ('p1', 'Pen', 150), "
         "('p2', 'Pad', 300);");
    backup_ = Json("backup create")["id"];
  }
  std::vector<std::string> Customers(const std::string& file = "app.db") {
    return Sql(dir_ / file, "SELECT id, email, name FROM customers ORDER BY id");
  }
  std::vector<std::string> Products(const std::string& file = "app.db") {
    return Sql(dir_ / file, "SELECT sku, name, price_cents FROM products WHERE sku LIKE 'p_' "
                            "ORDER BY sku");
  }
  size_t BackupCount() { return Json("backup list")["backups"].size(); }
  std::string backup_;
};

TEST_F(CliTableRestoreTest, TablesIntoANewDatabaseHoldOnlyThoseTablesWithTheirRows) {
  Exec(dir_ / "app.db", "UPDATE customers SET name = 'Changed'");
  auto restored = Json("restore " + backup_ + " --tables customers --into sqlite:only.db");
  ASSERT_EQ(restored["tables"].size(), 1u) << restored.dump();
  EXPECT_EQ(restored["tables"][0]["table"], "customers");
  EXPECT_EQ(restored["tables"][0]["rows"], 2);
  EXPECT_EQ(Customers("only.db"),
            (std::vector<std::string>{"1|ann@example.com|Ann", "2|bob@example.com|Bob"}));
  // Its index came along; the tables not asked for and the view over them did not.
  EXPECT_EQ(Sql(dir_ / "only.db", "SELECT name FROM sqlite_master WHERE type IN ('table', "
                                  "'view') AND name NOT LIKE 'safemig%' AND name NOT LIKE 'sqlite%' "
                                  "ORDER BY name"),
            std::vector<std::string>{"customers"});
  EXPECT_FALSE(Sql(dir_ / "only.db", "SELECT name FROM sqlite_master WHERE type = 'index' AND "
                                     "tbl_name = 'customers'")
                   .empty());
  // The environment's database was not touched.
  EXPECT_EQ(Sql(dir_ / "app.db", "SELECT DISTINCT name FROM customers"),
            std::vector<std::string>{"Changed"});
}

TEST_F(CliTableRestoreTest, TablesInPlaceReplaceOnlyThoseRowsAfterASafetyBackup) {
  Exec(dir_ / "app.db",
       "UPDATE customers SET name = 'Changed' WHERE id = 1;"
       "INSERT INTO customers (id, email, name) VALUES (3, 'cy@example.com', 'Cy');"
       "UPDATE products SET price_cents = 999 WHERE sku = 'p1';");
  auto restore = RunSafemig("restore " + backup_ + " --tables customers --in-place --yes" +
                                Flags(),
                            dir_.path());
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  EXPECT_NE(restore.out.find("customers"), std::string::npos) << restore.out;
  EXPECT_NE(restore.out.find("2 rows"), std::string::npos) << restore.out;
  EXPECT_EQ(Customers(),
            (std::vector<std::string>{"1|ann@example.com|Ann", "2|bob@example.com|Bob"}));
  // Other tables keep what they hold now.
  EXPECT_EQ(Products(), (std::vector<std::string>{"p1|Pen|999", "p2|Pad|300"}));
  // The replaced state is a backup, and restores.
  auto list = Json("backup list --reason before-restore");
  ASSERT_EQ(list["backups"].size(), 1u);
  const std::string safety = list["backups"][0]["id"];
  Json("restore " + safety + " --tables customers --into sqlite:before.db");
  EXPECT_EQ(Customers("before.db"),
            (std::vector<std::string>{"1|ann@example.com|Changed", "2|bob@example.com|Bob",
                                      "3|cy@example.com|Cy"}));
}

TEST_F(CliTableRestoreTest, RefusesATableTheBackupDoesNotHoldAndChangesNothing) {
  const std::string before = ReadFile(dir_ / "app.db");
  const size_t backups = BackupCount();
  auto refused = RunSafemig("restore " + backup_ + " --tables customers,invoices --in-place --yes" +
                                Flags(),
                            dir_.path());
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("table invoices is not in backup"), std::string::npos) << refused.err;
  EXPECT_EQ(ReadFile(dir_ / "app.db"), before);
  EXPECT_EQ(BackupCount(), backups) << "no safety backup for a refused restore";
}

TEST_F(CliTableRestoreTest, RefusesATableWhoseColumnsChangedAndChangesNothing) {
  Exec(dir_ / "app.db", "ALTER TABLE customers ADD COLUMN phone TEXT;"
                        "UPDATE customers SET name = 'Changed';");
  const std::string before = ReadFile(dir_ / "app.db");
  const size_t backups = BackupCount();
  auto refused = RunSafemig("restore " + backup_ + " --tables customers --in-place --yes" +
                                Flags(),
                            dir_.path());
  EXPECT_EQ(refused.exit_code, 5) << refused.err;
  EXPECT_NE(refused.err.find("column phone was added"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("into a new database"), std::string::npos) << refused.err;
  EXPECT_EQ(ReadFile(dir_ / "app.db"), before);
  EXPECT_EQ(BackupCount(), backups);
}

TEST_F(CliTableRestoreTest, RefusesToBreakAForeignKeyAndChangesNothing) {
  // An order written since the backup references a customer the backup lacks.
  Exec(dir_ / "app.db",
       "INSERT INTO customers (id, email, name) VALUES (3, 'cy@example.com', 'Cy');"
       "INSERT INTO orders (id, customer_id) VALUES (10, 3);");
  auto refused = RunSafemig("restore " + backup_ + " --tables customers --in-place --yes" +
                                Flags(),
                            dir_.path());
  EXPECT_EQ(refused.exit_code, 5) << refused.err;
  EXPECT_NE(refused.err.find("1 row of orders pointing at no row of customers"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(Customers(), (std::vector<std::string>{"1|ann@example.com|Ann", "2|bob@example.com|Bob",
                                                   "3|cy@example.com|Cy"}));
  EXPECT_EQ(Sql(dir_ / "app.db", "SELECT id, customer_id FROM orders"),
            std::vector<std::string>{"10|3"});
  // Restoring both tables together is consistent, and allowed.
  auto both = RunSafemig("restore " + backup_ + " --tables customers,orders --in-place --yes" +
                             Flags(),
                         dir_.path());
  EXPECT_EQ(both.exit_code, 0) << both.err;
  EXPECT_TRUE(Sql(dir_ / "app.db", "SELECT id FROM orders").empty());
}

TEST_F(CliTableRestoreTest, VersionAndBeforeChooseTheNewestMatchingBackupAndSayWhy) {
  const std::string newest_version =
      Json("backup list")["backups"].back()["migration_version"];
  ASSERT_EQ(RunSafemig("down --steps 1" + Flags(), dir_.path()).exit_code, 0);
  // down took a backup at the newest version; it is newer than backup_.
  auto at_version = Json("backup list --version " + newest_version);
  const std::string chosen = at_version["backups"].back()["id"];
  EXPECT_NE(chosen, backup_);
  auto by_version = RunSafemig("restore --version " + newest_version + " --into sqlite:v.db" +
                                   Flags(),
                               dir_.path());
  ASSERT_EQ(by_version.exit_code, 0) << by_version.err;
  EXPECT_NE(by_version.out.find("Chose backup " + chosen), std::string::npos) << by_version.out;
  EXPECT_NE(by_version.out.find("taken at version " + newest_version), std::string::npos);

  // --before the down's backup was created picks backup_.
  const std::string cut = at_version["backups"].back()["created_at"];
  auto by_time = Json("restore --before " + cut + " --into sqlite:t.db");
  EXPECT_EQ(by_time["id"], backup_);
  EXPECT_NE(by_time["chosen_because"].get<std::string>().find("taken before"), std::string::npos);
  auto relative = Json("restore --before 0s --into sqlite:r.db");
  EXPECT_EQ(relative["id"], chosen);
}

TEST_F(CliTableRestoreTest, RestoreRefusesAmbiguousOrUnmatchedSelections) {
  auto two = RunSafemig("restore " + backup_ + " --before 1h" + Flags(), dir_.path());
  EXPECT_EQ(two.exit_code, 2);
  EXPECT_NE(two.err.find("exactly one of"), std::string::npos) << two.err;
  auto none = RunSafemig("restore" + Flags(), dir_.path());
  EXPECT_EQ(none.exit_code, 2);
  auto too_early = RunSafemig("restore --before 2001-01-01T00:00:00Z" + Flags(), dir_.path());
  EXPECT_EQ(too_early.exit_code, 2);
  EXPECT_NE(too_early.err.find("no backup of environment default was taken before"),
            std::string::npos)
      << too_early.err;
  auto garbage = RunSafemig("restore --before yesterday" + Flags(), dir_.path());
  EXPECT_EQ(garbage.exit_code, 2);
  EXPECT_NE(garbage.err.find("neither a time nor a duration"), std::string::npos) << garbage.err;
  auto unknown_version = RunSafemig("restore --version 19990101000000" + Flags(), dir_.path());
  EXPECT_EQ(unknown_version.exit_code, 2);
}

TEST_F(CliTableRestoreTest, ListFiltersKeepTheDocumentShape) {
  Json("backup verify " + backup_);
  auto all = Json("backup list");
  ASSERT_GE(all["backups"].size(), 2u);
  auto manual = Json("backup list --reason manual");
  ASSERT_EQ(manual["backups"].size(), 1u);
  EXPECT_EQ(manual["backups"][0]["id"], backup_);
  EXPECT_EQ(manual["command"], "backup list");
  EXPECT_TRUE(manual.contains("store"));
  EXPECT_EQ(Json("backup list --reason before-up")["backups"].size(), all["backups"].size() - 1);
  // The rehearsal of `up` verified the backup before it; the manual one is unproven.
  Json("backup create");
  auto verified = Json("backup list --verified");
  ASSERT_EQ(verified["backups"].size(), 2u);
  EXPECT_EQ(verified["backups"][1]["id"], backup_);
  for (const auto& entry : verified["backups"]) EXPECT_TRUE(entry["verified"].get<bool>());
  all = Json("backup list");
  auto newest = Json("backup list --limit 1");
  ASSERT_EQ(newest["backups"].size(), 1u);
  EXPECT_EQ(newest["backups"][0]["id"], all["backups"].back()["id"]);
  const std::string created = all["backups"].back()["created_at"];
  EXPECT_EQ(Json("backup list --before " + created)["backups"].size(), all["backups"].size() - 1);
  EXPECT_EQ(Json("backup list --after " + created)["backups"].size(), 1u);
  EXPECT_EQ(Json("backup list --after 1h")["backups"].size(), all["backups"].size());
  EXPECT_EQ(Json("backup list --version 0")["backups"].size(), 1u) << "the one before up";
  auto bad = RunSafemig("backup list --after soon" + Flags(), dir_.path());
  EXPECT_EQ(bad.exit_code, 2);
}

TEST_F(CliBackupTest, ManifestHoldsNoSecret) {
  ASSERT_EQ(RunSafemig("up" + Flags(), dir_.path()).exit_code, 0);
  auto created = Json("backup create --label 'token=abc123'");
  std::string manifest = ReadFile(fs::path(dir_.path()) / created["dir"].get<std::string>() /
                                  "manifest.json");
  EXPECT_EQ(manifest.find("abc123"), std::string::npos);
}

}  // namespace
}  // namespace safemig

namespace safemig {
namespace {

// Runs safemig under script(1), so stderr is a terminal, with CI unset.
std::string RunOnATerminal(const std::string& args, const std::filesystem::path& cwd) {
  std::string command = "cd '" + cwd.string() + "' && env -u CI script -qec \"" +
                        std::string(SAFEMIG_BINARY) + " " + args + "\" /dev/null";
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  ::pclose(pipe);
  return output;
}

TEST(CliProgress, BarOnATerminalOnlyAndNeverInJson) {
  safemig::testing::TempDir dir;
  const std::string url = " --url sqlite:app.db --dir " + kExamples;
  ASSERT_EQ(RunSafemig("up" + url, dir.path()).exit_code, 0);
  std::string tty = RunOnATerminal("backup create" + url, dir.path());
  EXPECT_NE(tty.find("backup  ["), std::string::npos) << tty;
  EXPECT_NE(tty.find("100%"), std::string::npos) << tty;
  std::string json = RunOnATerminal("backup create --format json" + url, dir.path());
  EXPECT_EQ(json.find("backup  ["), std::string::npos) << json;
  auto piped = RunSafemig("backup create" + url, dir.path());
  EXPECT_EQ(piped.err.find('\r'), std::string::npos) << piped.err;
}

}  // namespace
}  // namespace safemig

namespace safemig {
namespace {

TEST(CliBackupCrash, KillDuringBackupLeavesNothingListedAndTheNextRunCleansUp) {
  safemig::testing::TempDir dir;
  const std::string db = (dir / "big.db").string();
  // Large enough that the backup is still running when it is killed.
  std::string make = "sqlite3 '" + db +
                     "' \"CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB); WITH RECURSIVE "
                     "n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) "
                     "INSERT INTO t SELECT i, randomblob(400) FROM n;\"";
  ASSERT_EQ(std::system(make.c_str()), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::chdir(dir.path().c_str()) != 0) ::_exit(2);
    ::execl(SAFEMIG_BINARY, "safemig", "backup", "create", "--url", ("sqlite:" + db).c_str(),
            static_cast<char*>(nullptr));
    ::_exit(3);
  }
  const fs::path store = dir / ".safemig" / "backups" / "default";
  bool seen_partial = false;
  for (int i = 0; i < 2000 && !seen_partial; ++i) {
    std::error_code ec;
    if (fs::is_directory(store, ec)) {
      for (const auto& entry : fs::directory_iterator(store, ec)) {
        if (entry.path().extension() == ".partial") seen_partial = true;
      }
    }
    if (!seen_partial) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(seen_partial) << "the backup finished before it could be killed";
  ASSERT_TRUE(WIFSIGNALED(status));
  auto list = RunSafemig("backup list --format json --url sqlite:" + db, dir.path());
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(nlohmann::json::parse(list.out)["backups"].size(), 0u);
  auto next = RunSafemig("backup create --url sqlite:" + db, dir.path());
  ASSERT_EQ(next.exit_code, 0) << next.err;
  EXPECT_NE(next.out.find("removed the unfinished backup"), std::string::npos) << next.out;
  for (const auto& entry : fs::directory_iterator(store)) {
    EXPECT_NE(entry.path().extension(), ".partial") << entry.path();
  }
}

}  // namespace
}  // namespace safemig
