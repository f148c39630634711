#include "config/url.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>

#include "core/error.h"

namespace safemig {
namespace {

constexpr const char* kAcceptedSchemes = "postgres, postgresql, mysql, mariadb, sqlite";
constexpr const char* kMask = "***";
constexpr std::string_view kHex = "0123456789ABCDEF";

bool IsAlpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool IsHexDigit(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  return std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsSchemeChar(char c) { return IsAlnum(c) || c == '+' || c == '-' || c == '.'; }

// Keys whose values are credentials. Matching is deliberately generous: masking a
// harmless value costs a little debugging comfort, missing a secret costs a leak.
bool IsSecretKey(std::string_view key) {
  std::string k = Lower(key);
  while (!k.empty() && k.front() == '-') k.erase(0, 1);  // --password=...
  if (k == "pass" || k == "pw" || k == "auth") return true;
  for (const char* part : {"password", "passwd", "pwd", "secret", "token", "apikey", "api_key",
                           "api-key", "access_key", "accesskey", "private_key", "credential"}) {
    if (k.find(part) != std::string::npos) return true;
  }
  return false;
}

Error UrlError(std::string message, std::string hint = {}) {
  return {Category::kConfig, std::move(message), std::move(hint)};
}

// `what` names the component ("password", "database name") instead of quoting it,
// because the component may be the password itself.
std::string PercentDecode(std::string_view text, std::string_view scheme, std::string_view what) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size() || !IsHexDigit(text[i + 1]) || !IsHexDigit(text[i + 2])) {
      throw UrlError(
          std::string(scheme) + " URL has a malformed percent-escape in the " + std::string(what),
          "a literal % must be written %25; escapes are % and two hex digits");
    }
    out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
    i += 2;
  }
  return out;
}

// Percent-encodes everything except RFC 3986 unreserved characters and `keep`.
std::string PercentEncode(std::string_view text, std::string_view keep) {
  std::string out;
  for (char c : text) {
    if (IsAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        keep.find(c) != std::string_view::npos) {
      out += c;
    } else {
      auto byte = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
  return out;
}

// A sqlite path is a file path, so only the characters that would change how the URL
// splits (or that cannot be printed) are escaped; "/" and ":" stay readable.
std::string EncodeSqlitePath(std::string_view path) {
  std::string out;
  for (char c : path) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '%' || c == '?' || c == '#' || byte <= 0x20 || byte == 0x7F) {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    } else {
      out += c;
    }
  }
  return out;
}

std::string RedactedQuery(const std::map<std::string, std::string>& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    out += out.empty() ? "?" : "&";
    out += PercentEncode(key, "");
    out += '=';
    out += IsSecretKey(key) ? kMask : PercentEncode(value, "/:@,");
  }
  return out;
}

void ParseQuery(std::string_view query, std::string_view scheme,
                std::map<std::string, std::string>* params) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2" and a trailing "&" are harmless
    size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq), scheme, "name of a URL parameter");
    if (key.empty()) {
      throw UrlError(std::string(scheme) + " URL has a parameter without a name",
                     "write parameters as ?name=value&name2=value2");
    }
    std::string value;
    if (eq != std::string_view::npos) {
      value = PercentDecode(pair.substr(eq + 1), scheme, "value of URL parameter " + key);
    }
    if (!params->emplace(key, std::move(value)).second) {
      throw UrlError(std::string(scheme) + " URL sets parameter " + key + " twice",
                     "keep one " + key + "=... in the URL");
    }
  }
}

bool IsHostPortChar(char c) {
  return IsAlnum(c) || std::string_view(".-_[]:%").find(c) != std::string_view::npos;
}

// Whether some '@' in `text` is followed by something shaped like "host[:port]/", the
// sign of a userinfo that a raw character in the password pushed out of the authority.
// A '@' in a query value ("application_name=me@laptop") is not followed by a path.
bool HasHostThenPathAfterAt(std::string_view text) {
  for (size_t at = text.find('@'); at != std::string_view::npos; at = text.find('@', at + 1)) {
    size_t end = at + 1;
    while (end < text.size() && IsHostPortChar(text[end])) ++end;
    if (end > at + 1 && end < text.size() && text[end] == '/') return true;
  }
  return false;
}

// Splits "host", "host:port", "[v6]" or "[v6]:port". Returns an empty string on success,
// else the reason (which never quotes the input: it may be a mangled password).
std::string SplitHostPort(std::string_view hostport, std::string* host, std::optional<int>* port) {
  std::string_view port_text;
  bool has_port = false;
  if (!hostport.empty() && hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return "an IPv6 address without its closing ']'";
    std::string_view v6 = hostport.substr(1, close - 1);
    if (v6.empty()) return "an empty IPv6 address";
    for (char c : v6) {
      if (!IsHexDigit(c) && c != ':' && c != '.') return "a malformed IPv6 address";
    }
    *host = std::string(v6);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "text after the IPv6 address's ']' that is not :port";
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    size_t colon = hostport.find(':');
    if (colon != std::string_view::npos &&
        hostport.find(':', colon + 1) != std::string_view::npos) {
      return "several ':' in the host (IPv6 addresses go in brackets: [::1]:5432)";
    }
    *host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = hostport.substr(colon + 1);
    }
  }
  if (has_port) {
    if (port_text.empty() || port_text.size() > 5) return "a port that is not 1-65535";
    int value = 0;
    for (char c : port_text) {
      if (!IsDigit(c)) return "a port that is not 1-65535";
      value = value * 10 + (c - '0');
    }
    if (value < 1 || value > 65535) return "a port that is not 1-65535";
    *port = value;
  }
  return {};
}

DatabaseUrl ParseSqlite(DatabaseUrl url, std::string_view rest, std::string_view original) {
  // "sqlite://data/app.db" names a relative file, as most tools read it; the third slash
  // of "sqlite:///abs" is then the root of an absolute path.
  if (rest.substr(0, 2) == "//") rest.remove_prefix(2);
  size_t question = rest.find('?');
  std::string_view path = rest.substr(0, question);
  if (question != std::string_view::npos) {
    ParseQuery(rest.substr(question + 1), "sqlite", &url.params);
  }
  url.path = PercentDecode(path, "sqlite", "file path");
  if (url.path.empty()) {
    throw UrlError("sqlite URL has no file path: " + RedactSecrets(original),
                   "use sqlite:path/to/app.db, sqlite:///absolute/path.db or sqlite::memory:");
  }
  return url;
}

DatabaseUrl ParseServer(DatabaseUrl url, std::string_view rest, std::string_view original) {
  const std::string label = EngineName(url.engine);
  const std::string example = label + "://user:password@host:port/database";
  if (rest.substr(0, 2) != "//") {
    // Not quoted: without "//" the text is no URL that RedactSecrets() can recognise.
    throw UrlError(url.scheme + " URL must start with " + url.scheme + "://", "use " + example);
  }
  rest.remove_prefix(2);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  size_t at = authority.rfind('@');

  std::string host;
  std::optional<int> port;
  std::string_view hostport = at == std::string_view::npos ? authority : authority.substr(at + 1);
  std::string host_problem = SplitHostPort(hostport, &host, &port);

  // An '@' after the authority, with an authority that makes no sense, a path that holds
  // the '@', an '@' in the query before any '=' (where a value could hold it) or one
  // followed by "host/", means a raw '/', '?' or '#' in the password cut the URL short.
  // Say so instead of showing whatever fragment of the password ended up as host,
  // database or parameter.
  if (tail.find('@') != std::string_view::npos) {
    std::string_view path = tail.substr(0, tail.find_first_of("?#"));
    size_t first_at = tail.find('@');
    size_t first_equals = tail.find('=');
    if (!host_problem.empty() || path.find('@') != std::string_view::npos ||
        first_equals == std::string_view::npos || first_at < first_equals ||
        HasHostThenPathAfterAt(tail)) {
      throw UrlError(url.scheme + " URL: the password seems to contain a raw '/', '?' or '#'",
                     "percent-encode them in the password: / as %2F, ? as %3F, # as %23");
    }
  }
  if (hostport.find(',') != std::string_view::npos) {
    throw UrlError(url.scheme + " URL names several hosts, which safemig does not support: " +
                       RedactSecrets(original),
                   "name the primary server only");
  }
  if (!host_problem.empty()) {
    throw UrlError(url.scheme + " URL has " + host_problem + ": " + RedactSecrets(original),
                   "use " + example);
  }
  if (tail.find('#') != std::string_view::npos) {
    throw UrlError(url.scheme + " URL has a #fragment, which means nothing to a database: " +
                       RedactSecrets(original),
                   "remove the #... part, or percent-encode a '#' in the password as %23");
  }

  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    size_t colon = userinfo.find(':');
    url.user = PercentDecode(userinfo.substr(0, colon), url.scheme, "user name");
    if (colon != std::string_view::npos) {
      url.password = PercentDecode(userinfo.substr(colon + 1), url.scheme, "password");
    }
  }
  // Percent-encoded hosts carry libpq's unix-socket directories: %2Fvar%2Frun%2Fpostgresql.
  url.host = PercentDecode(host, url.scheme, "host");
  url.port = port;

  size_t question = tail.find('?');
  std::string_view path = tail.substr(0, question);
  if (question != std::string_view::npos) {
    ParseQuery(tail.substr(question + 1), url.scheme, &url.params);
  }
  if (!path.empty()) path.remove_prefix(1);  // the '/' that ends the authority
  if (path.find('/') != std::string_view::npos) {
    throw UrlError(
        url.scheme + " URL path must be a single database name: " + RedactSecrets(original),
        "use " + example + " (percent-encode a '/' in a name as %2F)");
  }
  url.database = PercentDecode(path, url.scheme, "database name");
  if (url.database.empty()) {
    // Quoted as written (minus secrets) so that the user recognises it.
    throw UrlError(label + " URL has no database name: " + RedactSecrets(original),
                   "add the database after the host: " + example);
  }
  return url;
}

// Masks the password in every "scheme://user:password@" of `text`.
std::string MaskUrlPasswords(std::string_view text) {
  std::string out;
  size_t copied = 0;
  size_t search = 0;
  while (true) {
    size_t sep = text.find("://", search);
    if (sep == std::string_view::npos) break;
    size_t scheme_start = sep;
    while (scheme_start > 0 && IsSchemeChar(text[scheme_start - 1])) --scheme_start;
    search = sep + 3;
    if (scheme_start == sep) continue;

    // A URL inside quotes ends at the closing quote, so a password may hold spaces there;
    // otherwise a URL ends at whitespace. Line ends always end it.
    char quote = 0;
    if (scheme_start > 0 && (text[scheme_start - 1] == '"' || text[scheme_start - 1] == '\'')) {
      quote = text[scheme_start - 1];
    }
    const size_t start = sep + 3;
    size_t end = start;
    while (end < text.size()) {
      char c = text[end];
      if (c == '\n' || c == '\r') break;
      if (quote != 0) {
        if (c == '\\') {
          end = std::min(end + 2, text.size());
          continue;
        }
        if (c == quote) break;
      } else if (IsSpace(c)) {
        break;
      }
      ++end;
    }
    // The userinfo ends at the last '@' of the URL: passwords may hold '@', ':', '/', '?'
    // when people do not percent-encode them. If a query value holds an '@', more than
    // the password is masked, which is the safe way to be wrong.
    size_t at = std::string_view::npos;
    for (size_t i = end; i > start; --i) {
      if (text[i - 1] == '@') {
        at = i - 1;
        break;
      }
    }
    if (at == std::string_view::npos) continue;
    size_t colon = text.find(':', start);
    if (colon == std::string_view::npos || colon >= at || colon + 1 == at) {
      search = at + 1;  // a user without a password, or an empty password
      continue;
    }
    out.append(text.substr(copied, colon + 1 - copied));
    out += kMask;
    copied = at;
    search = at + 1;
  }
  out.append(text.substr(copied));
  return out;
}

bool IsKeyChar(char c) { return IsAlnum(c) || c == '_' || c == '.' || c == '-'; }

// Masks the values of secret-looking keys: key=value, key = 'quoted value' (libpq),
// ?key=value&... (URL queries) and "key": "value" (JSON).
std::string MaskKeyValues(std::string_view text) {
  std::string out;
  size_t copied = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsKeyChar(text[i]) || (i > 0 && IsKeyChar(text[i - 1]))) {
      ++i;
      continue;
    }
    size_t key_end = i;
    while (key_end < text.size() && IsKeyChar(text[key_end])) ++key_end;
    std::string_view key = text.substr(i, key_end - i);
    const char before = i > 0 ? text[i - 1] : '\0';
    const bool json = before == '"' && key_end < text.size() && text[key_end] == '"';
    const bool in_query = before == '?' || before == '&';
    size_t j = json ? key_end + 1 : key_end;
    while (j < text.size() && (text[j] == ' ' || text[j] == '\t')) ++j;
    const char assign = json ? ':' : '=';
    if (j >= text.size() || text[j] != assign || !IsSecretKey(key)) {
      i = key_end;
      continue;
    }
    size_t value_start = j + 1;
    // libpq (and prose) allow spaces around '='; a query string does not.
    if (!in_query) {
      while (value_start < text.size() && (text[value_start] == ' ' || text[value_start] == '\t')) {
        ++value_start;
      }
    }
    size_t value_end = value_start;
    if (value_start < text.size() && (text[value_start] == '\'' || text[value_start] == '"')) {
      const char quote = text[value_start];
      ++value_start;
      value_end = value_start;
      while (value_end < text.size() && text[value_end] != quote && text[value_end] != '\n') {
        value_end += text[value_end] == '\\' ? 2 : 1;
      }
      value_end = std::min(value_end, text.size());
    } else {
      while (value_end < text.size()) {
        char c = text[value_end];
        if (IsSpace(c)) break;
        if (in_query && (c == '&' || c == '#')) break;
        if (json && (c == ',' || c == '}' || c == ']')) break;
        ++value_end;
      }
    }
    if (value_end > value_start) {
      out.append(text.substr(copied, value_start - copied));
      out += kMask;
      copied = value_end;
    }
    i = std::max(value_end, key_end);
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace

const char* EngineName(Engine engine) {
  switch (engine) {
    case Engine::kPostgres:
      return "postgres";
    case Engine::kMySql:
      return "mysql";
    case Engine::kSqlite:
      return "sqlite";
  }
  return "unknown";
}

std::string DatabaseUrl::Redacted() const {
  std::string out = scheme.empty() ? EngineName(engine) : scheme;
  if (engine == Engine::kSqlite) {
    out += ':';
    // "sqlite:///abs" keeps the absolute path recognisable; relative paths and
    // ":memory:" read best without slashes.
    if (!path.empty() && path.front() == '/') out += "//";
    out += EncodeSqlitePath(path);
    return out + RedactedQuery(params);
  }
  out += "://";
  if (!user.empty() || password) {
    out += PercentEncode(user, "");
    if (password) out += std::string(":") + kMask;
    out += '@';
  }
  out += host.find(':') != std::string::npos ? "[" + host + "]" : PercentEncode(host, "");
  if (port) out += ":" + std::to_string(*port);
  out += "/" + PercentEncode(database, "");
  return out + RedactedQuery(params);
}

DatabaseUrl ParseDatabaseUrl(std::string_view url) {
  if (url.empty()) {
    throw UrlError("the database URL is empty",
                   "use postgres://user@host/db, mysql://user@host/db or sqlite:path.db");
  }
  size_t colon = url.find(':');
  bool valid_scheme = colon != std::string_view::npos && colon > 0 && IsAlpha(url[0]);
  for (size_t i = 0; valid_scheme && i < colon; ++i) valid_scheme = IsSchemeChar(url[i]);
  if (!valid_scheme) {
    // Not quoted: text that is no URL may hold a password in a form RedactSecrets()
    // does not recognise.
    bool conninfo = url.find('=') != std::string_view::npos;
    throw UrlError(
        conninfo ? "not a database URL (it looks like a key=value connection string)"
                 : "not a database URL",
        std::string("write scheme://user@host/database; accepted schemes: ") + kAcceptedSchemes);
  }
  DatabaseUrl result;
  result.scheme = Lower(url.substr(0, colon));
  if (result.scheme == "postgres" || result.scheme == "postgresql") {
    result.engine = Engine::kPostgres;
  } else if (result.scheme == "mysql" || result.scheme == "mariadb") {
    result.engine = Engine::kMySql;
  } else if (result.scheme == "sqlite") {
    result.engine = Engine::kSqlite;
  } else {
    throw UrlError("unknown database URL scheme \"" + std::string(url.substr(0, colon)) +
                       "\"; accepted: " + kAcceptedSchemes,
                   "use postgres://..., mysql://... (also MariaDB) or sqlite:path.db");
  }
  std::string_view rest = url.substr(colon + 1);
  if (result.engine == Engine::kSqlite) return ParseSqlite(std::move(result), rest, url);
  return ParseServer(std::move(result), rest, url);
}

std::string RedactSecrets(std::string_view text) { return MaskKeyValues(MaskUrlPasswords(text)); }

}  // namespace safemig
