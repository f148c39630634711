// Restoring some tables of a backup (`restore --tables`) on real PostgreSQL and MariaDB
// servers: into a new database (only those tables, exact rows, counters continuing) and in
// place (a safety backup first, only those rows replaced, refusals that change nothing).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/backups.h"
#include "server_env.h"
#include "test_util.h"

namespace safemig {
namespace {

using testing::ScratchMySqlDatabase;
using testing::ScratchPostgresDatabase;
using testing::TempDir;

// The same shop on either engine: customers referenced by orders (ON DELETE CASCADE, so a
// replace that let the cascade fire would empty orders).
struct Shop {
  std::string customers;
  std::string orders;
};

Shop PostgresShop() {
  return {"CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);"
          "CREATE INDEX customers_name ON customers (name);",
          "CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES "
          "customers (id) ON DELETE CASCADE, note text);"};
}

Shop MySqlShop() {
  return {"CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT "
          "NULL, KEY customers_name (name)) ENGINE=InnoDB",
          "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, "
          "note VARCHAR(50), FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE "
          "CASCADE) ENGINE=InnoDB"};
}

// Rows of `sql` as "a|b" strings.
std::vector<std::string> Rows(const DatabaseUrl& url, const std::string& sql) {
  std::unique_ptr<Driver> driver = OpenDriver(url, OpenOptions{false});
  std::vector<std::string> rows;
  for (const auto& row : driver->QueryText(sql).rows) {
    std::string text;
    for (std::size_t i = 0; i < row.size(); ++i) {
      text += (i > 0 ? "|" : "") + row[i].value_or("NULL");
    }
    rows.push_back(text);
  }
  return rows;
}

class TableRestoreTest : public ::testing::Test {
 protected:
  // Fills the shop through `exec` and takes a backup of `url`.
  template <typename ExecFn>
  void FillAndBackUp(const DatabaseUrl& url, const Shop& shop, ExecFn exec) {
    exec(shop.customers);
    exec(shop.orders);
    exec("INSERT INTO customers (name) VALUES ('Ann'), ('Bob')");
    exec("INSERT INTO orders (customer_id, note) VALUES (1, 'first'), (2, 'second')");
    std::unique_ptr<Driver> driver = OpenDriver(url, OpenOptions{false, 2});
    driver->EnsureMetadata();
    BackupRequest request;
    backup_id_ = TakeBackup(*driver, store_, request, reporter_).manifest.id;
  }

  RestoreResult InPlace(const DatabaseUrl& url, const std::vector<std::string>& tables) {
    std::unique_ptr<Driver> current = OpenDriver(url, OpenOptions{false, 2});
    return RestoreBackup(store_, backup_id_, url, std::move(current), "default", reporter_, 2,
                         tables);
  }

  std::string Fingerprint(const DatabaseUrl& url) {
    return OpenDriver(url, OpenOptions{false})->TakeFingerprint(true).Digest();
  }

  TempDir dir_;
  BackupStore store_{dir_ / "backups"};
  Reporter reporter_;
  std::string backup_id_;
};

// --- PostgreSQL ------------------------------------------------------------------------

TEST_F(TableRestoreTest, PostgresTablesIntoANewDatabaseHoldOnlyThoseWithTheirRows) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase db(server);
  FillAndBackUp(db.url(), PostgresShop(), [&](const std::string& sql) { db.Exec(sql); });
  ScratchPostgresDatabase target(server);  // empty: restored into directly
  RestoreResult result =
      RestoreBackup(store_, backup_id_, target.url(), nullptr, "default", reporter_, 2,
                    {"customers"});
  ASSERT_EQ(result.tables.size(), 1u);
  EXPECT_EQ(result.tables[0].table, "public.customers");
  EXPECT_EQ(result.tables[0].rows, 2);
  EXPECT_EQ(Rows(target.url(), "SELECT id, name FROM customers ORDER BY id"),
            (std::vector<std::string>{"1|Ann", "2|Bob"}));
  EXPECT_EQ(Rows(target.url(), "SELECT to_regclass('public.orders') IS NULL"),
            std::vector<std::string>{"t"});
  EXPECT_EQ(Rows(target.url(), "SELECT indexname FROM pg_indexes WHERE tablename = "
                               "'customers' ORDER BY 1"),
            (std::vector<std::string>{"customers_name", "customers_pkey"}));
  // The sequence came along at its value: the next id is 3.
  target.Exec("INSERT INTO customers (name) VALUES ('Cy')");
  EXPECT_EQ(Rows(target.url(), "SELECT id FROM customers WHERE name = 'Cy'"),
            std::vector<std::string>{"3"});
}

TEST_F(TableRestoreTest, PostgresInPlaceRefillsAReferencedTableAfterASafetyBackup) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase db(server);
  FillAndBackUp(db.url(), PostgresShop(), [&](const std::string& sql) { db.Exec(sql); });
  db.Exec("UPDATE customers SET name = 'Changed' WHERE id = 1;"
          "INSERT INTO customers (name) VALUES ('Cy');"
          "UPDATE orders SET note = 'edited' WHERE id = 2;");
  RestoreResult result = InPlace(db.url(), {"customers"});
  ASSERT_EQ(result.tables.size(), 1u);
  EXPECT_EQ(result.tables[0].rows, 2);
  EXPECT_FALSE(result.safety_backup_id.empty());
  EXPECT_EQ(Rows(db.url(), "SELECT id, name FROM customers ORDER BY id"),
            (std::vector<std::string>{"1|Ann", "2|Bob"}));
  // ON DELETE CASCADE did not fire, and orders keep today's rows.
  EXPECT_EQ(Rows(db.url(), "SELECT id, customer_id, note FROM orders ORDER BY id"),
            (std::vector<std::string>{"1|1|first", "2|2|edited"}));
  // The sequence did not go back: id 3 was handed out, the next is 4.
  db.Exec("INSERT INTO customers (name) VALUES ('Dee')");
  EXPECT_EQ(Rows(db.url(), "SELECT id FROM customers WHERE name = 'Dee'"),
            std::vector<std::string>{"4"});
  // The safety backup holds the replaced state and restores.
  ScratchPostgresDatabase before(server);
  RestoreBackup(store_, result.safety_backup_id, before.url(), nullptr, "default", reporter_, 2);
  EXPECT_EQ(Rows(before.url(), "SELECT id, name FROM customers ORDER BY id"),
            (std::vector<std::string>{"1|Changed", "2|Bob", "3|Cy"}));
}

TEST_F(TableRestoreTest, PostgresRefusalsChangeNothing) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase db(server);
  FillAndBackUp(db.url(), PostgresShop(), [&](const std::string& sql) { db.Exec(sql); });
  // An order for a customer the backup lacks: refilling customers would orphan it.
  db.Exec("INSERT INTO customers (name) VALUES ('Cy');"
          "INSERT INTO orders (customer_id, note) VALUES (3, 'third');");
  const std::string state = Fingerprint(db.url());
  try {
    InPlace(db.url(), {"customers"});
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNoGo) << e.what();
    EXPECT_NE(std::string(e.what()).find("1 row of public.orders pointing at no row of "
                                         "public.customers"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(Fingerprint(db.url()), state);
  const std::size_t backups = store_.List().size();

  db.Exec("ALTER TABLE customers ADD COLUMN phone text");
  const std::string altered = Fingerprint(db.url());
  try {
    InPlace(db.url(), {"customers"});
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNoGo) << e.what();
    EXPECT_NE(std::string(e.what()).find("column phone was added"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(Fingerprint(db.url()), altered);
  EXPECT_EQ(store_.List().size(), backups) << "no safety backup before a column refusal";

  try {
    InPlace(db.url(), {"invoices"});
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kUsage) << e.what();
  }
  EXPECT_EQ(Fingerprint(db.url()), altered);
}

// --- MariaDB ---------------------------------------------------------------------------

TEST_F(TableRestoreTest, MySqlTablesIntoANewDatabaseHoldOnlyThoseWithTheirRows) {
  SAFEMIG_REQUIRE_MYSQL(server);
  ScratchMySqlDatabase db(server);
  FillAndBackUp(db.url(), MySqlShop(), [&](const std::string& sql) { db.Exec(sql); });
  ScratchMySqlDatabase target(server);
  RestoreResult result =
      RestoreBackup(store_, backup_id_, target.url(), nullptr, "default", reporter_, 2,
                    {"customers"});
  ASSERT_EQ(result.tables.size(), 1u);
  EXPECT_EQ(result.tables[0].rows, 2);
  EXPECT_EQ(Rows(target.url(), "SELECT id, name FROM customers ORDER BY id"),
            (std::vector<std::string>{"1|Ann", "2|Bob"}));
  EXPECT_TRUE(target.Query("SHOW TABLES LIKE 'orders'").empty());
  EXPECT_FALSE(target.Query("SHOW INDEX FROM customers WHERE Key_name = 'customers_name'").empty());
  target.Exec("INSERT INTO customers (name) VALUES ('Cy')");
  EXPECT_EQ(Rows(target.url(), "SELECT id FROM customers WHERE name = 'Cy'"),
            std::vector<std::string>{"3"});
}

TEST_F(TableRestoreTest, MySqlInPlaceRefillsAReferencedTableAfterASafetyBackup) {
  SAFEMIG_REQUIRE_MYSQL(server);
  ScratchMySqlDatabase db(server);
  FillAndBackUp(db.url(), MySqlShop(), [&](const std::string& sql) { db.Exec(sql); });
  db.Exec("UPDATE customers SET name = 'Changed' WHERE id = 1");
  db.Exec("INSERT INTO customers (name) VALUES ('Cy')");
  db.Exec("UPDATE orders SET note = 'edited' WHERE id = 2");
  RestoreResult result = InPlace(db.url(), {"customers"});
  ASSERT_EQ(result.tables.size(), 1u);
  EXPECT_EQ(result.tables[0].rows, 2);
  EXPECT_EQ(Rows(db.url(), "SELECT id, name FROM customers ORDER BY id"),
            (std::vector<std::string>{"1|Ann", "2|Bob"}));
  EXPECT_EQ(Rows(db.url(), "SELECT id, customer_id, note FROM orders ORDER BY id"),
            (std::vector<std::string>{"1|1|first", "2|2|edited"}));
  db.Exec("INSERT INTO customers (name) VALUES ('Dee')");
  EXPECT_EQ(Rows(db.url(), "SELECT id FROM customers WHERE name = 'Dee'"),
            std::vector<std::string>{"4"});
  ScratchMySqlDatabase before(server);
  RestoreBackup(store_, result.safety_backup_id, before.url(), nullptr, "default", reporter_, 2);
  EXPECT_EQ(Rows(before.url(), "SELECT id, name FROM customers ORDER BY id"),
            (std::vector<std::string>{"1|Changed", "2|Bob", "3|Cy"}));
}

TEST_F(TableRestoreTest, MySqlRefusalsChangeNothing) {
  SAFEMIG_REQUIRE_MYSQL(server);
  ScratchMySqlDatabase db(server);
  FillAndBackUp(db.url(), MySqlShop(), [&](const std::string& sql) { db.Exec(sql); });
  db.Exec("INSERT INTO customers (name) VALUES ('Cy')");
  db.Exec("INSERT INTO orders (customer_id, note) VALUES (3, 'third')");
  const std::string state = Fingerprint(db.url());
  try {
    InPlace(db.url(), {"customers"});
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNoGo) << e.what();
    EXPECT_NE(std::string(e.what()).find("1 row of orders pointing at no row of customers"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(Fingerprint(db.url()), state);
  const std::size_t backups = store_.List().size();

  db.Exec("ALTER TABLE customers ADD COLUMN phone VARCHAR(20)");
  const std::string altered = Fingerprint(db.url());
  try {
    InPlace(db.url(), {"customers"});
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kNoGo) << e.what();
    EXPECT_NE(std::string(e.what()).find("column phone was added"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(Fingerprint(db.url()), altered);
  EXPECT_EQ(store_.List().size(), backups) << "no safety backup before a column refusal";
}

}  // namespace
}  // namespace safemig
