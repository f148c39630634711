#include "config/config.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace safemig {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// The message of the Error `action` throws; fails the test when it throws none or one of
// another category.
std::string ErrorOf(const std::function<void()>& action, Category category = Category::kConfig) {
  try {
    action();
  } catch (const Error& e) {
    EXPECT_EQ(CategoryName(e.category()), std::string(CategoryName(category))) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no safemig::Error thrown";
  return {};
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void WriteFile(const fs::path& path, const std::string& content) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
}

// Every test runs in a fresh temporary working directory, with the variables the code
// reads saved and restored, so tests neither see nor leave each other's state.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_cwd_ = fs::current_path();
    std::string pattern = (fs::temp_directory_path() / "safemig-config-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    fs::current_path(dir_);
    for (const char* name : kVariables) {
      const char* value = std::getenv(name);
      saved_.emplace_back(name, value ? std::optional<std::string>(value) : std::nullopt);
      unsetenv(name);
    }
  }

  void TearDown() override {
    fs::current_path(old_cwd_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

  static constexpr std::array<const char*, 6> kVariables = {
      "SAFEMIG_DATABASE_URL", "SAFEMIG_TEST_PASS", "SAFEMIG_TEST_HOST",
      "SAFEMIG_TEST_EMPTY",   "SAFEMIG_TEST_PROD", "SAFEMIG_TEST_DIR"};
  fs::path old_cwd_;
  fs::path dir_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

class ExpandEnvironmentTest : public TempDirTest {};
class LoadConfigTest : public TempDirTest {};
class ResolveTest : public TempDirTest {};

// ParseDuration ------------------------------------------------------------------------

TEST(ParseDuration, AcceptsEachUnitAndCombinations) {
  EXPECT_EQ(ParseDuration("500ms", "t"), milliseconds(500));
  EXPECT_EQ(ParseDuration("30s", "t"), milliseconds(30'000));
  EXPECT_EQ(ParseDuration("5m", "t"), milliseconds(300'000));
  EXPECT_EQ(ParseDuration("1h", "t"), milliseconds(3'600'000));
  EXPECT_EQ(ParseDuration("1h30m", "t"), milliseconds(5'400'000));
  EXPECT_EQ(ParseDuration("2m30s250ms", "t"), milliseconds(150'250));
  EXPECT_EQ(ParseDuration("0s", "t"), milliseconds(0));
  EXPECT_EQ(ParseDuration("90s", "t"), milliseconds(90'000));
}

TEST(ParseDuration, RejectsMalformedTextNamingWhat) {
  for (const char* text : {"", "abc", "10", "0", "-5s", "5x", "1.5s", " 5s", "5s ", "5 s", "s",
                           "30s1h", "5s5s", "1ms5s", "5mss", "99999999999999h"}) {
    std::string message = ErrorOf([&] { ParseDuration(text, "environments.prod.lock_timeout"); });
    EXPECT_TRUE(Contains(message, "environments.prod.lock_timeout")) << message;
    EXPECT_TRUE(Contains(message, "\"" + std::string(text) + "\" is not a duration")) << message;
  }
}

// ExpandEnvironment --------------------------------------------------------------------

TEST_F(ExpandEnvironmentTest, ReplacesSetVariables) {
  setenv("SAFEMIG_TEST_PASS", "p@ss", 1);
  setenv("SAFEMIG_TEST_HOST", "db", 1);
  EXPECT_EQ(ExpandEnvironment("postgres://u:${SAFEMIG_TEST_PASS}@${SAFEMIG_TEST_HOST}/x", "w"),
            "postgres://u:p@ss@db/x");
}

TEST_F(ExpandEnvironmentTest, NamesUnsetVariableButNoValue) {
  std::string message =
      ErrorOf([] { ExpandEnvironment("postgres://u:${SAFEMIG_TEST_PASS}@h/db", "prod url"); });
  EXPECT_EQ(message, "prod url uses ${SAFEMIG_TEST_PASS}, which is not set");
}

TEST_F(ExpandEnvironmentTest, TreatsEmptyVariableAsSet) {
  setenv("SAFEMIG_TEST_EMPTY", "", 1);
  EXPECT_EQ(ExpandEnvironment("a${SAFEMIG_TEST_EMPTY}b", "w"), "ab");
}

TEST_F(ExpandEnvironmentTest, KeepsEscapesAndBareDollars) {
  setenv("SAFEMIG_TEST_PASS", "x", 1);
  EXPECT_EQ(ExpandEnvironment("$${SAFEMIG_TEST_PASS}", "w"), "${SAFEMIG_TEST_PASS}");
  EXPECT_EQ(ExpandEnvironment("$${UNSET_ANYWHERE}", "w"), "${UNSET_ANYWHERE}");
  EXPECT_EQ(ExpandEnvironment("pa$$word $HOME $", "w"), "pa$$word $HOME $");
  // "$$" before "{" is one literal '$', so a '$' can still precede a reference.
  EXPECT_EQ(ExpandEnvironment("$$${SAFEMIG_TEST_PASS}", "w"), "$x");
  EXPECT_EQ(ExpandEnvironment("$$$${SAFEMIG_TEST_PASS}", "w"), "$${SAFEMIG_TEST_PASS}");
  EXPECT_EQ(ExpandEnvironment("a$${b}$$", "w"), "a${b}$$");
}

TEST_F(ExpandEnvironmentTest, DoesNotRescanValues) {
  setenv("SAFEMIG_TEST_PASS", "${SAFEMIG_TEST_HOST}", 1);
  EXPECT_EQ(ExpandEnvironment("${SAFEMIG_TEST_PASS}", "w"), "${SAFEMIG_TEST_HOST}");
}

TEST_F(ExpandEnvironmentTest, RejectsMalformedReferencesWithoutQuotingText) {
  std::string unterminated = ErrorOf([] { ExpandEnvironment("pw-${SECRETISH", "w"); });
  EXPECT_TRUE(Contains(unterminated, "without its closing }"));
  EXPECT_FALSE(Contains(unterminated, "SECRETISH"));
  std::string bad_name = ErrorOf([] { ExpandEnvironment("${not valid}", "w"); });
  EXPECT_TRUE(Contains(bad_name, "not a variable name"));
  EXPECT_FALSE(Contains(bad_name, "not valid}"));
  ErrorOf([] { ExpandEnvironment("${}", "w"); });
  ErrorOf([] { ExpandEnvironment("${1X}", "w"); });
}

// LoadConfig ---------------------------------------------------------------------------

TEST_F(LoadConfigTest, LoadsEveryEnvironmentSetting) {
  WriteFile("safemig.toml", R"(migrations = "db/migrations"
default_environment = "staging"

[environments.staging]
url = "postgres://app@db-staging/app"
backups = "/var/backups/safemig/staging"
protected = false
lock_timeout = "15s"
statement_timeout = "1m"

[environments.prod]
url = "mysql://app@db/app"
protected = true
migrations = "db/prod-migrations"
)");
  Config config = LoadConfig("safemig.toml");
  EXPECT_EQ(config.file, fs::path("safemig.toml"));
  EXPECT_EQ(config.migrations, fs::path("db/migrations"));
  EXPECT_EQ(config.default_environment, "staging");
  ASSERT_EQ(config.environments.size(), 2u);

  const Environment& staging = config.environments.at("staging");
  EXPECT_EQ(staging.name, "staging");
  EXPECT_EQ(staging.url, "postgres://app@db-staging/app");
  EXPECT_EQ(staging.backups, fs::path("/var/backups/safemig/staging"));
  EXPECT_FALSE(staging.is_protected);
  EXPECT_FALSE(staging.migrations.has_value());
  EXPECT_EQ(staging.lock_timeout, milliseconds(15'000));
  EXPECT_EQ(staging.statement_timeout, milliseconds(60'000));

  const Environment& prod = config.environments.at("prod");
  EXPECT_TRUE(prod.is_protected);
  EXPECT_EQ(prod.migrations, "db/prod-migrations");
  EXPECT_EQ(prod.backups, fs::path(".safemig/backups/prod"));
  EXPECT_EQ(prod.lock_timeout, milliseconds(10'000));
  EXPECT_FALSE(prod.statement_timeout.has_value());
}

TEST_F(LoadConfigTest, ResolvesRelativePathsAgainstTheConfigFilesDirectory) {
  WriteFile("deploy/safemig.toml", R"(migrations = "../sql"
[environments.dev]
url = "sqlite:dev.db"
migrations = "dev-sql"
[environments.ci]
url = "sqlite:ci.db"
backups = "/abs/backups"
)");
  Config config = LoadConfig("deploy/safemig.toml");
  EXPECT_EQ(config.migrations, fs::path("sql"));
  EXPECT_EQ(config.environments.at("dev").migrations, "deploy/dev-sql");
  EXPECT_EQ(config.environments.at("dev").backups, fs::path("deploy/.safemig/backups/dev"));
  EXPECT_EQ(config.environments.at("ci").backups, fs::path("/abs/backups"));

  Config absolute = LoadConfig(dir_ / "deploy" / "safemig.toml");
  EXPECT_EQ(absolute.migrations, dir_ / "sql");
}

TEST_F(LoadConfigTest, DefaultsMigrationsToTheFilesDirectory) {
  WriteFile("sub/safemig.toml", "[environments.dev]\nurl = \"sqlite:x.db\"\n");
  EXPECT_EQ(LoadConfig("sub/safemig.toml").migrations, fs::path("sub/migrations"));
  WriteFile("safemig.toml", "");
  Config empty = LoadConfig("safemig.toml");
  EXPECT_EQ(empty.migrations, fs::path("migrations"));
  EXPECT_TRUE(empty.environments.empty());
  EXPECT_FALSE(empty.default_environment.has_value());
}

TEST_F(LoadConfigTest, ReportsSyntaxErrorsWithLineAndColumn) {
  WriteFile("safemig.toml", "migrations = \"m\"\n\n[environments.dev\nurl = \"sqlite:x\"\n");
  std::string message = ErrorOf([] { LoadConfig("safemig.toml"); });
  EXPECT_EQ(message.rfind("safemig.toml:3:", 0), 0u) << message;
}

TEST_F(LoadConfigTest, ReportsSyntaxErrorOnLaterLineWithoutPassword) {
  WriteFile("safemig.toml",
            "[environments.dev]\nurl = \"sqlite:x\"\nprotected = true\n"
            "password = hunter2\n");
  std::string message = ErrorOf([] { LoadConfig("safemig.toml"); });
  EXPECT_EQ(message.rfind("safemig.toml:4:", 0), 0u) << message;
  EXPECT_FALSE(Contains(message, "hunter2")) << message;
}

TEST_F(LoadConfigTest, RejectsWrongTypesWithLineNumbers) {
  WriteFile("safemig.toml", "[environments.prod]\nurl = \"sqlite:x\"\n\nprotected = \"yes\"\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:4: environments.prod.protected must be true or false");

  WriteFile("safemig.toml", "[environments.prod]\nurl = 5\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:2: environments.prod.url must be a string");

  WriteFile("safemig.toml", "migrations = [\"a\"]\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:1: migrations must be a string");

  WriteFile("safemig.toml", "[environments.prod]\nurl = \"sqlite:x\"\nlock_timeout = 10\n");
  EXPECT_TRUE(Contains(ErrorOf([] { LoadConfig("safemig.toml"); }),
                       "safemig.toml:3: environments.prod.lock_timeout must be a duration"));

  WriteFile("safemig.toml", "[environments.prod]\nurl = \"sqlite:x\"\nbackups = true\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:3: environments.prod.backups must be a string");
}

TEST_F(LoadConfigTest, RejectsBadDurationsNamingTheSetting) {
  WriteFile("safemig.toml",
            "[environments.prod]\nurl = \"sqlite:x\"\nstatement_timeout = \"5x\"\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:3: environments.prod.statement_timeout: \"5x\" is not a duration");
}

TEST_F(LoadConfigTest, RequiresUrlInEveryEnvironment) {
  WriteFile("safemig.toml",
            "[environments.dev]\nurl = \"sqlite:x\"\n[environments.prod]\n"
            "protected = true\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:3: environments.prod has no url");
}

TEST_F(LoadConfigTest, RejectsEnvironmentsThatAreNotTables) {
  WriteFile("safemig.toml", "[environments]\nurl = \"sqlite:x\"\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:2: environments.url must be a table");
  WriteFile("safemig.toml", "environments = \"dev\"\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:1: environments must be a table");
  WriteFile("safemig.toml", "[[environments]]\nurl = \"sqlite:x\"\n");
  ErrorOf([] { LoadConfig("safemig.toml"); });
}

TEST_F(LoadConfigTest, RejectsEnvironmentNamesThatCouldEscapeTheBackupDirectory) {
  WriteFile("safemig.toml", "[environments.\"../prod\"]\nurl = \"sqlite:x\"\n");
  EXPECT_TRUE(Contains(ErrorOf([] { LoadConfig("safemig.toml"); }), "environment name"));
}

TEST_F(LoadConfigTest, RejectsUnknownTopLevelSettingsWithSuggestion) {
  WriteFile("safemig.toml", "migration = \"db\"\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:1: migration is not a known setting; did you mean migrations?");
  WriteFile("safemig.toml", "colour = 3\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:1: colour is not a known setting");
  WriteFile("safemig.toml", "url = \"sqlite:x\"\n");
  EXPECT_TRUE(
      Contains(ErrorOf([] { LoadConfig("safemig.toml"); }), "url is an environment setting"));
}

TEST_F(LoadConfigTest, ToleratesUnknownSectionsButNotMisspeltEnvironments) {
  WriteFile("safemig.toml",
            "[watch]\nchecks = [\"a\"]\n[backup]\nlevel = 3\n[[hooks]]\nrun = \"x\"\n"
            "[environments.dev]\nurl = \"sqlite:x\"\n");
  EXPECT_EQ(LoadConfig("safemig.toml").environments.size(), 1u);
  WriteFile("safemig.toml", "[environment.dev]\nurl = \"sqlite:x\"\n");
  EXPECT_TRUE(Contains(ErrorOf([] { LoadConfig("safemig.toml"); }), "[environment]"));
  WriteFile("safemig.toml", "[enviroments.dev]\nurl = \"sqlite:x\"\n");
  EXPECT_TRUE(Contains(ErrorOf([] { LoadConfig("safemig.toml"); }), "not a known section"));
}

TEST_F(LoadConfigTest, RejectsDefaultEnvironmentThatIsNotDefined) {
  WriteFile("safemig.toml",
            "default_environment = \"prd\"\n[environments.prod]\nurl = \"sqlite:x\"\n");
  EXPECT_EQ(ErrorOf([] { LoadConfig("safemig.toml"); }),
            "safemig.toml:1: default_environment names \"prd\", which is not an environment "
            "(prod)");
}

TEST_F(LoadConfigTest, ReportsMissingOrUnreadableFile) {
  EXPECT_TRUE(Contains(ErrorOf([] { LoadConfig("nope.toml"); }), "cannot read nope.toml"));
  fs::create_directory("adir");
  EXPECT_TRUE(Contains(ErrorOf([] { LoadConfig("adir"); }), "is a directory"));
}

TEST_F(LoadConfigTest, ExpandsVariablesInEveryStringValue) {
  setenv("SAFEMIG_TEST_PASS", "s3cret", 1);
  setenv("SAFEMIG_TEST_DIR", "/srv/backups", 1);
  setenv("SAFEMIG_TEST_HOST", "db", 1);
  WriteFile("safemig.toml", R"(migrations = "${SAFEMIG_TEST_DIR}/m"
[environments.prod]
url = "postgres://app:${SAFEMIG_TEST_PASS}@${SAFEMIG_TEST_HOST}/app"
backups = "${SAFEMIG_TEST_DIR}/prod"
change_ticket = "$${not expanded}"
hosts = ["${SAFEMIG_TEST_HOST}", "other"]
)");
  Config config = LoadConfig("safemig.toml");
  EXPECT_EQ(config.migrations, fs::path("/srv/backups/m"));
  const Environment& prod = config.environments.at("prod");
  EXPECT_EQ(prod.url, "postgres://app:s3cret@db/app");
  EXPECT_EQ(prod.backups, fs::path("/srv/backups/prod"));
  EXPECT_EQ(prod.raw.at("change_ticket"), "${not expanded}");
  EXPECT_TRUE(Contains(prod.raw.at("hosts"), "'db'")) << prod.raw.at("hosts");
}

TEST_F(LoadConfigTest, UnsetVariableIsAnErrorNamingItButNoValue) {
  setenv("SAFEMIG_TEST_HOST", "db-host-name", 1);
  WriteFile("safemig.toml",
            "[environments.prod]\n"
            "url = \"postgres://app:${SAFEMIG_TEST_PASS}@${SAFEMIG_TEST_HOST}/a\"\n");
  std::string message = ErrorOf([] { LoadConfig("safemig.toml"); });
  EXPECT_EQ(message,
            "safemig.toml:2: environments.prod.url uses ${SAFEMIG_TEST_PASS}, which is "
            "not set");
}

TEST_F(LoadConfigTest, KeepsEveryKeyInRaw) {
  WriteFile("safemig.toml", R"([environments.prod]
url = "sqlite:x"
protected = true
promote_from = "staging"
max_rows = 1000
freeze = { days = ["mon", "tue"], from = "09:00" }
[environments.staging]
url = "sqlite:y"
)");
  const Environment prod = LoadConfig("safemig.toml").environments.at("prod");
  EXPECT_EQ(prod.raw.at("url"), "sqlite:x");
  EXPECT_EQ(prod.raw.at("protected"), "true");
  EXPECT_EQ(prod.raw.at("promote_from"), "staging");
  EXPECT_EQ(prod.raw.at("max_rows"), "1000");
  EXPECT_TRUE(Contains(prod.raw.at("freeze"), "days")) << prod.raw.at("freeze");
  EXPECT_TRUE(Contains(prod.raw.at("freeze"), "'09:00'")) << prod.raw.at("freeze");
}

TEST_F(LoadConfigTest, LoadsTheWatchSection) {
  setenv("SAFEMIG_TEST_PASS", "tok", 1);
  WriteFile("safemig.toml", R"([environments.prod]
url = "sqlite:x"
[environments.prod.watch]
checks = ["orders_ok: SELECT count(*) > 0 FROM orders", "SELECT 1"]
check_cmds = ["curl -H 'Authorization: Bearer ${SAFEMIG_TEST_PASS}' http://app/health"]
every = "15s"
for = "10m"
failures = 2
auto_rollback = true
check_timeout = "5s"
rollback_deadline = "2m"
colour = "blue"
[environments.dev]
url = "sqlite:y"
)");
  Config config = LoadConfig("safemig.toml");
  const WatchConfig& watch = config.environments.at("prod").watch;
  EXPECT_EQ(watch.checks, (std::vector<std::string>{"orders_ok: SELECT count(*) > 0 FROM orders",
                                                    "SELECT 1"}));
  ASSERT_EQ(watch.check_cmds.size(), 1u);
  EXPECT_TRUE(Contains(watch.check_cmds[0], "Bearer tok")) << watch.check_cmds[0];
  EXPECT_EQ(watch.every, milliseconds(15'000));
  EXPECT_EQ(watch.duration, milliseconds(600'000));
  EXPECT_EQ(watch.failures, 2);
  EXPECT_EQ(watch.auto_rollback, true);
  EXPECT_EQ(watch.check_timeout, milliseconds(5'000));
  EXPECT_EQ(watch.rollback_deadline, milliseconds(120'000));
  // An environment without the section has no checks and no values.
  const WatchConfig& dev = config.environments.at("dev").watch;
  EXPECT_TRUE(dev.checks.empty());
  EXPECT_FALSE(dev.every || dev.failures || dev.auto_rollback);
}

TEST_F(LoadConfigTest, RejectsMistypedWatchSettingsNamingThem) {
  const std::string head = "[environments.prod]\nurl = \"sqlite:x\"\n";
  struct Case {
    std::string body;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"watch = \"SELECT 1\"\n", "safemig.toml:3: environments.prod.watch must be a section"},
           {"[environments.prod.watch]\nchecks = \"SELECT 1\"\n",
            "safemig.toml:4: environments.prod.watch.checks must be an array of strings"},
           {"[environments.prod.watch]\ncheck_cmds = [1]\n",
            "environments.prod.watch.check_cmds must list non-empty strings"},
           {"[environments.prod.watch]\nchecks = [\"\"]\n", "must list non-empty strings"},
           {"[environments.prod.watch]\nevery = 30\n",
            "environments.prod.watch.every must be a duration string"},
           {"[environments.prod.watch]\nfor = \"30 min\"\n", "\"30 min\" is not a duration"},
           {"[environments.prod.watch]\nevery = \"0s\"\n",
            "environments.prod.watch.every must be longer than 0s"},
           {"[environments.prod.watch]\nfailures = 0\n",
            "environments.prod.watch.failures must be a whole number from 1 to 1000"},
           {"[environments.prod.watch]\nfailures = \"3\"\n", "must be a whole number"},
           {"[environments.prod.watch]\nauto_rollback = \"yes\"\n",
            "environments.prod.watch.auto_rollback must be true or false"},
       }) {
    WriteFile("safemig.toml", head + c.body);
    std::string message = ErrorOf([] { LoadConfig("safemig.toml"); });
    EXPECT_TRUE(Contains(message, c.expected)) << c.body << " -> " << message;
  }
}

// Resolve ------------------------------------------------------------------------------

TEST_F(ResolveTest, UsesDefaultEnvironmentForUrlAlone) {
  Selection selection;
  selection.url = "sqlite:app.db";
  Resolved resolved = Resolve(selection);
  EXPECT_FALSE(resolved.config.file.has_value());
  EXPECT_EQ(resolved.environment.name, "default");
  EXPECT_EQ(resolved.environment.url, "sqlite:app.db");
  EXPECT_EQ(resolved.environment.backups, fs::path(".safemig/backups/default"));
  EXPECT_EQ(resolved.environment.lock_timeout, milliseconds(10'000));
  EXPECT_EQ(resolved.migrations, fs::path("migrations"));
}

TEST_F(ResolveTest, ReadsSafemigDatabaseUrl) {
  setenv("SAFEMIG_DATABASE_URL", "postgres://u@h/db", 1);
  Resolved resolved = Resolve(Selection{});
  EXPECT_EQ(resolved.environment.name, "default");
  EXPECT_EQ(resolved.environment.url, "postgres://u@h/db");
}

TEST_F(ResolveTest, IgnoresEmptySafemigDatabaseUrl) {
  setenv("SAFEMIG_DATABASE_URL", "", 1);
  ErrorOf([] { Resolve(Selection{}); }, Category::kUsage);
}

TEST_F(ResolveTest, SaysHowToGiveAUrlWhenThereIsNone) {
  std::string message = ErrorOf([] { Resolve(Selection{}); }, Category::kUsage);
  EXPECT_TRUE(Contains(message, "--url"));
  EXPECT_TRUE(Contains(message, "SAFEMIG_DATABASE_URL"));
  EXPECT_TRUE(Contains(message, "safemig init"));
  WriteFile("safemig.toml", "migrations = \"db\"\n");
  EXPECT_TRUE(Contains(ErrorOf([] { Resolve(Selection{}); }, Category::kUsage), "--url"));
}

TEST_F(ResolveTest, RequiresAnExplicitConfigFileToExist) {
  Selection selection;
  selection.config_file = "missing.toml";
  selection.url = "sqlite:x.db";
  EXPECT_TRUE(Contains(ErrorOf([&] { Resolve(selection); }, Category::kUsage),
                       "missing.toml does not exist"));
}

TEST_F(ResolveTest, FindsSafemigTomlInWorkingDirectory) {
  WriteFile("safemig.toml", "[environments.dev]\nurl = \"sqlite:dev.db\"\n");
  Resolved resolved = Resolve(Selection{});
  EXPECT_EQ(resolved.config.file, fs::path("safemig.toml"));
  EXPECT_EQ(resolved.environment.name, "dev");
  EXPECT_EQ(resolved.environment.url, "sqlite:dev.db");
  EXPECT_EQ(resolved.environment.backups, fs::path(".safemig/backups/dev"));
}

TEST_F(ResolveTest, UsesConfigOptionOverWorkingDirectoryFile) {
  WriteFile("safemig.toml", "[environments.here]\nurl = \"sqlite:here.db\"\n");
  WriteFile("elsewhere/conf.toml",
            "migrations = \"sql\"\n[environments.there]\n"
            "url = \"sqlite:there.db\"\n");
  Selection selection;
  selection.config_file = "elsewhere/conf.toml";
  Resolved resolved = Resolve(selection);
  EXPECT_EQ(resolved.environment.name, "there");
  EXPECT_EQ(resolved.migrations, fs::path("elsewhere/sql"));
  EXPECT_EQ(resolved.environment.backups, fs::path("elsewhere/.safemig/backups/there"));
}

TEST_F(ResolveTest, PicksEnvironmentByPrecedence) {
  WriteFile("safemig.toml", R"(default_environment = "staging"
[environments.dev]
url = "sqlite:dev.db"
[environments.staging]
url = "sqlite:staging.db"
[environments.prod]
url = "sqlite:prod.db"
)");
  EXPECT_EQ(Resolve(Selection{}).environment.name, "staging");
  Selection explicit_env;
  explicit_env.env = "prod";
  Resolved resolved = Resolve(explicit_env);
  EXPECT_EQ(resolved.environment.name, "prod");
  EXPECT_EQ(resolved.environment.url, "sqlite:prod.db");
}

TEST_F(ResolveTest, RefusesToGuessAmongSeveralEnvironments) {
  WriteFile("safemig.toml",
            "[environments.dev]\nurl = \"sqlite:d\"\n"
            "[environments.prod]\nurl = \"sqlite:p\"\n");
  std::string message = ErrorOf([] { Resolve(Selection{}); }, Category::kUsage);
  EXPECT_TRUE(Contains(message, "several environments (dev, prod)")) << message;
}

TEST_F(ResolveTest, UsesEnvironmentNamedDefaultAmongSeveral) {
  WriteFile("safemig.toml",
            "[environments.default]\nurl = \"sqlite:d\"\n"
            "[environments.prod]\nurl = \"sqlite:p\"\n");
  EXPECT_EQ(Resolve(Selection{}).environment.url, "sqlite:d");
}

TEST_F(ResolveTest, UsesDefaultForUrlWithSeveralEnvironments) {
  WriteFile("safemig.toml",
            "[environments.dev]\nurl = \"sqlite:d\"\n"
            "[environments.prod]\nurl = \"sqlite:p\"\n");
  Selection selection;
  selection.url = "sqlite:other.db";
  Resolved resolved = Resolve(selection);
  EXPECT_EQ(resolved.environment.name, "default");
  EXPECT_EQ(resolved.environment.url, "sqlite:other.db");
  EXPECT_EQ(resolved.environment.backups, fs::path(".safemig/backups/default"));
}

TEST_F(ResolveTest, RejectsUnknownEnvironmentListingKnownOnes) {
  WriteFile("safemig.toml",
            "[environments.dev]\nurl = \"sqlite:d\"\n"
            "[environments.prod]\nurl = \"sqlite:p\"\n");
  Selection selection;
  selection.env = "prdo";
  selection.url = "sqlite:x.db";  // a URL does not excuse a typo in --env
  EXPECT_EQ(ErrorOf([&] { Resolve(selection); }, Category::kUsage),
            "unknown environment \"prdo\"; safemig.toml defines dev, prod");
}

TEST_F(ResolveTest, AcceptsAnyEnvironmentLabelWithoutConfig) {
  Selection selection;
  selection.env = "ci";
  selection.url = "sqlite:x.db";
  Resolved resolved = Resolve(selection);
  EXPECT_EQ(resolved.environment.name, "ci");
  EXPECT_EQ(resolved.environment.backups, fs::path(".safemig/backups/ci"));
  selection.env = "../../etc";
  ErrorOf([&] { Resolve(selection); }, Category::kUsage);
}

TEST_F(ResolveTest, TakesUrlFromFlagThenVariableThenConfig) {
  WriteFile("safemig.toml", "[environments.dev]\nurl = \"sqlite:config.db\"\n");
  EXPECT_EQ(Resolve(Selection{}).environment.url, "sqlite:config.db");
  setenv("SAFEMIG_DATABASE_URL", "sqlite:variable.db", 1);
  EXPECT_EQ(Resolve(Selection{}).environment.url, "sqlite:variable.db");
  Selection selection;
  selection.url = "sqlite:flag.db";
  Resolved resolved = Resolve(selection);
  EXPECT_EQ(resolved.environment.url, "sqlite:flag.db");
  EXPECT_EQ(resolved.environment.name, "dev");  // the environment keeps its policies
}

TEST_F(ResolveTest, PicksMigrationsDirectoryByPrecedence) {
  WriteFile("safemig.toml", R"(migrations = "top"
[environments.dev]
url = "sqlite:d"
migrations = "dev-only"
[environments.prod]
url = "sqlite:p"
)");
  Selection selection;
  selection.env = "prod";
  EXPECT_EQ(Resolve(selection).migrations, fs::path("top"));
  selection.env = "dev";
  EXPECT_EQ(Resolve(selection).migrations, fs::path("dev-only"));
  selection.dir = "flag-dir";
  EXPECT_EQ(Resolve(selection).migrations, fs::path("flag-dir"));
}

TEST_F(ResolveTest, ValidatesUrlWithRedactedMessage) {
  Selection selection;
  selection.url = "postgres://app:hunter2@db";
  std::string message = ErrorOf([&] { Resolve(selection); });
  EXPECT_EQ(message, "--url: postgres URL has no database name: postgres://app:***@db");

  WriteFile("safemig.toml", "[environments.prod]\nurl = \"oracle://u:hunter2@h/db\"\n");
  message = ErrorOf([] { Resolve(Selection{}); });
  EXPECT_TRUE(Contains(message, "safemig.toml: environments.prod.url: unknown database URL"))
      << message;
  EXPECT_FALSE(Contains(message, "hunter2"));

  setenv("SAFEMIG_DATABASE_URL", "mysql://root:hunter2@h:0/db", 1);
  message = ErrorOf([] { Resolve(Selection{}); });
  EXPECT_EQ(message.rfind("SAFEMIG_DATABASE_URL: ", 0), 0u) << message;
  EXPECT_FALSE(Contains(message, "hunter2"));
}

TEST_F(ResolveTest, IgnoresUnsetVariablesOfOtherEnvironments) {
  setenv("SAFEMIG_TEST_PASS", "devpass", 1);
  WriteFile("safemig.toml", R"(default_environment = "dev"
[environments.dev]
url = "postgres://app:${SAFEMIG_TEST_PASS}@localhost/app"
[environments.prod]
url = "postgres://app:${SAFEMIG_TEST_PROD}@prod/app"
)");
  Resolved resolved = Resolve(Selection{});
  EXPECT_EQ(resolved.environment.url, "postgres://app:devpass@localhost/app");
  // The other environment keeps its text as written.
  EXPECT_EQ(resolved.config.environments.at("prod").url,
            "postgres://app:${SAFEMIG_TEST_PROD}@prod/app");

  Selection prod;
  prod.env = "prod";
  EXPECT_EQ(ErrorOf([&] { Resolve(prod); }),
            "safemig.toml:5: environments.prod.url uses ${SAFEMIG_TEST_PROD}, which is not set");
  // LoadConfig itself stays strict.
  ErrorOf([] { LoadConfig("safemig.toml"); });
}

TEST_F(ResolveTest, UnsetVariableInAWatchCheckOnlyMattersForItsEnvironment) {
  WriteFile("safemig.toml", R"(default_environment = "dev"
[environments.dev]
url = "sqlite:dev.db"
[environments.prod]
url = "sqlite:prod.db"
[environments.prod.watch]
check_cmds = ["curl -H 'Authorization: Bearer ${SAFEMIG_TEST_PROD}' http://app/health"]
)");
  EXPECT_EQ(Resolve(Selection{}).environment.name, "dev");
  Selection prod;
  prod.env = "prod";
  std::string message = ErrorOf([&] { Resolve(prod); });
  EXPECT_TRUE(Contains(message, "environments.prod.watch.check_cmds uses ${SAFEMIG_TEST_PROD}"))
      << message;
  setenv("SAFEMIG_TEST_PROD", "s3cret", 1);
  EXPECT_TRUE(Contains(Resolve(prod).environment.watch.check_cmds.at(0), "Bearer s3cret"));
}

TEST_F(ResolveTest, ToleratesUnsetUrlVariableWhenUrlIsOverridden) {
  WriteFile("safemig.toml",
            "[environments.prod]\nurl = \"postgres://u:${SAFEMIG_TEST_PROD}@h/a\"\n"
            "protected = true\n");
  setenv("SAFEMIG_DATABASE_URL", "postgres://u:ci@h/a", 1);
  Resolved resolved = Resolve(Selection{});
  EXPECT_EQ(resolved.environment.url, "postgres://u:ci@h/a");
  EXPECT_TRUE(resolved.environment.is_protected);

  WriteFile("safemig.toml",
            "[environments.prod]\nurl = \"sqlite:x\"\n"
            "backups = \"${SAFEMIG_TEST_PROD}/b\"\n");
  EXPECT_TRUE(Contains(ErrorOf([] { Resolve(Selection{}); }), "${SAFEMIG_TEST_PROD}"));
}

}  // namespace
}  // namespace safemig
