#include "lint/tokens.h"

#include <cctype>

namespace safemig::lint {

namespace {

bool IsWordStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

bool IsWordChar(char c) {
  return IsWordStart(c) || std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '$';
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

class Scanner {
 public:
  Scanner(std::string_view text, Dialect dialect) : text_(text), dialect_(dialect) {}

  std::vector<Token> Run() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (std::isspace(static_cast<unsigned char>(c)) != 0) {
        ++pos_;
      } else if (StartsWith("--") || (c == '#' && dialect_ == Dialect::kMySql)) {
        SkipTo('\n');
      } else if (StartsWith("/*")) {
        SkipBlockComment();
      } else if (c == '\'') {
        Quoted(TokenKind::kString, '\'', pos_);
      } else if ((c == 'E' || c == 'e') && Peek(1) == '\'' && dialect_ == Dialect::kPostgres) {
        ++pos_;
        Quoted(TokenKind::kString, '\'', pos_ - 1);
      } else if (c == '"') {
        Quoted(dialect_ == Dialect::kMySql ? TokenKind::kString : TokenKind::kQuotedName, '"',
               pos_);
      } else if (c == '`') {
        Quoted(TokenKind::kQuotedName, '`', pos_);
      } else if (c == '[' && dialect_ == Dialect::kSqlite) {
        Quoted(TokenKind::kQuotedName, ']', pos_);
      } else if (c == '$' && dialect_ == Dialect::kPostgres && DollarQuote()) {
        // consumed
      } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
        size_t start = pos_;
        while (pos_ < text_.size() &&
               (std::isalnum(static_cast<unsigned char>(text_[pos_])) != 0 || text_[pos_] == '.')) {
          ++pos_;
        }
        Emit(TokenKind::kNumber, std::string(text_.substr(start, pos_ - start)));
      } else if (IsWordStart(c)) {
        size_t start = pos_;
        while (pos_ < text_.size() && IsWordChar(text_[pos_])) ++pos_;
        Emit(TokenKind::kWord, Upper(text_.substr(start, pos_ - start)));
      } else {
        Emit(TokenKind::kPunct, std::string(1, c));
        ++pos_;
      }
    }
    return std::move(tokens_);
  }

 private:
  char Peek(size_t ahead) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  bool StartsWith(std::string_view prefix) const {
    return text_.substr(pos_, prefix.size()) == prefix;
  }
  void Emit(TokenKind kind, std::string text) {
    tokens_.push_back(Token{kind, std::move(text), token_line_ >= 0 ? token_line_ : line_});
    token_line_ = -1;
  }
  void Advance() {
    if (text_[pos_] == '\n') ++line_;
    ++pos_;
  }
  void SkipTo(char end) {
    while (pos_ < text_.size() && text_[pos_] != end) ++pos_;
  }
  void SkipBlockComment() {
    int depth = 0;
    do {
      if (StartsWith("/*")) {
        ++depth;
        pos_ += 2;
      } else if (StartsWith("*/")) {
        --depth;
        pos_ += 2;
      } else {
        Advance();
      }
      // Only PostgreSQL nests block comments.
      if (dialect_ != Dialect::kPostgres && depth > 1) depth = 1;
    } while (depth > 0 && pos_ < text_.size());
  }
  // The literal or quoted name starting at `start` whose body opens at pos_.
  void Quoted(TokenKind kind, char close, size_t start) {
    token_line_ = line_;
    ++pos_;  // opening quote
    std::string body;
    bool backslash_escapes = dialect_ == Dialect::kMySql && close != '`';
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (backslash_escapes && c == '\\' && pos_ + 1 < text_.size()) {
        body += text_[pos_ + 1];
        Advance();
        Advance();
        continue;
      }
      if (c == close) {
        if (Peek(1) == close && close != ']') {
          body += c;
          pos_ += 2;
          continue;
        }
        ++pos_;
        break;
      }
      body += c;
      Advance();
    }
    Emit(kind, kind == TokenKind::kQuotedName ? body
                                              : std::string(text_.substr(start, pos_ - start)));
  }
  bool DollarQuote() {
    size_t end = pos_ + 1;
    while (end < text_.size() && (IsWordChar(text_[end]) && text_[end] != '$')) ++end;
    if (end >= text_.size() || text_[end] != '$') return false;
    std::string_view tag = text_.substr(pos_, end - pos_ + 1);
    size_t close = text_.find(tag, end + 1);
    size_t stop = close == std::string_view::npos ? text_.size() : close + tag.size();
    token_line_ = line_;
    size_t start = pos_;
    while (pos_ < stop) Advance();
    Emit(TokenKind::kString, std::string(text_.substr(start, stop - start)));
    return true;
  }

  std::string_view text_;
  Dialect dialect_;
  size_t pos_ = 0;
  int line_ = 0;
  int token_line_ = -1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> Tokenize(std::string_view statement, Dialect dialect) {
  return Scanner(statement, dialect).Run();
}

std::string NameOf(const Token& token) {
  if (token.kind == TokenKind::kQuotedName) return token.text;
  std::string out = token.text;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::size_t FindWord(const std::vector<Token>& tokens, std::string_view word, std::size_t from) {
  int depth = 0;
  for (std::size_t i = from; i < tokens.size(); ++i) {
    if (tokens[i].IsPunct('(')) ++depth;
    if (tokens[i].IsPunct(')')) --depth;
    if (depth == 0 && tokens[i].Is(word)) return i;
  }
  return tokens.size();
}

}  // namespace safemig::lint
