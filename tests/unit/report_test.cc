// RenderHtmlReport and RenderMarkdownSummary: what a release meeting reads from the
// documents of rehearse, plan and deploy (the verdict, the figures, the escaping).
#include "report/report.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace safemig {
namespace {

using nlohmann::json;

// What a browser shows of `html`: the text outside tags (head and styles dropped), entities
// decoded, whitespace runs collapsed to one space.
std::string VisibleText(const std::string& html) {
  std::string body = html;
  auto head_end = body.find("</head>");
  if (head_end != std::string::npos) body = body.substr(head_end + 7);
  std::string text;
  bool in_tag = false;
  for (char c : body) {
    if (c == '<') {
      in_tag = true;
      text += ' ';
    } else if (c == '>' && in_tag) {
      in_tag = false;
    } else if (!in_tag) {
      text += c;
    }
  }
  const std::vector<std::pair<std::string, std::string>> entities = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}};
  for (const auto& [entity, character] : entities) {
    for (auto at = text.find(entity); at != std::string::npos; at = text.find(entity, at + 1)) {
      text.replace(at, entity.size(), character);
    }
  }
  std::string collapsed;
  for (char c : text) {
    bool space = c == ' ' || c == '\n' || c == '\t';
    if (space && (collapsed.empty() || collapsed.back() == ' ')) continue;
    collapsed += space ? ' ' : c;
  }
  return collapsed;
}

json Migration(const std::string& version, const std::string& name, const json& up_ms,
               const json& down_ms, const std::string& outcome = "ok") {
  return {{"version", version},           {"name", name},
          {"outcome", outcome},           {"up_ms", up_ms},
          {"down_ms", down_ms},           {"reapply_ms", up_ms},
          {"reversible", true},           {"irreversible", false},
          {"differences", json::array()}, {"column_order", json::array()},
          {"data_loss", json::array()},   {"rollback_path", "down"}};
}

json Gate(const std::string& name, const std::string& status, const std::string& detail) {
  return {{"name", name}, {"status", status}, {"detail", detail}};
}

json GoRehearsal() {
  return {
      {"command", "rehearse"},
      {"ok", true},
      {"verdict", "go"},
      {"reasons", json::array()},
      {"environment", "production"},
      {"database", "postgres://app@db1/shop"},
      {"from_version", "20260127110000"},
      {"to_version", "20260301090000"},
      {"plan_hash", "9f2c4e1a7b3d5f60718293a4b5c6d7e8f9012345678901234567890abcdef12"},
      {"lint", json::array()},
      {"gates",
       {Gate("protected", "pass", "production is protected: a rehearsal is required."),
        Gate("backup", "pass", "backup 20261126T054000Z taken and restored.")}},
      {"backup",
       {{"id", "20261126T054000Z"},
        {"bytes", 1258291},
        {"raw_bytes", 5242880},
        {"took_ms", 40},
        {"reused", false}}},
      {"rehearsal",
       {{"status", "passed"},
        {"at", "2026-11-26T05:40:00Z"},
        {"journal_id", 12},
        {"where", "scratch database on the same server"},
        {"kept", false},
        {"restore_ms", 812},
        {"migrations",
         {Migration("20260210120000", "add_orders_status", 2400, 12),
          Migration("20260301090000", "add_url", 12, 8)}},
        {"took_ms", 3100}}},
      {"rollback",
       {{"by_down_ms", 20},
        {"by_restore_ms", 812},
        {"backup_id", "20261126T054000Z"},
        {"recommended", "down"}}},
  };
}

json NoGoRehearsal() {
  json document = GoRehearsal();
  document["ok"] = false;
  document["verdict"] = "no-go";
  document["reasons"] = {
      "20260301090000_add_url: down leaves the schema different: column post.url still exists"};
  document["gates"][1] = Gate("rehearsal", "fail", "1 migration does not come back the same way.");
  json& differing = document["rehearsal"]["migrations"][1];
  differing["outcome"] = "down_differs";
  differing["reversible"] = false;
  differing["differences"] = {"column post.url still exists"};
  differing["rollback_path"] = "restore";
  document["rehearsal"]["status"] = "failed";
  return document;
}

json IrreversibleRehearsal() {
  json document = GoRehearsal();
  json dropping = Migration("20260302000000", "drop_phone", 5300, nullptr, "irreversible");
  dropping["irreversible"] = true;
  dropping["reversible"] = false;
  dropping["rollback_path"] = "restore";
  dropping["data_loss"] = {"dropping column customer.phone loses 48211 non-null values"};
  document["rehearsal"]["migrations"].push_back(dropping);
  document["rollback"]["by_down_ms"] = nullptr;
  document["rollback"]["recommended"] = "restore";
  return document;
}

json PlanWithoutRehearsal() {
  return {{"command", "plan"},
          {"ok", false},
          {"verdict", "no-go"},
          {"reasons", {"production requires a passing rehearsal of this plan"}},
          {"environment", "production"},
          {"database", "postgres://app@db1/shop"},
          {"from_version", "20260127110000"},
          {"to_version", "20260301090000"},
          {"pending",
           {{{"version", "20260301090000"},
             {"name", "add_url"},
             {"file", "20260301090000_add_url.up.sql"},
             {"irreversible", false},
             {"no_transaction", true}}}},
          {"gates", {Gate("rehearsal", "fail", "No rehearsal of this plan.")}},
          {"backup_estimate_bytes", 5242880},
          {"rehearsal", nullptr},
          {"rollback", nullptr}};
}

// The widths of the timeline's bars, in document order.
std::vector<int> BarWidths(const std::string& html) {
  std::vector<int> widths;
  std::regex bar(R"re(<rect x="80" y="\d+" width="(\d+)")re");
  for (std::sregex_iterator it(html.begin(), html.end(), bar), end; it != end; ++it) {
    widths.push_back(std::stoi((*it)[1]));
  }
  return widths;
}

// The lines of `markdown` that belong to a table (they start with a pipe).
std::vector<std::string> TableLines(const std::string& markdown) {
  std::vector<std::string> lines;
  std::istringstream in(markdown);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == '|') lines.push_back(line);
  }
  return lines;
}

// Cell separators a Markdown table parser sees: pipes not escaped by a backslash.
int UnescapedPipes(const std::string& line) {
  int pipes = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\') {
      ++i;
    } else if (line[i] == '|') {
      ++pipes;
    }
  }
  return pipes;
}

// Whether `needle` occurs in `markdown` without a backslash escaping its first character.
bool HasUnescaped(const std::string& markdown, const std::string& needle) {
  for (auto at = markdown.find(needle); at != std::string::npos;
       at = markdown.find(needle, at + 1)) {
    if (at == 0 || markdown[at - 1] != '\\') return true;
  }
  return false;
}

TEST(HtmlReport, GoShowsVerdictFiguresAndBothWaysBack) {
  std::string html = RenderHtmlReport(GoRehearsal());
  std::string text = VisibleText(html);
  EXPECT_NE(text.find("GO safemig rehearse found nothing that stops this release."),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("NO-GO"), std::string::npos);
  EXPECT_NE(text.find("production"), std::string::npos);
  EXPECT_NE(text.find("postgres://app@db1/shop"), std::string::npos);
  EXPECT_NE(text.find("20260127110000 \u2192 20260301090000"), std::string::npos);
  EXPECT_NE(text.find("If something goes wrong, we can be back in about 20 ms by "
                      "down-migrations, or 812 ms by restore."),
            std::string::npos);
  EXPECT_NE(text.find("Recommended way back: down-migrations"), std::string::npos);
  EXPECT_NE(text.find("protected PASS production is protected"), std::string::npos);
  EXPECT_NE(text.find("1.2 MiB stored of 5.0 MiB"), std::string::npos);
  EXPECT_NE(text.find("passed in 3.1 s"), std::string::npos);
  EXPECT_NE(text.find("No lint findings."), std::string::npos);
  // The timeline labels its bars in human units.
  EXPECT_NE(text.find("up 2.4 s"), std::string::npos);
  EXPECT_NE(text.find("down 8 ms"), std::string::npos);
}

TEST(HtmlReport, IsSelfContained) {
  std::string html = RenderHtmlReport(GoRehearsal());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<style>"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("url(http"), std::string::npos);
}

TEST(HtmlReport, TimelineScalesBarsToTheLongest) {
  json document = GoRehearsal();
  document["rehearsal"]["migrations"] = {Migration("1", "slow", 1000, 250),
                                         Migration("2", "quick", 500, 0)};
  std::vector<int> widths = BarWidths(RenderHtmlReport(document));
  ASSERT_EQ(widths.size(), 4u);
  EXPECT_EQ(widths[0], 760);      // the longest takes the whole track
  EXPECT_EQ(widths[1], 760 / 4);  // 250 of 1000 ms
  EXPECT_EQ(widths[2], 760 / 2);
  EXPECT_GT(widths[3], 0);  // 0 ms still shows that it ran
  EXPECT_LT(widths[3], widths[1]);
}

TEST(HtmlReport, NoGoNamesItsReasonsAndWhatDiffers) {
  std::string text = VisibleText(RenderHtmlReport(NoGoRehearsal()));
  EXPECT_NE(text.find("NO-GO safemig rehearse says this release must not go out, because: "
                      "20260301090000_add_url: down leaves the schema different: column "
                      "post.url still exists"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("rehearsal FAIL 1 migration does not come back the same way."),
            std::string::npos);
  EXPECT_NE(text.find("20260301090000_add_url \u26a0 down leaves the schema different 12 ms "
                      "8 ms 12 ms no restore Schema after down: column post.url still exists"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("FAILED in 3.1 s"), std::string::npos);
}

TEST(HtmlReport, IrreversibleMigrationLeavesOnlyTheRestore) {
  std::string text = VisibleText(RenderHtmlReport(IrreversibleRehearsal()));
  EXPECT_NE(text.find("If something goes wrong, we can be back in about 812 ms by restore; "
                      "down-migrations are not available: 20260302000000_drop_phone is "
                      "irreversible."),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Recommended way back: restore of backup 20261126T054000Z"),
            std::string::npos);
  EXPECT_NE(text.find("Data loss: dropping column customer.phone loses 48211 non-null values"),
            std::string::npos);
  EXPECT_NE(text.find("no: marked irreversible"), std::string::npos);
  EXPECT_NE(text.find("down not run"), std::string::npos);
}

TEST(HtmlReport, PlanWithoutRehearsalSaysSo) {
  std::string text = VisibleText(RenderHtmlReport(PlanWithoutRehearsal()));
  EXPECT_NE(text.find("NO-GO"), std::string::npos);
  EXPECT_NE(text.find("No rehearsal yet."), std::string::npos);
  EXPECT_NE(text.find("How long a rollback takes is not known: no rehearsal yet."),
            std::string::npos);
  EXPECT_NE(text.find("20260301090000_add_url 20260301090000_add_url.up.sql runs outside a "
                      "transaction"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Backup estimate 5.0 MiB"), std::string::npos);
}

TEST(HtmlReport, RehearsalMarkedMissingIsNoRehearsal) {
  json document = PlanWithoutRehearsal();
  document["rehearsal"] = {{"status", "missing"}};
  EXPECT_NE(VisibleText(RenderHtmlReport(document)).find("No rehearsal yet."), std::string::npos);
}

TEST(HtmlReport, StaleRehearsalAsksForANewOne) {
  json document = PlanWithoutRehearsal();
  document["rehearsal"] = {{"status", "stale"}, {"at", "2026-11-20T10:00:00Z"}};
  EXPECT_NE(VisibleText(RenderHtmlReport(document))
                .find("The last rehearsal at 2026-11-20T10:00:00Z is stale: it was not of this "
                      "plan on this starting schema, so rehearse again."),
            std::string::npos);
}

TEST(HtmlReport, UpWithoutVerdictShowsWhatItApplied) {
  // The `up` document of a safemig from before the deploy pipeline.
  json document = {
      {"command", "up"},
      {"ok", true},
      {"environment", "default"},
      {"database", "sqlite:shop.db"},
      {"from_version", ""},
      {"to_version", "20260127110000"},
      {"took_ms", 15},
      {"migrations",
       {{{"version", "20260105090000"}, {"name", "create_customers"}, {"took_ms", 1}}}}};
  std::string text = VisibleText(RenderHtmlReport(document));
  EXPECT_NE(text.find("NO VERDICT safemig up did not give a go/no-go verdict."), std::string::npos)
      << text;
  EXPECT_NE(text.find("Versions (empty database) \u2192 20260127110000"), std::string::npos);
  EXPECT_NE(text.find("20260105090000_create_customers applied 1 ms"), std::string::npos);
}

TEST(HtmlReport, HostileStringsShowAsText) {
  json document = NoGoRehearsal();
  document["environment"] = "\"><img src=x onerror=alert(1)>";
  document["reasons"] = {"<script>alert('reason')</script> | and\na new line"};
  document["rehearsal"]["migrations"][0]["name"] = "<script>alert(1)</script>";
  document["rehearsal"]["migrations"][1]["differences"] = {"column <b>x</b> & 'y'"};
  std::string html = RenderHtmlReport(document);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<b>x"), std::string::npos);
  std::string text = VisibleText(html);
  EXPECT_NE(text.find("20260210120000_<script>alert(1)</script>"), std::string::npos);
  EXPECT_NE(text.find("\"><img src=x onerror=alert(1)>"), std::string::npos);
  EXPECT_NE(text.find("<script>alert('reason')</script> | and a new line"), std::string::npos);
  EXPECT_NE(text.find("column <b>x</b> & 'y'"), std::string::npos);
}

TEST(HtmlReport, CommandFailureIsNoGoWithTheError) {
  json document = {{"command", "deploy"},
                   {"ok", false},
                   {"error",
                    {{"category", "lock_held"},
                     {"exit_code", 4},
                     {"message", "lock held by alice@build-7 pid 12 since 05:30"},
                     {"hint", "wait for that run to finish"}}}};
  std::string text = VisibleText(RenderHtmlReport(document));
  EXPECT_NE(text.find("NO-GO safemig deploy failed before reaching a verdict"), std::string::npos)
      << text;
  EXPECT_NE(text.find("Error (lock_held, exit 4): lock held by alice@build-7 pid 12 since 05:30"),
            std::string::npos);
  EXPECT_NE(text.find("What to do: wait for that run to finish"), std::string::npos);
}

TEST(HtmlReport, DeployShowsWhatItAppliedAndWhetherItVerified) {
  json document = GoRehearsal();
  document["command"] = "deploy";
  document["migrations"] = {
      {{"version", "20260210120000"}, {"name", "add_orders_status"}, {"took_ms", 65000}}};
  document["run_id"] = "20261126T060000Z-1a2b3c4d";
  document["took_ms"] = 71000;
  document["verified"] = true;
  std::string text = VisibleText(RenderHtmlReport(document));
  EXPECT_NE(text.find("Verified: the database's schema now equals the rehearsal's up-state."),
            std::string::npos);
  EXPECT_NE(text.find("Applied by this run"), std::string::npos);
  EXPECT_NE(text.find("applied 1 min 05 s"), std::string::npos);
  EXPECT_NE(text.find("Took 1 min 11 s"), std::string::npos);

  document["verified"] = false;
  EXPECT_NE(VisibleText(RenderHtmlReport(document)).find("NOT verified"), std::string::npos);
}

TEST(HtmlReport, MissingOrMistypedFieldsDoNotStopTheReport) {
  for (const json& document : {json(), json::array(), json("text"),
                               json{{"rehearsal", 5},
                                    {"gates", "all"},
                                    {"rollback", {{"by_down_ms", "soon"}}},
                                    {"reasons", {1, nullptr, "kept"}},
                                    {"lint", {nullptr, 3}},
                                    {"migrations", {{{"took_ms", "x"}}}}}}) {
    std::string text;
    ASSERT_NO_THROW(text = VisibleText(RenderHtmlReport(document))) << document.dump();
    EXPECT_NE(text.find("NO VERDICT"), std::string::npos) << document.dump();
    ASSERT_NO_THROW(RenderMarkdownSummary(document)) << document.dump();
  }
}

TEST(MarkdownSummary, GoHasVerdictRollbackAndTables) {
  std::string markdown = RenderMarkdownSummary(GoRehearsal());
  EXPECT_EQ(markdown.rfind("## \u2705 GO \u00b7 safemig rehearse \u00b7 production", 0), 0u)
      << markdown;
  EXPECT_NE(markdown.find("**Rollback:** If something goes wrong, we can be back in about 20 ms "
                          "by down-migrations, or 812 ms by restore."),
            std::string::npos)
      << markdown;
  EXPECT_NE(markdown.find("| Versions | `20260127110000` \u2192 `20260301090000` |"),
            std::string::npos);
  EXPECT_NE(markdown.find("| protected | \u2705 PASS |"), std::string::npos);
  EXPECT_NE(markdown.find("| `20260210120000_add_orders_status` | ok: down and up again give "
                          "the same schema | 2.4 s | 12 ms | down |"),
            std::string::npos)
      << markdown;
}

TEST(MarkdownSummary, NoGoListsReasonsAndFailedGates) {
  std::string markdown = RenderMarkdownSummary(NoGoRehearsal());
  EXPECT_EQ(markdown.rfind("## \u274c NO-GO", 0), 0u);
  EXPECT_NE(markdown.find("- 20260301090000\\_add\\_url: down leaves the schema different: "
                          "column post.url still exists\n"),
            std::string::npos)
      << markdown;
  EXPECT_NE(markdown.find("| rehearsal | \u274c **FAIL** |"), std::string::npos);
  EXPECT_NE(markdown.find("**down leaves the schema different** | 12 ms | 8 ms | restore | "
                          "column post.url still exists |"),
            std::string::npos)
      << markdown;
}

TEST(MarkdownSummary, IrreversibleMigrationLeavesOnlyTheRestore) {
  std::string markdown = RenderMarkdownSummary(IrreversibleRehearsal());
  EXPECT_NE(markdown.find("we can be back in about 812 ms by restore; down-migrations are not "
                          "available: 20260302000000\\_drop\\_phone is irreversible."),
            std::string::npos)
      << markdown;
  EXPECT_NE(markdown.find("data loss: dropping column customer.phone loses 48211 non-null"),
            std::string::npos);
}

TEST(MarkdownSummary, PlanWithoutRehearsalListsWhatWouldRun) {
  std::string markdown = RenderMarkdownSummary(PlanWithoutRehearsal());
  EXPECT_NE(markdown.find("No rehearsal yet."), std::string::npos);
  EXPECT_NE(markdown.find("| `20260301090000_add_url` | runs outside a transaction |"),
            std::string::npos)
      << markdown;
}

TEST(MarkdownSummary, HostileStringsCannotBreakTablesOrInjectHtml) {
  json document = NoGoRehearsal();
  document["database"] = "postgres://app@db1/sh|op";
  document["gates"][0]["detail"] = "line one\nline two | <script>alert(1)</script>";
  document["rehearsal"]["migrations"][0]["name"] = "a|b\n| c";
  document["rehearsal"]["migrations"][1]["differences"] = {"x`y` | z", "<img src=x onerror=1>"};
  std::string markdown = RenderMarkdownSummary(document);
  EXPECT_FALSE(HasUnescaped(markdown, "<script"));
  EXPECT_FALSE(HasUnescaped(markdown, "<img"));
  EXPECT_NE(markdown.find("\\<img src=x onerror=1\\>"), std::string::npos);
  EXPECT_NE(markdown.find("line one<br>line two \\| \\<script\\>"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("`20260210120000_a\\|b \\| c`"), std::string::npos) << markdown;

  // Every row of a table has as many cells as its header, so no text spilled into a column.
  std::vector<std::string> lines = TableLines(markdown);
  ASSERT_FALSE(lines.empty());
  int columns = -1;
  for (const std::string& line : lines) {
    if (line.rfind("| Gate", 0) == 0 || line.rfind("| Migration", 0) == 0 ||
        line.rfind("| |", 0) == 0) {
      columns = UnescapedPipes(line);
    }
    EXPECT_EQ(UnescapedPipes(line), columns) << line;
  }
}

TEST(MarkdownSummary, LongRehearsalsAreCut) {
  json document = GoRehearsal();
  json migrations = json::array();
  for (int i = 0; i < 100; ++i) {
    migrations.push_back(Migration(std::to_string(20260101000000 + i), "step", 10, 5));
  }
  document["rehearsal"]["migrations"] = migrations;
  std::string markdown = RenderMarkdownSummary(document);
  EXPECT_NE(markdown.find("\u2026 and 75 more (see the HTML report)."), std::string::npos);
  EXPECT_LT(markdown.size(), 8000u);
}

}  // namespace
}  // namespace safemig
