// A SQLite database with real rows, a backup store and migrations built in memory: what
// the rehearsal and deploy tests start from.
#pragma once

#include <gtest/gtest.h>
#include <SQLiteCpp/SQLiteCpp.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "core/status.h"
#include "driver/driver.h"
#include "engine/deploy.h"
#include "test_util.h"

namespace safemig::testing {

inline Migration MakeMigration(const std::string& version, const std::string& name,
                               const std::string& up, const std::string& down) {
  Migration m;
  m.version = version;
  m.name = name;
  m.up_path = version + "_" + name + ".up.sql";
  m.down_path = version + "_" + name + ".down.sql";
  m.up_sql = up;
  m.down_sql = down;
  m.checksum = Sha256Hex(up);
  m.down_checksum = Sha256Hex(down);
  return m;
}

// Four reversible migrations; the third, a unique index on post.title, fails once two
// posts share a title.
inline std::vector<Migration> FourMigrations(const std::string& integer_key) {
  return {MakeMigration("1", "add_url", "ALTER TABLE post ADD COLUMN url TEXT;",
                        "ALTER TABLE post DROP COLUMN url;"),
          MakeMigration("2", "create_tag", "CREATE TABLE tag (id " + integer_key + ");",
                        "DROP TABLE tag;"),
          MakeMigration("3", "unique_title", "CREATE UNIQUE INDEX post_title ON post (title);",
                        "DROP INDEX post_title;"),
          MakeMigration("4", "index_email", "CREATE INDEX customer_email ON customer (email);",
                        "DROP INDEX customer_email;")};
}

// Reporter that remembers notes and warnings, so tests can check what a person reads.
class NoteReporter : public Reporter {
 public:
  void Note(std::string_view message) override { notes.emplace_back(message); }
  void Warning(std::string_view message) override { warnings.emplace_back(message); }
  std::vector<std::string> notes;
  std::vector<std::string> warnings;
};

class SqliteShop : public ::testing::Test {
 protected:
  void SetUp() override {
    url_.engine = Engine::kSqlite;
    url_.path = (dir_ / "shop.db").string();
    Exec("CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT, phone TEXT);");
    Exec("CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT NOT NULL);");
    // Real data: duplicate e-mails and NULL phones, which an empty database would not have.
    Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
         "INSERT INTO customer (email, phone) SELECT 'user' || (i % 250) || '@example.com', "
         "CASE WHEN i % 3 = 0 THEN NULL ELSE '555-' || i END FROM n;");
    Exec("INSERT INTO post (title) VALUES ('hello'), ('again');");
    Reopen();
  }

  void Exec(const std::string& sql) {
    SQLite::Database db(url_.path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(sql);
  }

  void Reopen() {
    driver_ = OpenDriver(url_, OpenOptions{false});
    driver_->EnsureMetadata();
  }

  Fingerprint Data() { return driver_->TakeFingerprint(/*include_metadata=*/false); }

  DeployRequest Request(const std::vector<Migration>& files) {
    DeployRequest request;
    request.command = "deploy";
    request.environment.name = "test";
    request.environment.url = "sqlite:" + url_.path;
    request.environment.backups = dir_ / "backups";
    request.environment.lock_timeout = std::chrono::seconds(2);
    request.url = url_;
    request.files = files;
    request.runner = "tester@host pid 1";
    request.applied_by = "tester@host";
    return request;
  }

  Plan PendingPlan(const std::vector<Migration>& files) {
    return PlanUp(ComputeStatus(files, driver_->ReadHistory()), std::nullopt, std::nullopt);
  }

  // Files in the database's directory left by a rehearsal's copy.
  std::vector<std::string> ScratchFiles() const {
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("safemig_scratch_", 0) == 0 || name.find(".rehearsal-") != std::string::npos) {
        found.push_back(name);
      }
    }
    return found;
  }

  std::vector<JournalEntry> Journal() { return driver_->ReadJournal(50); }

  TempDir dir_;
  DatabaseUrl url_;
  std::unique_ptr<Driver> driver_;
  NoteReporter reporter_;
};

}  // namespace safemig::testing
