// Fingerprints: equal for the same schema and data whatever the creation order, different
// (and described in words) for every change a rehearsal or a restore must notice, stable
// as JSON, and taken without touching the database.
#include "core/fingerprint.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "drivers/sqlite/sqlite_fingerprint.h"
#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::ReadFile;
using safemig::testing::TempDir;

// A small shop touching every kind of object the fingerprint records.
const std::string kShop = R"sql(
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT DEFAULT ''
);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
  status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'paid')),
  total REAL
);
CREATE INDEX orders_customer_idx ON orders (customer_id, status);
CREATE VIEW customer_totals AS SELECT customer_id, sum(total) AS total FROM orders
GROUP BY customer_id;
CREATE TRIGGER orders_touch AFTER UPDATE OF status ON orders
BEGIN
  UPDATE customers SET name = name WHERE id = NEW.customer_id;
END;
INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann'), (2, 'bob@example.com', NULL);
INSERT INTO orders (customer_id, status, total) VALUES (1, 'new', 9.5), (2, 'paid', 20);
)sql";

// kShop with its objects created in another order and its view laid out differently.
const std::string kShopReordered = R"sql(
CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'paid')), total REAL);
CREATE TRIGGER orders_touch AFTER UPDATE OF status ON orders BEGIN UPDATE customers
  SET name = name WHERE id = NEW.customer_id; END;
CREATE VIEW IF NOT EXISTS customer_totals AS
  SELECT customer_id,   sum(total) AS total   -- per customer
  FROM orders
  GROUP BY customer_id;
CREATE INDEX orders_customer_idx ON orders (customer_id, status);
CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT DEFAULT '');
INSERT INTO customers VALUES (2, 'bob@example.com', NULL);
INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann');
INSERT INTO orders (customer_id, status, total) VALUES (1, 'new', 9.5), (2, 'paid', 20);
)sql";

// `text` with its one occurrence of `from` replaced by `to`.
std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "the base SQL has no " << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

bool Contains(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::string Lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += "\n  " + line;
  return text;
}

// The data half of a fingerprint as comparable text.
std::string Tables(const Fingerprint& fingerprint) {
  std::string text;
  for (const auto& [name, data] : fingerprint.tables) {
    text += name + " " + std::to_string(data.rows) + " " + data.content_sha256 + "\n";
  }
  return text;
}

class FingerprintSqliteTest : public ::testing::Test {
 protected:
  std::string NewPath() { return (dir_ / ("db" + std::to_string(++count_) + ".sqlite")).string(); }

  // A new database file built by `sql`, fingerprinted.
  Fingerprint Take(const std::string& sql, bool include_metadata = false) {
    SQLite::Database db(NewPath(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA synchronous = OFF");  // durability is beside the point; speed is not
    db.exec(sql);
    return FingerprintSqlite(db, include_metadata);
  }

  TempDir dir_;
  int count_ = 0;
};

TEST_F(FingerprintSqliteTest, CreationOrderLayoutAndCommentsDoNotMatter) {
  const Fingerprint first = Take(kShop);
  const Fingerprint second = Take(kShopReordered);
  EXPECT_EQ(first.objects, second.objects);
  EXPECT_EQ(first.Digest(), second.Digest()) << Lines(DescribeDifferences(first, second));
  EXPECT_TRUE(DescribeDifferences(first, second).empty());
}

TEST_F(FingerprintSqliteTest, RecordsEveryKindOfObject) {
  const Fingerprint fingerprint = Take(kShop);
  EXPECT_EQ(fingerprint.objects.at("view customer_totals"),
            "view customer_totals: SELECT customer_id, sum(total) AS total FROM orders GROUP BY "
            "customer_id");
  EXPECT_EQ(fingerprint.objects.at("index orders_customer_idx"),
            "index orders_customer_idx: on orders (customer_id ASC, status ASC)");
  EXPECT_EQ(fingerprint.objects.at("unique on customers (email)"),
            "unique on customers (email): email ASC");
  EXPECT_EQ(fingerprint.objects.at("columns orders"),
            "columns orders: id, customer_id, status, total");
  EXPECT_EQ(fingerprint.objects.at("table customers"),
            "table customers: column email TEXT pk=0 notnull=1 default=NULL | "
            "column id INTEGER pk=1 notnull=0 default=NULL | "
            "column name TEXT pk=0 notnull=0 default=''");
  const std::string& orders = fingerprint.objects.at("table orders");
  EXPECT_NE(orders.find("column id INTEGER pk=1 notnull=0 default=NULL autoincrement"),
            std::string::npos)
      << orders;
  EXPECT_NE(orders.find("check (status IN ('new', 'paid'))"), std::string::npos) << orders;
  EXPECT_NE(orders.find("fk (customer_id) references customers (id) on_update=NO ACTION "
                        "on_delete=CASCADE match=NONE"),
            std::string::npos)
      << orders;
  EXPECT_EQ(fingerprint.tables.at("customers").rows, 2);
  EXPECT_EQ(fingerprint.tables.at("orders").rows, 2);
  EXPECT_EQ(fingerprint.tables.at("sqlite_sequence").rows, 1);  // the AUTOINCREMENT counter
  EXPECT_EQ(fingerprint.tables.at("orders").content_sha256.size(), 64u);
}

struct Change {
  const char* what;
  std::string sql;
  std::string expected;  // one of the lines DescribeDifferences must produce
};

TEST_F(FingerprintSqliteTest, SchemaChangesAreDetectedAndDescribed) {
  const std::vector<Change> changes = {
      {"column added", kShop + "ALTER TABLE orders ADD COLUMN note TEXT;",
       "table orders: column note added (TEXT pk=0 notnull=0 default=NULL)"},
      {"column type changed", Replace(kShop, "total REAL", "total NUMERIC"),
       "table orders: column total changed: REAL pk=0 notnull=0 default=NULL -> "
       "NUMERIC pk=0 notnull=0 default=NULL"},
      {"column default changed", Replace(kShop, "DEFAULT 'new'", "DEFAULT 'paid'"),
       "table orders: column status changed: TEXT pk=0 notnull=1 default='new' -> "
       "TEXT pk=0 notnull=1 default='paid'"},
      {"collation added", Replace(kShop, "name TEXT DEFAULT ''", "name TEXT COLLATE NOCASE"),
       "table customers: column name changed: TEXT pk=0 notnull=0 default='' -> "
       "TEXT pk=0 notnull=0 default=NULL collate=NOCASE"},
      {"check changed", Replace(kShop, "('new', 'paid')", "('new', 'paid', 'sent')"),
       "table orders: check (status IN ('new', 'paid')) removed"},
      {"index dropped", kShop + "DROP INDEX orders_customer_idx;",
       "removed: index orders_customer_idx: on orders (customer_id ASC, status ASC)"},
      {"index column order changed",
       Replace(kShop, "(customer_id, status);", "(status, customer_id);"),
       "changed: index orders_customer_idx: on orders (customer_id ASC, status ASC) -> "
       "on orders (status ASC, customer_id ASC)"},
      {"index made unique", Replace(kShop, "CREATE INDEX", "CREATE UNIQUE INDEX"),
       "changed: index orders_customer_idx: on orders (customer_id ASC, status ASC) -> "
       "on orders (customer_id ASC, status ASC) unique"},
      {"unique constraint dropped",
       Replace(kShop, "email TEXT NOT NULL UNIQUE", "email TEXT NOT NULL"),
       "removed: unique on customers (email): email ASC"},
      {"trigger body changed", Replace(kShop, "SET name = name", "SET name = upper(name)"),
       "changed: trigger orders_touch: AFTER UPDATE OF status ON orders BEGIN UPDATE customers "
       "SET name = name WHERE id = NEW.customer_id; END -> AFTER UPDATE OF status ON orders "
       "BEGIN UPDATE customers SET name = upper(name) WHERE id = NEW.customer_id; END"},
      {"view changed", Replace(kShop, "sum(total)", "max(total)"),
       "changed: view customer_totals: SELECT customer_id, sum(total) AS total FROM orders "
       "GROUP BY customer_id -> SELECT customer_id, max(total) AS total FROM orders GROUP BY "
       "customer_id"},
      {"foreign key changed", Replace(kShop, "ON DELETE CASCADE", "ON DELETE RESTRICT"),
       "table orders: fk (customer_id) changed: references customers (id) on_update=NO ACTION "
       "on_delete=CASCADE match=NONE -> references customers (id) on_update=NO ACTION "
       "on_delete=RESTRICT match=NONE"},
      {"table made WITHOUT ROWID",
       Replace(kShop, "name TEXT DEFAULT ''\n);", "name TEXT DEFAULT ''\n) WITHOUT ROWID;"),
       "table customers: without rowid added"},
      {"view added", kShop + "CREATE VIEW paid AS SELECT * FROM orders WHERE status = 'paid';",
       "added: view paid: SELECT * FROM orders WHERE status = 'paid'"},
  };
  const Fingerprint base = Take(kShop);
  for (const Change& change : changes) {
    SCOPED_TRACE(change.what);
    const Fingerprint changed = Take(change.sql);
    EXPECT_NE(changed.SchemaDigest(), base.SchemaDigest());
    EXPECT_NE(changed.Digest(), base.Digest());
    const std::vector<std::string> differences = DescribeDifferences(base, changed);
    EXPECT_TRUE(Contains(differences, change.expected))
        << "expected: " << change.expected << "\ngot:" << Lines(differences);
  }
}

TEST_F(FingerprintSqliteTest, DataChangesChangeTheDigestButNotTheSchemaDigest) {
  const std::vector<Change> changes = {
      {"row added", kShop + "INSERT INTO customers VALUES (3, 'cy@example.com', 'Cy');",
       "table customers: 3 rows, was 2"},
      {"row deleted", kShop + "DELETE FROM orders WHERE id = 2;", "table orders: 1 row, was 2"},
      {"value changed", kShop + "UPDATE customers SET name = 'Anne' WHERE id = 1;",
       "table customers: same row count (2) but different content"},
      {"NULL became ''", kShop + "UPDATE customers SET name = '' WHERE id = 2;",
       "table customers: same row count (2) but different content"},
      {"number changed", Replace(kShop, "9.5), (2, 'paid', 20)", "9.5), (2, 'paid', 21)"),
       "table orders: same row count (2) but different content"},
      {"AUTOINCREMENT counter moved on",
       kShop + "INSERT INTO orders (customer_id) VALUES (1); DELETE FROM orders WHERE id = 3;",
       "table sqlite_sequence: same row count (1) but different content"},
  };
  const Fingerprint base = Take(kShop);
  for (const Change& change : changes) {
    SCOPED_TRACE(change.what);
    const Fingerprint changed = Take(change.sql);
    EXPECT_EQ(changed.SchemaDigest(), base.SchemaDigest());
    EXPECT_NE(changed.Digest(), base.Digest());
    EXPECT_EQ(DescribeDifferences(base, changed), std::vector<std::string>{change.expected});
  }
}

TEST_F(FingerprintSqliteTest, ValuesOfDifferentStorageTypesHashDifferently) {
  // A column without a declared type keeps every value's storage class as inserted.
  const std::vector<std::string> values = {"1",   "'1'",   "1.0",   "NULL",  "''",
                                           "x''", "x'31'", "x'32'", "'1.0'", "0.5"};
  std::vector<std::string> hashes;
  for (const std::string& value : values) {
    const Fingerprint fingerprint =
        Take("CREATE TABLE t (v); INSERT INTO t VALUES (" + value + ");");
    hashes.push_back(fingerprint.tables.at("t").content_sha256);
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    for (std::size_t j = i + 1; j < values.size(); ++j) {
      EXPECT_NE(hashes[i], hashes[j]) << values[i] << " and " << values[j];
    }
  }
  // And the same values give the same hash.
  EXPECT_EQ(Take("CREATE TABLE t (v); INSERT INTO t VALUES (x'32');").tables.at("t").content_sha256,
            hashes[7]);
}

TEST_F(FingerprintSqliteTest, ValuesAreNotConfusedAcrossColumnBoundaries) {
  const Fingerprint split = Take("CREATE TABLE t (a, b); INSERT INTO t VALUES ('ab', 'c');");
  const Fingerprint moved = Take("CREATE TABLE t (a, b); INSERT INTO t VALUES ('a', 'bc');");
  EXPECT_NE(split.tables.at("t").content_sha256, moved.tables.at("t").content_sha256);
}

TEST_F(FingerprintSqliteTest, ColumnOrderIsReportedOnItsOwnLine) {
  const Fingerprint before = Take(
      "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, name TEXT);"
      "INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann');");
  const Fingerprint after = Take(
      "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT);"
      "INSERT INTO customers VALUES (1, 'Ann', 'ann@example.com');");
  EXPECT_NE(before.SchemaDigest(), after.SchemaDigest());
  // The rows hold the same values per column, so only the order is news.
  EXPECT_EQ(Tables(before), Tables(after));
  EXPECT_EQ(DescribeDifferences(before, after),
            std::vector<std::string>{
                "column order of customers changed: id, email, name -> id, name, email"});
}

TEST_F(FingerprintSqliteTest, AnAddedColumnIsNotAlsoReportedAsAReordering) {
  const Fingerprint before = Take("CREATE TABLE t (a, b);");
  const Fingerprint after = Take("CREATE TABLE t (a, b); ALTER TABLE t ADD COLUMN c INTEGER;");
  EXPECT_EQ(
      DescribeDifferences(before, after),
      std::vector<std::string>{"table t: column c added (INTEGER pk=0 notnull=0 default=NULL)"});
}

TEST_F(FingerprintSqliteTest, ConstraintIndexesAreNamedByWhatTheyCover) {
  // SQLite names these sqlite_autoindex_t_1 and _2 in declaration order.
  const Fingerprint first = Take("CREATE TABLE t (a, b, c, UNIQUE (a), UNIQUE (b, c));");
  const Fingerprint second = Take("CREATE TABLE t (a, b, c, UNIQUE (b, c), UNIQUE (a));");
  EXPECT_EQ(first.Digest(), second.Digest()) << Lines(DescribeDifferences(first, second));
  EXPECT_EQ(first.objects.count("unique on t (b, c)"), 1u);
}

TEST_F(FingerprintSqliteTest, WithoutRowidTablesAreHashedInPrimaryKeyOrder) {
  const std::string table = "CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;";
  const Fingerprint first =
      Take(table + "INSERT INTO kv VALUES ('b', x'02'); INSERT INTO kv VALUES ('a', x'01');");
  const Fingerprint second =
      Take(table + "INSERT INTO kv VALUES ('a', x'01'); INSERT INTO kv VALUES ('b', x'02');");
  EXPECT_EQ(first.Digest(), second.Digest());
  const Fingerprint changed_blob =
      Take(table + "INSERT INTO kv VALUES ('a', x'01'); INSERT INTO kv VALUES ('b', x'03');");
  EXPECT_EQ(DescribeDifferences(first, changed_blob),
            std::vector<std::string>{"table kv: same row count (2) but different content"});
}

TEST_F(FingerprintSqliteTest, OddNamesAreQuotedAndRead) {
  const Fingerprint fingerprint = Take(
      "CREATE TABLE \"order | \"\"items\"\"\" (\"a, b\" TEXT, rowid, _rowid_, oid);"
      "INSERT INTO \"order | \"\"items\"\"\" VALUES ('x', 1, 2, 3);");
  EXPECT_EQ(fingerprint.objects.at("columns \"order | \"\"items\"\"\""),
            "columns \"order | \"\"items\"\"\": \"a, b\", rowid, _rowid_, oid");
  EXPECT_EQ(fingerprint.tables.at("order | \"items\"").rows, 1);
}

TEST_F(FingerprintSqliteTest, SafemigTablesCountOnlyWhenAskedFor) {
  const std::string metadata = R"sql(
CREATE TABLE safemig_migrations (version TEXT PRIMARY KEY, name TEXT);
CREATE TABLE safemig_journal (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT);
CREATE INDEX safemig_journal_kind ON safemig_journal (kind);
INSERT INTO safemig_migrations VALUES ('20260101000000', 'create shop');
INSERT INTO safemig_journal (kind) VALUES ('deploy');
)sql";
  const Fingerprint plain = Take(kShop);
  const Fingerprint without = Take(kShop + metadata, /*include_metadata=*/false);
  EXPECT_EQ(plain.Digest(), without.Digest()) << Lines(DescribeDifferences(plain, without));

  const Fingerprint with = Take(kShop + metadata, /*include_metadata=*/true);
  EXPECT_EQ(with.tables.at("safemig_migrations").rows, 1);
  EXPECT_EQ(with.tables.at("safemig_journal").rows, 1);
  EXPECT_EQ(with.objects.count("index safemig_journal_kind"), 1u);
  EXPECT_NE(with.tables.at("sqlite_sequence").content_sha256,
            plain.tables.at("sqlite_sequence").content_sha256);
}

TEST_F(FingerprintSqliteTest, ADroppedAutoincrementTableLeavesNoTrace) {
  // SQLite keeps an empty sqlite_sequence after the last AUTOINCREMENT table goes, which a
  // rehearsal's up-then-down must not report.
  const Fingerprint before = Take("CREATE TABLE t (a);");
  const Fingerprint after = Take(
      "CREATE TABLE t (a); CREATE TABLE tmp (id INTEGER PRIMARY KEY AUTOINCREMENT);"
      "INSERT INTO tmp DEFAULT VALUES; DROP TABLE tmp;");
  EXPECT_EQ(before.Digest(), after.Digest()) << Lines(DescribeDifferences(before, after));
}

TEST_F(FingerprintSqliteTest, VirtualTablesAreDescribedByTheirDefinition) {
  const Fingerprint first = Take("CREATE VIRTUAL TABLE notes USING fts5(body);");
  EXPECT_EQ(first.objects.at("virtual table notes"), "virtual table notes: USING fts5(body)");
  EXPECT_EQ(first.tables.count("notes"), 0u);  // its rows live in its shadow tables
  const Fingerprint second =
      Take("CREATE VIRTUAL TABLE notes USING fts5(body); INSERT INTO notes VALUES ('hello');");
  EXPECT_FALSE(DescribeDifferences(first, second).empty());
}

TEST_F(FingerprintSqliteTest, WorksInsideTheCallersTransactionAndLeavesItOpen) {
  SQLite::Database db(NewPath(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec(kShop);
  const Fingerprint committed = FingerprintSqlite(db, false);
  db.exec("BEGIN");
  db.exec("INSERT INTO customers VALUES (3, 'cy@example.com', 'Cy')");
  const Fingerprint inside = FingerprintSqlite(db, false);
  EXPECT_EQ(inside.tables.at("customers").rows, 3);  // sees the uncommitted row
  EXPECT_EQ(sqlite3_get_autocommit(db.getHandle()), 0);
  db.exec("ROLLBACK");
  EXPECT_EQ(FingerprintSqlite(db, false).Digest(), committed.Digest());
}

TEST_F(FingerprintSqliteTest, LeavesTheDatabaseFileByteForByteUnchanged) {
  const std::string path = NewPath();
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(kShop);
  }
  const std::string bytes = ReadFile(path);
  ASSERT_FALSE(bytes.empty());
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    FingerprintSqlite(db, true);
    EXPECT_NE(sqlite3_get_autocommit(db.getHandle()), 0);  // its own transaction is over
  }
  EXPECT_EQ(ReadFile(path), bytes);
  // It also runs on a read-only connection, which could not write if it tried.
  SQLite::Database read_only(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(FingerprintSqlite(read_only, false).Digest(), Take(kShop).Digest());
}

TEST_F(FingerprintSqliteTest, LesserDepthsDescribeTheSameSchemaAndReadLessData) {
  SQLite::Database db(NewPath(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec(kShop);
  const Fingerprint full = FingerprintSqlite(db, false);
  const Fingerprint schema = FingerprintSqlite(db, false, FingerprintDepth::kSchema);
  const Fingerprint counts = FingerprintSqlite(db, false, FingerprintDepth::kRowCounts);
  ASSERT_EQ(full.tables.size(), 3u);  // customers, orders, sqlite_sequence

  EXPECT_EQ(schema.SchemaDigest(), full.SchemaDigest());
  EXPECT_EQ(counts.SchemaDigest(), full.SchemaDigest());
  EXPECT_EQ(schema.objects, full.objects);
  EXPECT_TRUE(schema.tables.empty());

  EXPECT_EQ(safemig::testing::RowCountsDiffer(full, counts), "");
  // Content that was not read is not reported as different.
  EXPECT_EQ(Lines(DescribeDifferences(counts, full)), "");
}

TEST_F(FingerprintSqliteTest, RowCountsAreExactAndTheNamedTablesAreReadInFull) {
  SQLite::Database db(NewPath(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec(kShop);
  const Fingerprint before = FingerprintSqlite(db, false, FingerprintDepth::kRowCounts);
  db.exec("INSERT INTO customers VALUES (3, 'cy@example.com', 'Cy');"
          "DELETE FROM orders WHERE id = 2; UPDATE orders SET total = 1 WHERE id = 1;");
  const Fingerprint after = FingerprintSqlite(db, false, FingerprintDepth::kRowCounts);
  EXPECT_EQ(after.tables.at("customers").rows, 3);
  EXPECT_EQ(after.tables.at("orders").rows, 1);
  EXPECT_EQ(DescribeDifferences(before, after),
            (std::vector<std::string>{"table customers: 3 rows, was 2",
                                      "table orders: 1 row, was 2"}));

  const Fingerprint full = FingerprintSqlite(db, false);
  const TableFilter orders = [](const std::string& key) { return key == "orders"; };
  const Fingerprint counted = FingerprintSqlite(db, false, FingerprintDepth::kRowCounts, orders);
  EXPECT_EQ(counted.tables.at("orders").content_sha256, full.tables.at("orders").content_sha256);
  EXPECT_EQ(counted.tables.at("customers").rows, 3);
  EXPECT_TRUE(counted.tables.at("customers").content_sha256.empty());

  const Fingerprint schema = FingerprintSqlite(db, false, FingerprintDepth::kSchema, orders);
  EXPECT_EQ(schema.SchemaDigest(), full.SchemaDigest());
  ASSERT_EQ(schema.tables.size(), 1u);
  EXPECT_EQ(schema.tables.at("orders").content_sha256, full.tables.at("orders").content_sha256);
}

TEST_F(FingerprintSqliteTest, ANonDatabaseFileFailsAsAnError) {
  const std::string path = NewPath();
  safemig::testing::WriteFile(path, std::string(4096, 'x'));
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  try {
    FingerprintSqlite(db, false);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------
// The value type itself.

Fingerprint Sample() {
  Fingerprint fingerprint;
  fingerprint.objects["table t"] = "table t: column id INTEGER pk=1 notnull=0 default=NULL";
  fingerprint.objects["columns t"] = "columns t: id";
  fingerprint.objects[R"(view "odd ""name""")"] = R"(view "odd ""name""": SELECT 'é')";
  fingerprint.tables["t"] = TableData{48210, std::string(64, 'a')};
  fingerprint.tables["empty"] = TableData{0, std::string(64, 'b')};
  return fingerprint;
}

TEST(FingerprintJson, RoundTripsExactly) {
  const Fingerprint original = Sample();
  const std::string json = original.ToJson();
  const Fingerprint read = Fingerprint::FromJson(json);
  EXPECT_EQ(read.objects, original.objects);
  EXPECT_EQ(read.tables.at("t").rows, 48210);
  EXPECT_EQ(read.tables.at("t").content_sha256, original.tables.at("t").content_sha256);
  EXPECT_EQ(read.Digest(), original.Digest());
  EXPECT_EQ(read.ToJson(), json);
}

TEST(FingerprintJson, IsStableSortedText) {
  EXPECT_EQ(Sample().ToJson().rfind("{\"format\":1,\"objects\":{\"columns t\":", 0), 0u)
      << Sample().ToJson();
  Fingerprint one;
  one.tables["t"] = TableData{2, "abc"};
  EXPECT_EQ(one.ToJson(), R"({"format":1,"objects":{},"tables":{"t":{"rows":2,"sha256":"abc"}}})");
}

TEST(FingerprintJson, RejectsMalformedText) {
  const std::vector<std::string> bad = {
      "",
      "not json",
      "[]",
      R"({"objects":{},"tables":{}})",
      R"({"format":2,"objects":{},"tables":{}})",
      R"({"format":1,"tables":{}})",
      R"({"format":1,"objects":{"table t":3},"tables":{}})",
      R"({"format":1,"objects":{},"tables":{"t":{"sha256":"abc"}}})",
      R"({"format":1,"objects":{},"tables":{"t":{"rows":-1,"sha256":"abc"}}})",
      R"({"format":1,"objects":{},"tables":{"t":{"rows":1.5,"sha256":"abc"}}})",
      R"({"format":1,"objects":{},"tables":{"t":{"rows":1}}})",
  };
  for (const std::string& text : bad) {
    try {
      Fingerprint::FromJson(text);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), Category::kIntegrity) << text;
    }
  }
}

TEST(FingerprintDigest, CoversDataOnlyInTheFullDigest) {
  Fingerprint before = Sample();
  Fingerprint after = Sample();
  after.tables["t"].content_sha256 = std::string(64, 'c');
  EXPECT_EQ(before.SchemaDigest(), after.SchemaDigest());
  EXPECT_NE(before.Digest(), after.Digest());
  after = Sample();
  after.objects["columns t"] = "columns t: id ";
  EXPECT_NE(before.SchemaDigest(), after.SchemaDigest());
  EXPECT_NE(before.Digest(), after.Digest());
}

TEST(FingerprintDigest, FieldBoundariesCannotBeForged) {
  Fingerprint first;
  first.objects["a"] = "bc";
  Fingerprint second;
  second.objects["ab"] = "c";
  EXPECT_NE(first.SchemaDigest(), second.SchemaDigest());
}

TEST(FingerprintDescribe, ListsSchemaThenColumnOrderThenData) {
  Fingerprint before;
  before.objects["columns t"] = "columns t: a, b";
  before.objects["table t"] = "table t: column a INTEGER | column b TEXT";
  before.objects["view v"] = "view v: SELECT 1";
  before.objects["index gone"] = "index gone: on t (a ASC)";
  before.tables["t"] = TableData{10, "x"};
  before.tables["u"] = TableData{5, "y"};
  before.tables["dropped"] = TableData{7, "z"};
  Fingerprint after;
  after.objects["columns t"] = "columns t: b, a";
  after.objects["table t"] = "table t: column a INTEGER | column b TEXT";
  after.objects["view v"] = "view v: SELECT 2";
  after.objects["index new"] = "index new: on t (b ASC)";
  after.tables["t"] = TableData{12, "x2"};
  after.tables["u"] = TableData{5, "y2"};
  after.tables["fresh"] = TableData{1, "w"};
  EXPECT_EQ(DescribeDifferences(before, after),
            (std::vector<std::string>{
                "removed: index gone: on t (a ASC)",
                "added: index new: on t (b ASC)",
                "changed: view v: SELECT 1 -> SELECT 2",
                "column order of t changed: a, b -> b, a",
                "table dropped: absent, was 7 rows",
                "table fresh: 1 row, was absent",
                "table t: 12 rows, was 10",
                "table u: same row count (5) but different content",
            }));
  EXPECT_TRUE(DescribeDifferences(after, after).empty());
}

}  // namespace
}  // namespace safemig
