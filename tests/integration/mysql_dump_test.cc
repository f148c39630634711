// MySQL/MariaDB backup and restore against the real server: every column type comes back
// byte for byte, objects come back with their bodies, a backup taken under concurrent
// writes is one consistent instant, and an in-place restore replaces the target.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "backup/store.h"
#include "core/error.h"
#include "core/sha256.h"
#include "driver/driver.h"
#include "drivers/mysql/mysql_fingerprint.h"
#include "drivers/mysql/mysql_session.h"
#include "engine/backups.h"
#include "server_env.h"
#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::ScratchMySqlDatabase;
using safemig::testing::TempDir;

// Every kind of value and object a MySQL schema commonly holds, including the awkward ones.
const char* const kRichSchema[] = {
    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')",
    R"sql(CREATE TABLE `select` (
  id INT AUTO_INCREMENT PRIMARY KEY,
  `order` VARCHAR(20) NOT NULL DEFAULT '',
  mood ENUM('happy', 'sad', '😀') NULL,
  flags SET('a', 'b', 'c'),
  doc JSON,
  price DECIMAL(20, 6),
  ratio DOUBLE,
  happened DATETIME(6),
  stamped TIMESTAMP(3) NULL DEFAULT NULL,
  day DATE,
  span TIME(2),
  vintage YEAR,
  bits BIT(10),
  flag BIT(1),
  data LONGBLOB,
  fixed BINARY(4),
  name VARCHAR(100),
  latin VARCHAR(20) CHARACTER SET latin1,
  body TEXT,
  doubled DECIMAL(21, 6) AS (price * 2) STORED,
  shout VARCHAR(100) AS (UPPER(name)) VIRTUAL,
  pos POINT NOT NULL,
  FULLTEXT KEY ft_body (body),
  SPATIAL KEY sp_pos (pos),
  KEY k_name (name(10))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4)sql",
    R"sql(CREATE TABLE child (
  id BIGINT UNSIGNED PRIMARY KEY,
  parent INT,
  note VARCHAR(10),
  CONSTRAINT fk_parent FOREIGN KEY (parent) REFERENCES `select` (id) ON DELETE CASCADE,
  CONSTRAINT positive CHECK (id > 0)
) ENGINE=InnoDB STATS_AUTO_RECALC=0)sql",
    // A restore turns statistics recalculation off while it loads and puts it back.
    "CREATE TABLE empty_one (id INT PRIMARY KEY) ENGINE=InnoDB STATS_AUTO_RECALC=1",
    "CREATE SEQUENCE ticket START WITH 100 INCREMENT BY 5 CACHE 10",
    "CREATE TABLE numbered (id BIGINT PRIMARY KEY DEFAULT NEXTVAL(ticket), note VARCHAR(10))",
    "INSERT INTO numbered (note) VALUES ('a'), ('b'), ('c')",
    "CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
    "CREATE VIEW z_base AS SELECT id, name FROM `select`",
    "CREATE VIEW a_top AS SELECT id FROM z_base WHERE id > 1",
    "CREATE VIEW m_middle AS SELECT t.id, twice(t.id) AS two FROM a_top t",
    R"sql(CREATE TRIGGER child_bi BEFORE INSERT ON child FOR EACH ROW
BEGIN
  IF NEW.note IS NULL THEN
    SET NEW.note = 'auto';
  END IF;
END)sql",
    R"sql(CREATE PROCEDURE touch_child(IN n BIGINT)
BEGIN
  UPDATE child SET note = CONCAT(note, '!') WHERE id = n;
END)sql",
    "CREATE EVENT ev_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO "
    "DELETE FROM child WHERE note = 'old'",
    R"sql(INSERT INTO `select` (id, `order`, mood, flags, doc, price, ratio, happened, stamped,
  day, span, vintage, bits, flag, data, fixed, name, latin, body, pos) VALUES
(0, 'zero', 'happy', 'a,c', '{"a": [1, "é"], "b": null}', 12345678901234.123456, 0.1,
  '2026-01-02 03:04:05.123456', '2026-06-01 12:00:00.123', '2026-02-28', '-838:59:59.99',
  2026, b'1010101010', b'1', (SELECT UNHEX(GROUP_CONCAT(LPAD(HEX(seq), 2, '0') SEPARATOR ''))
  FROM seq_0_to_255), X'00FF0A0D', 'emoji 😀 ünïcode ''quoted'' back\\slash', 'café',
  'line one\nline two\r\n\ttab', ST_GeomFromText('POINT(1 2)')),
(1, '', NULL, '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', '',
  '', '', '', ST_GeomFromText('POINT(0 0)')),
(2, 'nulls', NULL, NULL, 'null', -0.000001, -1.5e300, '1000-01-01 00:00:00', NULL,
  '9999-12-31', '00:00:00', NULL, b'0', b'0', NULL, NULL, NULL, NULL, 'NULL',
  ST_GeomFromText('POINT(-180 90)')))sql",
    "INSERT INTO child (id, parent, note) VALUES (1, 0, NULL), (2, 1, ''), (18446744073709551615, "
    "2, 'max')",
};

std::string TableContents(const ScratchMySqlDatabase& db, const std::string& table) {
  // HEX of the binary form: compares the stored bytes, not a rendering of them.
  std::vector<MySqlRow> columns = db.Query(
      "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
      "TABLE_NAME = '" + table + "' ORDER BY ORDINAL_POSITION");
  std::string select = "SELECT CONCAT_WS('|'";
  for (const MySqlRow& c : columns) {
    select += ", IFNULL(HEX(CAST(" + QuoteMySqlIdentifier(*c[0]) + " AS BINARY)), 'NULL')";
  }
  select += ") FROM " + QuoteMySqlIdentifier(table) + " ORDER BY 1";
  std::string out;
  for (const MySqlRow& row : db.Query(select)) out += row[0].value_or("?") + "\n";
  return out;
}

std::string ShowCreate(const ScratchMySqlDatabase& db, const std::string& kind,
                       const std::string& name, int column) {
  std::vector<MySqlRow> rows = db.Query("SHOW CREATE " + kind + " " + QuoteMySqlIdentifier(name));
  return rows.at(0).at(column).value_or("");
}

class MySqlBackup : public ::testing::Test {
 protected:
  void SetUp() override {
    SAFEMIG_REQUIRE_MYSQL(server);
    server_ = server;
    source_ = std::make_unique<ScratchMySqlDatabase>(server);
  }

  void Load(const char* const* statements, std::size_t count) {
    MySqlSession session(source_->url());
    for (std::size_t i = 0; i < count; ++i) session.Exec(statements[i]);
  }

  BackupResult Backup(Driver& driver) {
    BackupRequest request;
    request.migration_version = "1";
    return TakeBackup(driver, *store_, request, quiet_);
  }

  DatabaseUrl server_;
  std::unique_ptr<ScratchMySqlDatabase> source_;
  TempDir store_dir_;
  std::unique_ptr<BackupStore> store_ = std::make_unique<BackupStore>(store_dir_.path());
  Reporter quiet_;
};

TEST_F(MySqlBackup, RichSchemaRoundTripsWithIdenticalFingerprintAndContents) {
  Load(kRichSchema, std::size(kRichSchema));
  auto driver = OpenDriver(source_->url());
  driver->EnsureMetadata();
  const BackupResult backup = Backup(*driver);
  EXPECT_EQ(backup.manifest.fingerprint.Digest(), driver->TakeFingerprint(true).Digest());
  EXPECT_EQ(backup.manifest.fingerprint.tables.at("select").rows, 3);
  EXPECT_EQ(backup.manifest.engine, "mysql");

  ScratchMySqlDatabase restored(server_);
  RestoreArchive(ArchiveReader::Open(backup.dir), restored.url(), RestoreOptions{}, nullptr);
  auto restored_driver = OpenDriver(restored.url());
  EXPECT_EQ(restored_driver->TakeFingerprint(true).Digest(),
            backup.manifest.fingerprint.Digest());
  for (const char* table : {"select", "child", "empty_one"}) {
    EXPECT_EQ(TableContents(restored, table), TableContents(*source_, table)) << table;
    EXPECT_EQ(ShowCreate(restored, "TABLE", table, 1), ShowCreate(*source_, "TABLE", table, 1))
        << table;
  }
  for (const char* view : {"z_base", "a_top", "m_middle"}) {
    EXPECT_EQ(ShowCreate(restored, "VIEW", view, 1), ShowCreate(*source_, "VIEW", view, 1));
  }
  EXPECT_EQ(ShowCreate(restored, "TRIGGER", "child_bi", 2),
            ShowCreate(*source_, "TRIGGER", "child_bi", 2));
  EXPECT_EQ(ShowCreate(restored, "PROCEDURE", "touch_child", 2),
            ShowCreate(*source_, "PROCEDURE", "touch_child", 2));
  EXPECT_EQ(ShowCreate(restored, "EVENT", "ev_cleanup", 3),
            ShowCreate(*source_, "EVENT", "ev_cleanup", 3));
  // The AUTO_INCREMENT counter came back: the next row continues after the highest id.
  restored.Exec("INSERT INTO `select` (name, pos) VALUES ('next', POINT(0, 0))");
  EXPECT_EQ(restored.Query("SELECT MAX(id) FROM `select`").at(0).at(0), "3");
  // The sequence goes on where the original would after a restart: at its first value
  // not handed to a cache.
  EXPECT_EQ(ShowCreate(restored, "SEQUENCE", "ticket", 1),
            ShowCreate(*source_, "SEQUENCE", "ticket", 1));
  EXPECT_EQ(TableContents(restored, "numbered"), TableContents(*source_, "numbered"));
  const auto not_cached = source_->Query("SELECT next_not_cached_value FROM ticket").at(0).at(0);
  ASSERT_TRUE(not_cached.has_value());
  EXPECT_GE(std::stoll(*not_cached), 115);
  restored.Exec("INSERT INTO numbered (note) VALUES ('d')");
  EXPECT_EQ(restored.Query("SELECT id FROM numbered WHERE note = 'd'").at(0).at(0), not_cached);
  // The trigger works in the copy.
  restored.Exec("INSERT INTO child (id, parent) VALUES (7, 1)");
  EXPECT_EQ(restored.Query("SELECT note FROM child WHERE id = 7").at(0).at(0), "auto");
}

TEST_F(MySqlBackup, RowHashesOfKeyRangesAddUpToTheWholeTable) {
  source_->Exec("CREATE TABLE r (id BIGINT PRIMARY KEY, v VARCHAR(20))");
  source_->Exec(
      "INSERT INTO r SELECT CAST(seq AS SIGNED) - 500, CONCAT('v', seq) FROM seq_1_to_1000");
  source_->Exec("CREATE TABLE u (id BIGINT UNSIGNED PRIMARY KEY, v INT)");
  source_->Exec("INSERT INTO u VALUES (0, 1), (1, NULL), (18446744073709551615, 3)");
  source_->Exec("CREATE TABLE one (id INT PRIMARY KEY)");
  source_->Exec("INSERT INTO one VALUES (7)");
  source_->Exec("CREATE TABLE nokey (v INT)");
  source_->Exec("INSERT INTO nokey VALUES (1), (2), (2)");
  source_->Exec("CREATE TABLE textkey (k VARCHAR(5) PRIMARY KEY)");
  source_->Exec("INSERT INTO textkey VALUES ('a'), ('b')");
  source_->Exec("CREATE TABLE none (id INT PRIMARY KEY)");
  MySqlSession session(source_->url());
  const Fingerprint whole =
      FingerprintMySql(session, source_->name(), false, FingerprintDepth::kFull);
  for (const std::string table : {"r", "u", "one", "nokey", "textkey", "none"}) {
    for (int parts : {1, 2, 3, 7}) {
      const std::vector<std::string> ranges =
          MySqlHashRanges(session, source_->name(), table, parts);
      if (parts == 1 || table == "nokey" || table == "textkey") {
        EXPECT_EQ(ranges, std::vector<std::string>{""}) << table << " " << parts;
      } else if (table == "r") {
        EXPECT_EQ(ranges.size(), static_cast<std::size_t>(parts));
      }
      MySqlRowSums sums;
      for (const std::string& where : ranges) {
        sums.Add(HashMySqlRows(session, source_->name(), table, where));
      }
      const TableData data = sums.Finish();
      EXPECT_EQ(data.rows, whole.tables.at(table).rows) << table << " " << parts;
      EXPECT_EQ(data.content_sha256, whole.tables.at(table).content_sha256)
          << table << " in " << parts << " ranges";
    }
  }
}

TEST_F(MySqlBackup, FingerprintTellsNullFromEmptyAndNamesTheChangedItem) {
  source_->Exec("CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(10))");
  source_->Exec("INSERT INTO t VALUES (1, NULL)");
  auto driver = OpenDriver(source_->url());
  const Fingerprint with_null = driver->TakeFingerprint(false);
  source_->Exec("UPDATE t SET s = ''");
  const Fingerprint with_empty = driver->TakeFingerprint(false);
  EXPECT_NE(with_null.tables.at("t").content_sha256, with_empty.tables.at("t").content_sha256);
  source_->Exec("ALTER TABLE t ADD COLUMN n INT NOT NULL DEFAULT 0");
  const std::vector<std::string> differences =
      DescribeDifferences(with_empty, driver->TakeFingerprint(false));
  ASSERT_FALSE(differences.empty());
  EXPECT_NE(differences.front().find("column n added"), std::string::npos) << differences.front();
}

// Swaps `from` for `to` in the data part of a backup and fixes every checksum, as a bug
// that wrote a wrong value would: only the restore's check of the rows can notice.
void AlterValueInBackup(const std::filesystem::path& backup, const std::string& part,
                        const std::string& from, const std::string& to) {
  const std::filesystem::path file = backup / "parts" / part;
  const std::filesystem::path raw = backup / "raw.sql";
  ASSERT_EQ(std::system(("zstd -dcq '" + file.string() + "' > '" + raw.string() + "'").c_str()), 0);
  std::string text = testing::ReadFile(raw);
  const std::size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, from.size(), to);
  testing::WriteFile(raw, text);
  std::filesystem::remove(file);
  const std::string compress = "zstd -q --check '" + raw.string() + "' -o '" + file.string() + "'";
  ASSERT_EQ(std::system(compress.c_str()), 0);
  std::filesystem::remove(raw);
  nlohmann::json manifest = nlohmann::json::parse(testing::ReadFile(backup / "manifest.json"));
  for (auto& entry : manifest["parts"]) {
    if (entry["name"] != part) continue;
    entry["raw_sha256"] = Sha256Hex(text);
    entry["raw_bytes"] = text.size();
    const std::string stored = testing::ReadFile(file);
    entry["sha256"] = Sha256Hex(stored);
    entry["stored_bytes"] = stored.size();
  }
  testing::WriteFile(backup / "manifest.json", manifest.dump(2));
  std::string sums;
  std::istringstream lines(testing::ReadFile(backup / "SHA256SUMS"));
  for (std::string line; std::getline(lines, line);) {
    const std::string name = line.substr(line.find("  ") + 2);
    sums += Sha256Hex(testing::ReadFile(backup / name)) + "  " + name + "\n";
  }
  testing::WriteFile(backup / "SHA256SUMS", sums);
}

TEST_F(MySqlBackup, ARestoreWhoseRowsDifferFromTheBackupIsRefusedAndDropped) {
  source_->Exec("CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(10))");
  source_->Exec("INSERT INTO t VALUES (1, 'apple'), (2, 'pear')");
  auto driver = OpenDriver(source_->url());
  const BackupResult backup = Backup(*driver);
  AlterValueInBackup(backup.dir, "t1.sql.zst", "'pear'", "'peach'");
  ArchiveReader archive = ArchiveReader::Open(backup.dir);
  ASSERT_NO_THROW(archive.CheckParts());  // every checksum agrees with the altered part

  DatabaseUrl target = server_;
  target.database = source_->name() + "_r";
  try {
    RestoreArchive(archive, target, RestoreOptions{}, nullptr);
    FAIL() << "the altered row went unnoticed";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kIntegrity) << e.what();
    EXPECT_NE(std::string(e.what()).find("differs from what was backed up"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("table t: same row count (2) but different content"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(source_->Query("SHOW DATABASES LIKE '" + target.database + "'").empty())
      << "the database the failed restore created is still there";
}

TEST_F(MySqlBackup, ADataPartThatDoesNotNameItsTableIsRefusedAndTheCopyDropped) {
  source_->Exec("CREATE TABLE t (id INT PRIMARY KEY)");
  source_->Exec("INSERT INTO t VALUES (1)");
  auto driver = OpenDriver(source_->url());
  const BackupResult backup = Backup(*driver);
  AlterValueInBackup(backup.dir, "t1.sql.zst", "-- safemig table: `t`", "-- a table");
  DatabaseUrl target = server_;
  target.database = source_->name() + "_r";
  try {
    RestoreArchive(ArchiveReader::Open(backup.dir), target, RestoreOptions{}, nullptr);
    FAIL() << "a part without its table's name was restored";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kIntegrity) << e.what();
    EXPECT_NE(std::string(e.what()).find("part t1.sql.zst of backup " + backup.manifest.id +
                                         " does not say which table it fills"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(source_->Query("SHOW DATABASES LIKE '" + target.database + "'").empty());
}

TEST_F(MySqlBackup, BackupUnderConcurrentWritesIsOneInstant) {
  source_->Exec("CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB");
  source_->Exec("CREATE TABLE b (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB");
  source_->Exec("INSERT INTO a (v) SELECT REPEAT('x', 90) FROM seq_1_to_20000");
  source_->Exec("INSERT INTO b (v) SELECT REPEAT('x', 90) FROM seq_1_to_20000");
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    MySqlThreadScope scope;
    MySqlSession session(source_->url());
    // Each transaction adds one row to both tables: any instant has equal counts.
    for (int i = 0; i < 5000 && !stop; ++i) {
      session.Exec("START TRANSACTION");
      session.Exec("INSERT INTO a (v) VALUES ('w')");
      session.Exec("INSERT INTO b (v) VALUES ('w')");
      session.Exec("COMMIT");
      ++written;
    }
  });
  while (written < 20) std::this_thread::yield();
  auto driver = OpenDriver(source_->url());
  const BackupResult backup = Backup(*driver);
  stop = true;
  writer.join();
  const Fingerprint& taken = backup.manifest.fingerprint;
  EXPECT_EQ(taken.tables.at("a").rows, taken.tables.at("b").rows);
  EXPECT_GT(taken.tables.at("a").rows, 20000);

  ScratchMySqlDatabase restored(server_);
  RestoreArchive(ArchiveReader::Open(backup.dir), restored.url(), RestoreOptions{}, nullptr);
  EXPECT_EQ(restored.Query("SELECT COUNT(*) FROM a").at(0).at(0),
            restored.Query("SELECT COUNT(*) FROM b").at(0).at(0));
  EXPECT_EQ(OpenDriver(restored.url())->TakeFingerprint(true).Digest(), taken.Digest());
}

TEST_F(MySqlBackup, InPlaceRestoreReplacesTheTargetAndRefusesWithoutBeingAsked) {
  source_->Exec("CREATE TABLE t (id INT PRIMARY KEY, s TEXT)");
  source_->Exec("CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.s = UPPER(NEW.s)");
  source_->Exec("INSERT INTO t VALUES (1, 'one'), (2, 'two')");
  auto driver = OpenDriver(source_->url());
  const BackupResult backup = Backup(*driver);
  driver.reset();
  source_->Exec("DROP TRIGGER t_bi");
  source_->Exec("DELETE FROM t WHERE id = 1");
  source_->Exec("CREATE TABLE added_later (id INT)");
  source_->Exec("CREATE VIEW v_later AS SELECT id FROM t");

  const ArchiveReader reader = ArchiveReader::Open(backup.dir);
  try {
    RestoreArchive(reader, source_->url(), RestoreOptions{}, nullptr);
    FAIL() << "an existing database must not be overwritten unasked";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kUsage);
  }
  RestoreOptions in_place;
  in_place.replace_existing = true;
  RestoreArchive(reader, source_->url(), in_place, nullptr);
  EXPECT_EQ(OpenDriver(source_->url())->TakeFingerprint(true).Digest(),
            backup.manifest.fingerprint.Digest());
  EXPECT_EQ(source_->Query("SELECT COUNT(*) FROM t").at(0).at(0), "2");
  EXPECT_TRUE(source_->Query("SHOW TABLES LIKE 'added_later'").empty());
  // No temporary or holding database is left behind.
  MySqlSession admin(server_, std::string());
  EXPECT_TRUE(admin.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE "
                          "SCHEMA_NAME LIKE 'safemig\\_restore\\_%' OR SCHEMA_NAME LIKE "
                          "'safemig\\_old\\_%'")
                  .empty());
}

TEST_F(MySqlBackup, PartsReplayByHandWithTheMariadbClient) {
  Load(kRichSchema, std::size(kRichSchema));
  auto driver = OpenDriver(source_->url());
  const BackupResult backup = Backup(*driver);
  ScratchMySqlDatabase by_hand(server_);
  // The documented manual procedure: every part through `zstd -dc | mariadb` in order.
  TempDir config_dir;
  const DatabaseUrl& url = by_hand.url();
  testing::WriteFile(config_dir.path() / "my.cnf",
                     "[client]\nuser=" + url.user + "\npassword=" + url.password.value_or("") +
                         "\nhost=" + url.host + "\nport=" + std::to_string(url.port.value_or(3306)) +
                         "\n");
  for (const PartInfo& part : backup.manifest.parts) {
    const std::string command = "zstd -dc '" + (backup.dir / "parts" / part.name).string() +
                                "' | mariadb --defaults-file='" +
                                (config_dir.path() / "my.cnf").string() + "' " + url.database;
    ASSERT_EQ(std::system(command.c_str()), 0) << part.name;
  }
  EXPECT_EQ(OpenDriver(url)->TakeFingerprint(true).Digest(),
            backup.manifest.fingerprint.Digest());
}

}  // namespace
}  // namespace safemig
