// `safemig lint` as CI pipelines run it: offline, exit codes, JSON and GitHub annotations.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <sstream>

#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::RunSafemig;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

class LintCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "migrations/20260101000000_users.up.sql",
              "CREATE TABLE users (id int PRIMARY KEY, email text, phone text);\n");
    WriteFile(dir_ / "migrations/20260101000000_users.down.sql", "DROP TABLE users;\n");
    WriteFile(dir_ / "migrations/20260102000000_tidy.up.sql",
              "-- tidy up\nCREATE INDEX users_email ON users (email);\n"
              "ALTER TABLE users DROP COLUMN phone;\n");
    WriteFile(dir_ / "migrations/20260102000000_tidy.down.sql",
              "ALTER TABLE users ADD COLUMN phone text;\nDROP INDEX users_email;\n");
  }
  std::string Dir() const { return " --dir " + (dir_ / "migrations").string(); }

  TempDir dir_;
};

TEST_F(LintCliTest, ErrorsExitFiveAndNameFileLineRuleAndFix) {
  auto lint = RunSafemig("lint --dialect postgres" + Dir(), dir_.path());
  EXPECT_EQ(lint.exit_code, 5) << lint.err;
  EXPECT_NE(lint.out.find("20260102000000_tidy.up.sql:3: error [drop-column]"), std::string::npos)
      << lint.out;
  EXPECT_NE(lint.out.find("20260102000000_tidy.up.sql:2: warning [create-index-locks-writes]"),
            std::string::npos)
      << lint.out;
  EXPECT_NE(lint.out.find("fix: "), std::string::npos);
  EXPECT_NE(lint.out.find("1 error, 1 warning in 2 migrations"), std::string::npos) << lint.out;
}

TEST_F(LintCliTest, WarningsAloneExitZero) {
  auto lint = RunSafemig("lint --dialect postgres --format json --since 20260101000000 " +
                             (dir_ / "migrations/20260102000000_tidy.up.sql").string() + Dir(),
                         dir_.path());
  // Files and --since together: the files win.
  ASSERT_EQ(lint.exit_code, 5) << lint.err;
  WriteFile(dir_ / "migrations/20260102000000_tidy.up.sql",
            "CREATE INDEX users_email ON users (email);\n"
            "-- safemig:ignore drop-column\nALTER TABLE users DROP COLUMN phone;\n");
  auto quiet = RunSafemig("lint --dialect postgres" + Dir(), dir_.path());
  EXPECT_EQ(quiet.exit_code, 0) << quiet.out << quiet.err;
  EXPECT_NE(quiet.out.find("0 errors, 1 warning"), std::string::npos) << quiet.out;
}

TEST_F(LintCliTest, JsonListsFindingsWithEveryField) {
  auto lint = RunSafemig("lint --dialect postgres --format json" + Dir(), dir_.path());
  EXPECT_EQ(lint.exit_code, 5);
  auto json = nlohmann::json::parse(lint.out);
  EXPECT_EQ(json["command"], "lint");
  EXPECT_FALSE(json["ok"].get<bool>());
  EXPECT_EQ(json["errors"], 1);
  EXPECT_EQ(json["warnings"], 1);
  ASSERT_EQ(json["findings"].size(), 2u);
  for (const auto& f : json["findings"]) {
    for (const char* key : {"rule", "severity", "version", "file", "line", "message", "fix"}) {
      EXPECT_TRUE(f.contains(key)) << key;
    }
    EXPECT_EQ(f["version"], "20260102000000");
  }
}

TEST_F(LintCliTest, GithubFormatWritesWorkflowAnnotations) {
  auto lint = RunSafemig("lint --dialect postgres --format github" + Dir(), dir_.path());
  EXPECT_EQ(lint.exit_code, 5);
  // ::error file=PATH,line=N,title=TITLE::MESSAGE, properties and data escaped as GitHub
  // requires (no raw newline inside one annotation).
  const std::regex annotation(R"(^::(error|warning) file=[^,:]+,line=[0-9]+,title=[^,:]+::.+$)");
  std::istringstream lines(lint.out);
  std::string line;
  int annotations = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("::", 0) != 0) continue;
    ++annotations;
    EXPECT_TRUE(std::regex_match(line, annotation)) << line;
    EXPECT_NE(line.find("%0AFix: "), std::string::npos) << line;
  }
  EXPECT_EQ(annotations, 2);
  EXPECT_NE(lint.out.find("::error file="), std::string::npos);
  EXPECT_NE(lint.out.find("title=safemig drop-column::"), std::string::npos) << lint.out;
}

TEST_F(LintCliTest, DialectComesFromTheUrlWithoutConnecting) {
  // Nothing listens on this port: lint must not need the server.
  auto lint = RunSafemig("lint --all --url postgres://app@127.0.0.1:9/shop" + Dir(), dir_.path());
  EXPECT_EQ(lint.exit_code, 5) << lint.err;
  EXPECT_NE(lint.out.find("(postgres rules)"), std::string::npos) << lint.out;
  auto sqlite = RunSafemig("lint --url sqlite:" + (dir_ / "none.db").string() + Dir(),
                           dir_.path());
  EXPECT_NE(sqlite.out.find("(sqlite rules)"), std::string::npos) << sqlite.out << sqlite.err;
}

TEST_F(LintCliTest, PendingOnlyWhenTheDatabaseIsReachable) {
  std::string url = " --url sqlite:" + (dir_ / "app.db").string();
  ASSERT_EQ(RunSafemig("up --to 20260101000000 --skip-backup" + Dir() + url, dir_.path()).exit_code,
            0);
  auto lint = RunSafemig("lint --format json" + Dir() + url, dir_.path());
  auto json = nlohmann::json::parse(lint.out);
  EXPECT_EQ(json["migrations"], 1) << lint.out;
}

TEST_F(LintCliTest, ConfigIgnoreListSilencesRules) {
  WriteFile(dir_ / "safemig.toml",
            "migrations = \"migrations\"\n[lint]\nignore = [\"drop-column\"]\n"
            "[environments.dev]\nurl = \"sqlite:dev.db\"\n");
  auto lint = RunSafemig("lint --all", dir_.path());
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
  WriteFile(dir_ / "safemig.toml",
            "[lint]\nignore = \"drop-column\"\n[environments.dev]\nurl = \"sqlite:dev.db\"\n");
  auto bad = RunSafemig("lint --all", dir_.path());
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("safemig.toml"), std::string::npos) << bad.err;
}

TEST_F(LintCliTest, NoDialectIsAUsageError) {
  auto lint = RunSafemig("lint" + Dir(), dir_.path());
  EXPECT_EQ(lint.exit_code, 2);
  EXPECT_NE(lint.err.find("--dialect"), std::string::npos) << lint.err;
}

TEST_F(LintCliTest, RulesAreListed) {
  auto rules = RunSafemig("lint --rules --format json", dir_.path());
  ASSERT_EQ(rules.exit_code, 0) << rules.err;
  auto json = nlohmann::json::parse(rules.out);
  EXPECT_GE(json["rules"].size(), 20u);
}

}  // namespace
}  // namespace safemig
