// One forward scan: a lexer that knows each dialect's quotes and comments produces
// tokens, and a BodyTracker watching those tokens decides whether a ';' ends the
// statement or belongs to a compound body. Each byte is visited a bounded number of
// times, so a multi-megabyte data backfill splits in linear time.
#include "core/sql_split.h"

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace safemig {

const char* DialectName(Dialect dialect) {
  switch (dialect) {
    case Dialect::kPostgres:
      return "postgres";
    case Dialect::kMySql:
      return "mysql";
    case Dialect::kSqlite:
      return "sqlite";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
// Enough for CREATE OR REPLACE DEFINER = `user`@`host` SQL SECURITY INVOKER PROCEDURE.
constexpr int kMaxHeaderTokens = 24;

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
// Bytes of multi-byte UTF-8 characters are letters to every engine's lexer.
bool IsHighByte(char c) { return static_cast<unsigned char>(c) >= 0x80; }
bool IsWordStart(char c) { return IsAsciiLetter(c) || IsDigit(c) || c == '_' || IsHighByte(c); }
// All three engines allow '$' inside an unquoted identifier (a$b), never first.
bool IsWordChar(char c) { return IsWordStart(c) || c == '$'; }
bool IsTagStart(char c) { return IsAsciiLetter(c) || c == '_' || IsHighByte(c); }
bool IsTagChar(char c) { return IsTagStart(c) || IsDigit(c); }
// '\r' counts as blank within a line so CRLF files behave like LF files.
bool IsLineSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
bool IsSpace(char c) { return c == '\n' || IsLineSpace(c); }

char ToLowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLowerAscii(a[i]) != ToLowerAscii(b[i])) return false;
  }
  return true;
}

bool IsOneOf(std::string_view word, std::initializer_list<std::string_view> candidates) {
  for (std::string_view candidate : candidates) {
    if (EqualsIgnoreCase(word, candidate)) return true;
  }
  return false;
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

// The X of a goose annotation line "-- +goose X" (one line, no newline), or "" when the
// line is not one. Goose matches the whole line, so trailing words disqualify it too.
std::string_view GooseAnnotation(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && IsLineSpace(line[i])) ++i;
  if (line.substr(i, 2) != "--") return {};
  i += 2;
  while (i < line.size() && IsLineSpace(line[i])) ++i;
  if (!StartsWithIgnoreCase(line.substr(i), "+goose")) return {};
  i += 6;
  if (i >= line.size() || !IsLineSpace(line[i])) return {};
  while (i < line.size() && IsLineSpace(line[i])) ++i;
  const size_t word_begin = i;
  while (i < line.size() && !IsLineSpace(line[i])) ++i;
  const std::string_view word = line.substr(word_begin, i - word_begin);
  while (i < line.size() && IsLineSpace(line[i])) ++i;
  return i == line.size() ? word : std::string_view();
}

enum class TokenKind {
  kWord,     // keyword or unquoted identifier (or number)
  kPunct,    // a single character of punctuation or operator
  kLiteral,  // string, quoted identifier, dollar-quoted body, MySQL executable comment
};

struct Token {
  TokenKind kind = TokenKind::kPunct;
  std::string_view text;

  [[nodiscard]] bool IsWord(std::string_view word) const {
    return kind == TokenKind::kWord && EqualsIgnoreCase(text, word);
  }
  [[nodiscard]] bool IsPunct(char c) const { return kind == TokenKind::kPunct && text[0] == c; }
};

// Follows the constructs inside which a ';' does not end the statement: the BEGIN ... END
// bodies of SQLite triggers, MySQL stored programs and PostgreSQL BEGIN ATOMIC routines
// (with the CASE, IF, LOOP, ... blocks nested in them), and PostgreSQL parentheses, which
// psql also honours (a multi-action CREATE RULE). Only statements whose header announces
// a body are followed, so a transaction's BEGIN; or a CASE expression in an ordinary
// statement cannot swallow the statements after it.
class BodyTracker {
 public:
  explicit BodyTracker(Dialect dialect) : dialect_(dialect) {}

  void Reset() { *this = BodyTracker(dialect_); }
  void Feed(const Token& token);
  // True when a ';' arriving now belongs to the statement instead of ending it.
  [[nodiscard]] bool Inside() const { return !blocks_.empty() || paren_depth_ > 0; }

 private:
  enum class Header { kUndecided, kPlain, kBody };
  // kIf and kCaseStatement are told apart from the others because after their THEN and
  // ELSE a new statement starts, whereas after a CASE expression's THEN a value does.
  enum class Block { kBegin, kCaseExpression, kCaseStatement, kIf, kLoop };
  // A keyword whose role is known only from the token after it.
  enum class Pending { kNone, kIf, kRepeat, kBegin };

  void FeedHeader(const Token& token);
  void FeedBody(const Token& token);
  void FeedMySqlWord(std::string_view word, bool after_end);
  void ResolvePending(const Token& next);
  [[nodiscard]] bool AtMySqlStatementStart() const;
  void Pop() {
    if (!blocks_.empty()) blocks_.pop_back();
  }

  Dialect dialect_;
  Header header_ = Header::kUndecided;
  int header_tokens_ = 0;
  bool opened_with_begin_ = false;
  std::vector<Block> blocks_;
  int paren_depth_ = 0;
  Pending pending_ = Pending::kNone;
  bool pending_at_statement_start_ = false;
  bool after_end_ = false;
  bool has_prev_ = false;
  Token prev_;
};

void BodyTracker::Feed(const Token& token) {
  if (dialect_ == Dialect::kPostgres && token.kind == TokenKind::kPunct) {
    if (token.text[0] == '(') {
      ++paren_depth_;
    } else if (token.text[0] == ')' && paren_depth_ > 0) {
      --paren_depth_;
    }
  }
  if (header_ == Header::kUndecided) {
    FeedHeader(token);
  } else if (header_ == Header::kBody) {
    FeedBody(token);
  }
  prev_ = token;
  has_prev_ = true;
}

void BodyTracker::FeedHeader(const Token& token) {
  ++header_tokens_;
  const bool mysql = dialect_ == Dialect::kMySql;
  if (header_tokens_ == 1) {
    // ALTER EVENT may carry a new DO BEGIN ... END body.
    if (token.IsWord("CREATE") || (mysql && token.IsWord("ALTER"))) return;
    if (mysql && token.IsWord("BEGIN")) {
      opened_with_begin_ = true;
      return;
    }
    header_ = Header::kPlain;
    return;
  }
  if (opened_with_begin_) {
    // MariaDB's anonymous BEGIN NOT ATOMIC block; BEGIN [WORK] never continues with NOT.
    if (token.IsWord("NOT")) {
      header_ = Header::kBody;
      blocks_.push_back(Block::kBegin);
    } else {
      header_ = Header::kPlain;
    }
    return;
  }
  if (header_tokens_ > kMaxHeaderTokens) {
    header_ = Header::kPlain;
    return;
  }
  if (token.kind != TokenKind::kWord) {
    // MySQL's DEFINER = 'user'@'host' puts quotes and punctuation in the header.
    if (!mysql) header_ = Header::kPlain;
    return;
  }
  const std::string_view word = token.text;
  switch (dialect_) {
    case Dialect::kPostgres:
      if (IsOneOf(word, {"FUNCTION", "PROCEDURE"})) {
        header_ = Header::kBody;
      } else if (!IsOneOf(word, {"OR", "REPLACE"})) {
        header_ = Header::kPlain;
      }
      return;
    case Dialect::kSqlite:
      if (EqualsIgnoreCase(word, "TRIGGER")) {
        header_ = Header::kBody;
      } else if (!IsOneOf(word, {"TEMP", "TEMPORARY"})) {
        header_ = Header::kPlain;
      }
      return;
    case Dialect::kMySql:
      if (IsOneOf(word, {"TRIGGER", "PROCEDURE", "FUNCTION", "EVENT"})) {
        header_ = Header::kBody;
        return;
      }
      if (IsOneOf(word, {"OR", "REPLACE", "DEFINER", "CURRENT_USER", "AGGREGATE", "ALGORITHM",
                         "UNDEFINED", "MERGE", "TEMPTABLE", "SQL", "SECURITY", "INVOKER"})) {
        return;
      }
      // An unquoted user or host of a DEFINER clause (DEFINER = admin@localhost).
      if (has_prev_ && (prev_.IsPunct('=') || prev_.IsPunct('@'))) return;
      header_ = Header::kPlain;
      return;
  }
}

void BodyTracker::FeedBody(const Token& token) {
  if (pending_ != Pending::kNone) ResolvePending(token);
  const bool after_end = after_end_;
  after_end_ = false;
  if (token.kind != TokenKind::kWord) return;
  // Keywords double as column names: NEW.end, (start, end).
  if (has_prev_ && prev_.IsPunct('.')) return;
  const std::string_view word = token.text;
  if (IsOneOf(word, {"BEGIN", "END"}) && has_prev_ && (prev_.IsPunct(',') || prev_.IsPunct('('))) {
    return;
  }
  switch (dialect_) {
    case Dialect::kSqlite:
      if (EqualsIgnoreCase(word, "BEGIN")) {
        blocks_.push_back(Block::kBegin);
      } else if (EqualsIgnoreCase(word, "CASE")) {
        blocks_.push_back(Block::kCaseExpression);
      } else if (EqualsIgnoreCase(word, "END")) {
        Pop();
      }
      return;
    case Dialect::kPostgres:
      // Only BEGIN ATOMIC opens a SQL-standard body; plpgsql bodies are dollar-quoted.
      if (EqualsIgnoreCase(word, "BEGIN")) {
        pending_ = Pending::kBegin;
      } else if (EqualsIgnoreCase(word, "CASE")) {
        blocks_.push_back(Block::kCaseExpression);
      } else if (EqualsIgnoreCase(word, "END")) {
        Pop();
      }
      return;
    case Dialect::kMySql:
      FeedMySqlWord(word, after_end);
      return;
  }
}

void BodyTracker::FeedMySqlWord(std::string_view word, bool after_end) {
  // END IF, END LOOP, ... name the block that END has just closed.
  if (after_end && IsOneOf(word, {"IF", "CASE", "LOOP", "WHILE", "REPEAT", "FOR"})) return;
  const bool at_start = AtMySqlStatementStart();
  if (EqualsIgnoreCase(word, "BEGIN")) {
    blocks_.push_back(Block::kBegin);
  } else if (EqualsIgnoreCase(word, "CASE")) {
    // Both the CASE statement and the CASE expression close with an END.
    blocks_.push_back(at_start ? Block::kCaseStatement : Block::kCaseExpression);
  } else if (IsOneOf(word, {"LOOP", "WHILE"}) || (at_start && EqualsIgnoreCase(word, "FOR"))) {
    // FOR opens MariaDB's FOR ... DO ... END FOR only as a statement; elsewhere it is
    // FOR EACH ROW, FOR UPDATE, HANDLER FOR, ...
    blocks_.push_back(Block::kLoop);
  } else if (IsOneOf(word, {"IF", "REPEAT"})) {
    pending_ = EqualsIgnoreCase(word, "IF") ? Pending::kIf : Pending::kRepeat;
    pending_at_statement_start_ = at_start;
  } else if (EqualsIgnoreCase(word, "END")) {
    Pop();
    after_end_ = true;
  }
}

void BodyTracker::ResolvePending(const Token& next) {
  const Pending pending = pending_;
  pending_ = Pending::kNone;
  switch (pending) {
    case Pending::kNone:
      return;
    case Pending::kBegin:
      if (next.IsWord("ATOMIC")) blocks_.push_back(Block::kBegin);
      return;
    case Pending::kIf:
      // IF(a, b, c) is a function and IF [NOT] EXISTS a DDL clause, but an IF that
      // starts a statement may go on either way: IF EXISTS (SELECT ...) THEN.
      if (pending_at_statement_start_ ||
          !(next.IsPunct('(') || next.IsWord("EXISTS") || next.IsWord("NOT"))) {
        blocks_.push_back(Block::kIf);
      }
      return;
    case Pending::kRepeat:
      // REPEAT('-', 3) is a function.
      if (pending_at_statement_start_ || !next.IsPunct('(')) blocks_.push_back(Block::kLoop);
      return;
  }
}

bool BodyTracker::AtMySqlStatementStart() const {
  if (!has_prev_) return false;
  if (prev_.kind == TokenKind::kPunct) return prev_.IsPunct(';') || prev_.IsPunct(':');
  if (prev_.kind != TokenKind::kWord) return false;
  // ROW ends a trigger header, DO an event header or WHILE condition, and the handler
  // conditions precede a handler's statement.
  if (IsOneOf(prev_.text,
              {"BEGIN", "LOOP", "REPEAT", "DO", "ROW", "SQLEXCEPTION", "SQLWARNING", "FOUND"})) {
    return true;
  }
  if (IsOneOf(prev_.text, {"THEN", "ELSE"})) {
    return !blocks_.empty() &&
           (blocks_.back() == Block::kIf || blocks_.back() == Block::kCaseStatement);
  }
  return false;
}

class Splitter {
 public:
  Splitter(std::string_view sql, Dialect dialect) : sql_(sql), dialect_(dialect), body_(dialect) {}

  std::vector<Statement> Split();

 private:
  [[nodiscard]] bool IsLineCommentStart(size_t pos) const;
  [[nodiscard]] bool IsExecutableComment(size_t pos) const;
  [[nodiscard]] bool AtLineStart(size_t pos) const;
  [[nodiscard]] size_t LineEnd(size_t pos) const;
  [[nodiscard]] bool DelimiterAt(size_t pos) const;
  // End (one past) of the construct opened at `open`, or npos when it is not closed.
  [[nodiscard]] size_t BlockCommentEnd(size_t open) const;
  [[nodiscard]] size_t DollarTagLength(size_t pos) const;

  // The quote character is the one at `open`.
  size_t SkipQuoted(size_t open, bool backslash_escapes, const char* what);
  size_t SkipBlockComment(size_t open);
  size_t SkipDollarQuoted(size_t open, size_t tag_length);
  [[nodiscard]] size_t SkipTrivia(size_t begin, size_t end) const;
  // Each returns true and sets *next when the text at pos was its construct.
  bool TryGooseBlock(size_t pos, size_t* next);
  bool TryDelimiterLine(size_t word_begin, size_t* next);

  void AddToken(size_t begin, size_t end, TokenKind kind);
  void FinishStatement();
  int LineAt(size_t pos);
  [[noreturn]] void Fail(const std::string& what, size_t pos, std::string hint);

  std::string_view sql_;
  Dialect dialect_;
  size_t begin_ = 0;  // after a UTF-8 byte order mark, which editors on Windows add
  std::string_view delimiter_ = ";";
  bool custom_delimiter_ = false;
  BodyTracker body_;
  std::vector<Statement> statements_;
  bool in_statement_ = false;
  size_t statement_begin_ = 0;
  size_t statement_end_ = 0;
  int statement_line_ = 1;
  // LineAt() counts newlines from the previous query, keeping line numbering linear.
  size_t counted_pos_ = 0;
  int counted_line_ = 1;
};

std::vector<Statement> Splitter::Split() {
  const size_t n = sql_.size();
  if (sql_.substr(0, kUtf8Bom.size()) == kUtf8Bom) begin_ = kUtf8Bom.size();
  counted_pos_ = begin_;
  size_t pos = begin_;
  while (pos < n) {
    const char c = sql_[pos];
    // mysql(1) looks for its delimiter before anything else outside quotes and comments.
    if (custom_delimiter_ && DelimiterAt(pos)) {
      FinishStatement();
      pos += delimiter_.size();
      continue;
    }
    if (IsSpace(c)) {
      ++pos;
      continue;
    }
    if (c == ';' && !custom_delimiter_) {
      if (body_.Inside()) {
        AddToken(pos, pos + 1, TokenKind::kPunct);
      } else {
        FinishStatement();
      }
      ++pos;
      continue;
    }
    if (IsLineCommentStart(pos)) {
      if (!TryGooseBlock(pos, &pos)) pos = LineEnd(pos);
      continue;
    }
    if (c == '/' && pos + 1 < n && sql_[pos + 1] == '*') {
      const size_t end = SkipBlockComment(pos);
      // MySQL runs /*! ... */ and reads hints in /*+ ... */: they are code, not comments.
      if (IsExecutableComment(pos)) AddToken(pos, end, TokenKind::kLiteral);
      pos = end;
      continue;
    }
    const bool mysql = dialect_ == Dialect::kMySql;
    size_t literal_end = 0;
    if (c == '\'') {
      literal_end = SkipQuoted(pos, mysql, "string literal");
    } else if (c == '"') {
      literal_end = SkipQuoted(pos, mysql, mysql ? "string literal" : "quoted identifier");
    } else if (c == '`' && dialect_ != Dialect::kPostgres) {
      literal_end = SkipQuoted(pos, false, "quoted identifier");
    } else if (c == '[' && dialect_ == Dialect::kSqlite) {
      // SQLite keeps [name] quoting for compatibility with other engines; no escapes.
      const size_t close = sql_.find(']', pos + 1);
      if (close == std::string_view::npos) {
        Fail("unterminated quoted identifier", pos, "close the [identifier] with ]");
      }
      literal_end = close + 1;
    } else if (c == '$' && dialect_ == Dialect::kPostgres) {
      const size_t tag_length = DollarTagLength(pos);
      if (tag_length > 0) literal_end = SkipDollarQuoted(pos, tag_length);
    } else if ((c == 'E' || c == 'e') && dialect_ == Dialect::kPostgres && pos + 1 < n &&
               sql_[pos + 1] == '\'' && (pos == begin_ || !IsWordChar(sql_[pos - 1]))) {
      literal_end = SkipQuoted(pos + 1, true, "string literal");
    }
    if (literal_end > 0) {
      AddToken(pos, literal_end, TokenKind::kLiteral);
      pos = literal_end;
      continue;
    }
    if (IsWordStart(c)) {
      size_t end = pos + 1;
      while (end < n && IsWordChar(sql_[end]) && !(custom_delimiter_ && DelimiterAt(end))) ++end;
      if (mysql && !in_statement_ && EqualsIgnoreCase(sql_.substr(pos, end - pos), "DELIMITER") &&
          TryDelimiterLine(pos, &pos)) {
        continue;
      }
      AddToken(pos, end, TokenKind::kWord);
      pos = end;
      continue;
    }
    AddToken(pos, pos + 1, TokenKind::kPunct);
    ++pos;
  }
  FinishStatement();
  return std::move(statements_);
}

bool Splitter::IsLineCommentStart(size_t pos) const {
  const char c = sql_[pos];
  if (c == '#') return dialect_ == Dialect::kMySql;
  if (c != '-' || pos + 1 >= sql_.size() || sql_[pos + 1] != '-') return false;
  if (dialect_ != Dialect::kMySql) return true;
  // MySQL reads 5--1 as five minus minus one; only "-- " and "--" before a control
  // character (newline, tab) start a comment.
  return pos + 2 >= sql_.size() || static_cast<unsigned char>(sql_[pos + 2]) <= ' ';
}

bool Splitter::IsExecutableComment(size_t pos) const {
  if (dialect_ != Dialect::kMySql || pos + 2 >= sql_.size()) return false;
  const char marker = sql_[pos + 2];
  // /*M! ... */ is MariaDB's variant.
  return marker == '!' || marker == '+' ||
         (marker == 'M' && pos + 3 < sql_.size() && sql_[pos + 3] == '!');
}

bool Splitter::AtLineStart(size_t pos) const {
  while (pos > begin_ && IsLineSpace(sql_[pos - 1])) --pos;
  return pos == begin_ || sql_[pos - 1] == '\n';
}

size_t Splitter::LineEnd(size_t pos) const {
  const size_t newline = sql_.find('\n', pos);
  return newline == std::string_view::npos ? sql_.size() : newline;
}

bool Splitter::DelimiterAt(size_t pos) const {
  return sql_.compare(pos, delimiter_.size(), delimiter_) == 0;
}

size_t Splitter::BlockCommentEnd(size_t open) const {
  if (dialect_ != Dialect::kPostgres) {
    const size_t close = sql_.find("*/", open + 2);
    return close == std::string_view::npos ? close : close + 2;
  }
  // PostgreSQL nests block comments, so commenting out code that has comments works.
  int depth = 1;
  size_t i = open + 2;
  while (i + 1 < sql_.size()) {
    if (sql_[i] == '/' && sql_[i + 1] == '*') {
      ++depth;
      i += 2;
    } else if (sql_[i] == '*' && sql_[i + 1] == '/') {
      i += 2;
      if (--depth == 0) return i;
    } else {
      ++i;
    }
  }
  return std::string_view::npos;
}

size_t Splitter::DollarTagLength(size_t pos) const {
  // $1 is a parameter, and in a$b$ the '$' belongs to the identifier.
  if (pos > begin_ && IsWordChar(sql_[pos - 1])) return 0;
  size_t i = pos + 1;
  if (i < sql_.size() && IsTagStart(sql_[i])) {
    while (i < sql_.size() && IsTagChar(sql_[i])) ++i;
  }
  if (i < sql_.size() && sql_[i] == '$') return i + 1 - pos;
  return 0;
}

size_t Splitter::SkipQuoted(size_t open, bool backslash_escapes, const char* what) {
  const char quote = sql_[open];
  size_t i = open + 1;
  while (i < sql_.size()) {
    const char c = sql_[i];
    if (c == '\\' && backslash_escapes) {
      i += 2;
    } else if (c == quote) {
      if (i + 1 < sql_.size() && sql_[i + 1] == quote) {
        i += 2;
      } else {
        return i + 1;
      }
    } else {
      ++i;
    }
  }
  std::string hint = std::string("close it with ") + quote + "; write a " + quote +
                     " inside it as " + quote + quote;
  if (backslash_escapes) hint += ", and check for a backslash escaping the closing quote";
  Fail(std::string("unterminated ") + what, open, std::move(hint));
}

size_t Splitter::SkipBlockComment(size_t open) {
  const size_t end = BlockCommentEnd(open);
  if (end == std::string_view::npos) {
    Fail("unterminated block comment", open,
         dialect_ == Dialect::kPostgres
             ? "close it with */; PostgreSQL nests comments, so each /* needs its own */"
             : "close it with */");
  }
  return end;
}

size_t Splitter::SkipDollarQuoted(size_t open, size_t tag_length) {
  const std::string_view tag = sql_.substr(open, tag_length);
  const size_t close = sql_.find(tag, open + tag_length);
  if (close == std::string_view::npos) {
    Fail("unterminated dollar-quoted string", open,
         "close it with the tag that opened it: " + std::string(tag));
  }
  return close + tag_length;
}

size_t Splitter::SkipTrivia(size_t begin, size_t end) const {
  size_t pos = begin;
  while (pos < end) {
    if (IsSpace(sql_[pos])) {
      ++pos;
    } else if (IsLineCommentStart(pos)) {
      pos = LineEnd(pos);
    } else if (sql_[pos] == '/' && pos + 1 < end && sql_[pos + 1] == '*' &&
               !IsExecutableComment(pos)) {
      const size_t comment_end = BlockCommentEnd(pos);
      if (comment_end == std::string_view::npos || comment_end > end) return pos;
      pos = comment_end;
    } else {
      return pos;
    }
  }
  return end;
}

bool Splitter::TryGooseBlock(size_t pos, size_t* next) {
  const size_t begin_line_end = LineEnd(pos);
  if (!EqualsIgnoreCase(GooseAnnotation(sql_.substr(pos, begin_line_end - pos)),
                        "StatementBegin") ||
      !AtLineStart(pos)) {
    return false;
  }
  // Text before the block without a ';' is a statement of its own, not part of the block.
  FinishStatement();
  const size_t body_begin = std::min(begin_line_end + 1, sql_.size());
  for (size_t line = body_begin; line < sql_.size();) {
    const size_t line_end = LineEnd(line);
    if (EqualsIgnoreCase(GooseAnnotation(sql_.substr(line, line_end - line)), "StatementEnd")) {
      const size_t first = SkipTrivia(body_begin, line);
      size_t last = line;
      while (last > first && IsSpace(sql_[last - 1])) --last;
      // Goose users end the block's statement with ';' out of habit; engines reject it
      // in a single-statement call, so it goes.
      if (last > first && sql_[last - 1] == ';') {
        --last;
        while (last > first && IsSpace(sql_[last - 1])) --last;
      }
      if (last > first) {
        statements_.push_back({std::string(sql_.substr(first, last - first)), LineAt(first)});
      }
      *next = line_end;
      return true;
    }
    line = line_end + 1;
  }
  Fail("unterminated goose StatementBegin", pos,
       "add a '-- +goose StatementEnd' line after the statement");
}

bool Splitter::TryDelimiterLine(size_t word_begin, size_t* next) {
  const size_t word_end = word_begin + std::string_view("DELIMITER").size();
  if (!AtLineStart(word_begin)) return false;
  // DELIMITER(...) or DELIMITER.x would be SQL, not the client command.
  if (word_end < sql_.size() && !IsSpace(sql_[word_end])) return false;
  const size_t line_end = LineEnd(word_end);
  size_t i = word_end;
  while (i < line_end && IsLineSpace(sql_[i])) ++i;
  const size_t delimiter_begin = i;
  while (i < line_end && !IsLineSpace(sql_[i])) ++i;
  if (i == delimiter_begin) {
    throw Error(Category::kConfig,
                "DELIMITER without a delimiter on line " + std::to_string(LineAt(word_begin)),
                "write the new delimiter after the command, e.g. DELIMITER //");
  }
  delimiter_ = sql_.substr(delimiter_begin, i - delimiter_begin);
  custom_delimiter_ = delimiter_ != ";";
  *next = line_end;
  return true;
}

void Splitter::AddToken(size_t begin, size_t end, TokenKind kind) {
  if (!in_statement_) {
    in_statement_ = true;
    statement_begin_ = begin;
    statement_line_ = LineAt(begin);
  }
  // Ending at the last token drops comments between it and the ';'.
  statement_end_ = end;
  body_.Feed({kind, sql_.substr(begin, end - begin)});
}

void Splitter::FinishStatement() {
  if (in_statement_) {
    statements_.push_back(
        {std::string(sql_.substr(statement_begin_, statement_end_ - statement_begin_)),
         statement_line_});
  }
  in_statement_ = false;
  body_.Reset();
}

int Splitter::LineAt(size_t pos) {
  if (pos >= counted_pos_) {
    for (size_t i = counted_pos_; i < pos; ++i) counted_line_ += sql_[i] == '\n' ? 1 : 0;
  } else {
    for (size_t i = pos; i < counted_pos_; ++i) counted_line_ -= sql_[i] == '\n' ? 1 : 0;
  }
  counted_pos_ = pos;
  return counted_line_;
}

void Splitter::Fail(const std::string& what, size_t pos, std::string hint) {
  throw Error(Category::kConfig, what + " starting on line " + std::to_string(LineAt(pos)),
              std::move(hint));
}

}  // namespace

std::vector<Statement> SplitStatements(std::string_view sql, Dialect dialect) {
  return Splitter(sql, dialect).Split();
}

}  // namespace safemig
