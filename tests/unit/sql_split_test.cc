#include "core/sql_split.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace safemig {
namespace {

constexpr Dialect kPg = Dialect::kPostgres;
constexpr Dialect kMy = Dialect::kMySql;
constexpr Dialect kLite = Dialect::kSqlite;

struct Want {
  std::string text;
  int line;
};

struct SplitCase {
  const char* name;
  Dialect dialect;
  std::string sql;
  std::vector<Want> want;
};

struct ErrorCase {
  const char* name;
  Dialect dialect;
  std::string sql;
  std::string message;
};

std::string Describe(const std::vector<Statement>& statements) {
  std::string out;
  for (const Statement& statement : statements) {
    out += "  [line " + std::to_string(statement.line) + "] " + statement.text + "\n";
  }
  return out;
}

void ExpectSplits(const std::vector<SplitCase>& cases) {
  for (const SplitCase& c : cases) {
    SCOPED_TRACE(std::string(c.name) + " (" + DialectName(c.dialect) + ")");
    std::vector<Statement> got;
    try {
      got = SplitStatements(c.sql, c.dialect);
    } catch (const Error& e) {
      ADD_FAILURE() << "unexpected error: " << e.what();
      continue;
    }
    EXPECT_EQ(got.size(), c.want.size()) << "got:\n" << Describe(got);
    if (got.size() != c.want.size()) continue;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].text, c.want[i].text) << "statement " << i;
      EXPECT_EQ(got[i].line, c.want[i].line) << "statement " << i;
    }
  }
}

void ExpectErrors(const std::vector<ErrorCase>& cases) {
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(std::string(c.name) + " (" + DialectName(c.dialect) + ")");
    try {
      const std::vector<Statement> got = SplitStatements(c.sql, c.dialect);
      ADD_FAILURE() << "expected an error, got:\n" << Describe(got);
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), Category::kConfig);
      EXPECT_EQ(std::string(e.what()), c.message);
      EXPECT_FALSE(e.hint().empty());
    }
  }
}

TEST(SqlSplit, NamesDialects) {
  EXPECT_STREQ(DialectName(kPg), "postgres");
  EXPECT_STREQ(DialectName(kMy), "mysql");
  EXPECT_STREQ(DialectName(kLite), "sqlite");
}

TEST(SqlSplit, SplitsPlainStatements) {
  ExpectSplits({
      {"empty input", kPg, "", {}},
      {"whitespace only", kMy, "  \n\t\r\n", {}},
      {"only comments", kPg, "-- a;\n/* b; */\n-- c", {}},
      {"only comments", kMy, "# a;\n-- b;\n/* c; */", {}},
      {"two statements",
       kPg,
       "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n",
       {{"CREATE TABLE a (id int)", 1}, {"CREATE TABLE b (id int)", 2}}},
      {"no trailing semicolon", kLite, "SELECT 1;\nSELECT 2\n", {{"SELECT 1", 1}, {"SELECT 2", 2}}},
      {"empty statements dropped", kMy, ";;\n; SELECT 1;;", {{"SELECT 1", 2}}},
      {"leading comments stripped, inner comments kept",
       kPg,
       "-- add users\n/* why: login */\nCREATE TABLE u (\n  id int -- key\n);",
       {{"CREATE TABLE u (\n  id int -- key\n)", 3}}},
      {"comment after the last statement dropped", kPg, "SELECT 1; -- done\n", {{"SELECT 1", 1}}},
      {"comment before the semicolon dropped", kLite, "SELECT 1 /* x */ ;", {{"SELECT 1", 1}}},
      {"byte order mark skipped", kLite, "\xEF\xBB\xBFSELECT 1;", {{"SELECT 1", 1}}},
      {"transaction BEGIN is a statement",
       kLite,
       "BEGIN TRANSACTION;\nCREATE TABLE a (x);\nCOMMIT;",
       {{"BEGIN TRANSACTION", 1}, {"CREATE TABLE a (x)", 2}, {"COMMIT", 3}}},
      {"transaction BEGIN is a statement",
       kMy,
       "BEGIN;\nINSERT INTO t VALUES (1);\nCOMMIT;\nBEGIN WORK;\nROLLBACK;",
       {{"BEGIN", 1},
        {"INSERT INTO t VALUES (1)", 2},
        {"COMMIT", 3},
        {"BEGIN WORK", 4},
        {"ROLLBACK", 5}}},
      {"transaction BEGIN is a statement",
       kPg,
       "BEGIN;\nUPDATE t SET a = 1;\nEND;",
       {{"BEGIN", 1}, {"UPDATE t SET a = 1", 2}, {"END", 3}}},
  });
}

TEST(SqlSplit, KeepsSemicolonInsideQuotes) {
  ExpectSplits({
      {"doubled single quote",
       kPg,
       "INSERT INTO t VALUES ('a;b', 'it''s; fine');SELECT 2",
       {{"INSERT INTO t VALUES ('a;b', 'it''s; fine')", 1}, {"SELECT 2", 1}}},
      {"comment markers inside strings",
       kPg,
       "INSERT INTO t VALUES ('-- not a comment;', '/* nor; this */');\nSELECT 2;",
       {{"INSERT INTO t VALUES ('-- not a comment;', '/* nor; this */')", 1}, {"SELECT 2", 2}}},
      {"comment markers inside strings",
       kMy,
       "INSERT INTO t VALUES ('# not; a comment', \"-- nor; this\");\nSELECT 2;",
       {{"INSERT INTO t VALUES ('# not; a comment', \"-- nor; this\")", 1}, {"SELECT 2", 2}}},
      {"semicolon in a quoted identifier",
       kPg,
       R"(CREATE TABLE "odd;name" ("a""b;" int);)"
       "\nSELECT 1;",
       {{R"(CREATE TABLE "odd;name" ("a""b;" int))", 1}, {"SELECT 1", 2}}},
      {"semicolon in backticks",
       kMy,
       "CREATE TABLE `a;b` (`c``;` INT);SELECT 1",
       {{"CREATE TABLE `a;b` (`c``;` INT)", 1}, {"SELECT 1", 1}}},
      {"semicolon in backticks",
       kLite,
       "CREATE TABLE `x;y` (a);SELECT 1",
       {{"CREATE TABLE `x;y` (a)", 1}, {"SELECT 1", 1}}},
      {"semicolon in brackets",
       kLite,
       "CREATE TABLE [x;y] (a);SELECT 1",
       {{"CREATE TABLE [x;y] (a)", 1}, {"SELECT 1", 1}}},
      {"backslash escapes in MySQL strings",
       kMy,
       R"(INSERT INTO t VALUES ("say \"hi;\"", 'it\'s;', 'C:\\');SELECT 1)",
       {{R"(INSERT INTO t VALUES ("say \"hi;\"", 'it\'s;', 'C:\\'))", 1}, {"SELECT 1", 1}}},
      {"backslash is literal in standard strings",
       kPg,
       R"(SELECT 'C:\';SELECT 2)",
       {{R"(SELECT 'C:\')", 1}, {"SELECT 2", 1}}},
      {"backslash is literal in standard strings",
       kLite,
       R"(SELECT 'C:\';SELECT 2)",
       {{R"(SELECT 'C:\')", 1}, {"SELECT 2", 1}}},
      {"E string with escaped quote",
       kPg,
       R"(SELECT E'it\'s; ok', e'\\';SELECT 2)",
       {{R"(SELECT E'it\'s; ok', e'\\')", 1}, {"SELECT 2", 1}}},
      {"e ending an identifier does not make an E string",
       kPg,
       R"(SELECT date'x\';SELECT 1)",
       {{R"(SELECT date'x\')", 1}, {"SELECT 1", 1}}},
  });
}

TEST(SqlSplit, KeepsSemicolonInsideDollarQuote) {
  ExpectSplits({
      {"plpgsql function in $$",
       kPg,
       "CREATE FUNCTION bump() RETURNS trigger AS $$\n"
       "BEGIN\n"
       "  NEW.updated_at := now();\n"
       "  RETURN NEW;\n"
       "END;\n"
       "$$ LANGUAGE plpgsql;\n"
       "CREATE TRIGGER t BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION bump();\n",
       {{"CREATE FUNCTION bump() RETURNS trigger AS $$\nBEGIN\n  NEW.updated_at := now();\n"
         "  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql",
         1},
        {"CREATE TRIGGER t BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION bump()", 7}}},
      {"$body$ containing $$",
       kPg,
       "CREATE FUNCTION f() RETURNS text AS $body$ SELECT $$;$$::text; $body$ LANGUAGE sql;"
       "SELECT 1",
       {{"CREATE FUNCTION f() RETURNS text AS $body$ SELECT $$;$$::text; $body$ LANGUAGE sql", 1},
        {"SELECT 1", 1}}},
      {"DO block",
       kPg,
       "DO $do$\nBEGIN\n  RAISE NOTICE 'x;y';\nEND\n$do$;\nSELECT 1;",
       {{"DO $do$\nBEGIN\n  RAISE NOTICE 'x;y';\nEND\n$do$", 1}, {"SELECT 1", 6}}},
      {"positional parameters are not dollar quotes",
       kPg,
       "PREPARE p AS SELECT $1, $2;\nEXECUTE p(1, 2);",
       {{"PREPARE p AS SELECT $1, $2", 1}, {"EXECUTE p(1, 2)", 2}}},
      {"dollar inside an identifier is not a dollar quote",
       kPg,
       "SELECT a$b$c FROM t;SELECT 2",
       {{"SELECT a$b$c FROM t", 1}, {"SELECT 2", 1}}},
      {"BEGIN ATOMIC body",
       kPg,
       "CREATE PROCEDURE insert_data(a integer, b integer)\n"
       "LANGUAGE SQL\n"
       "BEGIN ATOMIC\n"
       "  INSERT INTO tbl VALUES (a);\n"
       "  INSERT INTO tbl VALUES (CASE WHEN b > 0 THEN b ELSE 0 END);\n"
       "END;\n"
       "SELECT 1;",
       {{"CREATE PROCEDURE insert_data(a integer, b integer)\nLANGUAGE SQL\nBEGIN ATOMIC\n"
         "  INSERT INTO tbl VALUES (a);\n"
         "  INSERT INTO tbl VALUES (CASE WHEN b > 0 THEN b ELSE 0 END);\nEND",
         1},
        {"SELECT 1", 7}}},
      {"multi-action rule in parentheses",
       kPg,
       "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b "
       "VALUES (2));\nSELECT 1;",
       {{"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b "
         "VALUES (2))",
         1},
        {"SELECT 1", 2}}},
  });
}

TEST(SqlSplit, SkipsCommentsPerDialect) {
  ExpectSplits({
      {"nested block comments",
       kPg,
       "/* outer /* inner; */ still comment; */ SELECT 1; SELECT 2",
       {{"SELECT 1", 1}, {"SELECT 2", 1}}},
      {"block comments do not nest", kLite, "/* a /* b; */ SELECT 1;", {{"SELECT 1", 1}}},
      {"block comments do not nest", kMy, "/* a /* b; */ SELECT 1;", {{"SELECT 1", 1}}},
      {"hash comments",
       kMy,
       "# setup; more\nSELECT 1; # trailing; x\nSELECT 2;",
       {{"SELECT 1", 2}, {"SELECT 2", 3}}},
      {"double dash needs a space",
       kMy,
       "SELECT 5--1;\nSELECT 2; --\r\nSELECT 3;\n--",
       {{"SELECT 5--1", 1}, {"SELECT 2", 2}, {"SELECT 3", 3}}},
      {"double dash needs no space",
       kPg,
       "SELECT 1 --comment;\n;SELECT 2",
       {{"SELECT 1", 1}, {"SELECT 2", 2}}},
      {"hash is an operator", kPg, "SELECT 5 # 3;SELECT 2", {{"SELECT 5 # 3", 1}, {"SELECT 2", 1}}},
      {"executable comments are statements",
       kMy,
       "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n"
       "/* plain */ SELECT /*+ MAX_EXECUTION_TIME(1000) */ 1;",
       {{"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */", 1},
        {"SELECT /*+ MAX_EXECUTION_TIME(1000) */ 1", 2}}},
  });
}

TEST(SqlSplit, KeepsSqliteTriggerWhole) {
  ExpectSplits({
      {"trigger body",
       kLite,
       "CREATE TRIGGER audit_update AFTER UPDATE ON accounts\n"
       "BEGIN\n"
       "  INSERT INTO audit (account_id, action) VALUES (NEW.id, 'update');\n"
       "  UPDATE accounts SET touched = 1 WHERE id = NEW.id;\n"
       "END;\n"
       "INSERT INTO accounts (id) VALUES (1);\n",
       {{"CREATE TRIGGER audit_update AFTER UPDATE ON accounts\nBEGIN\n"
         "  INSERT INTO audit (account_id, action) VALUES (NEW.id, 'update');\n"
         "  UPDATE accounts SET touched = 1 WHERE id = NEW.id;\nEND",
         1},
        {"INSERT INTO accounts (id) VALUES (1)", 6}}},
      {"CASE inside the body",
       kLite,
       "CREATE TEMP TRIGGER check_balance BEFORE UPDATE ON accounts\n"
       "WHEN NEW.balance < 0\n"
       "BEGIN\n"
       "  SELECT CASE\n"
       "    WHEN NEW.overdraft = 0 THEN RAISE(ABORT, 'negative balance; refused')\n"
       "  END;\n"
       "  UPDATE accounts SET flagged = CASE WHEN NEW.balance < -100 THEN 1 ELSE 0 END;\n"
       "END;\n"
       "SELECT 1;",
       {{"CREATE TEMP TRIGGER check_balance BEFORE UPDATE ON accounts\nWHEN NEW.balance < 0\n"
         "BEGIN\n  SELECT CASE\n"
         "    WHEN NEW.overdraft = 0 THEN RAISE(ABORT, 'negative balance; refused')\n"
         "  END;\n"
         "  UPDATE accounts SET flagged = CASE WHEN NEW.balance < -100 THEN 1 ELSE 0 END;\nEND",
         1},
        {"SELECT 1", 9}}},
      {"CASE in the WHEN clause",
       kLite,
       "CREATE TRIGGER IF NOT EXISTS t AFTER INSERT ON a WHEN CASE NEW.x WHEN 1 THEN 1 END "
       "BEGIN SELECT 1; END; SELECT 2;",
       {{"CREATE TRIGGER IF NOT EXISTS t AFTER INSERT ON a WHEN CASE NEW.x WHEN 1 THEN 1 END "
         "BEGIN SELECT 1; END",
         1},
        {"SELECT 2", 1}}},
      {"column named end",
       kLite,
       "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET e = NEW.end; END;SELECT 2;",
       {{"CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET e = NEW.end; END", 1},
        {"SELECT 2", 1}}},
      {"CASE outside a trigger does not open a body",
       kLite,
       "SELECT CASE WHEN 1 THEN 2 END;\nSELECT 3;",
       {{"SELECT CASE WHEN 1 THEN 2 END", 1}, {"SELECT 3", 2}}},
  });
}

TEST(SqlSplit, KeepsMySqlRoutineWholeWithoutDelimiter) {
  ExpectSplits({
      {"procedure with nested IF, LOOP and BEGIN",
       kMy,
       "CREATE PROCEDURE backfill(IN batch INT)\n"
       "BEGIN\n"
       "  DECLARE done INT DEFAULT 0;\n"
       "  DECLARE n INT DEFAULT 0;\n"
       "  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;\n"
       "  read_loop: LOOP\n"
       "    IF done = 1 THEN\n"
       "      LEAVE read_loop;\n"
       "    END IF;\n"
       "    BEGIN\n"
       "      UPDATE t SET v = IF(v IS NULL, 0, v) LIMIT batch;\n"
       "      SET n = n + 1;\n"
       "    END;\n"
       "    IF (n > 10) THEN\n"
       "      LEAVE read_loop;\n"
       "    ELSEIF n > 5 THEN\n"
       "      SET done = 0;\n"
       "    ELSE\n"
       "      IF (done) THEN SET n = 0; END IF;\n"
       "    END IF;\n"
       "  END LOOP read_loop;\n"
       "END;\n"
       "CALL backfill(100);\n",
       {{"CREATE PROCEDURE backfill(IN batch INT)\nBEGIN\n  DECLARE done INT DEFAULT 0;\n"
         "  DECLARE n INT DEFAULT 0;\n"
         "  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;\n  read_loop: LOOP\n"
         "    IF done = 1 THEN\n      LEAVE read_loop;\n    END IF;\n    BEGIN\n"
         "      UPDATE t SET v = IF(v IS NULL, 0, v) LIMIT batch;\n      SET n = n + 1;\n"
         "    END;\n    IF (n > 10) THEN\n      LEAVE read_loop;\n    ELSEIF n > 5 THEN\n"
         "      SET done = 0;\n    ELSE\n      IF (done) THEN SET n = 0; END IF;\n"
         "    END IF;\n  END LOOP read_loop;\nEND",
         1},
        {"CALL backfill(100)", 23}}},
      {"WHILE, REPEAT, CASE statement and lookalike functions",
       kMy,
       "CREATE DEFINER=`admin`@`%` PROCEDURE tidy()\n"
       "BEGIN\n"
       "  DECLARE i INT DEFAULT 0;\n"
       "  DROP TEMPORARY TABLE IF EXISTS scratch;\n"
       "  WHILE i < 3 DO\n"
       "    SET i = i + 1;\n"
       "  END WHILE;\n"
       "  REPEAT\n"
       "    SET i = i - 1;\n"
       "  UNTIL i = 0 END REPEAT;\n"
       "  CASE i\n"
       "    WHEN 0 THEN SELECT REPEAT('-', 3);\n"
       "    ELSE SELECT CASE WHEN i > 0 THEN 'p' ELSE IF(i, 'n', 'z') END;\n"
       "  END CASE;\n"
       "  IF EXISTS (SELECT 1 FROM t) THEN\n"
       "    DELETE FROM t;\n"
       "  END IF;\n"
       "END;\n"
       "SELECT 1;",
       {{"CREATE DEFINER=`admin`@`%` PROCEDURE tidy()\nBEGIN\n  DECLARE i INT DEFAULT 0;\n"
         "  DROP TEMPORARY TABLE IF EXISTS scratch;\n  WHILE i < 3 DO\n    SET i = i + 1;\n"
         "  END WHILE;\n  REPEAT\n    SET i = i - 1;\n  UNTIL i = 0 END REPEAT;\n  CASE i\n"
         "    WHEN 0 THEN SELECT REPEAT('-', 3);\n"
         "    ELSE SELECT CASE WHEN i > 0 THEN 'p' ELSE IF(i, 'n', 'z') END;\n"
         "  END CASE;\n  IF EXISTS (SELECT 1 FROM t) THEN\n    DELETE FROM t;\n  END IF;\nEND",
         1},
        {"SELECT 1", 19}}},
      {"trigger with a BEGIN body",
       kMy,
       "CREATE DEFINER = admin@localhost TRIGGER trg BEFORE INSERT ON orders FOR EACH ROW\n"
       "BEGIN\n"
       "  IF NEW.qty < 0 THEN\n"
       "    SET NEW.qty = 0;\n"
       "  END IF;\n"
       "END;\n"
       "INSERT INTO orders (qty) VALUES (1);",
       {{"CREATE DEFINER = admin@localhost TRIGGER trg BEFORE INSERT ON orders FOR EACH ROW\n"
         "BEGIN\n  IF NEW.qty < 0 THEN\n    SET NEW.qty = 0;\n  END IF;\nEND",
         1},
        {"INSERT INTO orders (qty) VALUES (1)", 7}}},
      {"trigger whose body is a lone IF",
       kMy,
       "CREATE TRIGGER t BEFORE INSERT ON o FOR EACH ROW IF (NEW.q < 0) THEN SET NEW.q = 0; "
       "END IF;\nSELECT 1;",
       {{"CREATE TRIGGER t BEFORE INSERT ON o FOR EACH ROW IF (NEW.q < 0) THEN SET NEW.q = 0; "
         "END IF",
         1},
        {"SELECT 1", 2}}},
      {"function without a compound body",
       kMy,
       "CREATE FUNCTION sign_of(x INT) RETURNS INT DETERMINISTIC RETURN IF(x < 0, -1, 1);\n"
       "SELECT sign_of(2);",
       {{"CREATE FUNCTION sign_of(x INT) RETURNS INT DETERMINISTIC RETURN IF(x < 0, -1, 1)", 1},
        {"SELECT sign_of(2)", 2}}},
      {"event",
       kMy,
       "CREATE EVENT IF NOT EXISTS purge ON SCHEDULE EVERY 1 DAY DO BEGIN\n"
       "  DELETE FROM s WHERE ts < NOW(); DELETE FROM l;\nEND;\nSELECT 1;",
       {{"CREATE EVENT IF NOT EXISTS purge ON SCHEDULE EVERY 1 DAY DO BEGIN\n"
         "  DELETE FROM s WHERE ts < NOW(); DELETE FROM l;\nEND",
         1},
        {"SELECT 1", 4}}},
      {"table named event is not a routine",
       kMy,
       "CREATE TABLE IF NOT EXISTS event (id INT, kind CHAR(1));\nSELECT 1;",
       {{"CREATE TABLE IF NOT EXISTS event (id INT, kind CHAR(1))", 1}, {"SELECT 1", 2}}},
      {"MariaDB anonymous block",
       kMy,
       "BEGIN NOT ATOMIC\n  DECLARE x INT;\n  SET x = 1;\nEND;\nSELECT 1;",
       {{"BEGIN NOT ATOMIC\n  DECLARE x INT;\n  SET x = 1;\nEND", 1}, {"SELECT 1", 5}}},
  });
}

TEST(SqlSplit, HonoursMySqlDelimiterLines) {
  ExpectSplits({
      {"DELIMITER $$",
       kMy,
       "DELIMITER $$\n"
       "CREATE PROCEDURE p()\n"
       "BEGIN\n"
       "  SELECT 1;\n"
       "END$$\n"
       "DELIMITER ;\n"
       "CALL p();\n",
       {{"CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\nEND", 2}, {"CALL p()", 7}}},
      {"DELIMITER ;; as mysqldump writes it",
       kMy,
       "DELIMITER ;;\n"
       "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER t BEFORE "
       "INSERT ON a FOR EACH ROW BEGIN SET NEW.x = 1; END */;;\n"
       "DELIMITER ;\n"
       "SELECT 1;",
       {{"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER t BEFORE "
         "INSERT ON a FOR EACH ROW BEGIN SET NEW.x = 1; END */",
         2},
        {"SELECT 1", 4}}},
      {"lower-case delimiter, statement left open at the end",
       kMy,
       "delimiter //\n"
       "CREATE FUNCTION f() RETURNS INT\n"
       "BEGIN\n"
       "  RETURN 1;\n"
       "END //\n"
       "SELECT 2 //\n"
       "SELECT 'a//b'",
       {{"CREATE FUNCTION f() RETURNS INT\nBEGIN\n  RETURN 1;\nEND", 2},
        {"SELECT 2", 6},
        {"SELECT 'a//b'", 7}}},
      {"column named delimiter",
       kMy,
       "CREATE TABLE t (\ndelimiter VARCHAR(1)\n);",
       {{"CREATE TABLE t (\ndelimiter VARCHAR(1)\n)", 1}}},
      {"CRLF delimiter lines",
       kMy,
       "DELIMITER //\r\nSELECT 1; SELECT 2//\r\nDELIMITER ;\r\nSELECT 3;\r\n",
       {{"SELECT 1; SELECT 2", 2}, {"SELECT 3", 4}}},
  });
}

TEST(SqlSplit, KeepsGooseStatementBlockWhole) {
  ExpectSplits({
      {"block with two statements",
       kPg,
       "-- +goose StatementBegin\nINSERT INTO a VALUES (1);\nINSERT INTO b VALUES (2);\n"
       "-- +goose StatementEnd\n",
       {{"INSERT INTO a VALUES (1);\nINSERT INTO b VALUES (2)", 2}}},
      {"block among ordinary statements",
       kPg,
       "-- +goose Up\n"
       "CREATE TABLE a (id int);\n"
       "-- +goose StatementBegin\n"
       "-- helper\n"
       "CREATE FUNCTION g() RETURNS trigger AS $$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql;\n"
       "-- +goose StatementEnd\n"
       "-- +goose Down\n"
       "DROP TABLE a;\n",
       {{"CREATE TABLE a (id int)", 2},
        {"CREATE FUNCTION g() RETURNS trigger AS $$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql", 5},
        {"DROP TABLE a", 8}}},
      {"procedure block",
       kMy,
       "-- +goose StatementBegin\nCREATE PROCEDURE p() BEGIN SELECT 1; END;\n"
       "-- +goose StatementEnd",
       {{"CREATE PROCEDURE p() BEGIN SELECT 1; END", 2}}},
      {"open statement before the block ends there",
       kLite,
       "SELECT 1\n-- +goose StatementBegin\nSELECT 2;\n-- +goose StatementEnd\n",
       {{"SELECT 1", 1}, {"SELECT 2", 3}}},
      {"annotation with trailing words is a comment",
       kPg,
       "-- +goose StatementBegin please\nSELECT 1; SELECT 2;",
       {{"SELECT 1", 2}, {"SELECT 2", 2}}},
      {"CRLF block",
       kPg,
       "-- +goose StatementBegin\r\nSELECT 1;\r\nSELECT 2;\r\n-- +goose StatementEnd\r\n",
       {{"SELECT 1;\r\nSELECT 2", 2}}},
      {"block of comments only",
       kLite,
       "-- +goose StatementBegin\n-- nothing\n-- +goose StatementEnd\nSELECT 1;",
       {{"SELECT 1", 4}}},
  });
}

TEST(SqlSplit, ReportsLinesAfterMultiLineTokens) {
  ExpectSplits({
      {"after a block comment",
       kPg,
       "/* line1\nline2\nline3 */ SELECT 1;\n\nSELECT\n  2;",
       {{"SELECT 1", 3}, {"SELECT\n  2", 5}}},
      {"after a string",
       kMy,
       "INSERT INTO t VALUES ('a\nb\nc');\nSELECT 1;",
       {{"INSERT INTO t VALUES ('a\nb\nc')", 1}, {"SELECT 1", 4}}},
      {"after a dollar quote",
       kPg,
       "DO $$\n\n\n$$;SELECT 1;",
       {{"DO $$\n\n\n$$", 1}, {"SELECT 1", 4}}},
      {"several statements on one line",
       kLite,
       "SELECT 1; SELECT 2;\nSELECT 3;",
       {{"SELECT 1", 1}, {"SELECT 2", 1}, {"SELECT 3", 2}}},
  });
}

TEST(SqlSplit, HandlesCrlfLineEndings) {
  ExpectSplits({
      {"plain statements",
       kPg,
       "CREATE TABLE a (id int);\r\n-- comment\r\nCREATE TABLE b (id int);\r\n",
       {{"CREATE TABLE a (id int)", 1}, {"CREATE TABLE b (id int)", 3}}},
      {"trigger",
       kLite,
       "CREATE TRIGGER t AFTER INSERT ON a\r\nBEGIN\r\n  SELECT 1;\r\nEND;\r\nSELECT 2;\r\n",
       {{"CREATE TRIGGER t AFTER INSERT ON a\r\nBEGIN\r\n  SELECT 1;\r\nEND", 1}, {"SELECT 2", 5}}},
  });
}

TEST(SqlSplit, RejectsUnterminatedConstructs) {
  ExpectErrors({
      {"string", kPg, "SELECT 1;\n\nSELECT 'abc;\nSELECT 2;",
       "unterminated string literal starting on line 3"},
      {"string after a multi-line string", kLite, "SELECT 'a\nb';\n\nSELECT 'c",
       "unterminated string literal starting on line 4"},
      {"quoted identifier", kPg, "SELECT \"abc",
       "unterminated quoted identifier starting on line 1"},
      {"double-quoted string", kMy, "SELECT 1;\nSELECT \"abc",
       "unterminated string literal starting on line 2"},
      {"backslash escapes the closing quote", kMy, R"(SELECT 'C:\';)",
       "unterminated string literal starting on line 1"},
      {"backticks", kMy, "\n\nSELECT `a", "unterminated quoted identifier starting on line 3"},
      {"brackets", kLite, "SELECT [a", "unterminated quoted identifier starting on line 1"},
      {"E string", kPg, "SELECT 1;\r\nSELECT E'it\\'s;\r\n",
       "unterminated string literal starting on line 2"},
      {"block comment", kMy, "SELECT 1;\n/* never closed\nSELECT 2;",
       "unterminated block comment starting on line 2"},
      {"nested block comment", kPg, "/* a /* b */ SELECT 1;",
       "unterminated block comment starting on line 1"},
      {"dollar quote", kPg, "CREATE FUNCTION f() AS $body$\nBEGIN\n$$ LANGUAGE plpgsql;",
       "unterminated dollar-quoted string starting on line 1"},
      {"dollar quote", kPg, "SELECT 1;\r\nDO $$\r\nBEGIN",
       "unterminated dollar-quoted string starting on line 2"},
      {"goose StatementBegin", kLite,
       "SELECT 1;\n-- +goose StatementBegin\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; "
       "END;\n",
       "unterminated goose StatementBegin starting on line 2"},
      {"DELIMITER without a delimiter", kMy, "SELECT 1;\nDELIMITER\nSELECT 2;",
       "DELIMITER without a delimiter on line 2"},
  });
}

// A data backfill can be megabytes; a quadratic splitter would take minutes here.
TEST(SqlSplit, SplitsLargeBackfill) {
  constexpr int kRows = 100000;
  std::string sql;
  for (int i = 0; i < kRows; ++i) {
    sql += "INSERT INTO t VALUES (" + std::to_string(i) + ", 'row; " + std::to_string(i) + "');\n";
  }
  sql += "DO $$ BEGIN\n" + std::string(2'000'000, 'x') + "\nEND $$;\n";
  sql += "SELECT '" + std::string(2'000'000, ';') + "';\n";

  const std::vector<Statement> got = SplitStatements(sql, kPg);
  ASSERT_EQ(got.size(), static_cast<size_t>(kRows + 2));
  EXPECT_EQ(got[kRows - 1].text, "INSERT INTO t VALUES (99999, 'row; 99999')");
  EXPECT_EQ(got[kRows - 1].line, kRows);
  EXPECT_EQ(got[kRows].line, kRows + 1);
  EXPECT_EQ(got[kRows + 1].line, kRows + 4);
  EXPECT_EQ(got[kRows + 1].text.size(), 2'000'000u + 9);
}

}  // namespace
}  // namespace safemig
