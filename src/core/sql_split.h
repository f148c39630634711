// Splits a migration's SQL text into the statements a driver sends one at a time.
//
// Dialect-aware: quotes with doubled-quote escapes, E'' strings and dollar quoting for
// PostgreSQL, backticks and backslash escapes for MySQL, nested block comments where the
// engine nests them, BEGIN ... END trigger bodies (SQLite, MySQL), MySQL DELIMITER lines,
// MySQL CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT bodies sent whole without DELIMITER, and
// goose's -- +goose StatementBegin / StatementEnd blocks. Pure function, thread-safe.
//
// Bodies are recognised from a statement's header only (SQLite CREATE [TEMP] TRIGGER;
// MySQL CREATE ... TRIGGER/PROCEDURE/FUNCTION/EVENT and MariaDB BEGIN NOT ATOMIC;
// PostgreSQL CREATE FUNCTION/PROCEDURE ... BEGIN ATOMIC), so a transaction's BEGIN; is an
// ordinary statement. Inside a MySQL body, IF and REPEAT directly followed by '(' count
// as functions unless they start a statement; an unquoted column named END or BEGIN is
// recognised only after '.', ',' or '('. Where that guess can be wrong, a DELIMITER line
// or a goose StatementBegin block settles it: both are followed exactly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace safemig {

enum class Dialect { kPostgres, kMySql, kSqlite };

const char* DialectName(Dialect dialect);

struct Statement {
  std::string text;  // trimmed, without the terminating ';' (or custom DELIMITER)
  int line = 1;      // 1-based line of `sql` on which the statement's first token starts
};

// Statements consisting only of comments and whitespace are dropped; comments before a
// statement's first token or after its last are not part of its text (MySQL's /*! ... */
// and /*+ ... */ are code, not comments). Text after the last terminator is a statement.
// A goose StatementBegin ... StatementEnd block is one statement, minus a final ';';
// unterminated text before it is a statement of its own. MySQL DELIMITER lines are
// honoured only at the start of a statement and line, and are not statements.
// Throws Error(kConfig) on an unterminated quote, comment, dollar-quote or StatementBegin,
// or a DELIMITER line without a delimiter, naming the line where it began.
std::vector<Statement> SplitStatements(std::string_view sql, Dialect dialect);

}  // namespace safemig
