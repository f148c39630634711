// The PostgreSQL example migrations (migrations-examples/postgres) against a real server,
// driven through the safemig binary as a user runs it: they apply, undo and re-apply
// cleanly, and a failing migration leaves the database as it was.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "drivers/postgres/pg_connection.h"
#include "server_env.h"
#include "test_util.h"

namespace safemig {
namespace {

using testing::CommandLineUrl;
using testing::RunSafemig;
using testing::ScratchPostgresDatabase;
using testing::ShellQuote;
using testing::TempDir;
using testing::WriteFile;

const std::string kExamples = std::string(SAFEMIG_SOURCE_DIR) + "/migrations-examples/postgres";
const std::string kLastExample = "20260127110000";

// "--url ... --dir ... " for every command of a test.
std::string CommonArgs(const ScratchPostgresDatabase& db, const std::string& dir) {
  return "--url " + ShellQuote(CommandLineUrl("SAFEMIG_TEST_POSTGRES_URL", db.name())) +
         " --dir " + ShellQuote(dir) + " ";
}

// Rows of a one-column query, one line each.
std::string QueryLines(const ScratchPostgresDatabase& db, const std::string& sql) {
  PgConn conn = ConnectLibpq(db.url());
  PgResult result = ExecLibpq(conn.get(), sql);
  std::string text;
  for (int row = 0; row < PQntuples(result.get()); ++row) {
    text += PQgetvalue(result.get(), row, 0);
    text += "\n";
  }
  return text;
}

// The user schema, one sorted line per object, from the catalog (not from safemig's own
// fingerprint, so the check does not lean on the code under test). safemig's own
// safemig_* tables are left out.
std::string DescribeSchema(const ScratchPostgresDatabase& db) {
  return QueryLines(db, R"sql(
    WITH rels AS (
      SELECT c.oid, n.nspname, c.relname, c.relkind
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
         AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
         AND c.relname NOT LIKE 'safemig\_%'
    )
    SELECT line FROM (
      SELECT format('relation %s.%s kind=%s', nspname, relname, relkind) AS line FROM rels
      UNION ALL
      SELECT format('column %s.%s.%s %s notnull=%s default=%s identity=%s', r.nspname,
                    r.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity)
        FROM rels AS r
        JOIN pg_attribute AS a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      UNION ALL
      SELECT format('constraint %s.%s %s', r.relname, co.conname, pg_get_constraintdef(co.oid))
        FROM rels AS r JOIN pg_constraint AS co ON co.conrelid = r.oid
      UNION ALL
      SELECT format('index %s', pg_get_indexdef(r.oid)) FROM rels AS r WHERE r.relkind = 'i'
      UNION ALL
      SELECT format('view %s.%s %s', r.nspname, r.relname, pg_get_viewdef(r.oid))
        FROM rels AS r WHERE r.relkind IN ('v', 'm')
      UNION ALL
      SELECT format('trigger %s', pg_get_triggerdef(t.oid))
        FROM rels AS r JOIN pg_trigger AS t ON t.tgrelid = r.oid AND NOT t.tgisinternal
      UNION ALL
      SELECT format('function %s', pg_get_functiondef(p.oid))
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prokind IN ('f', 'p')
    ) AS lines
    ORDER BY line
  )sql");
}

// Tables, views and sequences other than safemig's own, one per line.
std::string UserRelations(const ScratchPostgresDatabase& db) {
  return QueryLines(db, R"sql(
    SELECT n.nspname || '.' || c.relname
      FROM pg_class AS c
      JOIN pg_namespace AS n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       AND c.relname NOT LIKE 'safemig\_%'
     ORDER BY 1
  )sql");
}

nlohmann::json Status(const std::string& args) {
  testing::CommandResult result = RunSafemig(args + "status --format json");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  nlohmann::json status = nlohmann::json::parse(result.out, nullptr, false);
  EXPECT_FALSE(status.is_discarded()) << result.out;
  return status;
}

int CountExamples() {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".up.sql") == 0) ++count;
  }
  return count;
}

void ExpectAllApplied(const nlohmann::json& status, int count) {
  EXPECT_EQ(status.value("applied", -1), count) << status.dump(2);
  EXPECT_EQ(status.value("pending", -1), 0) << status.dump(2);
  EXPECT_EQ(status.value("current_version", ""), kLastExample) << status.dump(2);
  ASSERT_TRUE(status.contains("migrations")) << status.dump(2);
  EXPECT_EQ(static_cast<int>(status["migrations"].size()), count);
  for (const nlohmann::json& migration : status["migrations"]) {
    EXPECT_EQ(migration.value("state", ""), "applied") << migration.dump();
  }
}

// Backups of PostgreSQL databases are covered by the backup tests; the runs here pass
// --skip-backup so that they test the migrations alone.

TEST(PostgresExamples, UpDownUpLeavesTheSameSchema) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase db(server);
  const std::string args = CommonArgs(db, kExamples);
  const int count = CountExamples();
  ASSERT_EQ(count, 8);
  ASSERT_EQ(DescribeSchema(db), "");

  testing::CommandResult up = RunSafemig(args + "up --skip-backup");
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  const std::string schema = DescribeSchema(db);
  for (const char* object :
       {"relation public.customers kind=r", "relation public.order_items kind=r",
        "relation public.customer_order_totals kind=v", "relation public.order_summaries kind=v",
        "index CREATE INDEX customers_email_normalized_idx",
        "trigger CREATE TRIGGER orders_touch_updated_at BEFORE UPDATE OF status, customer_id",
        "trigger CREATE TRIGGER order_items_item_count_after_delete AFTER DELETE",
        "function CREATE OR REPLACE FUNCTION public.order_items_sync_order_total()",
        "column public.orders.item_count integer notnull=t default=0"}) {
    EXPECT_NE(schema.find(object), std::string::npos) << object << "\n" << schema;
  }
  ExpectAllApplied(Status(args), count);

  testing::CommandResult down = RunSafemig(args + "down --to 0 --yes --skip-backup");
  ASSERT_EQ(down.exit_code, 0) << down.out << down.err;
  nlohmann::json status = Status(args);
  EXPECT_EQ(status.value("applied", -1), 0) << status.dump(2);
  EXPECT_EQ(status.value("pending", -1), count) << status.dump(2);
  EXPECT_EQ(UserRelations(db), "");
  EXPECT_EQ(DescribeSchema(db), "");  // functions and triggers are gone too
  EXPECT_EQ(QueryLines(db, "SELECT count(*) FROM safemig_migrations"), "0\n");

  up = RunSafemig(args + "up --skip-backup");
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_EQ(DescribeSchema(db), schema);
  ExpectAllApplied(Status(args), count);

  // The recreated triggers and views work: totals, unit counts and the view follow the lines.
  db.Exec(
      "INSERT INTO customers (email, name) VALUES (' Ada@Example.com ', 'Ada');"
      "INSERT INTO orders (customer_id) SELECT id FROM customers;"
      "INSERT INTO order_items (order_id, sku, quantity, unit_price_cents)"
      "  SELECT id, 'MUG-001', 2, 1290 FROM orders UNION ALL SELECT id, 'STK-PACK', 3, 450 FROM orders;"
      "DELETE FROM order_items WHERE sku = 'STK-PACK';");
  EXPECT_EQ(QueryLines(db, "SELECT format('%s %s', total_cents, item_count) FROM orders"), "2580 2\n");
  EXPECT_EQ(QueryLines(db, "SELECT format('%s %s', order_count, lifetime_cents) FROM customer_order_totals"),
            "1 2580\n");
}

TEST(PostgresExamples, FailingMigrationLeavesTheDatabaseAsItWas) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  TempDir dir;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples)) {
    if (entry.path().extension() == ".sql") {
      std::filesystem::copy_file(entry.path(), dir.path() / entry.path().filename());
    }
  }
  // Its first statement succeeds; the second (line 3) fails. Inside the migration's
  // transaction the first must be rolled back with it.
  WriteFile(dir / "20260203090000_add_coupons.up.sql",
            "-- Add coupons and a column that refers to them; the table altered does not exist.\n"
            "CREATE TABLE coupons (code text PRIMARY KEY);\n"
            "ALTER TABLE no_such_table ADD COLUMN coupon_code text REFERENCES coupons (code);\n");
  WriteFile(dir / "20260203090000_add_coupons.down.sql",
            "-- Drop coupons (undoes add_coupons).\n"
            "DROP TABLE coupons;\n");
  const std::string failing_at = "20260203090000_add_coupons.up.sql:3";

  {
    SCOPED_TRACE("examples applied first, then an up that runs only the failing migration");
    ScratchPostgresDatabase db(server);
    const std::string args = CommonArgs(db, dir.path().string());
    testing::CommandResult up = RunSafemig(args + "up --to " + kLastExample + " --skip-backup");
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    const nlohmann::json status_before = Status(args);
    EXPECT_EQ(status_before.value("applied", -1), 8) << status_before.dump(2);
    EXPECT_EQ(status_before.value("pending", -1), 1) << status_before.dump(2);
    const std::string schema_before = DescribeSchema(db);

    up = RunSafemig(args + "up --skip-backup");
    EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
    EXPECT_NE(up.err.find(failing_at), std::string::npos) << up.err;
    EXPECT_NE(up.err.find("no_such_table"), std::string::npos) << up.err;

    EXPECT_EQ(Status(args), status_before);
    EXPECT_EQ(DescribeSchema(db), schema_before);
    EXPECT_EQ(QueryLines(db, "SELECT to_regclass('coupons') IS NULL"), "t\n");
  }
  {
    SCOPED_TRACE("one up over an empty database: the run's earlier migrations are reverted");
    ScratchPostgresDatabase db(server);
    const std::string args = CommonArgs(db, dir.path().string());
    const nlohmann::json status_before = Status(args);
    EXPECT_EQ(status_before.value("applied", -1), 0) << status_before.dump(2);

    testing::CommandResult up = RunSafemig(args + "up --skip-backup --format json");
    EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
    nlohmann::json result = nlohmann::json::parse(up.out, nullptr, false);
    ASSERT_FALSE(result.is_discarded()) << up.out;
    EXPECT_EQ(result.value("ok", true), false) << up.out;
    const std::string message = result["error"].value("message", "");
    EXPECT_EQ(message.rfind(failing_at + ":", 0), 0u) << message;
    EXPECT_EQ(result["error"].value("exit_code", 0), 1) << up.out;

    EXPECT_EQ(Status(args), status_before);
    EXPECT_EQ(DescribeSchema(db), "");
    EXPECT_EQ(UserRelations(db), "");
  }
}

}  // namespace
}  // namespace safemig
