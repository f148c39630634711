#include "core/discovery.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/error.h"
#include "core/migration.h"
#include "core/sha256.h"

namespace safemig {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// A fresh directory per test (per instance, so loops inside a test get their own), removed
// afterwards whatever permissions the test left on it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("safemig_discovery_" + std::to_string(getpid()) + "_" + std::to_string(counter++) +
             "_" + (test != nullptr ? test->name() : "x"));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const fs::path& path() const { return path_; }

  void Write(const std::string& rel, std::string_view content) const {
    const fs::path file = path_ / rel;
    fs::create_directories(file.parent_path());
    std::ofstream out(file, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    ASSERT_TRUE(out.good()) << "cannot write " << file;
  }

 private:
  fs::path path_;
};

::testing::AssertionResult Mentions(std::string_view text,
                                    std::initializer_list<const char*> parts) {
  for (const char* part : parts) {
    if (text.find(part) == std::string_view::npos) {
      return ::testing::AssertionFailure() << "'" << text << "' does not mention '" << part << "'";
    }
  }
  return ::testing::AssertionSuccess();
}

// Succeeds when discovery throws a config error whose message is one line mentioning every
// part of `message` and whose hint mentions every part of `hint`.
::testing::AssertionResult FailsWith(const fs::path& dir,
                                     std::initializer_list<const char*> message,
                                     std::initializer_list<const char*> hint = {}) {
  try {
    const std::vector<Migration> migrations = DiscoverMigrations(dir);
    return ::testing::AssertionFailure()
           << "discovery succeeded with " << migrations.size() << " migrations";
  } catch (const Error& error) {
    const std::string_view what = error.what();
    if (error.category() != Category::kConfig) {
      return ::testing::AssertionFailure()
             << "category " << CategoryName(error.category()) << ": " << what;
    }
    if (what.find('\n') != std::string_view::npos) {
      return ::testing::AssertionFailure() << "message spans lines: " << what;
    }
    if (error.hint().empty()) return ::testing::AssertionFailure() << "no hint for: " << what;
    ::testing::AssertionResult result = Mentions(what, message);
    if (!result) return result;
    result = Mentions(error.hint(), hint);
    if (!result) return result << " (message: " << what << ")";
    return ::testing::AssertionSuccess();
  }
}

// --- The formats -----------------------------------------------------------------------

TEST(Discovery, FindsFlatPairs) {
  TempDir dir;
  dir.Write("20240101120000_create_users.up.sql", "CREATE TABLE users (id int);\n");
  dir.Write("20240101120000_create_users.down.sql", "DROP TABLE users;\n");
  dir.Write("20240102000000_add_email.up.sql",
            "-- safemig:timeout=1m30s\nALTER TABLE users ADD email text;\n");
  dir.Write("20240102000000_add_email.down.sql", "ALTER TABLE users DROP email;\n");

  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 2u);
  const Migration& first = migrations[0];
  EXPECT_EQ(first.format, MigrationFormat::kFlatPair);
  EXPECT_EQ(first.version, "20240101120000");
  EXPECT_EQ(first.name, "create_users");
  EXPECT_EQ(first.up_path, "20240101120000_create_users.up.sql");
  EXPECT_EQ(first.down_path, "20240101120000_create_users.down.sql");
  EXPECT_EQ(first.up_sql, "CREATE TABLE users (id int);\n");
  EXPECT_EQ(first.down_sql, "DROP TABLE users;\n");
  EXPECT_EQ(first.up_first_line, 1);
  EXPECT_EQ(first.down_first_line, 1);
  EXPECT_TRUE(first.HasDown());
  EXPECT_FALSE(first.directives.timeout.has_value());
  EXPECT_EQ(migrations[1].name, "add_email");
  EXPECT_EQ(migrations[1].directives.timeout, milliseconds(90'000));
}

TEST(Discovery, FindsDieselFolderPairs) {
  TempDir dir;
  dir.Write("00000000000000_diesel_initial_setup/up.sql", "CREATE FUNCTION setup() ...;\n");
  dir.Write("00000000000000_diesel_initial_setup/down.sql", "DROP FUNCTION setup();\n");
  dir.Write("2024-01-10-000000_add_index/up.sql", "CREATE INDEX i ON posts (id);\n");
  dir.Write("2024-01-10-000000_add_index/down.sql", "DROP INDEX i;\n");
  dir.Write("2024-01-02-120000_create_posts/up.sql", "CREATE TABLE posts (id int);\n");
  dir.Write("2024-01-02-120000_create_posts/down.sql", "DROP TABLE posts;\n");
  dir.Write("2024-01-02-120000_create_posts/metadata.toml", "run_in_transaction = true\n");

  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 3u);
  EXPECT_EQ(migrations[0].name, "diesel_initial_setup");
  EXPECT_EQ(migrations[1].version, "2024-01-02-120000");
  EXPECT_EQ(migrations[1].name, "create_posts");
  EXPECT_EQ(migrations[1].format, MigrationFormat::kFolderPair);
  EXPECT_EQ(migrations[1].up_path, "2024-01-02-120000_create_posts/up.sql");
  EXPECT_EQ(migrations[1].down_path, "2024-01-02-120000_create_posts/down.sql");
  EXPECT_EQ(migrations[1].down_sql, "DROP TABLE posts;\n");
  EXPECT_EQ(migrations[2].version, "2024-01-10-000000");
}

TEST(Discovery, RejectsDieselPlaceholderDown) {
  TempDir dir;
  dir.Write("2024-01-02-120000_create_posts/up.sql", "CREATE TABLE posts (id int);\n");
  // What `diesel migration generate` leaves behind until someone writes the down.
  dir.Write("2024-01-02-120000_create_posts/down.sql",
            "-- This file should undo anything in `up.sql`\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"2024-01-02-120000_create_posts/down.sql", "empty"},
                        {"safemig:irreversible"}));
}

TEST(Discovery, FindsDbmateSections) {
  TempDir dir;
  const std::string text =
      "-- Adds the orders table.\n"
      "-- migrate:up\n"
      "CREATE TABLE orders (id int);\n"
      "\n"
      "-- migrate:down\n"
      "DROP TABLE orders;\n";
  dir.Write("20240101120000_create_orders.sql", text);

  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 1u);
  const Migration& migration = migrations[0];
  EXPECT_EQ(migration.format, MigrationFormat::kDbmate);
  EXPECT_EQ(migration.version, "20240101120000");
  EXPECT_EQ(migration.name, "create_orders");
  EXPECT_EQ(migration.up_path, "20240101120000_create_orders.sql");
  EXPECT_EQ(migration.down_path, "20240101120000_create_orders.sql");
  EXPECT_EQ(migration.up_sql, "CREATE TABLE orders (id int);\n\n");
  EXPECT_EQ(migration.down_sql, "DROP TABLE orders;\n");
  EXPECT_EQ(migration.up_first_line, 3);
  EXPECT_EQ(migration.down_first_line, 6);
  EXPECT_FALSE(migration.directives.no_transaction);
  EXPECT_EQ(migration.checksum, Sha256Hex(text));
  EXPECT_EQ(migration.down_checksum, Sha256Hex("DROP TABLE orders;\n"));
}

TEST(Discovery, DbmateTransactionFalseMeansNoTransaction) {
  TempDir dir;
  dir.Write("20240101120000_index_orders.sql",
            "-- migrate:up transaction:false\n"
            "CREATE INDEX CONCURRENTLY orders_id ON orders (id);\n"
            "-- migrate:down transaction:false\n"
            "DROP INDEX CONCURRENTLY orders_id;\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 1u);
  EXPECT_TRUE(migrations[0].directives.no_transaction);
  EXPECT_EQ(migrations[0].up_sql, "CREATE INDEX CONCURRENTLY orders_id ON orders (id);\n");
}

TEST(Discovery, RejectsUnknownDbmateOption) {
  TempDir dir;
  dir.Write("1_a.sql", "-- migrate:up transaction:flase\nSELECT 1;\n-- migrate:down\nSELECT 2;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql:1", "transaction:flase"}, {"transaction:false"}));
}

TEST(Discovery, DirectivesInDbmateHeaderAndUpSectionApply) {
  TempDir dir;
  dir.Write("1_a.sql",
            "-- safemig:timeout=5m\n"
            "-- migrate:up\n"
            "-- safemig:no-transaction\n"
            "VACUUM;\n"
            "-- migrate:down\n"
            "SELECT 1;\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 1u);
  EXPECT_EQ(migrations[0].directives.timeout, milliseconds(300'000));
  EXPECT_TRUE(migrations[0].directives.no_transaction);
}

TEST(Discovery, FindsGooseSectionsKeepingStatementBlocks) {
  TempDir dir;
  dir.Write("00002_add_function.sql",
            "-- +goose Up\n"
            "-- +goose StatementBegin\n"
            "CREATE FUNCTION one() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
            "-- +goose StatementEnd\n"
            "\n"
            "-- +goose Down\n"
            "-- +goose StatementBegin\n"
            "DROP FUNCTION one();\n"
            "-- +goose StatementEnd\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 1u);
  const Migration& migration = migrations[0];
  EXPECT_EQ(migration.format, MigrationFormat::kGoose);
  EXPECT_EQ(migration.version, "00002");
  EXPECT_EQ(migration.name, "add_function");
  EXPECT_EQ(migration.up_sql,
            "-- +goose StatementBegin\n"
            "CREATE FUNCTION one() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
            "-- +goose StatementEnd\n"
            "\n");
  EXPECT_EQ(migration.down_sql,
            "-- +goose StatementBegin\nDROP FUNCTION one();\n-- +goose StatementEnd\n");
  EXPECT_EQ(migration.up_first_line, 2);
  EXPECT_EQ(migration.down_first_line, 7);
  EXPECT_FALSE(migration.directives.no_transaction);
}

TEST(Discovery, GooseAnnotationsAreCaseInsensitive) {
  TempDir dir;
  dir.Write("1_a.sql",
            "-- +goose up\nCREATE TABLE a (id int);\n--  +GOOSE   DOWN\nDROP TABLE a;\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 1u);
  EXPECT_EQ(migrations[0].format, MigrationFormat::kGoose);
  EXPECT_EQ(migrations[0].up_sql, "CREATE TABLE a (id int);\n");
  EXPECT_EQ(migrations[0].down_sql, "DROP TABLE a;\n");
}

TEST(Discovery, GooseNoTransactionCountsAnywhereInTheFile) {
  TempDir dir;
  dir.Write("1_header.sql",
            "-- +goose NO TRANSACTION\n"
            "-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (c);\n"
            "-- +goose Down\nDROP INDEX CONCURRENTLY i;\n");
  dir.Write("2_after_down.sql",
            "-- +goose Up\nCREATE INDEX CONCURRENTLY j ON t (c);\n"
            "-- +goose Down\n-- +goose no transaction\nDROP INDEX CONCURRENTLY j;\n");
  dir.Write("3_plain.sql", "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 3u);
  EXPECT_TRUE(migrations[0].directives.no_transaction);
  EXPECT_TRUE(migrations[1].directives.no_transaction);
  EXPECT_FALSE(migrations[2].directives.no_transaction);
}

TEST(Discovery, RejectsGooseEnvsub) {
  TempDir dir;
  dir.Write("1_a.sql",
            "-- +goose Up\n-- +goose ENVSUB ON\nCREATE ROLE ${ROLE};\n"
            "-- +goose Down\nDROP ROLE ${ROLE};\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql:2", "ENVSUB ON", "not supported yet"}));
}

TEST(Discovery, FindsFlywayWithAndWithoutUndo) {
  TempDir dir;
  dir.Write("V1__Create_users.sql", "CREATE TABLE users (id int);\n");
  dir.Write("U1__Create_users.sql", "DROP TABLE users;\n");
  dir.Write("V1.1__Add_email.sql", "ALTER TABLE users ADD email text;\n");
  dir.Write("U1.1__drop_email_again.sql", "ALTER TABLE users DROP email;\n");
  dir.Write("V1_2__Drop_legacy.sql", "-- safemig:irreversible\nDROP TABLE legacy;\n");
  dir.Write("V10__Add_index.sql", "CREATE INDEX i ON users (email);\n");
  dir.Write("U10__Add_index.sql", "DROP INDEX i;\n");
  dir.Write("V2__Seed.sql", "INSERT INTO users VALUES (1);\n");
  dir.Write("U2__Seed.sql", "DELETE FROM users;\n");

  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 5u);
  const std::vector<std::string> expected_versions = {"1", "1.1", "1_2", "2", "10"};
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, expected_versions[i]);
    EXPECT_EQ(migrations[i].format, MigrationFormat::kFlyway);
  }
  EXPECT_EQ(migrations[0].name, "Create_users");
  EXPECT_EQ(migrations[0].up_path, "V1__Create_users.sql");
  EXPECT_EQ(migrations[0].down_path, "U1__Create_users.sql");
  // Flyway pairs an undo by version alone, whatever its description says.
  EXPECT_EQ(migrations[1].down_path, "U1.1__drop_email_again.sql");
  EXPECT_EQ(migrations[1].down_sql, "ALTER TABLE users DROP email;\n");
  EXPECT_EQ(migrations[2].name, "Drop_legacy");
  EXPECT_TRUE(migrations[2].directives.irreversible);
  EXPECT_EQ(migrations[2].down_path, "");
  EXPECT_EQ(migrations[2].down_sql, "");
  EXPECT_EQ(migrations[2].down_checksum, kEmptySha256);
}

TEST(Discovery, OrdersFlywayDateVersions) {
  TempDir dir;
  dir.Write("V2024.01.10__b.sql", "-- safemig:irreversible\nSELECT 2;\n");
  dir.Write("V2023.12.31__a.sql", "-- safemig:irreversible\nSELECT 1;\n");
  dir.Write("V2024.01.09.1__c.sql", "-- safemig:irreversible\nSELECT 3;\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 3u);
  EXPECT_EQ(migrations[0].version, "2023.12.31");
  EXPECT_EQ(migrations[1].version, "2024.01.09.1");
  EXPECT_EQ(migrations[2].version, "2024.01.10");
}

TEST(Discovery, RejectsFlywayWithoutUndo) {
  TempDir dir;
  dir.Write("V3__Add_table.sql", "CREATE TABLE t (id int);\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"V3__Add_table.sql", "no down migration"},
                        {"U3__Add_table.sql", "-- safemig:irreversible"}));
}

TEST(Discovery, RejectsFlywayRepeatable) {
  TempDir dir;
  dir.Write("V1__a.sql", "-- safemig:irreversible\nSELECT 1;\n");
  dir.Write("R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"R__views.sql", "repeatable", "not supported yet"}));
}

TEST(Discovery, RejectsFlywayUndoWithoutVersioned) {
  TempDir dir;
  dir.Write("V1__a.sql", "CREATE TABLE a (id int);\n");
  dir.Write("U1__a.sql", "DROP TABLE a;\n");
  dir.Write("U2__b.sql", "DROP TABLE b;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"U2__b.sql", "without"}, {"V2__b.sql"}));
}

TEST(Discovery, RejectsDuplicateFlywayVersions) {
  TempDir dir;
  dir.Write("V1__a.sql", "-- safemig:irreversible\nSELECT 1;\n");
  dir.Write("V1.0__b.sql", "-- safemig:irreversible\nSELECT 2;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"V1.0__b.sql", "V1__a.sql", "same version"}));
}

// --- What is ignored -------------------------------------------------------------------

TEST(Discovery, IgnoresNonSqlHiddenAndUnrelatedEntries) {
  TempDir dir;
  dir.Write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  dir.Write("1_a.down.sql", "DROP TABLE a;\n");
  dir.Write("README.md", "# Migrations\n");
  dir.Write(".gitkeep", "");
  dir.Write(".1_a.up.sql.swp", "\xFF\xFE garbage");
  dir.Write(".hidden.sql", "not a migration at all");
  dir.Write("1_a.up.sql~", "editor backup");
  dir.Write("docs/index.md", "docs\n");
  dir.Write("seeds/users.sql", "INSERT INTO users VALUES (1);\n");
  dir.Write(".git/up.sql", "not ours\n");

  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 1u);
  EXPECT_EQ(migrations[0].up_path, "1_a.up.sql");
}

TEST(Discovery, ReturnsNothingForAnEmptyDirectory) {
  TempDir dir;
  EXPECT_TRUE(DiscoverMigrations(dir.path()).empty());
}

// --- Ordering, duplicates and mixing ---------------------------------------------------

TEST(Discovery, SortsByNumericVersion) {
  TempDir dir;
  for (const char* stem : {"10_c", "2_b", "1_a"}) {
    dir.Write(std::string(stem) + ".up.sql", "SELECT 1;\n");
    dir.Write(std::string(stem) + ".down.sql", "SELECT 2;\n");
  }
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 3u);
  EXPECT_EQ(migrations[0].version, "1");
  EXPECT_EQ(migrations[1].version, "2");
  EXPECT_EQ(migrations[2].version, "10");
}

TEST(Discovery, RejectsDuplicateVersion) {
  TempDir dir;
  dir.Write("001_a.up.sql", "SELECT 1;\n");
  dir.Write("001_a.down.sql", "SELECT 2;\n");
  dir.Write("1_b.up.sql", "SELECT 3;\n");
  dir.Write("1_b.down.sql", "SELECT 4;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"001_a.up.sql", "1_b.up.sql", "same version"}, {"001 and 1"}));
}

TEST(Discovery, RejectsPairWhoseNamesDiffer) {
  TempDir dir;
  dir.Write("1_create_users.up.sql", "CREATE TABLE users (id int);\n");
  dir.Write("1_create_user.down.sql", "DROP TABLE users;\n");
  EXPECT_TRUE(
      FailsWith(dir.path(), {"1_create_user.down.sql", "1_create_users.up.sql", "same version"}));
}

TEST(Discovery, AllowsFlatPairsNextToDbmateFiles) {
  TempDir dir;
  dir.Write("20230101000000_old.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n");
  dir.Write("20240101000000_new.up.sql", "SELECT 3;\n");
  dir.Write("20240101000000_new.down.sql", "SELECT 4;\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 2u);
  EXPECT_EQ(migrations[0].format, MigrationFormat::kDbmate);
  EXPECT_EQ(migrations[1].format, MigrationFormat::kFlatPair);
}

TEST(Discovery, RejectsMixedConventionsNamingBothFiles) {
  TempDir dir;
  dir.Write("1_a.up.sql", "SELECT 1;\n");
  dir.Write("1_a.down.sql", "SELECT 2;\n");
  dir.Write("V2__b.sql", "SELECT 3;\n");
  dir.Write("U2__b.sql", "SELECT 4;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.down.sql", "U2__b.sql", "mixed"},
                        {"one convention per directory"}));
}

TEST(Discovery, RejectsDbmateMixedWithGoose) {
  TempDir dir;
  dir.Write("1_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n");
  dir.Write("2_b.sql", "-- +goose Up\nSELECT 3;\n-- +goose Down\nSELECT 4;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql", "2_b.sql", "mixed", "dbmate", "goose"}));
}

TEST(Discovery, RejectsFolderPairsMixedWithFlatPairs) {
  TempDir dir;
  dir.Write("1_a.up.sql", "SELECT 1;\n");
  dir.Write("1_a.down.sql", "SELECT 2;\n");
  dir.Write("2_b/up.sql", "SELECT 3;\n");
  dir.Write("2_b/down.sql", "SELECT 4;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.down.sql", "2_b/up.sql", "mixed"}));
}

TEST(Discovery, RejectsFileWithMarkersOfBothTools) {
  TempDir dir;
  dir.Write("1_a.sql", "-- migrate:up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql:1", "goose", "line 3"}));
}

// --- Directory errors ------------------------------------------------------------------

TEST(Discovery, RejectsMissingDirectory) {
  TempDir dir;
  const fs::path missing = dir.path() / "no_such_dir";
  EXPECT_TRUE(FailsWith(missing, {"no_such_dir", "does not exist"}, {"--dir"}));
}

TEST(Discovery, RejectsPathThatIsAFile) {
  TempDir dir;
  dir.Write("migrations", "a file\n");
  EXPECT_TRUE(FailsWith(dir.path() / "migrations", {"migrations", "not a directory"}));
}

// Runs discovery as a user without root's power to read anything, then exits 0 when it
// threw a config error (printing it for the death-test regex), non-zero otherwise.
[[noreturn]] void DiscoverUnprivilegedAndExit(const fs::path& dir) {
  if (geteuid() == 0 && setuid(65534) != 0) std::_Exit(3);
  try {
    DiscoverMigrations(dir);
  } catch (const Error& error) {
    std::fprintf(stderr, "%s\n", error.what());
    std::_Exit(error.category() == Category::kConfig ? 0 : 2);
  }
  std::_Exit(1);
}

TEST(Discovery, RejectsUnreadableDirectory) {
  TempDir dir;
  dir.Write("migrations/1_a.up.sql", "SELECT 1;\n");
  const fs::path migrations = dir.path() / "migrations";
  fs::permissions(migrations, fs::perms::none);
  EXPECT_EXIT(DiscoverUnprivilegedAndExit(migrations), ::testing::ExitedWithCode(0),
              "cannot read migrations directory .*migrations: ");
}

TEST(Discovery, RejectsUnreadableMigrationFolder) {
  TempDir dir;
  dir.Write("2024-01-01-000000_a/up.sql", "SELECT 1;\n");
  dir.Write("2024-01-01-000000_a/down.sql", "SELECT 2;\n");
  fs::permissions(dir.path() / "2024-01-01-000000_a", fs::perms::none);
  EXPECT_EXIT(DiscoverUnprivilegedAndExit(dir.path()), ::testing::ExitedWithCode(0),
              "2024-01-01-000000_a/up.sql: cannot read: ");
}

// --- Pairing errors --------------------------------------------------------------------

TEST(Discovery, RejectsUpWithoutDown) {
  TempDir dir;
  dir.Write("20240101_x.up.sql", "CREATE TABLE x (id int);\n");
  EXPECT_TRUE(
      FailsWith(dir.path(), {"20240101_x.up.sql", "no down migration"},
                {"add 20240101_x.down.sql", "mark the migration '-- safemig:irreversible'"}));
}

TEST(Discovery, RejectsEmptyDown) {
  TempDir dir;
  dir.Write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  dir.Write("1_a.down.sql", "-- nothing to undo\n/* really */\n;\n\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.down.sql", "empty"}, {"safemig:irreversible"}));
}

TEST(Discovery, AcceptsIrreversibleWithoutDown) {
  TempDir dir;
  dir.Write("1_drop.up.sql", "-- safemig:irreversible\nDROP TABLE legacy;\n");
  dir.Write("2_prune.up.sql", "-- safemig:irreversible\nDELETE FROM audit;\n");
  dir.Write("2_prune.down.sql", "-- the rows are gone for good\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 2u);
  EXPECT_TRUE(migrations[0].directives.irreversible);
  EXPECT_EQ(migrations[0].down_path, "");
  EXPECT_FALSE(migrations[0].HasDown());
  EXPECT_EQ(migrations[0].down_checksum, kEmptySha256);
  EXPECT_EQ(migrations[1].down_path, "2_prune.down.sql");
  EXPECT_FALSE(migrations[1].HasDown());
}

TEST(Discovery, RejectsIrreversibleWithDownSql) {
  TempDir dir;
  dir.Write("1_a.up.sql", "-- safemig:irreversible\nCREATE TABLE a (id int);\n");
  dir.Write("1_a.down.sql", "DROP TABLE a;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.down.sql", "irreversible"}));
}

TEST(Discovery, RejectsDownWithoutUp) {
  TempDir dir;
  dir.Write("1_a.down.sql", "DROP TABLE a;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.down.sql", "without an up"}, {"add 1_a.up.sql"}));
}

TEST(Discovery, RejectsFolderDownWithoutUp) {
  TempDir dir;
  dir.Write("2024-01-01-000000_a/down.sql", "DROP TABLE a;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"2024-01-01-000000_a/down.sql", "without an up"},
                        {"2024-01-01-000000_a/up.sql"}));
}

TEST(Discovery, RejectsDbmateWithoutDownSection) {
  TempDir dir;
  dir.Write("1_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql", "no down section"},
                        {"'-- migrate:down'", "safemig:irreversible"}));
}

TEST(Discovery, AcceptsIrreversibleDbmateWithoutDownSection) {
  TempDir dir;
  dir.Write("1_a.sql", "-- safemig:irreversible\n-- migrate:up\nDROP TABLE legacy;\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 1u);
  EXPECT_TRUE(migrations[0].directives.irreversible);
  EXPECT_EQ(migrations[0].down_path, "");
}

TEST(Discovery, RejectsGooseWithEmptyDownSection) {
  TempDir dir;
  dir.Write("1_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\n\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql", "down section is empty"}));
}

// --- Names and contents that match no format -------------------------------------------

TEST(Discovery, RejectsUnparseableName) {
  TempDir dir;
  dir.Write("1_a.up.sql", "SELECT 1;\n");
  dir.Write("1_a.down.sql", "SELECT 2;\n");
  dir.Write("create_users.sql", "CREATE TABLE users (id int);\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"create_users.sql", "matches no migration format"},
                        {"<version>_<name>.up.sql"}));
}

TEST(Discovery, RejectsUnparseableFolderWithMigrationFiles) {
  TempDir dir;
  dir.Write("create_users/up.sql", "CREATE TABLE users (id int);\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"create_users/", "folder name matches no"}));
}

TEST(Discovery, RejectsUnmarkedSingleFileInFlatDirectory) {
  TempDir dir;
  dir.Write("1_a.up.sql", "SELECT 1;\n");
  dir.Write("1_a.down.sql", "SELECT 2;\n");
  dir.Write("20240101_x.sql", "CREATE TABLE x (id int);\n");
  EXPECT_TRUE(
      FailsWith(dir.path(), {"20240101_x.sql", "matches no migration format"}, {".up.sql"}));
}

TEST(Discovery, RejectsSingleFileWithoutMarkers) {
  TempDir dir;
  dir.Write("20240101_x.sql", "CREATE TABLE x (id int);\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"20240101_x.sql", "-- migrate:up", "-- +goose Up"}));
}

TEST(Discovery, RejectsDownMarkerWithoutUpMarker) {
  TempDir dir;
  dir.Write("1_a.sql", "CREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql:2", "no '-- migrate:up' marker"}));
}

TEST(Discovery, RejectsSqlBeforeUpMarker) {
  TempDir dir;
  dir.Write("1_a.sql",
            "CREATE TABLE a (id int);\n-- +goose Up\nSELECT 1;\n-- +goose Down\n"
            "SELECT 2;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql", "before the '-- +goose Up' marker"}));
}

TEST(Discovery, RejectsDownMarkerBeforeUpMarker) {
  TempDir dir;
  dir.Write("1_a.sql", "-- migrate:down\nDROP TABLE a;\n-- migrate:up\nCREATE TABLE a (id int);\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql:3", "after"}));
}

TEST(Discovery, RejectsRepeatedUpMarker) {
  TempDir dir;
  dir.Write("1_a.sql",
            "-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n-- migrate:down\n"
            "SELECT 3;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql:3", "second", "line 1"}));
}

TEST(Discovery, RejectsSectionMarkerInPairFile) {
  TempDir dir;
  dir.Write("1_a.up.sql",
            "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\n"
            "DROP TABLE a;\n");
  dir.Write("1_a.down.sql", "DROP TABLE a;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.up.sql:1", "-- migrate:up"}, {"<version>_<name>.sql"}));
}

TEST(Discovery, RejectsEmptyUp) {
  TempDir dir;
  dir.Write("1_a.up.sql", "-- TODO: write this\n/* later */\n\n");
  dir.Write("1_a.down.sql", "DROP TABLE a;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.up.sql", "up migration has no SQL"}));
}

TEST(Discovery, RejectsEmptyUpSection) {
  TempDir dir;
  dir.Write("1_a.sql", "-- migrate:up\n-- nothing yet\n-- migrate:down\nDROP TABLE a;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql", "up section has no SQL"}));
}

// --- Encoding --------------------------------------------------------------------------

TEST(Discovery, RejectsInvalidUtf8) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"overlong 2-byte", "\xC0\xAF"},
      {"overlong 3-byte", "\xE0\x80\xAF"},
      {"overlong 4-byte", "\xF0\x80\x80\xAF"},
      {"surrogate", "\xED\xA0\x80"},
      {"truncated mid-line", "\xE2\x82 x"},
      {"stray continuation", "\x80"},
      {"lead byte F5", "\xF5\x80\x80\x80"},
      {"beyond U+10FFFF", "\xF4\x90\x80\x80"},
      {"byte FF", "\xFF"},
      {"latin-1 e-acute", "caf\xE9"},
  };
  for (const auto& [label, bad] : cases) {
    SCOPED_TRACE(label);
    TempDir dir;
    dir.Write("1_a.up.sql", "CREATE TABLE a (id int);\nINSERT INTO a VALUES ('" + bad + "');\n");
    dir.Write("1_a.down.sql", "DROP TABLE a;\n");
    EXPECT_TRUE(FailsWith(dir.path(), {"1_a.up.sql:2", "not valid UTF-8"}, {"UTF-8"}));
  }
}

TEST(Discovery, RejectsInvalidUtf8TruncatedAtEndOfFile) {
  TempDir dir;
  dir.Write("1_a.up.sql", "SELECT 1;\n");
  dir.Write("1_a.down.sql", "SELECT 2;\n-- \xE2\x82");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.down.sql:2", "not valid UTF-8"}));
}

TEST(Discovery, RejectsInvalidUtf8InSingleFile) {
  TempDir dir;
  dir.Write("1_a.sql", "-- migrate:up\nSELECT '\xC3\x28';\n-- migrate:down\nSELECT 2;\n");
  EXPECT_TRUE(FailsWith(dir.path(), {"1_a.sql:2", "not valid UTF-8"}));
}

TEST(Discovery, AcceptsMultibyteUtf8AndStripsBom) {
  TempDir dir;
  const std::string up =
      "\xEF\xBB\xBFINSERT INTO t VALUES ('h\xC3\xA9llo \xE6\x97\xA5 \xF0\x9F\x98\x80');\n";
  dir.Write("1_a.up.sql", up);
  dir.Write("1_a.down.sql", "\xEF\xBB\xBF-- safemig note\nDELETE FROM t;\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 1u);
  EXPECT_EQ(migrations[0].up_sql, up.substr(3));
  EXPECT_EQ(migrations[0].down_sql, "-- safemig note\nDELETE FROM t;\n");
  // The checksum covers the file as it is on disk, BOM included.
  EXPECT_EQ(migrations[0].checksum, Sha256Hex(up));
}

// --- Checksums -------------------------------------------------------------------------

TEST(Discovery, ChecksumIsSha256OfUpFileBytes) {
  TempDir dir;
  dir.Write("1_t.up.sql", "CREATE TABLE t (id int);\n");
  dir.Write("1_t.down.sql", "DROP TABLE t;\n");
  dir.Write("2_bom.up.sql", "\xEF\xBB\xBFSELECT 1;\n");
  dir.Write("2_bom.down.sql", "SELECT 2;\n");
  const std::vector<Migration> migrations = DiscoverMigrations(dir.path());
  ASSERT_EQ(migrations.size(), 2u);
  // Digests from `printf ... | sha256sum`.
  EXPECT_EQ(migrations[0].checksum,
            "12c83f983b0c94b9c7010dcc92149589d5fb01a3d32af8f6d699545d95db9040");
  EXPECT_EQ(migrations[0].down_checksum,
            "2b7ffedb74b81e66d9bf4a83e5d7eb5ef17380c664415459a009e2827d6b9dbd");
  EXPECT_EQ(migrations[1].checksum,
            "34b0bcbe990d70cd4adde7a8005ade4334f170e0625d767d78872a66515dec8a");
}

TEST(Discovery, ChecksumIsStableAndTracksEdits) {
  TempDir dir;
  dir.Write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  dir.Write("1_a.down.sql", "DROP TABLE a;\n");
  const std::string first = DiscoverMigrations(dir.path()).at(0).checksum;
  EXPECT_EQ(DiscoverMigrations(dir.path()).at(0).checksum, first);
  dir.Write("1_a.up.sql", "CREATE TABLE a (id bigint);\n");
  EXPECT_NE(DiscoverMigrations(dir.path()).at(0).checksum, first);
}

TEST(Discovery, SingleFileChecksumCoversWholeFile) {
  TempDir dir;
  const std::string text = "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n";
  dir.Write("1_a.sql", text);
  const Migration migration = DiscoverMigrations(dir.path()).at(0);
  EXPECT_EQ(migration.checksum, Sha256Hex(text));
  EXPECT_EQ(migration.down_checksum, Sha256Hex("SELECT 2;\n"));
}

// --- Directives ------------------------------------------------------------------------

TEST(Directives, ReadsEachDirective) {
  const Directives directives = ParseDirectives(
      "-- safemig:no-transaction\n-- safemig:irreversible\n-- safemig:timeout=30s\n"
      "CREATE TABLE t (id int);\n",
      "1_a.up.sql");
  EXPECT_TRUE(directives.no_transaction);
  EXPECT_TRUE(directives.irreversible);
  EXPECT_EQ(directives.timeout, milliseconds(30'000));
}

TEST(Directives, DefaultsWhenAbsent) {
  const Directives directives = ParseDirectives("CREATE TABLE t (id int);\n", "1_a.up.sql");
  EXPECT_FALSE(directives.no_transaction);
  EXPECT_FALSE(directives.irreversible);
  EXPECT_FALSE(directives.timeout.has_value());
}

TEST(Directives, ReadsDurations) {
  const std::vector<std::pair<const char*, long long>> cases = {
      {"500ms", 500},    {"30s", 30'000},   {"5m", 300'000},
      {"1h", 3'600'000}, {"1m30s", 90'000}, {"1h2m3s4ms", 3'723'004},
  };
  for (const auto& [text, ms] : cases) {
    SCOPED_TRACE(text);
    const Directives directives =
        ParseDirectives(std::string("-- safemig:timeout=") + text + "\nSELECT 1;\n", "x.sql");
    EXPECT_EQ(directives.timeout, milliseconds(ms));
  }
}

TEST(Directives, RejectsMalformedTimeouts) {
  for (const char* text :
       {"abc", "30", "10x", "", "s", "1.5s", "-1s", "0s", "1m30", "30 s", "9999999999h"}) {
    SCOPED_TRACE(text);
    try {
      ParseDirectives(std::string("-- note\n\n-- safemig:timeout=") + text + "\nSELECT 1;\n",
                      "1_a.up.sql");
      ADD_FAILURE() << "accepted timeout '" << text << "'";
    } catch (const Error& error) {
      EXPECT_EQ(error.category(), Category::kConfig);
      EXPECT_TRUE(Mentions(error.what(), {"1_a.up.sql:3"}));
      EXPECT_FALSE(error.hint().empty());
    }
  }
}

TEST(Directives, RejectsUnknownDirective) {
  try {
    ParseDirectives("-- safemig:no_transaction\nSELECT 1;\n", "1_a.up.sql");
    ADD_FAILURE() << "accepted a misspelt directive";
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), Category::kConfig);
    EXPECT_TRUE(Mentions(error.what(), {"1_a.up.sql:1", "safemig:no_transaction"}));
    EXPECT_TRUE(Mentions(error.hint(), {"safemig:no-transaction"}));
  }
}

TEST(Directives, StopsAtFirstStatement) {
  const Directives directives =
      ParseDirectives("CREATE TABLE t (id int);\n-- safemig:irreversible\n", "x.sql");
  EXPECT_FALSE(directives.irreversible);
}

TEST(Directives, SkipsBlankLinesAndBlockComments) {
  const Directives directives = ParseDirectives(
      "\xEF\xBB\xBF\n/* The legacy table goes.\n   Nobody reads it. */\n\n"
      "/* one */ -- safemig:irreversible\n  -- safemig:no-transaction\nDROP TABLE legacy;\n",
      "x.sql");
  EXPECT_TRUE(directives.irreversible);
  EXPECT_TRUE(directives.no_transaction);
}

TEST(Directives, IsCaseInsensitiveAndAllowsANote) {
  const Directives directives = ParseDirectives(
      "--SAFEMIG:Irreversible the rows are deleted for good\nDELETE FROM t;\n", "x.sql");
  EXPECT_TRUE(directives.irreversible);
}

TEST(Directives, IgnoresCommentsThatOnlyMentionSafemig) {
  const Directives directives =
      ParseDirectives("-- not safemig:irreversible, see the runbook\nSELECT 1;\n", "x.sql");
  EXPECT_FALSE(directives.irreversible);
}

}  // namespace
}  // namespace safemig
