// The MySQL example migrations (migrations-examples/mysql) against the real server: every
// one applies, every down brings the schema back exactly, and the triggers keep the totals.
#include <gtest/gtest.h>

#include "core/discovery.h"
#include "driver/driver.h"
#include "core/status.h"
#include "engine/migrator.h"
#include "server_env.h"

namespace safemig {
namespace {

using testing::ScratchMySqlDatabase;

const std::string kExamples = std::string(SAFEMIG_SOURCE_DIR) + "/migrations-examples/mysql";

TEST(MySqlExamples, EachUpAndItsDownLeaveTheSchemaAsItWas) {
  SAFEMIG_REQUIRE_MYSQL(server);
  ScratchMySqlDatabase db(server);
  auto driver = OpenDriver(db.url());
  driver->EnsureMetadata();
  Reporter quiet;
  Migrator migrator(*driver, quiet);
  const std::vector<Migration> files = DiscoverMigrations(kExamples);
  ASSERT_EQ(files.size(), 8u);
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string before = driver->TakeFingerprint(false).SchemaDigest();
    RunOptions options;
    options.run_id = "run";
    migrator.Execute(PlanUp(ComputeStatus(files, driver->ReadHistory()), std::nullopt, 1),
                     options);
    migrator.Execute(PlanDown(ComputeStatus(files, driver->ReadHistory()), std::nullopt, 1),
                     options);
    EXPECT_EQ(driver->TakeFingerprint(false).SchemaDigest(), before) << files[i].version;
    migrator.Execute(PlanUp(ComputeStatus(files, driver->ReadHistory()), std::nullopt, 1),
                     options);
  }
  EXPECT_EQ(driver->ReadHistory().size(), 8u);

  db.Exec("INSERT INTO customers (email, name) VALUES ('a@example.com', 'A')");
  db.Exec("INSERT INTO orders (customer_id) SELECT id FROM customers");
  // A trigger may not update a table its statement reads, so no INSERT ... SELECT FROM orders.
  const std::string order = *db.Query("SELECT id FROM orders").at(0).at(0);
  db.Exec("INSERT INTO order_items (order_id, sku, quantity, unit_price_cents) VALUES (" +
          order + ", 'MUG-001', 2, 1290)");
  EXPECT_EQ(db.Query("SELECT CONCAT(total_cents, ' ', item_count) FROM orders").at(0).at(0),
            "2580 2");
  db.Exec("UPDATE orders SET status = 'paid'");
  EXPECT_THROW(db.Exec("UPDATE order_items SET quantity = 3"), sql::SQLException);
  EXPECT_EQ(db.Query("SELECT lifetime_cents FROM customer_order_totals").at(0).at(0), "2580");

  RunOptions options;
  options.run_id = "down";
  migrator.Execute(PlanDown(ComputeStatus(files, driver->ReadHistory()), std::string("0"),
                            std::nullopt),
                   options);
  EXPECT_TRUE(driver->TakeFingerprint(false).objects.empty());
}

}  // namespace
}  // namespace safemig
