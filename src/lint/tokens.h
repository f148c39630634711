// The words of one SQL statement, as the lint rules read them.
//
// Not a parser: rules look for keyword sequences ("ALTER TABLE x ADD COLUMN ... NOT NULL"),
// so the tokenizer only has to keep strings, comments and quoted names from being mistaken
// for keywords. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/sql_split.h"

namespace safemig::lint {

enum class TokenKind {
  kWord,        // keyword or unquoted name; `text` is upper-cased
  kQuotedName,  // "name", `name`, [name]; `text` is the name without quotes
  kString,      // '...', E'...', $$...$$; `text` is the raw literal
  kNumber,
  kPunct,  // one character: ( ) , ; . = and the like
};

struct Token {
  TokenKind kind = TokenKind::kWord;
  std::string text;
  int line = 0;  // 0-based line within the statement

  bool Is(std::string_view word) const { return kind == TokenKind::kWord && text == word; }
  bool IsPunct(char c) const { return kind == TokenKind::kPunct && text.size() == 1 && text[0] == c; }
  bool IsName() const { return kind == TokenKind::kWord || kind == TokenKind::kQuotedName; }
};

// Comments are dropped. Never throws: an unterminated literal runs to the end.
std::vector<Token> Tokenize(std::string_view statement, Dialect dialect);

// A name as written, lower-cased unless quoted, without a schema prefix: what rules compare
// ("Public.Orders" -> "orders", "\"Orders\"" -> "Orders").
std::string NameOf(const Token& token);

// Index of the first token at or after `from` that is the word `word` at parenthesis depth 0
// (relative to `from`), or tokens.size().
std::size_t FindWord(const std::vector<Token>& tokens, std::string_view word, std::size_t from = 0);

}  // namespace safemig::lint
