// Backups through the command line: automatic backups before changes, the backup commands,
// exit 6 on damage, policies, restore.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

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
