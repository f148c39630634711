#include "config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "config/url.h"
#include "core/error.h"

namespace safemig {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Keys of an environment table that people also try at the top level.
constexpr std::array<std::string_view, 10> kEnvironmentKeys = {
    "url",    "backups",      "protected",    "lock_timeout",  "statement_timeout",
    "window", "promote_from", "max_duration", "rehearsal_url", "rehearsal_max_age"};

Error ConfigError(std::string message, std::string hint = {}) {
  return {Category::kConfig, std::move(message), std::move(hint)};
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }

// Environment names become directory names (.safemig/backups/<name>), so they must not be
// able to climb out of it.
bool IsValidEnvironmentName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return IsNameChar(c) || c == '-'; });
}

std::string UnsetMessage(std::string_view where, std::string_view name) {
  return std::string(where) + " uses ${" + std::string(name) + "}, which is not set";
}

std::string UnsetHint(std::string_view name) {
  return "export " + std::string(name) + " before running safemig (write $${ for a literal ${)";
}

// The expansion, or nullopt with `*unset` naming the first unset variable; callers decide
// whether that is fatal. Malformed references always throw. Messages quote names only,
// never the text around them: it is often a URL with a password.
std::optional<std::string> Expand(std::string_view text, std::string_view where,
                                  std::string* unset) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$') {
      out += text[i++];
      continue;
    }
    // In a run of '$' before '{', "$$" stands for one literal '$' and an odd '$' left
    // over starts a reference: "$${X}" is the text "${X}", "$$${X}" is "$" and then X.
    // A run not followed by '{' is copied as it is, so "pa$$word" stays unchanged.
    size_t run_end = text.find_first_not_of('$', i);
    if (run_end == std::string_view::npos || text[run_end] != '{') {
      run_end = run_end == std::string_view::npos ? text.size() : run_end;
      out.append(text.substr(i, run_end - i));
      i = run_end;
      continue;
    }
    const size_t dollars = run_end - i;
    out.append(dollars / 2, '$');
    i = run_end;
    if (dollars % 2 == 0) {
      out += '{';
      ++i;
      continue;
    }
    i -= 1;  // at the '$' of "${"
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      throw ConfigError(std::string(where) + " has a ${ without its closing }",
                        "write ${NAME} to use a variable, or $${ for a literal ${");
    }
    std::string_view name = text.substr(i + 2, close - i - 2);
    if (name.empty() || !IsNameStart(name.front()) ||
        !std::all_of(name.begin(), name.end(), IsNameChar)) {
      throw ConfigError(std::string(where) + " has a ${...} that is not a variable name",
                        "names are letters, digits and _; write $${ for a literal ${");
    }
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) {
      *unset = std::string(name);
      return std::nullopt;
    }
    out += value;  // not rescanned: a value containing "${" stays as it is
    i = close + 1;
  }
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

template <typename Map>
std::string JoinKeys(const Map& map) {
  std::string out;
  for (const auto& entry : map) {
    if (!out.empty()) out += ", ";
    out += entry.first;
  }
  return out;
}

// An unset variable in an environment that Resolve() did not choose must not stop the
// run: CI jobs for `dev` rarely hold the production password. Such errors wait here
// until the environment they belong to is chosen.
struct DeferredError {
  std::string environment;
  std::string key;
  uint32_t line = 0;
  Error error;
};

class Loader {
 public:
  // `deferred` null: every unset variable is an error at once (LoadConfig).
  Loader(const fs::path& file, std::vector<DeferredError>* deferred)
      : file_(file), label_(file.string()), dir_(file.parent_path()), deferred_(deferred) {}

  Config Load() {
    toml::table root = Parse(Read());
    Config config;
    config.file = file_;
    config.migrations = ResolvePath("migrations");
    const toml::node* environments = nullptr;
    const toml::node* default_environment = nullptr;
    for (auto&& [key, node] : root) {
      const std::string name(key.str());
      if (name == "migrations") {
        config.migrations = ResolvePath(NonEmpty(node, name, ExpandStrict(node, name)));
      } else if (name == "default_environment") {
        config.default_environment = ExpandStrict(node, name);
        default_environment = &node;
      } else if (name == "environments") {
        environments = &node;
      } else if (name == "lint") {
        config.lint_ignore = LoadLintIgnores(node);
      } else {
        CheckUnknownTopLevel(node, name);
      }
    }
    if (environments != nullptr) {
      const toml::table* table = environments->as_table();
      if (table == nullptr) {
        throw ConfigError(Where(*environments, "environments") + " must be a table",
                          "write one [environments.NAME] section per environment");
      }
      for (auto&& [key, node] : *table) {
        std::string name(key.str());
        config.environments.emplace(name, LoadEnvironment(name, node));
      }
    }
    for (const auto& [name, env] : config.environments) {
      if (!env.promote_from) continue;
      if (*env.promote_from == name || config.environments.count(*env.promote_from) == 0) {
        throw ConfigError(label_ + ": environments." + name + ".promote_from names \"" +
                              *env.promote_from + "\", which is not another environment (" +
                              JoinKeys(config.environments) + ")",
                          "name the environment whose database must already hold the "
                          "migrations, e.g. promote_from = \"staging\"");
      }
    }
    if (default_environment != nullptr &&
        config.environments.count(*config.default_environment) == 0) {
      throw ConfigError(
          Where(*default_environment, "default_environment") + " names \"" +
              *config.default_environment + "\", which is not an environment" +
              (config.environments.empty() ? "" : " (" + JoinKeys(config.environments) + ")"),
          "add [environments." + *config.default_environment + "] or fix the name");
    }
    return config;
  }

 private:
  std::string Read() const {
    std::error_code ec;
    if (fs::is_directory(file_, ec)) {
      throw ConfigError(label_ + " is a directory, not a config file",
                        "pass the path of safemig.toml itself");
    }
    std::ifstream in(file_, std::ios::binary);
    if (!in) {
      throw ConfigError("cannot read " + label_ + ": " + std::strerror(errno),
                        "check the path and its permissions");
    }
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
  }

  toml::table Parse(const std::string& content) const {
    try {
      return toml::parse(content, label_);
    } catch (const toml::parse_error& e) {
      const toml::source_position& at = e.source().begin;
      // toml++ may quote a fragment of the offending line, which can be a password.
      throw ConfigError(label_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                            ": " + RedactSecrets(e.description()),
                        "fix the TOML syntax (https://toml.io)");
    }
  }

  // "safemig.toml:7: environments.prod.protected"
  std::string Where(const toml::node& node, const std::string& key) const {
    uint32_t line = node.source().begin.line;
    return label_ + ":" + (line > 0 ? std::to_string(line) + ": " : " ") + key;
  }

  fs::path ResolvePath(const std::string& value) const { return (dir_ / value).lexically_normal(); }

  const std::string& RequireString(const toml::node& node, const std::string& key) const {
    const toml::value<std::string>* value = node.as_string();
    if (value == nullptr) throw ConfigError(Where(node, key) + " must be a string");
    return value->get();
  }

  std::string ExpandStrict(const toml::node& node, const std::string& key) const {
    std::string unset;
    std::string where = Where(node, key);
    std::optional<std::string> expanded = Expand(RequireString(node, key), where, &unset);
    if (!expanded) throw ConfigError(UnsetMessage(where, unset), UnsetHint(unset));
    return *expanded;
  }

  // Expands a string of environment `environment`; nullopt when a variable is unset and
  // the error was deferred.
  std::optional<std::string> ExpandIn(const std::string& text, const toml::node& node,
                                      const std::string& key, const std::string& environment,
                                      const std::string& setting) const {
    std::string unset;
    std::string where = Where(node, key);
    std::optional<std::string> expanded = Expand(text, where, &unset);
    if (expanded) return expanded;
    Error error = ConfigError(UnsetMessage(where, unset), UnsetHint(unset));
    if (deferred_ == nullptr) throw error;
    deferred_->push_back({environment, setting, node.source().begin.line, std::move(error)});
    return std::nullopt;
  }

  std::string NonEmpty(const toml::node& node, const std::string& key, std::string value) const {
    if (value.empty()) throw ConfigError(Where(node, key) + " must not be empty");
    return value;
  }

  // [lint] ignore = ["rule", ...]: rules silenced for every migration.
  std::set<std::string> LoadLintIgnores(const toml::node& node) const {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      throw ConfigError(Where(node, "lint") + " must be a section",
                        "write [lint] with ignore = [\"rule\", ...]");
    }
    std::set<std::string> rules;
    for (auto&& [key, value] : *table) {
      const std::string name(key.str());
      const toml::array* array = value.as_array();
      if (name != "ignore" || array == nullptr) {
        throw ConfigError(Where(value, "lint." + name) + " is not a known lint setting",
                          "[lint] takes ignore = [\"rule\", ...] (see `safemig lint --rules`)");
      }
      for (const toml::node& rule : *array) {
        std::optional<std::string> id = rule.value<std::string>();
        if (!id) {
          throw ConfigError(Where(rule, "lint.ignore") + " must list rule names as strings",
                            "write ignore = [\"rename\", \"drop-column\"]");
        }
        rules.insert(*id);
      }
    }
    return rules;
  }

  void CheckUnknownTopLevel(const toml::node& node, const std::string& name) const {
    // Sections are left alone so that a file written for a later version ([lint],
    // [backup], [[hooks]]) still loads; a misspelt [environments] would silently drop
    // every environment, so near misses are caught.
    if (node.is_table() || node.is_array_of_tables()) {
      if (name.rfind("env", 0) == 0 || EditDistance(name, "environments") <= 3) {
        throw ConfigError(Where(node, "[" + name + "]") + " is not a known section",
                          "environments are written [environments.NAME]");
      }
      return;
    }
    // A misspelt scalar would silently fall back to a default, so scalars are strict.
    for (std::string_view key : kEnvironmentKeys) {
      if (name == key) {
        throw ConfigError(Where(node, name) + " is an environment setting, not a top-level one",
                          "move it into a section such as [environments.dev]");
      }
    }
    std::string message = Where(node, name) + " is not a known setting";
    for (const char* known : {"migrations", "default_environment", "environments"}) {
      if (EditDistance(name, known) <= 3) {
        message += std::string("; did you mean ") + known + "?";
        break;
      }
    }
    throw ConfigError(message,
                      "top-level settings are migrations and default_environment; the rest "
                      "goes in [environments.NAME]");
  }

  // Expands the strings nested in an array or table kept in Environment::raw.
  void ExpandNested(toml::node& node, const std::string& key, const std::string& environment,
                    const std::string& setting) const {
    if (toml::value<std::string>* text = node.as_string()) {
      if (std::optional<std::string> expanded =
              ExpandIn(text->get(), node, key, environment, setting)) {
        text->get() = std::move(*expanded);
      }
    } else if (toml::array* array = node.as_array()) {
      for (toml::node& element : *array) ExpandNested(element, key, environment, setting);
    } else if (toml::table* table = node.as_table()) {
      for (auto&& [child, value] : *table) ExpandNested(value, key, environment, setting);
    }
  }

  std::string RawText(const toml::node& node, const std::optional<std::string>& expanded,
                      const std::string& key, const std::string& environment,
                      const std::string& setting) const {
    if (const toml::value<std::string>* text = node.as_string()) {
      return expanded ? *expanded : text->get();  // as written when its variable is unset
    }
    if (const toml::value<bool>* flag = node.as_boolean()) return flag->get() ? "true" : "false";
    std::ostringstream out;
    if (const toml::array* array = node.as_array()) {
      toml::array copy = *array;
      ExpandNested(copy, key, environment, setting);
      out << copy;
    } else if (const toml::table* table = node.as_table()) {
      toml::table copy = *table;
      ExpandNested(copy, key, environment, setting);
      out << copy;
    } else {
      node.visit([&out](const auto& value) { out << value; });
    }
    return out.str();
  }

  std::optional<milliseconds> Duration(const toml::node& node, const std::string& key,
                                       const std::optional<std::string>& expanded) const {
    if (!node.is_string()) {
      throw ConfigError(Where(node, key) + " must be a duration string such as \"10s\"",
                        "quote it: lock_timeout = \"10s\"");
    }
    if (!expanded) return std::nullopt;
    return ParseDuration(*expanded, Where(node, key));
  }

  // [environments.NAME.watch]. Like the environment's own keys, keys it does not know are
  // left alone; known ones must have the right type and range.
  WatchConfig LoadWatch(const toml::node& section, const std::string& prefix,
                        const std::string& environment) const {
    const toml::table* table = section.as_table();
    if (table == nullptr) {
      throw ConfigError(Where(section, prefix) + " must be a section",
                        "write [" + prefix + "] with checks = [\"SELECT ...\"] inside");
    }
    WatchConfig watch;
    for (auto&& [key_node, node] : *table) {
      const std::string key(key_node.str());
      const std::string path = prefix + "." + key;
      if (key == "checks" || key == "check_cmds") {
        std::vector<std::string>& into = key == "checks" ? watch.checks : watch.check_cmds;
        const toml::array* array = node.as_array();
        if (array == nullptr) {
          throw ConfigError(Where(node, path) + " must be an array of strings",
                            "write " + key + " = [\"...\", \"...\"]");
        }
        for (const toml::node& element : *array) {
          const toml::value<std::string>* text = element.as_string();
          if (text == nullptr || text->get().empty()) {
            throw ConfigError(Where(element, path) + " must list non-empty strings",
                              "write " + key + " = [\"...\", \"...\"]");
          }
          // An unset variable defers the error to when this environment is chosen.
          if (auto expanded = ExpandIn(text->get(), element, path, environment, "watch")) {
            into.push_back(std::move(*expanded));
          }
        }
      } else if (key == "every" || key == "for" || key == "check_timeout" ||
                 key == "rollback_deadline") {
        std::optional<std::string> expanded;
        if (const toml::value<std::string>* text = node.as_string()) {
          expanded = ExpandIn(text->get(), node, path, environment, "watch");
        }
        std::optional<milliseconds> value = Duration(node, path, expanded);
        if (value && value->count() <= 0) {
          throw ConfigError(Where(node, path) + " must be longer than 0s",
                            "write a duration such as \"30s\"");
        }
        if (key == "every") watch.every = value;
        if (key == "for") watch.duration = value;
        if (key == "check_timeout") watch.check_timeout = value;
        if (key == "rollback_deadline") watch.rollback_deadline = value;
      } else if (key == "failures") {
        const toml::value<int64_t>* count = node.as_integer();
        if (count == nullptr || count->get() < 1 || count->get() > 1000) {
          throw ConfigError(Where(node, path) + " must be a whole number from 1 to 1000",
                            "write failures = 3: that many failing ticks in a row trigger");
        }
        watch.failures = static_cast<int>(count->get());
      } else if (key == "auto_rollback") {
        const toml::value<bool>* flag = node.as_boolean();
        if (flag == nullptr) throw ConfigError(Where(node, path) + " must be true or false");
        watch.auto_rollback = flag->get();
      }
    }
    return watch;
  }

  Environment LoadEnvironment(const std::string& name, const toml::node& section) const {
    const std::string prefix = "environments." + name;
    const toml::table* table = section.as_table();
    if (table == nullptr) {
      throw ConfigError(Where(section, prefix) + " must be a table",
                        "settings belong to one environment: [environments.NAME] with url = "
                        "\"...\" inside");
    }
    if (!IsValidEnvironmentName(name)) {
      throw ConfigError(Where(section, prefix) +
                            " is not a usable environment name (letters, digits, - and _ only)",
                        "rename the section; the name becomes a backup directory");
    }
    Environment env;
    env.name = name;
    env.backups = (dir_ / ".safemig" / "backups" / name).lexically_normal();
    bool has_url = false;
    for (auto&& [key_node, node] : *table) {
      const std::string key(key_node.str());
      std::string path = prefix;
      path.append(".").append(key);
      std::optional<std::string> expanded;
      if (const toml::value<std::string>* text = node.as_string()) {
        expanded = ExpandIn(text->get(), node, path, name, key);
      }
      if (key == "url") {
        env.url = expanded ? *expanded : RequireString(node, path);
        has_url = true;
      } else if (key == "backups") {
        RequireString(node, path);
        if (expanded) env.backups = ResolvePath(NonEmpty(node, path, *expanded));
      } else if (key == "migrations") {
        RequireString(node, path);
        if (expanded) env.migrations = ResolvePath(NonEmpty(node, path, *expanded)).string();
      } else if (key == "protected") {
        const toml::value<bool>* flag = node.as_boolean();
        if (flag == nullptr) throw ConfigError(Where(node, path) + " must be true or false");
        env.is_protected = flag->get();
      } else if (key == "lock_timeout") {
        if (auto timeout = Duration(node, path, expanded)) env.lock_timeout = *timeout;
      } else if (key == "statement_timeout") {
        if (auto timeout = Duration(node, path, expanded)) env.statement_timeout = *timeout;
      } else if (key == "max_duration") {
        if (auto limit = Duration(node, path, expanded)) env.max_duration = *limit;
      } else if (key == "rehearsal_max_age") {
        if (auto age = Duration(node, path, expanded)) env.rehearsal_max_age = *age;
      } else if (key == "window") {
        RequireString(node, path);
        if (expanded) env.window = ParseDeployWindow(*expanded, Where(node, path));
      } else if (key == "promote_from") {
        RequireString(node, path);
        if (expanded) env.promote_from = NonEmpty(node, path, *expanded);
      } else if (key == "rehearsal_url") {
        RequireString(node, path);
        if (expanded) env.rehearsal_url = NonEmpty(node, path, *expanded);
      } else if (key == "watch") {
        env.watch = LoadWatch(node, path, name);
      }
      const size_t deferred_before = deferred_ != nullptr ? deferred_->size() : 0;
      env.raw[key] = RawText(node, expanded, path, name, key);
      // LoadWatch deferred its unset variables with their own lines and keys already; the
      // copy RawText expands has lost both.
      if (key == "watch" && deferred_ != nullptr) {
        deferred_->erase(deferred_->begin() + static_cast<std::ptrdiff_t>(deferred_before),
                         deferred_->end());
      }
    }
    if (!has_url) {
      throw ConfigError(
          Where(section, prefix) + " has no url",
          "add url = \"postgres://user@host/db\" (or mysql://, sqlite:) to [" + prefix + "]");
    }
    return env;
  }

  fs::path file_;
  std::string label_;
  fs::path dir_;
  std::vector<DeferredError>* deferred_;
};

Error NoUrlError() {
  return {Category::kUsage,
          "no database URL: pass --url, set SAFEMIG_DATABASE_URL, or run `safemig init` to "
          "create safemig.toml",
          "for example: --url postgres://user@localhost/app"};
}

constexpr std::array<std::string_view, 7> kDayNames = {"Mon", "Tue", "Wed", "Thu",
                                                       "Fri", "Sat", "Sun"};

std::optional<int> DayIndex(std::string_view name) {
  for (size_t i = 0; i < kDayNames.size(); ++i) {
    if (kDayNames[i] == name) return static_cast<int>(i);
  }
  return std::nullopt;
}

// "HH:MM" -> minutes after midnight; nullopt unless exactly two digits, ':', two digits.
std::optional<int> ParseClock(std::string_view text) {
  if (text.size() != 5 || text[2] != ':' || !IsDigit(text[0]) || !IsDigit(text[1]) ||
      !IsDigit(text[3]) || !IsDigit(text[4])) {
    return std::nullopt;
  }
  int hours = (text[0] - '0') * 10 + (text[1] - '0');
  int minutes = (text[3] - '0') * 10 + (text[4] - '0');
  // 24:00 is accepted as the end of a day ("22:00-24:00").
  if (minutes > 59 || hours > 24 || (hours == 24 && minutes != 0)) return std::nullopt;
  return hours * 60 + minutes;
}

std::vector<std::string_view> SplitOn(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

}  // namespace

DeployWindow ParseDeployWindow(std::string_view text, std::string_view where) {
  auto bad = [&](const std::string& why) {
    return ConfigError(std::string(where) + ": \"" + std::string(text) + "\" is not a window: " +
                           why,
                       "write days, a time span and UTC, e.g. window = \"Mon-Fri 02:00-05:00 "
                       "UTC\"");
  };
  std::vector<std::string_view> words = SplitOn(text, ' ');
  if (words.size() != 3) throw bad("expected three parts separated by single spaces");
  DeployWindow window;
  window.text = std::string(text);
  for (std::string_view item : SplitOn(words[0], ',')) {
    std::vector<std::string_view> range = SplitOn(item, '-');
    if (range.size() > 2) throw bad("\"" + std::string(item) + "\" is not a day or a day range");
    std::optional<int> first = DayIndex(range.front());
    std::optional<int> last = DayIndex(range.back());
    if (!first || !last) {
      throw bad("\"" + std::string(item) + "\" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)");
    }
    if (*last < *first) throw bad("day range " + std::string(item) + " runs backwards");
    for (int day = *first; day <= *last; ++day) {
      if ((window.days & (1u << day)) != 0) {
        throw bad(std::string(kDayNames[static_cast<size_t>(day)]) + " is named twice");
      }
      window.days |= 1u << day;
    }
  }
  std::vector<std::string_view> span = SplitOn(words[1], '-');
  std::optional<int> start = span.size() == 2 ? ParseClock(span[0]) : std::nullopt;
  std::optional<int> end = span.size() == 2 ? ParseClock(span[1]) : std::nullopt;
  if (!start || !end || *start == 24 * 60) {
    throw bad("\"" + std::string(words[1]) + "\" is not a time span HH:MM-HH:MM");
  }
  if (*start == *end) throw bad("the time span is empty");
  if (words[2] != "UTC") {
    throw bad("only UTC times are supported, so a daylight-saving change cannot move the window");
  }
  window.start_minute = *start;
  window.end_minute = *end;
  return window;
}

bool DeployWindow::Contains(std::chrono::system_clock::time_point when) const {
  using std::chrono::duration_cast;
  using std::chrono::minutes;
  const std::int64_t total = duration_cast<minutes>(when.time_since_epoch()).count();
  const std::int64_t day_number = total >= 0 ? total / 1440 : (total - 1439) / 1440;
  const int minute = static_cast<int>(total - day_number * 1440);
  // 1970-01-01 was a Thursday (index 3 with Monday = 0).
  const int weekday = static_cast<int>(((day_number % 7) + 7 + 3) % 7);
  auto open_on = [&](int day) { return (days & (1u << ((day + 7) % 7))) != 0; };
  if (start_minute < end_minute) {
    return open_on(weekday) && minute >= start_minute && minute < end_minute;
  }
  // Crosses midnight: the evening part belongs to today, the morning part to yesterday.
  return (open_on(weekday) && minute >= start_minute) ||
         (open_on(weekday - 1) && minute < end_minute);
}

std::string ExpandEnvironment(std::string_view text, std::string_view where) {
  std::string unset;
  std::optional<std::string> expanded = Expand(text, where, &unset);
  if (!expanded) throw ConfigError(UnsetMessage(where, unset), UnsetHint(unset));
  return *expanded;
}

Config LoadConfig(const std::filesystem::path& file) { return Loader(file, nullptr).Load(); }

Resolved Resolve(const Selection& selection) {
  std::optional<fs::path> file;
  if (selection.config_file) {
    std::error_code ec;
    if (!fs::exists(*selection.config_file, ec)) {
      throw Error(Category::kUsage,
                  "config file " + selection.config_file->string() + " does not exist",
                  "check the --config path, or run `safemig init` to create one");
    }
    file = *selection.config_file;
  } else {
    std::error_code ec;
    if (fs::exists("safemig.toml", ec)) file = fs::path("safemig.toml");
  }
  const std::string label = file ? file->string() : "safemig.toml";

  Config config;
  std::vector<DeferredError> deferred;
  if (file) config = Loader(*file, &deferred).Load();

  std::optional<std::string> override_url;
  std::string url_source;
  if (selection.url) {
    override_url = *selection.url;
    url_source = "--url";
  } else if (const char* from_env = std::getenv("SAFEMIG_DATABASE_URL");
             from_env != nullptr && *from_env != '\0') {
    // An empty variable counts as unset: CI systems often define it empty.
    override_url = from_env;
    url_source = "SAFEMIG_DATABASE_URL";
  }

  std::string name;
  if (selection.env) {
    name = *selection.env;
    if (!IsValidEnvironmentName(name)) {
      throw Error(Category::kUsage,
                  "--env \"" + name + "\" is not an environment name (letters, digits, - and _)",
                  "pass the name of an [environments.NAME] section");
    }
    // A config that names environments catches a typo in --env even when --url makes the
    // run possible; without any, --env only labels the run.
    if (!config.environments.empty() && config.environments.count(name) == 0) {
      throw Error(Category::kUsage,
                  "unknown environment \"" + name + "\"; " + label + " defines " +
                      JoinKeys(config.environments),
                  "pass one of those to --env, or add [environments." + name + "] to " + label);
    }
  } else if (config.default_environment) {
    name = *config.default_environment;
  } else if (config.environments.size() == 1) {
    name = config.environments.begin()->first;
  } else if (override_url || config.environments.count("default") > 0) {
    name = "default";
  } else if (config.environments.empty()) {
    throw NoUrlError();
  } else {
    throw Error(Category::kUsage,
                label + " defines several environments (" + JoinKeys(config.environments) +
                    ") and no default_environment",
                "choose one with --env NAME, or set default_environment in " + label);
  }

  Resolved resolved;
  auto found = config.environments.find(name);
  if (found != config.environments.end()) {
    resolved.environment = found->second;
    std::stable_sort(
        deferred.begin(), deferred.end(),
        [](const DeferredError& a, const DeferredError& b) { return a.line < b.line; });
    for (const DeferredError& error : deferred) {
      if (error.environment != name) continue;
      if (error.key == "url" && override_url) continue;  // the url is not used
      throw error.error;
    }
  } else {
    // Backups of an environment the file does not describe still go next to the file
    // (or into the working directory without one), like those of described ones.
    const fs::path base = file ? file->parent_path() : fs::path();
    resolved.environment.name = name;
    resolved.environment.backups = (base / ".safemig" / "backups" / name).lexically_normal();
  }

  if (!override_url && found == config.environments.end()) throw NoUrlError();
  const std::string url = override_url ? *override_url : resolved.environment.url;
  if (!override_url) url_source = label + ": environments." + name + ".url";
  try {
    ParseDatabaseUrl(url);
  } catch (const Error& e) {
    throw Error(e.category(), url_source + ": " + e.what(), e.hint());
  }
  resolved.environment.url = url;

  if (selection.dir) {
    resolved.migrations = *selection.dir;
  } else if (resolved.environment.migrations) {
    resolved.migrations = *resolved.environment.migrations;
  } else {
    resolved.migrations = config.migrations;
  }
  resolved.config = std::move(config);
  return resolved;
}

}  // namespace safemig
