// `safemig ci` as a pipeline runs it: exit codes, JUnit XML, Markdown summary, and the
// GitHub step summary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <sstream>

#include "test_util.h"

namespace safemig {
namespace {

using safemig::testing::ReadFile;
using safemig::testing::RunSafemig;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

const std::string kExamples = std::string(SAFEMIG_SOURCE_DIR) + "/migrations-examples/sqlite";

// Well-formed XML with the JUnit shape CI servers read: testsuites > testsuite > testcase.
int CountJUnitCases(const std::filesystem::path& file, int* failures) {
  std::string script =
      "import sys, xml.dom.minidom as m\n"
      "d = m.parse(sys.argv[1])\n"
      "assert d.documentElement.tagName == 'testsuites'\n"
      "s = d.getElementsByTagName('testsuite')\n"
      "assert len(s) == 1\n"
      "c = s[0].getElementsByTagName('testcase')\n"
      "assert all(x.getAttribute('name') and x.getAttribute('classname') for x in c)\n"
      "f = [x for x in c if x.getElementsByTagName('failure')]\n"
      "assert int(s[0].getAttribute('tests')) == len(c)\n"
      "assert int(s[0].getAttribute('failures')) == len(f)\n"
      "open(sys.argv[2], 'w').write('%d %d' % (len(c), len(f)))\n";
  std::filesystem::path py = file.string() + ".py";
  std::filesystem::path counts = file.string() + ".counts";
  WriteFile(py, script);
  int status = std::system(("python3 " + py.string() + " " + file.string() + " " +
                            counts.string()).c_str());
  if (status != 0) return -1;
  int cases = -1;
  std::istringstream(ReadFile(counts)) >> cases >> *failures;
  return cases;
}

TEST(CiCommand, PassingExamplesWriteJUnitSummaryAndStepSummary) {
  TempDir dir;
  auto ci = RunSafemig("ci --url sqlite:" + (dir / "ci.db").string() + " --dir " + kExamples +
                           " --junit " + (dir / "junit.xml").string() + " --summary " +
                           (dir / "summary.md").string(),
                       dir.path(), "GITHUB_STEP_SUMMARY=" + (dir / "step.md").string());
  ASSERT_EQ(ci.exit_code, 0) << ci.out << ci.err;
  EXPECT_NE(ci.out.find("Verdict: GO"), std::string::npos) << ci.out;
  int failures = -1;
  // validate + (lint + rehearse) for each of the 8 example migrations
  EXPECT_EQ(CountJUnitCases(dir / "junit.xml", &failures), 17);
  EXPECT_EQ(failures, 0);
  std::string summary = ReadFile(dir / "summary.md");
  EXPECT_NE(summary.find("GO"), std::string::npos);
  EXPECT_NE(summary.find("If something goes wrong"), std::string::npos) << summary;
  EXPECT_EQ(ReadFile(dir / "step.md"), summary + "\n");
}

TEST(CiCommand, BrokenDownAndLintErrorAreNoGoWithFailingTestCases) {
  TempDir dir;
  WriteFile(dir / "migrations/20260101000000_users.up.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, phone TEXT);\n");
  WriteFile(dir / "migrations/20260101000000_users.down.sql", "DROP TABLE users;\n");
  // The down forgets the index: the schema after it differs.
  WriteFile(dir / "migrations/20260102000000_index.up.sql",
            "CREATE INDEX users_email ON users (email);\nCREATE TABLE audit (id INTEGER);\n");
  WriteFile(dir / "migrations/20260102000000_index.down.sql", "DROP TABLE audit;\n");
  WriteFile(dir / "migrations/20260103000000_purge.up.sql", "DELETE FROM users;\n");
  WriteFile(dir / "migrations/20260103000000_purge.down.sql", "SELECT 1;\n");
  auto ci = RunSafemig("ci --format json --url sqlite:" + (dir / "ci.db").string() + " --dir " +
                           (dir / "migrations").string() + " --junit " +
                           (dir / "junit.xml").string(),
                       dir.path());
  EXPECT_EQ(ci.exit_code, 5) << ci.out << ci.err;
  auto json = nlohmann::json::parse(ci.out);
  EXPECT_EQ(json["command"], "ci");
  EXPECT_EQ(json["verdict"], "no-go");
  std::string reasons = json["reasons"].dump();
  EXPECT_NE(reasons.find("20260102000000"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("delete-without-where"), std::string::npos) << reasons;
  int failures = -1;
  EXPECT_EQ(CountJUnitCases(dir / "junit.xml", &failures), 7);
  EXPECT_EQ(failures, 2);  // lint of 20260103000000, rehearsal of 20260102000000
}

TEST(CiCommand, NeedsADatabaseToRehearseOn) {
  TempDir dir;
  auto ci = RunSafemig("ci --dir " + kExamples, dir.path());
  EXPECT_EQ(ci.exit_code, 2);
  EXPECT_NE(ci.err.find("--url"), std::string::npos) << ci.err;
}

}  // namespace
}  // namespace safemig
