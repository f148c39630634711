// `ci`: one non-interactive call for pipelines. Validates the migrations, lints the pending
// ones and rehearses them (up, down, up again on a copy) against a throwaway database, and
// writes what happened as JSON, JUnit XML and a Markdown summary.

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/clock.h"
#include "core/error.h"
#include "report/report.h"

namespace safemig::cli {

namespace fs = std::filesystem;

namespace {

struct CiFlags {
  std::string junit;
  std::string summary;
  std::string report;
};

std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 forbids most control characters even escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

struct TestCase {
  std::string classname;
  std::string name;
  double seconds = 0;
  std::string failure;  // empty: passed
  std::string output;
  std::string skipped;  // why it did not run
};

std::string Seconds(const std::optional<std::chrono::milliseconds>& ms) {
  return ms ? fmt::format("{:.3f}", static_cast<double>(ms->count()) / 1000.0) : "0";
}

// One test case per check: validation, lint of each pending migration, rehearsal of each.
std::vector<TestCase> TestCases(const DeployReport& report) {
  std::vector<TestCase> cases;
  TestCase validate{"safemig.validate", "migration files and drift", 0, "", "", ""};
  for (const Gate& gate : report.gates) {
    // The rehearsal gate is reported per migration below.
    if (gate.status == GateStatus::kFail && gate.name != "rehearsal") {
      validate.failure += gate.detail + "\n";
    }
  }
  cases.push_back(validate);
  for (const PlannedStep& step : report.pending) {
    TestCase lint{"safemig.lint", step.version + "_" + step.name, 0, "", "", ""};
    for (const LintFinding& f : report.lint) {
      if (f.version != step.version) continue;
      std::string line = fmt::format("{} [{}] {}\n", f.severity, f.rule, f.message);
      (f.severity == "error" ? lint.failure : lint.output) += line;
    }
    cases.push_back(lint);
  }
  if (report.rehearsal) {
    for (const MigrationRehearsal& m : report.rehearsal->migrations) {
      TestCase rehearse{"safemig.rehearse", m.version + "_" + m.name, 0, "", "", ""};
      rehearse.seconds = static_cast<double>((m.up.value_or(std::chrono::milliseconds(0)) +
                                              m.down.value_or(std::chrono::milliseconds(0)) +
                                              m.reapply.value_or(std::chrono::milliseconds(0)))
                                                 .count()) /
                         1000.0;
      rehearse.output = fmt::format("up {} s, down {} s, up again {} s; rollback by {}",
                                    Seconds(m.up), Seconds(m.down), Seconds(m.reapply),
                                    m.rollback_path);
      if (m.outcome == "not_run") {
        rehearse.skipped = "not rehearsed: an earlier migration failed on the copy";
        rehearse.output.clear();
      } else if (m.outcome != "ok" && m.outcome != "irreversible") {
        rehearse.failure = m.outcome + (m.error.empty() ? "" : ": " + m.error);
        for (const std::string& d : m.differences) rehearse.failure += "\n" + d;
      }
      cases.push_back(rehearse);
    }
  }
  return cases;
}

std::string JUnitXml(const std::vector<TestCase>& cases, std::chrono::milliseconds took) {
  int failures = 0;
  int skipped = 0;
  for (const TestCase& c : cases) {
    failures += c.failure.empty() ? 0 : 1;
    skipped += c.skipped.empty() ? 0 : 1;
  }
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  const double seconds = static_cast<double>(took.count()) / 1000.0;
  xml += fmt::format("<testsuites name=\"safemig ci\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n",
                     cases.size(), failures, seconds);
  xml += fmt::format(
      "  <testsuite name=\"safemig ci\" tests=\"{}\" failures=\"{}\" errors=\"0\" "
      "skipped=\"{}\" time=\"{:.3f}\" timestamp=\"{}\">\n",
      cases.size(), failures, skipped, seconds, NowIso8601());
  for (const TestCase& c : cases) {
    xml += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\"",
                       XmlEscape(c.classname), XmlEscape(c.name), c.seconds);
    if (c.failure.empty() && c.output.empty() && c.skipped.empty()) {
      xml += "/>\n";
      continue;
    }
    xml += ">\n";
    if (!c.failure.empty()) {
      std::string first = c.failure.substr(0, c.failure.find('\n'));
      xml += fmt::format("      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                         XmlEscape(first), XmlEscape(c.classname), XmlEscape(c.failure));
    }
    if (!c.skipped.empty()) {
      xml += fmt::format("      <skipped message=\"{}\"/>\n", XmlEscape(c.skipped));
    }
    if (!c.output.empty()) {
      xml += fmt::format("      <system-out>{}</system-out>\n", XmlEscape(c.output));
    }
    xml += "    </testcase>\n";
  }
  xml += "  </testsuite>\n</testsuites>\n";
  return xml;
}

void WriteText(const std::string& path, const std::string& text, bool append) {
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  out << text;
  out.flush();
  if (!out) {
    throw Error(Category::kUsage, fmt::format("cannot write {}", path),
                "check the path and its directory's permissions");
  }
}

void PrintText(const Console& console, const DeployReport& report,
               const std::vector<TestCase>& cases) {
  for (const TestCase& c : cases) {
    std::string what = c.classname.substr(c.classname.find('.') + 1);
    console.Line(fmt::format("{:<5} {:<9} {}{}",
                             !c.failure.empty() ? "FAIL" : !c.skipped.empty() ? "skip" : "ok",
                             what, c.name,
                             c.failure.empty() ? (c.output.empty() ? "" : "  (" + c.output.substr(0, c.output.find('\n')) + ")")
                                               : ": " + c.failure.substr(0, c.failure.find('\n'))));
  }
  console.Line(fmt::format("Verdict: {} ({} pending migration{} checked in {}).",
                           report.verdict == "go" ? "GO" : "NO-GO", report.pending.size(),
                           report.pending.size() == 1 ? "" : "s", FormatDuration(report.took)));
}

void RunCi(const GlobalOptions& options, const CiFlags& flags, int& exit_code) {
  Console console(options);
  if (!NamesADatabase(options)) {
    throw Error(Category::kUsage, "ci needs a throwaway database to rehearse on",
                "pass --url sqlite:ci.db, or the URL of the pipeline's database service");
  }
  Target target = OpenTarget(options, /*create_if_missing=*/true);
  DeployRequest request;
  request.command = "rehearse";
  request.environment = target.resolved.environment;
  request.environments = target.resolved.config.environments;
  request.url = target.url;
  request.files = LoadMigrations(target.resolved);
  request.yes = true;
  request.jobs = options.jobs;
  request.runner = RunnerName();
  request.applied_by = CurrentUserAtHost();
  request.lint = MakeLintHook(target.resolved, request.files);
  request.lint_errors_block = true;  // a pipeline fails on a lint error wherever it deploys
  auto reporter = MakeReporter(console);
  DeployReport report = RehearseOnly(*target.driver, request, *reporter);
  report.command = "ci";
  const nlohmann::json document = DeployJson(report);
  const std::vector<TestCase> cases = TestCases(report);
  if (!flags.junit.empty()) WriteText(flags.junit, JUnitXml(cases, report.took), false);
  const std::string markdown = RenderMarkdownSummary(document);
  if (!flags.summary.empty()) WriteText(flags.summary, markdown, false);
  if (!flags.report.empty()) WriteText(flags.report, RenderHtmlReport(document), false);
  if (const char* step_summary = std::getenv("GITHUB_STEP_SUMMARY");
      step_summary != nullptr && *step_summary != '\0') {
    WriteText(step_summary, markdown + "\n", true);
  }
  if (console.json()) {
    console.Json(document);
  } else {
    PrintText(console, report, cases);
  }
  if (report.refusal) Refuse(report, exit_code);
}

}  // namespace

void SetupCiCommand(CLI::App& app, GlobalOptions& options, int& exit_code) {
  auto flags = std::make_shared<CiFlags>();
  auto* ci = app.add_subcommand(
      "ci",
      "for pipelines: validate, lint and rehearse the pending migrations on a throwaway "
      "database; exit 5 on a no-go");
  ci->add_option("--junit", flags->junit, "write a JUnit XML report (one test case per check)");
  ci->add_option("--summary", flags->summary,
                 "write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set)");
  ci->add_option("--report", flags->report, "write the go/no-go page (self-contained HTML)");
  ci->callback([&options, flags, &exit_code] { RunCi(options, *flags, exit_code); });
}

}  // namespace safemig::cli
