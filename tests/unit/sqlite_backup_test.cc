// Backups of SQLite databases end to end: dump, publish, restore, fingerprints, damage,
// in-place restore with its safety backup, consistency under concurrent writes.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <thread>

#include "backup/store.h"
#include "core/error.h"
#include "drivers/sqlite/sqlite_driver.h"
#include "engine/backups.h"
#include "test_util.h"

namespace safemig {
namespace {

namespace fs = std::filesystem;
using safemig::testing::ReadFile;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

DatabaseUrl SqliteUrl(const fs::path& path) {
  DatabaseUrl url;
  url.engine = Engine::kSqlite;
  url.scheme = "sqlite";
  url.path = path.string();
  return url;
}

void Exec(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

void MakeShop(const fs::path& path, int rows) {
  Exec(path,
       "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, note BLOB);"
       "CREATE INDEX customers_note ON customers (note);"
       "CREATE VIEW emails AS SELECT email FROM customers;"
       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
           std::to_string(rows) +
           ") INSERT INTO customers SELECT i, 'c' || i || '@example.com', randomblob(64) FROM n;");
}

class QuietReporter : public Reporter {
 public:
  void Note(std::string_view message) override { notes.emplace_back(message); }
  void Progress(std::string_view task, std::uint64_t done, std::uint64_t total) override {
    last_task = std::string(task);
    last_done = done;
    last_total = total;
  }
  std::vector<std::string> notes;
  std::string last_task;
  std::uint64_t last_done = 0;
  std::uint64_t last_total = 0;
};

class SqliteBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeShop(db_path(), 5000);
    driver_ = OpenSqliteDriver(SqliteUrl(db_path()), OpenOptions{false});
    driver_->EnsureMetadata();
  }
  fs::path db_path() const { return dir_ / "shop.db"; }
  BackupStore store() const { return BackupStore(dir_ / "backups"); }

  BackupResult Backup() {
    BackupRequest request;
    request.migration_version = "7";
    return TakeBackup(*driver_, store(), request, reporter_);
  }

  TempDir dir_;
  std::unique_ptr<Driver> driver_;
  QuietReporter reporter_;
};

TEST_F(SqliteBackupTest, RoundTripRestoresAnEqualFingerprint) {
  BackupResult backup = Backup();
  EXPECT_EQ(backup.manifest.migration_version, "7");
  EXPECT_EQ(backup.manifest.engine, "sqlite");
  EXPECT_EQ(backup.manifest.fingerprint.tables.at("customers").rows, 5000);
  EXPECT_EQ(reporter_.last_task, "backup");
  EXPECT_EQ(reporter_.last_done, reporter_.last_total);
  fs::path copy = dir_ / "copy.db";
  RestoreBackup(store(), backup.manifest.id, SqliteUrl(copy), nullptr, "default", reporter_);
  auto restored = OpenSqliteDriver(SqliteUrl(copy), OpenOptions{false});
  EXPECT_EQ(restored->TakeFingerprint(true).Digest(), driver_->TakeFingerprint(true).Digest());
  EXPECT_TRUE(store().Find(backup.manifest.id).verified);
}

TEST_F(SqliteBackupTest, ByHandRestoreWithZstdGivesTheSameDatabase) {
  BackupResult backup = Backup();
  fs::path by_hand = dir_ / "by-hand.db";
  std::string command = "zstd -q -dc '" + (backup.dir / "parts" / "database.sqlite3.zst").string() +
                        "' > '" + by_hand.string() + "'";
  ASSERT_EQ(std::system(command.c_str()), 0);
  auto restored = OpenSqliteDriver(SqliteUrl(by_hand), OpenOptions{false});
  EXPECT_EQ(restored->TakeFingerprint(true).Digest(), backup.manifest.fingerprint.Digest());
}

TEST_F(SqliteBackupTest, DamagedBackupLeavesTheTargetUntouched) {
  BackupResult backup = Backup();
  fs::path part = backup.dir / "parts" / "database.sqlite3.zst";
  std::string bytes = ReadFile(part);
  bytes[bytes.size() / 3] ^= 0x40;
  WriteFile(part, bytes);
  Exec(db_path(), "DELETE FROM customers WHERE id > 10");
  const std::string before = ReadFile(db_path());
  driver_.reset();
  auto current = OpenSqliteDriver(SqliteUrl(db_path()), OpenOptions{false});
  try {
    RestoreBackup(store(), backup.manifest.id, SqliteUrl(db_path()), std::move(current), "default",
                  reporter_);
    FAIL() << "expected an integrity error";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kIntegrity);
    EXPECT_NE(std::string(e.what()).find("database.sqlite3.zst"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ReadFile(db_path()), before);
  EXPECT_EQ(store().List().size(), 1u) << "no safety backup before the damage was found";
  for (const auto& entry : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".safemig-restore"), std::string::npos);
  }
}

TEST_F(SqliteBackupTest, InPlaceRestoreKeepsASafetyBackupOfWhatItReplaced) {
  BackupResult backup = Backup();
  Exec(db_path(), "DELETE FROM customers WHERE id > 10; CREATE TABLE later (x INTEGER);");
  Fingerprint replaced = driver_->TakeFingerprint(true);
  RestoreResult result = RestoreBackup(store(), backup.manifest.id, SqliteUrl(db_path()),
                                       std::move(driver_), "default", reporter_);
  ASSERT_FALSE(result.safety_backup_id.empty());
  auto now = OpenSqliteDriver(SqliteUrl(db_path()), OpenOptions{false});
  EXPECT_EQ(now->TakeFingerprint(true).Digest(), backup.manifest.fingerprint.Digest());
  BackupEntry safety = store().Find(result.safety_backup_id);
  ASSERT_TRUE(safety.manifest.has_value());
  EXPECT_EQ(safety.manifest->reason, "before-restore");
  EXPECT_EQ(safety.manifest->fingerprint.Digest(), replaced.Digest());
}

TEST_F(SqliteBackupTest, RestoreRefusesToOverwriteAnExistingTargetUnasked) {
  BackupResult backup = Backup();
  WriteFile(dir_ / "exists.db", "precious");
  try {
    RestoreBackup(store(), backup.manifest.id, SqliteUrl(dir_ / "exists.db"), nullptr, "default",
                  reporter_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kUsage);
  }
  EXPECT_EQ(ReadFile(dir_ / "exists.db"), "precious");
}

TEST_F(SqliteBackupTest, BackupIsConsistentWhileAnotherConnectionWrites) {
  Exec(db_path(), "PRAGMA journal_mode=WAL;");
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    sqlite3* db = nullptr;
    sqlite3_open(db_path().c_str(), &db);
    sqlite3_busy_timeout(db, 5000);
    for (int i = 0; !stop; ++i) {
      std::string sql = "INSERT INTO customers (email) VALUES ('w" + std::to_string(i) + "@x')";
      if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK) ++writes;
    }
    sqlite3_close(db);
  });
  BackupResult first = Backup();
  BackupResult second = Backup();
  stop = true;
  writer.join();
  EXPECT_GT(writes.load(), 0);
  // Each backup restores to exactly the state its manifest describes.
  for (const BackupResult& backup : {first, second}) {
    fs::path copy = dir_ / ("copy-" + backup.manifest.id + ".db");
    EXPECT_NO_THROW(RestoreBackup(store(), backup.manifest.id, SqliteUrl(copy), nullptr, "default",
                                  reporter_));
  }
}

}  // namespace
}  // namespace safemig
