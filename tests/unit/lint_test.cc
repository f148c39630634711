// Lint rules, each caught where it applies and quiet where it does not.
#include "lint/lint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace safemig::lint {
namespace {

Migration Make(const std::string& up, const std::string& down = "SELECT 1;",
               bool no_transaction = false, bool irreversible = false) {
  Migration m;
  m.version = "20260101000000";
  m.name = "change";
  m.up_path = "20260101000000_change.up.sql";
  m.down_path = "20260101000000_change.down.sql";
  m.up_sql = up;
  m.down_sql = down;
  m.directives.no_transaction = no_transaction;
  m.directives.irreversible = irreversible;
  return m;
}

std::vector<std::string> RulesOf(const std::vector<Finding>& findings) {
  std::vector<std::string> rules;
  for (const Finding& f : findings) rules.push_back(f.rule);
  return rules;
}

bool Has(const std::vector<Finding>& findings, const std::string& rule) {
  return std::any_of(findings.begin(), findings.end(),
                     [&](const Finding& f) { return f.rule == rule; });
}

std::vector<Finding> LintUp(const std::string& up, Dialect dialect,
                            bool no_transaction = false) {
  // A down that names everything keeps down-misses-objects out of the way.
  return LintMigration(Make(up, "-- undo\nDROP TABLE IF EXISTS everything;", no_transaction),
                       Options{dialect, {}});
}

struct Case {
  const char* rule;
  Dialect dialect;
  const char* up;
  bool expected;
  bool no_transaction = false;
};

class RuleCase : public ::testing::TestWithParam<Case> {};

TEST_P(RuleCase, FindsExactlyWhereItShould) {
  const Case& c = GetParam();
  auto findings = LintUp(c.up, c.dialect, c.no_transaction);
  ::testing::Message names;
  for (const std::string& rule : RulesOf(findings)) names << rule << " ";
  EXPECT_EQ(Has(findings, c.rule), c.expected) << c.up << "\nfound: " << names;
}

constexpr Dialect kPg = Dialect::kPostgres;
constexpr Dialect kMy = Dialect::kMySql;
constexpr Dialect kLite = Dialect::kSqlite;

const Case kCases[] = {
    // PostgreSQL locking
    {"create-index-locks-writes", kPg, "CREATE INDEX i ON orders (customer_id);", true},
    {"create-index-locks-writes", kPg, "CREATE UNIQUE INDEX IF NOT EXISTS i ON public.orders (a);",
     true},
    {"create-index-locks-writes", kPg, "CREATE INDEX CONCURRENTLY i ON orders (a);", false, true},
    {"create-index-locks-writes", kPg,
     "CREATE TABLE orders (id int);\nCREATE INDEX i ON orders (id);", false},
    {"create-index-locks-writes", kMy, "CREATE INDEX i ON orders (a);", false},
    {"concurrently-in-transaction", kPg, "CREATE INDEX CONCURRENTLY i ON orders (a);", true},
    {"concurrently-in-transaction", kPg, "CREATE INDEX CONCURRENTLY i ON orders (a);", false, true},
    {"concurrently-in-transaction", kPg, "DROP INDEX CONCURRENTLY i;", true},
    {"drop-index-locks", kPg, "DROP INDEX IF EXISTS i;", true},
    {"drop-index-locks", kPg, "DROP INDEX CONCURRENTLY i;", false, true},
    {"add-column-not-null-without-default", kPg,
     "ALTER TABLE users ADD COLUMN age integer NOT NULL;", true},
    {"add-column-not-null-without-default", kPg,
     "ALTER TABLE users ADD COLUMN age integer NOT NULL DEFAULT 0;", false},
    {"add-column-not-null-without-default", kPg, "ALTER TABLE users ADD COLUMN age integer;",
     false},
    {"add-column-not-null-without-default", kPg,
     "ALTER TABLE users ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY NOT NULL;", false},
    {"add-column-not-null-without-default", kPg,
     "CREATE TABLE users (id int);\nALTER TABLE users ADD COLUMN age int NOT NULL;", false},
    {"add-column-not-null-without-default", kMy,
     "ALTER TABLE users ADD COLUMN age INT NOT NULL;", true},
    {"add-column-not-null-without-default", kLite, "ALTER TABLE users ADD age INTEGER NOT NULL;",
     true},
    {"add-column-not-null-without-default", kLite,
     "ALTER TABLE users ADD age INTEGER NOT NULL DEFAULT 0;", false},
    {"add-column-volatile-default", kPg,
     "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();", true},
    {"add-column-volatile-default", kPg,
     "ALTER TABLE users ADD COLUMN created timestamptz DEFAULT now();", false},
    {"alter-column-type", kPg, "ALTER TABLE users ALTER COLUMN age TYPE bigint;", true},
    {"alter-column-type", kPg, "ALTER TABLE users ALTER age SET DATA TYPE bigint;", true},
    {"alter-column-type", kPg, "ALTER TABLE users ALTER COLUMN age SET DEFAULT 1;", false},
    {"set-not-null", kPg, "ALTER TABLE users ALTER COLUMN email SET NOT NULL;", true},
    {"set-not-null", kPg, "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;", false},
    {"constraint-not-valid", kPg,
     "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);", true},
    {"constraint-not-valid", kPg,
     "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT "
     "VALID;",
     false},
    {"constraint-not-valid", kPg, "ALTER TABLE orders ADD CONSTRAINT c CHECK (total >= 0);", true},
    {"constraint-not-valid", kPg, "ALTER TABLE orders ADD COLUMN user_id int REFERENCES users;",
     true},
    {"unique-constraint-locks", kPg, "ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);", true},
    {"unique-constraint-locks", kPg, "ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX ui;",
     false},
    {"unique-constraint-locks", kPg, "ALTER TABLE users ADD PRIMARY KEY (id);", true},
    {"add-column-volatile-default", kPg, "ALTER TABLE events ADD COLUMN seq bigserial;", true},
    {"add-column-stored-generated", kPg,
     "ALTER TABLE o ADD COLUMN c bigint GENERATED ALWAYS AS (total * 100) STORED;", true},
    {"add-column-stored-generated", kPg,
     "ALTER TABLE o ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;", false},
    {"drop-not-null", kPg, "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;", true},
    {"domain-check-constraint", kPg, "CREATE DOMAIN amount AS numeric CHECK (VALUE > 0);", true},
    {"domain-check-constraint", kPg, "CREATE DOMAIN amount AS numeric;", false},
    {"domain-check-constraint", kPg,
     "ALTER DOMAIN amount ADD CONSTRAINT m CHECK (VALUE < 100);", true},
    {"domain-check-constraint", kPg,
     "ALTER DOMAIN amount ADD CONSTRAINT m CHECK (VALUE < 100) NOT VALID;", false},
    {"reindex-locks", kPg, "REINDEX TABLE orders;", true},
    {"reindex-locks", kPg, "REINDEX TABLE CONCURRENTLY orders;", false, true},
    {"unique-constraint-locks", kPg,
     "ALTER TABLE b ADD CONSTRAINT x EXCLUDE USING gist (room WITH =, during WITH &&);", true},
    // rolling-deploy breakage
    {"rename", kPg, "ALTER TABLE users RENAME COLUMN email TO mail;", true},
    {"rename", kPg, "ALTER TABLE users RENAME TO people;", true},
    {"rename", kPg, "ALTER TABLE users RENAME CONSTRAINT a TO b;", false},
    {"rename", kMy, "RENAME TABLE users TO people;", true},
    {"rename", kMy, "ALTER TABLE users CHANGE email mail VARCHAR(200);", true},
    {"rename", kMy, "ALTER TABLE users CHANGE email email VARCHAR(200);", false},
    {"rename", kLite, "ALTER TABLE users RENAME COLUMN email TO mail;", true},
    // destruction
    {"drop-table", kPg, "DROP TABLE IF EXISTS users;", true},
    {"drop-table", kMy, "DROP TABLE a, b;", true},
    {"drop-table", kPg, "CREATE TABLE tmp (id int);\nDROP TABLE tmp;", false},
    {"drop-table", kLite, "DROP TABLE sessions;", true},
    {"drop-table", kMy, "CREATE TABLE tmp (id INT);\nDROP TABLE tmp;", false},
    {"rename", kLite, "ALTER TABLE users RENAME TO people;", true},
    {"delete-without-where", kMy, "DELETE FROM sessions;", true},
    {"delete-without-where", kMy, "DELETE FROM sessions WHERE id < 10;", false},
    {"update-without-where", kLite, "UPDATE users SET active = 0;", true},
    {"update-without-where", kLite, "UPDATE users SET active = 0 WHERE id = 1;", false},
    {"drop-schema", kLite, "DROP SCHEMA x;", false},
    {"truncate", kLite, "TRUNCATE sessions;", false},
    {"add-column-not-null-without-default", kMy,
     "ALTER TABLE users ADD COLUMN age INT NOT NULL DEFAULT 0;", false},
    {"transaction-control", kMy, "START TRANSACTION;\nCOMMIT;", false},
    {"drop-table", kPg, "DROP VIEW v;", false},
    {"drop-column", kPg, "ALTER TABLE users DROP COLUMN phone;", true},
    {"drop-column", kMy, "ALTER TABLE users DROP phone;", true},
    {"drop-column", kPg, "ALTER TABLE users DROP CONSTRAINT u;", false},
    {"drop-column", kLite, "ALTER TABLE users DROP COLUMN phone;", true},
    {"drop-schema", kPg, "DROP SCHEMA billing CASCADE;", true},
    {"drop-schema", kMy, "DROP DATABASE shop;", true},
    {"truncate", kPg, "TRUNCATE TABLE sessions;", true},
    {"truncate", kMy, "TRUNCATE sessions;", true},
    {"delete-without-where", kPg, "DELETE FROM sessions;", true},
    {"delete-without-where", kPg, "DELETE FROM sessions WHERE expires < now();", false},
    {"delete-without-where", kLite, "DELETE FROM sessions;", true},
    {"update-without-where", kMy, "UPDATE users SET active = 0;", true},
    {"update-without-where", kMy, "UPDATE users SET active = 0 WHERE id IN (SELECT id FROM x);",
     false},
    {"update-without-where", kPg,
     "UPDATE users SET n = (SELECT count(*) FROM o WHERE o.u = users.id);", true},
    {"transaction-control", kPg, "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;", true},
    {"transaction-control", kLite, "COMMIT;", true},
    {"transaction-control", kPg, "COMMIT;", false, true},
    {"transaction-control", kPg,
     "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;", false},
    {"vacuum-full-or-cluster", kPg, "VACUUM FULL users;", true},
    {"vacuum-full-or-cluster", kPg, "VACUUM (FULL, ANALYZE) users;", true},
    {"vacuum-full-or-cluster", kPg, "VACUUM users;", false},
    {"vacuum-full-or-cluster", kPg, "CLUSTER users USING users_pkey;", true},
    // MySQL
    {"inline-references-ignored", kMy,
     "CREATE TABLE orders (id INT PRIMARY KEY, user_id INT REFERENCES users (id));", true},
    {"inline-references-ignored", kMy,
     "CREATE TABLE orders (id INT, user_id INT, FOREIGN KEY (user_id) REFERENCES users (id));",
     false},
    {"inline-references-ignored", kPg,
     "CREATE TABLE orders (id INT, user_id INT REFERENCES users (id));", false},
    {"ddl-mixed-with-dml", kMy, "ALTER TABLE users ADD COLUMN a INT;\nUPDATE users SET a = 1 WHERE a IS NULL;",
     true},
    {"ddl-mixed-with-dml", kMy, "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);", false},
    {"ddl-mixed-with-dml", kMy, "CREATE TABLE t (id INT);\nINSERT INTO t VALUES (1);", false},
    {"update-without-where", kMy,
     "UPDATE orders JOIN totals ON totals.order_id = orders.id SET orders.n = totals.n;", false},
    // SQLite
    {"sqlite-unsupported-alter", kLite, "ALTER TABLE users ALTER COLUMN a TYPE TEXT;", true},
    {"sqlite-unsupported-alter", kLite, "ALTER TABLE users ADD CONSTRAINT u UNIQUE (a);", true},
    {"sqlite-unsupported-alter", kLite, "ALTER TABLE users ADD COLUMN a TEXT;", false},
    {"table-rebuild", kLite,
     "CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n"
     "INSERT INTO users_new SELECT id, email FROM users;\nDROP TABLE users;\n"
     "ALTER TABLE users_new RENAME TO users;",
     true},
};

INSTANTIATE_TEST_SUITE_P(Rules, RuleCase, ::testing::ValuesIn(kCases));

TEST(Lint, RebuildIsNotReportedAsDataLoss) {
  auto findings = LintUp(
      "CREATE TABLE users_new (id INTEGER PRIMARY KEY);\nINSERT INTO users_new SELECT id FROM "
      "users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;",
      kLite);
  EXPECT_FALSE(Has(findings, "drop-table"));
  EXPECT_FALSE(Has(findings, "rename"));
}

TEST(Lint, FindingsNameTheFileLineAndASafeRewrite) {
  Migration m = Make("-- add an index\n\nCREATE TABLE a (id int);\nCREATE INDEX i ON users (email);\n");
  m.up_first_line = 1;
  auto findings = LintMigration(m, Options{kPg, {}});
  ASSERT_TRUE(Has(findings, "create-index-locks-writes"));
  const Finding& f = findings.front();
  EXPECT_EQ(f.file, "20260101000000_change.up.sql");
  EXPECT_EQ(f.line, 4);
  EXPECT_EQ(f.severity, Severity::kWarning);
  EXPECT_NE(f.fix.find("CONCURRENTLY"), std::string::npos);
  EXPECT_NE(f.message.find("users"), std::string::npos);
}

TEST(Lint, LinesCountFromTheSectionStartInSingleFileFormats) {
  Migration m = Make("ALTER TABLE users DROP COLUMN phone;\n");
  m.up_first_line = 7;  // e.g. after a dbmate "-- migrate:up" header
  auto findings = LintMigration(m, Options{kPg, {}});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].line, 7);
}

TEST(Lint, IgnoreCommentsSilenceOneStatementOrTheWholeFile) {
  auto one = LintUp(
      "ALTER TABLE users DROP COLUMN fax;\n-- safemig:ignore drop-column\n"
      "ALTER TABLE users DROP COLUMN phone;\n",
      kPg);
  EXPECT_EQ(std::count_if(one.begin(), one.end(),
                          [](const Finding& f) { return f.rule == "drop-column"; }),
            1);
  EXPECT_EQ(one[0].line, 1);
  auto whole = LintMigration(Make("-- safemig:ignore drop-column, rename\n\n"
                                  "ALTER TABLE users DROP COLUMN phone;\n"
                                  "ALTER TABLE users RENAME COLUMN a TO b;\n"),
                             Options{kPg, {}});
  EXPECT_TRUE(whole.empty()) << whole.front().rule;
  auto config = LintUp("TRUNCATE sessions;", kPg);
  EXPECT_TRUE(Has(config, "truncate"));
  EXPECT_TRUE(LintMigration(Make("TRUNCATE sessions;"), Options{kPg, {"truncate"}}).empty());
}

TEST(Lint, DownsMayDropWhatTheirUpCreated) {
  Migration m = Make("CREATE TABLE audit (id int);\nALTER TABLE users ADD COLUMN note text;\n",
                     "ALTER TABLE users DROP COLUMN note;\nDROP TABLE audit;\n");
  EXPECT_TRUE(LintMigration(m, Options{kPg, {}}).empty());
}

TEST(Lint, DownThatForgetsAnObjectIsAWarning) {
  Migration m = Make("CREATE TABLE audit (id int);\nCREATE INDEX audit_i ON audit (id);\n"
                     "ALTER TABLE users ADD COLUMN note text;\nCREATE VIEW recent AS SELECT 1;\n",
                     "DROP TABLE audit;\n");
  auto findings = LintMigration(m, Options{kPg, {}});
  ASSERT_TRUE(Has(findings, "down-misses-objects"));
  const Finding& f = findings.back();
  EXPECT_EQ(f.severity, Severity::kWarning);
  EXPECT_NE(f.message.find("users.note"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("recent"), std::string::npos) << f.message;
  // The index goes with its table.
  EXPECT_EQ(f.message.find("audit_i"), std::string::npos) << f.message;
}

TEST(Lint, MissingDownIsAnErrorUnlessIrreversible) {
  EXPECT_TRUE(Has(LintMigration(Make("CREATE TABLE a (id int);", ""), Options{kPg, {}}),
                  "missing-down"));
  auto irreversible = LintMigration(Make("CREATE TABLE a (id int);", "", false, true),
                                    Options{kPg, {}});
  EXPECT_FALSE(Has(irreversible, "missing-down"));
  EXPECT_FALSE(Has(irreversible, "down-misses-objects"));
}

TEST(Lint, DownIsCheckedForStatementsThatCannotRun) {
  Migration m = Make("CREATE INDEX CONCURRENTLY i ON users (a);",
                     "DROP INDEX CONCURRENTLY i;", /*no_transaction=*/false);
  auto findings = LintMigration(m, Options{kPg, {}});
  EXPECT_EQ(std::count_if(findings.begin(), findings.end(),
                          [](const Finding& f) {
                            return f.rule == "concurrently-in-transaction";
                          }),
            2);
}

TEST(Lint, KeywordsInStringsAndCommentsAreNotStatements) {
  auto findings = LintUp(
      "INSERT INTO notes (body) VALUES ('DROP TABLE users; DELETE FROM x');\n"
      "/* DROP TABLE users */ SELECT 1;\n",
      kPg);
  EXPECT_TRUE(findings.empty()) << findings.front().rule;
}

TEST(Lint, QuotedNamesKeepTheirCase) {
  auto findings = LintUp("ALTER TABLE \"Users\" DROP COLUMN \"Phone\";", kPg);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_NE(findings[0].message.find("Users.Phone"), std::string::npos) << findings[0].message;
}

TEST(Lint, EnumMembersRemovedOrReorderedAcrossMigrations) {
  Migration create = Make("CREATE TABLE orders (id INT, state ENUM('new','paid','sent'));");
  create.version = "1";
  Migration append = Make("ALTER TABLE orders MODIFY state ENUM('new','paid','sent','void');");
  append.version = "2";
  Migration reorder = Make("ALTER TABLE orders MODIFY COLUMN state ENUM('paid','new');");
  reorder.version = "3";
  Options mysql{kMy, {}};
  EXPECT_FALSE(Has(LintMigrations({create}, {append}, mysql), "enum-members-changed"));
  auto findings = LintMigrations({create, append}, {reorder}, mysql);
  ASSERT_TRUE(Has(findings, "enum-members-changed"));
  EXPECT_EQ(findings[0].version, "3");
  EXPECT_NE(findings[0].message.find("'sent'"), std::string::npos) << findings[0].message;
}

TEST(Lint, UnsplittableFileIsOneSyntaxError) {
  auto findings = LintUp("INSERT INTO t VALUES ('unterminated);", kPg);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].rule, "syntax");
  EXPECT_TRUE(HasErrors(findings));
}

TEST(Lint, EveryRuleIsListedOnce) {
  std::vector<std::string> ids;
  for (const RuleInfo& rule : Rules()) ids.push_back(rule.id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  EXPECT_GE(ids.size(), 20u);
}

}  // namespace
}  // namespace safemig::lint
