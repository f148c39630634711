// PostgreSQL backup and restore against a real server: round trips of a schema using most
// of what applications use, consistency while another session writes, parallel copies,
// refusals that leave the target alone, damaged backups, pg_dump's invocation, and the
// psql meta-command stripping.
#include "drivers/postgres/pg_dump.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <pqxx/connection>
#include <pqxx/transaction>
#include <random>
#include <thread>

#include "backup/archive.h"
#include "core/error.h"
#include "core/sha256.h"
#include "drivers/postgres/pg_connection.h"
#include "drivers/postgres/pg_fingerprint.h"
#include "server_env.h"
#include "test_util.h"

namespace safemig {
namespace {

namespace fs = std::filesystem;
using safemig::testing::ReadFile;
using safemig::testing::ScratchPostgresDatabase;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

// A database name a restore may create, dropped at the end whatever happened.
class TargetDatabase {
 public:
  explicit TargetDatabase(const DatabaseUrl& server) : server_(server) {
    std::random_device random;
    url_ = server;
    url_.database = "safemig_it_target_" + std::to_string(random());
  }
  ~TargetDatabase() {
    try {
      PgConn admin = ConnectLibpq(server_);
      PQsetNoticeProcessor(
          admin.get(), [](void*, const char*) {}, nullptr);
      ExecLibpq(admin.get(), "DROP DATABASE IF EXISTS " + url_.database + " WITH (FORCE)");
    } catch (...) {
    }
  }
  TargetDatabase(const TargetDatabase&) = delete;
  TargetDatabase& operator=(const TargetDatabase&) = delete;

  [[nodiscard]] const DatabaseUrl& url() const { return url_; }
  void Create() const {
    PgConn admin = ConnectLibpq(server_);
    ExecLibpq(admin.get(), "CREATE DATABASE " + url_.database);
  }

 private:
  DatabaseUrl server_;
  DatabaseUrl url_;
};

std::string QueryValue(const DatabaseUrl& url, const std::string& sql) {
  PgConn conn = ConnectLibpq(url);
  PgResult result = ExecLibpq(conn.get(), sql);
  if (PQntuples(result.get()) == 0 || PQgetisnull(result.get(), 0, 0)) return "NULL";
  return PQgetvalue(result.get(), 0, 0);
}

bool DatabaseExists(const DatabaseUrl& server, const std::string& name) {
  return QueryValue(server, "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'") ==
         "1";
}

// Databases a restore by this process builds before renaming them into place.
std::string LeftoverRestoreDatabases(const DatabaseUrl& server) {
  return QueryValue(server,
                    "SELECT count(*) FROM pg_database WHERE datname LIKE "
                    "'safemig\\_restore\\_" +
                        std::to_string(::getpid()) + "\\_%'");
}

Fingerprint FingerprintOf(const DatabaseUrl& url) {
  pqxx::connection conn(PostgresConninfo(url));
  pqxx::work tx(conn);
  return FingerprintPostgres(tx, /*include_metadata=*/true);
}

struct Backup {
  fs::path dir;
  Fingerprint fingerprint;
};

// Dumps `source` into a new published archive under `store`. `edit` may change the
// manifest before it is published.
Backup TakeBackup(const DatabaseUrl& source, const fs::path& store, int jobs,
                  const std::function<void(Manifest&)>& edit = {},
                  const ProgressFn& progress = {}) {
  static int counter = 0;
  ArchiveWriter writer(store, "backup" + std::to_string(counter++), 3);
  Backup backup;
  backup.fingerprint = DumpPostgres(source, writer, jobs, progress);
  Manifest manifest;
  manifest.engine = "postgres";
  manifest.database = source.Redacted();
  manifest.created_at = "2026-11-26T03:00:00.000Z";
  manifest.reason = "manual";
  manifest.fingerprint = backup.fingerprint;
  if (edit) edit(manifest);
  backup.dir = writer.Publish(manifest);
  return backup;
}

// Restores `backup` into a new database, expecting an error of `category` whose message
// holds `what`; neither the target nor a half-built copy may be left behind.
void ExpectRestoreRefused(const DatabaseUrl& server, const Backup& backup, Category category,
                          const std::string& what) {
  TargetDatabase target(server);
  try {
    RestorePostgres(ArchiveReader::Open(backup.dir), target.url(), RestoreOptions{}, 1, {});
    ADD_FAILURE() << "expected the restore to fail with: " << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), category);
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
  EXPECT_FALSE(DatabaseExists(server, target.url().database));
  EXPECT_EQ(LeftoverRestoreDatabases(server), "0");
}

// pg_dump's schema of `url`, as a DBA would compare two databases. The password travels
// in a password file, not on the command line.
std::string SchemaText(const DatabaseUrl& url) {
  TempDir dir;
  const fs::path pgpass = dir / "pgpass";
  WriteFile(pgpass, "*:*:*:*:" + url.password.value_or("") + "\n");
  ::chmod(pgpass.c_str(), 0600);
  const std::string command = "PGPASSFILE='" + pgpass.string() +
                              "' pg_dump --schema-only --no-owner --no-privileges " +
                              "--dbname='postgresql://" + url.user + "@" + url.host + ":" +
                              std::to_string(url.port.value_or(5432)) + "/" + url.database + "'";
  std::string text;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return text;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, n);
  EXPECT_EQ(::pclose(pipe), 0) << command;
  return StripPsqlMetaCommands(text);
}

// Sets an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Puts an executable `pg_dump` with `script` first on PATH.
void InstallFakePgDump(const TempDir& dir, const std::string& script) {
  WriteFile(dir / "pg_dump", "#!/bin/sh\n" + script);
  ::chmod((dir / "pg_dump").c_str(), 0700);
}

const char* kRichSchema = R"sql(
CREATE SCHEMA shop;
CREATE TABLE shop.customers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  note text,
  tags text[],
  profile jsonb,
  avatar bytea,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE shop."Order" (
  id serial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES shop.customers (id),
  "select" text,
  amount numeric(12, 2) NOT NULL,
  amount_with_tax numeric GENERATED ALWAYS AS (amount * 1.2) STORED
);
CREATE INDEX order_customer_idx ON shop."Order" (customer_id);
CREATE TABLE shop.events (id bigint NOT NULL, happened date NOT NULL, payload text)
  PARTITION BY RANGE (happened);
CREATE TABLE shop.events_2024 PARTITION OF shop.events
  FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE shop.events_2025 PARTITION OF shop.events
  FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX events_happened_idx ON shop.events (happened);
CREATE TABLE shop.empty_table (id int PRIMARY KEY, label text);
CREATE TABLE shop.no_columns ();
CREATE SEQUENCE shop.invoice_numbers START 1000;
CREATE SEQUENCE shop.never_used;
CREATE VIEW shop.customer_totals AS
  SELECT c.id, c.name, sum(o.amount) AS total
  FROM shop.customers c LEFT JOIN shop."Order" o ON o.customer_id = c.id
  GROUP BY c.id, c.name;
CREATE FUNCTION shop.mark_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.note := coalesce(NEW.note, '') || '!';
  RETURN NEW;
END;
$$;
CREATE TRIGGER customers_mark BEFORE UPDATE ON shop.customers
  FOR EACH ROW EXECUTE FUNCTION shop.mark_note();
COMMENT ON TABLE shop."Order" IS 'orders, quoted';
CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN shop.positive AS int CHECK (VALUE > 0);
CREATE TABLE shop."we""ird
name" ("co""l" shop.positive, "x, y" shop.mood, "select" text);
CREATE UNLOGGED TABLE shop.cache (k text PRIMARY KEY, v interval, at date);
CREATE MATERIALIZED VIEW shop.order_counts AS
  SELECT customer_id, count(*) AS orders FROM shop."Order" GROUP BY customer_id;
CREATE TABLE shop.secured (id int, owner_name text);
ALTER TABLE shop.secured ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_mine ON shop.secured USING (owner_name = current_user);
CREATE TABLE shop.animal (name text);
CREATE TABLE shop.dog (breed text) INHERITS (shop.animal);

INSERT INTO shop.customers (name, note, tags, profile, avatar) VALUES
  ('Zoë Ångström', NULL, ARRAY['a', 'b,c', '"q"'], '{"k": [1, 2.5, null], "ü": "ß"}',
   '\x00ff0a5c'),
  ('Empty note', '', '{}', 'null', ''),
  (E'Tab\tand newline', E'line1\nline2\ttab\\back', ARRAY[NULL, 'x'], '{}', NULL),
  ('日本語', 'こんにちは', NULL, '[]', '\x0d0a');
INSERT INTO shop."Order" (customer_id, "select", amount)
  SELECT 1 + i % 4, 'select ' || i, i * 1.5 FROM generate_series(1, 200) AS i;
INSERT INTO shop.events SELECT i, DATE '2024-06-01' + i, 'event ' || i
  FROM generate_series(1, 400) AS i;
INSERT INTO shop.no_columns DEFAULT VALUES;
INSERT INTO shop.no_columns DEFAULT VALUES;
SELECT nextval('shop.invoice_numbers') FROM generate_series(1, 3);
INSERT INTO shop."we""ird
name" VALUES (1, 'happy', E'back\\slash\ttab'), (2, NULL, NULL);
INSERT INTO shop.cache VALUES ('k', '1 day 02:03:04', '2024-02-29');
INSERT INTO shop.secured VALUES (1, 'somebody else');
INSERT INTO shop.animal VALUES ('generic');
INSERT INTO shop.dog VALUES ('rex', 'lab');
REFRESH MATERIALIZED VIEW shop.order_counts;
)sql";

TEST(PostgresDump, StripsPsqlMetaCommandLinesOutsideQuotesOnly) {
  EXPECT_EQ(StripPsqlMetaCommands("--\n\\restrict AbC123\n\nSET x = 1;\n\\unrestrict AbC123\n"),
            "--\n\nSET x = 1;\n");
  EXPECT_EQ(StripPsqlMetaCommands("SELECT 1;\n  \\connect other\nSELECT 2;\n\\unrestrict k"),
            "SELECT 1;\nSELECT 2;\n");
  // A line starting with a backslash inside a body, a string or a comment is SQL.
  const std::string body =
      "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $body$\n\\not a command\n$body$;\n";
  EXPECT_EQ(StripPsqlMetaCommands(body), body);
  EXPECT_EQ(StripPsqlMetaCommands("SELECT $$\n\\x$$;\n"), "SELECT $$\n\\x$$;\n");
  EXPECT_EQ(StripPsqlMetaCommands("SELECT 'a\n\\b';\n"), "SELECT 'a\n\\b';\n");
  EXPECT_EQ(StripPsqlMetaCommands("SELECT E'it\\'s\n\\x';\n\\restrict k\n"),
            "SELECT E'it\\'s\n\\x';\n");
  EXPECT_EQ(StripPsqlMetaCommands("SELECT 1 AS \"a\n\\b\";\n"), "SELECT 1 AS \"a\n\\b\";\n");
  EXPECT_EQ(StripPsqlMetaCommands("/* a\n\\b /* nested */\n*/\n\\unrestrict k\n"),
            "/* a\n\\b /* nested */\n*/\n");
  // An apostrophe in a line comment opens no string.
  EXPECT_EQ(StripPsqlMetaCommands("-- don't\n\\unrestrict k\nSELECT 1;\n"),
            "-- don't\nSELECT 1;\n");
  // $1 is a parameter, not a dollar quote.
  EXPECT_EQ(StripPsqlMetaCommands("SELECT $1;\n\\unrestrict k\n"), "SELECT $1;\n");
  EXPECT_EQ(StripPsqlMetaCommands(""), "");
}

TEST(PostgresDump, RoundTripReproducesSchemaDataAndSequences) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec(kRichSchema);
  TempDir store;
  const Backup backup = TakeBackup(source.url(), store.path(), 2);
  EXPECT_EQ(backup.fingerprint.Digest(), FingerprintOf(source.url()).Digest());

  TargetDatabase target(server);
  RestorePostgres(ArchiveReader::Open(backup.dir), target.url(), RestoreOptions{}, 2, {});

  const Fingerprint restored = FingerprintOf(target.url());
  const std::vector<std::string> differences = DescribeDifferences(backup.fingerprint, restored);
  EXPECT_TRUE(differences.empty()) << differences.front();
  EXPECT_EQ(restored.Digest(), backup.fingerprint.Digest());
  const std::string schema = SchemaText(source.url());
  EXPECT_NE(schema.find("CREATE TABLE shop.\"Order\""), std::string::npos) << schema;
  EXPECT_EQ(SchemaText(target.url()), schema);
  EXPECT_EQ(
      restored.tables.at("shop.events_2024").rows + restored.tables.at("shop.events_2025").rows,
      400);
  EXPECT_EQ(restored.tables.at("shop.empty_table").rows, 0);
  EXPECT_EQ(restored.tables.at("shop.no_columns").rows, 2);
  EXPECT_EQ(restored.tables.at("shop.\"we\"\"ird\nname\"").rows, 2);
  EXPECT_EQ(restored.tables.at("shop.animal").rows, 1);
  EXPECT_EQ(restored.tables.at("shop.dog").rows, 1);
  EXPECT_EQ(restored.tables.at("shop.secured").rows, 1);

  // Values a lossy copy would change.
  const DatabaseUrl& t = target.url();
  EXPECT_EQ(QueryValue(t, "SELECT note IS NULL FROM shop.customers WHERE id = 1"), "t");
  EXPECT_EQ(QueryValue(t, "SELECT note = '' FROM shop.customers WHERE id = 2"), "t");
  EXPECT_EQ(QueryValue(t, "SELECT encode(avatar, 'hex') FROM shop.customers WHERE id = 1"),
            "00ff0a5c");
  EXPECT_EQ(QueryValue(t, "SELECT name FROM shop.customers WHERE id = 4"), "日本語");
  EXPECT_EQ(QueryValue(t, "SELECT profile->>'ü' FROM shop.customers WHERE id = 1"), "ß");
  EXPECT_EQ(QueryValue(t, "SELECT tags[3] FROM shop.customers WHERE id = 1"), "\"q\"");
  EXPECT_EQ(QueryValue(t, "SELECT amount_with_tax FROM shop.\"Order\" WHERE id = 10"), "18.000");
  EXPECT_EQ(QueryValue(t, "SELECT \"select\" FROM shop.\"we\"\"ird\nname\" WHERE \"co\"\"l\" = 1"),
            "back\\slash\ttab");
  EXPECT_EQ(QueryValue(t, "SELECT v FROM shop.cache"), "1 day 02:03:04");
  EXPECT_EQ(QueryValue(t, "SELECT sum(orders) FROM shop.order_counts"), "200");
  EXPECT_EQ(QueryValue(t, "SELECT total FROM shop.customer_totals WHERE id = 2"),
            QueryValue(source.url(), "SELECT total FROM shop.customer_totals WHERE id = 2"));

  // Sequences continue where the source left off, and the restored trigger fires.
  EXPECT_EQ(QueryValue(t, "INSERT INTO shop.customers (name) VALUES ('new') RETURNING id"), "5");
  EXPECT_EQ(QueryValue(t,
                       "INSERT INTO shop.\"Order\" (customer_id, amount) VALUES (5, 1) "
                       "RETURNING id"),
            "201");
  EXPECT_EQ(QueryValue(t, "SELECT nextval('shop.invoice_numbers')"), "1003");
  EXPECT_EQ(QueryValue(t, "SELECT nextval('shop.never_used')"), "1");
  EXPECT_EQ(QueryValue(t, "UPDATE shop.customers SET name = 'x' WHERE id = 2 RETURNING note"), "!");
  // The foreign key came back with post-data.
  EXPECT_THROW(QueryValue(t, "INSERT INTO shop.\"Order\" (customer_id, amount) VALUES (99, 1)"),
               Error);
  EXPECT_EQ(LeftoverRestoreDatabases(server), "0");
}

// A backup hashes the COPY lines it streams; the server hashes a live database in SQL.
// Both must agree for every kind of value, or a backup would never match its source (and a
// rehearsal or rollback could not compare with it).
TEST(PostgresDump, BackupFingerprintEqualsTheServersForEveryKindOfColumn) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec(R"sql(
CREATE TYPE pair AS (a int, b text);
CREATE TYPE color AS ENUM ('red', 'green');
CREATE DOMAIN flag AS boolean;
CREATE DOMAIN labels AS text[];
CREATE TABLE kinds (
  id int PRIMARY KEY, b bool, c char(5), ch "char", n name, v varchar(10), t text, by bytea,
  i inet, ci cidr, mac macaddr, arr int[], tarr text[], p pair, f flag, l labels, e color,
  js json, jb jsonb, num numeric, fl float8, r real, m money, iv interval, ts timestamp,
  tz timestamptz, d date, tm time, ttz timetz, u uuid, rng int4range, pt point, x xml,
  tsv tsvector, bits bit varying, o oid,
  "Zed" text, twice int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO kinds VALUES
  (1, true, 'ab', 'x', 'a name', 'short', E'tab\there\nnew\rline\\back\bbs\fff\x0bvt\x01ctl',
   '\x005c0a09ff', '192.168.1.5', '10.0.0.0/8', '08:00:2b:01:02:03', '{1,NULL,3}',
   ARRAY['a b', NULL, 'c"d', E'e\\f', ''], ROW(1, E'x,y\t(z)'), false, '{"p q",NULL}', 'green',
   E'{"k": "v\\n", "n": 1.50}', '{"b": [1, 2.50, null], "a": "ü"}', 1.50, 'NaN', '-0',
   12345.67, '1 year 2 mons -3 days 04:05:06.7', '2024-02-29 23:59:59.999999',
   '2024-06-01 12:00:00+02', '0099-01-01', '24:00:00', '12:00:00+05:30',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '[1,10)', '(1.5,-2)', '<a b="c">d &amp; e</a>',
   'fat:1 cat:2', B'10110', 4294967295, 'Zed'),
  (2, false, 'abcde', E'\\', E'q"uote', '', '', '', '::1', '::/0', 'ff:ff:ff:ff:ff:ff', '{}',
   '{}', ROW(NULL, NULL), NULL, '{}', 'red', 'null', 'null', -0.000, 'Infinity', 1e-30, -1,
   '-178000000 years', 'infinity', '-infinity', 'epoch', '00:00', '00:00-12', NULL, 'empty',
   '(0,0)', '<x/>', '', B'', 0, E'\u00e9\u65e5\U0001F600'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL);
)sql");
  TempDir store;
  const Backup backup = TakeBackup(source.url(), store.path(), 2);
  const Fingerprint live = FingerprintOf(source.url());
  const std::vector<std::string> backed_up = DescribeDifferences(live, backup.fingerprint);
  EXPECT_TRUE(backed_up.empty()) << backed_up.front();
  EXPECT_EQ(backup.fingerprint.tables.at("public.kinds").rows, 3);
  EXPECT_EQ(backup.fingerprint.tables.at("public.kinds").content_sha256,
            live.tables.at("public.kinds").content_sha256);

  TargetDatabase target(server);
  RestorePostgres(ArchiveReader::Open(backup.dir), target.url(), RestoreOptions{}, 2, {});
  const std::vector<std::string> restored =
      DescribeDifferences(backup.fingerprint, FingerprintOf(target.url()));
  EXPECT_TRUE(restored.empty()) << restored.front();
  EXPECT_EQ(QueryValue(target.url(), "SELECT c || '|' FROM kinds WHERE id = 1"), "ab|");
  EXPECT_EQ(QueryValue(target.url(), "SELECT octet_length(c) FROM kinds WHERE id = 1"), "5");
  EXPECT_EQ(QueryValue(target.url(), "SELECT p IS NULL FROM kinds WHERE id = 2"), "t");
  EXPECT_EQ(QueryValue(target.url(), "SELECT p::text FROM kinds WHERE id = 2"), "(,)");
  EXPECT_EQ(QueryValue(target.url(), "SELECT fl::text FROM kinds WHERE id = 2"), "Infinity");

  // One value changed after the restore shows, in that table only.
  ExecLibpq(ConnectLibpq(target.url()).get(), "UPDATE kinds SET f = true WHERE id = 2");
  const std::vector<std::string> changed =
      DescribeDifferences(backup.fingerprint, FingerprintOf(target.url()));
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed.front(), "table \"public.kinds\": same row count (3) but different content");
}

// The restore checks the rows it sends against the manifest's hashes, not only their count.
TEST(PostgresDump, RestoredRowsWhoseContentDiffersFromTheFingerprintAreRefused) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec(
      "CREATE TABLE t (id int PRIMARY KEY, label text);"
      "INSERT INTO t VALUES (1, 'one'), (2, 'two')");
  TempDir store;
  const Backup backup = TakeBackup(source.url(), store.path(), 1, [](Manifest& manifest) {
    manifest.fingerprint.tables.at("public.t").content_sha256 = std::string(64, '0');
  });
  ExpectRestoreRefused(server, backup, Category::kIntegrity,
                       "\"public.t\": same row count (2) but different content");
}

// Backups written before the table hashes were computed from COPY lines cannot be checked by
// this version: the restore says so by name instead of calling them damaged.
TEST(PostgresDump, RefusesABackupOfTheEarlierTableFormatByName) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec("CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
  TempDir store;
  const Backup backup = TakeBackup(source.url(), store.path(), 1);
  // Rewrite the manifest as the earlier version wrote it, SHA256SUMS line included.
  std::string manifest = ReadFile(backup.dir / "manifest.json");
  for (std::size_t at = manifest.find("\"pg-table-data-2\""); at != std::string::npos;
       at = manifest.find("\"pg-table-data-2\"")) {
    manifest.replace(at, 17, "\"pg-table-data\"");
  }
  WriteFile(backup.dir / "manifest.json", manifest);
  std::string sums = ReadFile(backup.dir / "SHA256SUMS");
  const std::size_t line = sums.find("  manifest.json\n");
  ASSERT_NE(line, std::string::npos);
  sums.replace(line - 64, 64, Sha256Hex(manifest));
  WriteFile(backup.dir / "SHA256SUMS", sums);

  ExpectRestoreRefused(server, backup, Category::kUsage, "written by an earlier safemig");
}

TEST(PostgresDump, ParallelJobsWriteOnePartPerTableInRestoreOrder) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec(
      "CREATE TABLE big (id int PRIMARY KEY, payload text);"
      "CREATE TABLE medium (id int PRIMARY KEY, payload text);"
      "CREATE TABLE small (id int PRIMARY KEY);"
      "CREATE TABLE tiny (id int);"
      "INSERT INTO big SELECT i, repeat('x', 200) FROM generate_series(1, 20000) AS i;"
      "INSERT INTO medium SELECT i, 'm' FROM generate_series(1, 3000) AS i;"
      "INSERT INTO small SELECT i FROM generate_series(1, 10) AS i;"
      "INSERT INTO tiny VALUES (1);");
  TempDir store;
  std::uint64_t last_done = 0;
  std::uint64_t last_total = 0;
  const Backup backup =
      TakeBackup(source.url(), store.path(), 2, {}, [&](std::uint64_t done, std::uint64_t total) {
        last_done = done;
        last_total = total;
      });
  EXPECT_GT(last_done, 4'000'000u);
  EXPECT_EQ(last_done, last_total);

  const ArchiveReader reader = ArchiveReader::Open(backup.dir);
  const std::vector<PartInfo>& parts = reader.manifest().parts;
  ASSERT_EQ(parts.size(), 7u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"pre-data.sql.zst", "pg-pre-data"},  {"t1.copy.zst", "pg-table-data-2"},
      {"t2.copy.zst", "pg-table-data-2"},   {"t3.copy.zst", "pg-table-data-2"},
      {"t4.copy.zst", "pg-table-data-2"},   {"sequences.sql.zst", "pg-sequences"},
      {"post-data.sql.zst", "pg-post-data"}};
  for (std::size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].name, expected[i].first);
    EXPECT_EQ(parts[i].kind, expected[i].second);
  }
  // Largest table first; the part says which table it holds.
  EXPECT_EQ(parts[1].rows, 20000);
  StringSink t1;
  reader.ExtractPart(parts[1], t1);
  EXPECT_EQ(t1.text().substr(0, t1.text().find('\n') + 1),
            "-- safemig table: \"public\".\"big\" (\"id\", \"payload\")\n");
  EXPECT_EQ(t1.text().substr(t1.text().find('\n') + 1, 6), "1\txxxx");

  TargetDatabase target(server);
  RestorePostgres(reader, target.url(), RestoreOptions{}, 2, {});
  EXPECT_EQ(QueryValue(target.url(), "SELECT count(*) FROM big"), "20000");
  EXPECT_EQ(QueryValue(target.url(), "SELECT count(*) FROM tiny"), "1");
  EXPECT_EQ(FingerprintOf(target.url()).Digest(), backup.fingerprint.Digest());
}

TEST(PostgresDump, BackupWhileAnotherSessionInsertsHoldsOneSnapshot) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec(
      "CREATE TABLE ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
      "  amount int NOT NULL);"
      "CREATE TABLE ledger_total (n int PRIMARY KEY, total bigint NOT NULL);"
      "INSERT INTO ledger_total VALUES (1, 0);"
      "CREATE TABLE a AS SELECT i FROM generate_series(1, 5000) AS i;"
      "CREATE TABLE b AS SELECT i FROM generate_series(1, 5000) AS i;");
  std::atomic<bool> stop{false};
  std::atomic<int> inserted{0};
  std::thread writer([&] {
    PgConn conn = ConnectLibpq(source.url());
    // Each transaction changes two tables: a backup mixing moments would break the sum.
    while (!stop) {
      ExecLibpq(conn.get(),
                "BEGIN; INSERT INTO ledger (amount) VALUES (7); "
                "UPDATE ledger_total SET total = total + 7; COMMIT");
      ++inserted;
    }
  });
  while (inserted < 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  TempDir store;
  Backup backup;
  try {
    backup = TakeBackup(source.url(), store.path(), 2);
  } catch (...) {
    stop = true;
    writer.join();
    throw;
  }
  const int before_stop = inserted;
  while (inserted < before_stop + 20) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  writer.join();

  TargetDatabase target(server);
  RestorePostgres(ArchiveReader::Open(backup.dir), target.url(), RestoreOptions{}, 2, {});
  const std::string rows = QueryValue(target.url(), "SELECT count(*) FROM ledger");
  EXPECT_EQ(std::stoll(rows), backup.fingerprint.tables.at("public.ledger").rows);
  EXPECT_LT(std::stoll(rows), std::stoll(QueryValue(source.url(), "SELECT count(*) FROM ledger")));
  EXPECT_EQ(QueryValue(target.url(), "SELECT sum(amount) FROM ledger"),
            QueryValue(target.url(), "SELECT total FROM ledger_total"));
  // The identity never hands out an id the snapshot already holds.
  EXPECT_NO_THROW(QueryValue(target.url(), "INSERT INTO ledger (amount) VALUES (1)"));
}

TEST(PostgresDump, RefusesAnExistingNonEmptyDatabaseAndLeavesItAlone) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)");
  TempDir store;
  const Backup backup = TakeBackup(source.url(), store.path(), 1);

  ScratchPostgresDatabase existing(server);
  existing.Exec("CREATE TABLE keep_me (v text); INSERT INTO keep_me VALUES ('mine')");
  try {
    RestorePostgres(ArchiveReader::Open(backup.dir), existing.url(), RestoreOptions{}, 1, {});
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kUsage);
    EXPECT_NE(std::string(e.what()).find("already exists and is not empty"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(QueryValue(existing.url(), "SELECT v FROM keep_me"), "mine");
  EXPECT_EQ(QueryValue(existing.url(), "SELECT count(*) FROM pg_tables WHERE tablename = 't'"),
            "0");
  EXPECT_EQ(LeftoverRestoreDatabases(server), "0");
}

TEST(PostgresDump, RestoresIntoAnExistingEmptyDatabase) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)");
  TempDir store;
  const Backup backup = TakeBackup(source.url(), store.path(), 1);
  TargetDatabase target(server);
  target.Create();
  RestorePostgres(ArchiveReader::Open(backup.dir), target.url(), RestoreOptions{}, 1, {});
  EXPECT_EQ(QueryValue(target.url(), "SELECT count(*) FROM t"), "2");
}

TEST(PostgresDump, ReplaceExistingSwapsInTheVerifiedCopy) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3)");
  TempDir store;
  const Backup backup = TakeBackup(source.url(), store.path(), 1);
  TargetDatabase target(server);
  target.Create();
  {
    PgConn conn = ConnectLibpq(target.url());
    ExecLibpq(conn.get(), "CREATE TABLE old_stuff (v int); INSERT INTO old_stuff VALUES (9)");
  }
  RestoreOptions replace;
  replace.replace_existing = true;
  RestorePostgres(ArchiveReader::Open(backup.dir), target.url(), replace, 1, {});
  EXPECT_EQ(QueryValue(target.url(), "SELECT count(*) FROM t"), "3");
  EXPECT_EQ(
      QueryValue(target.url(), "SELECT count(*) FROM pg_tables WHERE tablename = 'old_stuff'"),
      "0");
  EXPECT_EQ(LeftoverRestoreDatabases(server), "0");
}

TEST(PostgresDump, FlippedByteInATablePartFailsBeforeTheTargetIsCreated) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec(
      "CREATE TABLE t (id int, v text);"
      "INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 2000) AS i");
  TempDir store;
  const Backup backup = TakeBackup(source.url(), store.path(), 1);
  const fs::path part = backup.dir / "parts" / "t1.copy.zst";
  {
    std::fstream file(part, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(static_cast<std::streamoff>(fs::file_size(part) / 2));
    char byte = 0;
    file.read(&byte, 1);
    file.seekp(static_cast<std::streamoff>(fs::file_size(part) / 2));
    byte = static_cast<char>(byte ^ 0x01);
    file.write(&byte, 1);
  }
  ExpectRestoreRefused(server, backup, Category::kIntegrity, "t1.copy.zst");
}

TEST(PostgresDump, RestoredCopyThatDiffersFromTheFingerprintIsDropped) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)");
  TempDir store;
  // A manifest whose fingerprint promises a row the parts do not hold.
  const Backup backup = TakeBackup(source.url(), store.path(), 1, [](Manifest& manifest) {
    manifest.fingerprint.tables.at("public.t").rows = 3;
  });
  ExpectRestoreRefused(server, backup, Category::kIntegrity, "public.t");
}

TEST(PostgresDump, RefusesAPgDumpOlderThanTheServer) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  TempDir fake;
  InstallFakePgDump(fake, "echo 'pg_dump (PostgreSQL) 9.6.24'\n");
  ScopedEnv path("PATH", fake.path().string() + ":" + std::getenv("PATH"));
  TempDir store;
  ArchiveWriter writer(store.path(), "old", 3);
  try {
    DumpPostgres(source.url(), writer, 1, {});
    FAIL() << "expected a configuration error";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kConfig);
    const std::string message = e.what();
    EXPECT_NE(message.find("9.6.24"), std::string::npos) << message;
    EXPECT_NE(message.find(QueryValue(server, "SHOW server_version")), std::string::npos)
        << message;
  }
}

TEST(PostgresDump, PassesThePasswordOnlyThroughTheEnvironment) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ASSERT_TRUE(server.password && !server.password->empty()) << "the test server has a password";
  ScratchPostgresDatabase source(server);
  TempDir fake;
  InstallFakePgDump(fake,
                    "if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 99.0'; exit 0; fi\n"
                    "dir=$(dirname \"$0\")\n"
                    "echo \"$@\" >> \"$dir/args\"\n"
                    "printf '%s' \"$PGPASSWORD\" > \"$dir/password\"\n"
                    "echo '-- nothing to see'\n");
  ScopedEnv path("PATH", fake.path().string() + ":" + std::getenv("PATH"));
  ScopedEnv stale("PGPASSWORD", "stale-from-the-parent");
  TempDir store;
  ArchiveWriter writer(store.path(), "fake", 3);
  DumpPostgres(source.url(), writer, 1, {});
  const std::string args = ReadFile(fake / "args");
  EXPECT_EQ(args.find(*server.password), std::string::npos) << args;
  EXPECT_NE(args.find("--section=pre-data"), std::string::npos) << args;
  EXPECT_NE(args.find("--section=post-data"), std::string::npos) << args;
  EXPECT_NE(args.find("--snapshot="), std::string::npos) << args;
  EXPECT_NE(args.find("--no-owner --no-privileges"), std::string::npos) << args;
  EXPECT_EQ(ReadFile(fake / "password"), *server.password);
}

TEST(PostgresDump, KeepsTheUsersPgpasswordWhenTheUrlHasNone) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ASSERT_TRUE(server.password && !server.password->empty()) << "the test server has a password";
  ScratchPostgresDatabase source(server);
  TempDir fake;
  InstallFakePgDump(fake,
                    "if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 99.0'; exit 0; fi\n"
                    "dir=$(dirname \"$0\")\n"
                    "printf '%s' \"$PGPASSWORD\" > \"$dir/password\"\n"
                    "echo '-- nothing to see'\n");
  ScopedEnv path("PATH", fake.path().string() + ":" + std::getenv("PATH"));
  ScopedEnv password("PGPASSWORD", *server.password);
  DatabaseUrl without = source.url();
  without.password.reset();
  TempDir store;
  ArchiveWriter writer(store.path(), "pgpassword", 3);
  DumpPostgres(without, writer, 1, {});
  EXPECT_EQ(ReadFile(fake / "password"), *server.password);
}

TEST(PostgresDump, FailingPgDumpIsAMigrationFailureWithItsRedactedMessage) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  TempDir fake;
  InstallFakePgDump(fake,
                    "if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 99.0'; exit 0; fi\n"
                    "echo 'pg_dump: error: connection failed: password=hunter2 rejected' >&2\n"
                    "exit 1\n");
  ScopedEnv path("PATH", fake.path().string() + ":" + std::getenv("PATH"));
  TempDir store;
  ArchiveWriter writer(store.path(), "failing", 3);
  try {
    DumpPostgres(source.url(), writer, 1, {});
    FAIL() << "expected a failure";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed);
    const std::string message = e.what();
    EXPECT_NE(message.find("connection failed"), std::string::npos) << message;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  }
}

TEST(PostgresDump, SchemaChangeQueuedBehindTheBackupFailsItInsteadOfHanging) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec("CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
  TempDir fake;
  // pre-data takes long enough for an ALTER TABLE to queue behind the backup's locks.
  InstallFakePgDump(
      fake,
      "if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 99.0'; exit 0; fi\n"
      "case \"$*\" in *pre-data*) touch \"$(dirname \"$0\")/started\"; sleep 2;; esac\n"
      "echo '-- fake'\n");
  ScopedEnv path("PATH", fake.path().string() + ":" + std::getenv("PATH"));
  std::atomic<bool> altered{false};
  std::thread schema_change([&] {
    while (!fs::exists(fake / "started")) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    PgConn conn = ConnectLibpq(source.url());
    ExecLibpq(conn.get(), "SET lock_timeout = '20s'");
    ExecLibpq(conn.get(), "ALTER TABLE t ADD COLUMN added int");
    altered = true;
  });
  TempDir store;
  ArchiveWriter writer(store.path(), "queued", 3);
  const auto start = std::chrono::steady_clock::now();
  try {
    DumpPostgres(source.url(), writer, 1, {});
    ADD_FAILURE() << "expected the backup to give way";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed);
    EXPECT_NE(std::string(e.what()).find("exclusive lock"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  schema_change.join();
  EXPECT_TRUE(altered);
}

TEST(PostgresDump, RefusesADatabaseWithLargeObjects) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  ScratchPostgresDatabase source(server);
  source.Exec("SELECT lo_from_bytea(0, 'blob')");
  TempDir store;
  ArchiveWriter writer(store.path(), "lo", 3);
  try {
    DumpPostgres(source.url(), writer, 1, {});
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed);
    EXPECT_NE(std::string(e.what()).find("large objects"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace safemig
