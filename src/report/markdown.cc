// The Markdown summary of the go/no-go report, for pull-request comments and CI step
// summaries (GitHub-flavoured tables). It says what the HTML page says, in fewer rows.
#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "report/facts.h"
#include "report/report.h"

namespace safemig {
namespace {

using report::Facts;
using report::RehearsedMigration;

// Long lists are cut here: a PR comment is read, the HTML page is studied.
constexpr std::size_t kMaxRows = 25;

// Prose from the document: every character that could start Markdown or HTML is escaped
// (a migration named `<img onerror=...>` shows as text), and a line break becomes <br> so
// it cannot end a table row or a list item.
std::string Text(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size() + 8);
  bool line_start = true;
  for (char c : text) {
    switch (c) {
      case '\r':
        continue;
      case '\n':
        escaped += "<br>";
        line_start = true;
        continue;
      case '\\':
      case '`':
      case '*':
      case '_':
      case '[':
      case ']':
      case '<':
      case '>':
      case '|':
      case '~':
      case '&':
        escaped += '\\';
        break;
      case '#':
      case '+':
      case '-':
      case '=':
        // Only at the start of a line do these open a heading, list or rule.
        if (line_start) escaped += '\\';
        break;
      default:
        break;
    }
    escaped += c;
    line_start = false;
  }
  return escaped;
}

// An identifier (version, URL, rule) as a table cell's code span: nothing inside is
// interpreted, except that the table still needs its pipes escaped; a line break becomes a
// space.
std::string Code(std::string_view text) {
  if (text.empty()) return {};
  std::string body;
  std::size_t run = 0;
  std::size_t longest_run = 0;
  for (char c : text) {
    if (c == '`') {
      longest_run = std::max(longest_run, ++run);
    } else {
      run = 0;
    }
    if (c == '\r') continue;
    if (c == '\n') {
      body += ' ';
    } else if (c == '|') {
      body += "\\|";
    } else {
      body += c;
    }
  }
  std::string fence(longest_run + 1, '`');
  // A code span drops one space at each end when both ends have one: pad to keep them.
  bool pad =
      body.front() == '`' || body.back() == '`' || (body.front() == ' ' && body.back() == ' ');
  return fence + (pad ? " " : "") + body + (pad ? " " : "") + fence;
}

void Row(std::string& markdown, const std::vector<std::string>& cells) {
  markdown += "|";
  for (const std::string& cell : cells) markdown += " " + (cell.empty() ? " " : cell) + " |";
  markdown += "\n";
}

// A table of at most kMaxRows rows, one per item, saying how many more the HTML page has.
// `header` is the heading row and the alignment row; `cells` turns an item into its cells.
template <typename Item, typename Cells>
void CappedTable(std::string& markdown, const char* header, const std::vector<Item>& items,
                 Cells cells) {
  markdown += header;
  for (std::size_t i = 0; i < items.size() && i < kMaxRows; ++i) Row(markdown, cells(items[i]));
  if (items.size() > kMaxRows) {
    markdown +=
        fmt::format("\n\u2026 and {} more (see the HTML report).\n", items.size() - kMaxRows);
  }
  markdown += "\n";
}

std::string Join(const std::vector<std::string>& parts) {
  std::string joined;
  for (const std::string& part : parts) joined += (joined.empty() ? "" : "<br>") + part;
  return joined;
}

void VerdictPart(std::string& markdown, const Facts& facts) {
  const char* mark = facts.verdict == report::Verdict::kGo     ? "\u2705 "
                     : facts.verdict == report::Verdict::kNoGo ? "\u274c "
                                                               : "";
  std::string heading = fmt::format("## {}{}", mark, report::VerdictWord(facts));
  if (!facts.command.empty()) heading += " \u00b7 safemig " + Text(facts.command);
  if (!facts.environment.empty()) heading += " \u00b7 " + Text(facts.environment);
  markdown += heading + "\n\n" + Text(report::VerdictSummary(facts)) + "\n\n";
  if (!facts.reasons.empty()) {
    for (const std::string& reason : facts.reasons) markdown += "- " + Text(reason) + "\n";
    markdown += "\n";
  }
  if (facts.failure) {
    const report::Failure& failure = *facts.failure;
    std::string kind = failure.category;
    if (failure.exit_code)
      kind += fmt::format("{}exit {}", kind.empty() ? "" : ", ", *failure.exit_code);
    markdown += fmt::format("**Error{}:** {}\n\n", kind.empty() ? "" : " (" + Text(kind) + ")",
                            Text(failure.message));
    if (!failure.hint.empty()) markdown += "**What to do:** " + Text(failure.hint) + "\n\n";
  }
}

void RollbackPart(std::string& markdown, const Facts& facts) {
  markdown += "**Rollback:** " + Text(report::RollbackSentence(facts));
  for (const std::string& sentence :
       {report::RecommendationSentence(facts), report::VerifiedSentence(facts)}) {
    if (!sentence.empty()) markdown += " " + Text(sentence);
  }
  markdown += "\n\n";
}

void ReleasePart(std::string& markdown, const Facts& facts) {
  std::vector<std::vector<std::string>> rows;
  if (!facts.database.empty()) rows.push_back({"Database", Code(facts.database)});
  if (!facts.from_version.empty() || !facts.to_version.empty()) {
    rows.push_back(
        {"Versions", (facts.from_version.empty() ? "(empty database)" : Code(facts.from_version)) +
                         " \u2192 " +
                         (facts.to_version.empty() ? "(unknown)" : Code(facts.to_version))});
  }
  if (!facts.pending.empty())
    rows.push_back({"Migrations in the plan", fmt::format("{}", facts.pending.size())});
  if (!facts.plan_hash.empty()) rows.push_back({"Plan", Code(facts.plan_hash.substr(0, 16))});
  if (facts.backup) {
    std::string value = facts.backup->id.empty() ? "(no id)" : Code(facts.backup->id);
    value += ", " + Text(report::SizeText(facts.backup->bytes));
    if (facts.backup->took_ms) value += " in " + Text(report::DurationText(facts.backup->took_ms));
    if (facts.backup->reused) value += " (reused)";
    rows.push_back({"Backup", value});
  }
  if (facts.backup_estimate_bytes) {
    rows.push_back({"Backup estimate", Text(report::SizeText(facts.backup_estimate_bytes))});
  }
  if (!facts.run_id.empty()) rows.push_back({"Run", Code(facts.run_id)});
  if (facts.took_ms) rows.push_back({"Took", Text(report::DurationText(facts.took_ms))});
  if (rows.empty()) return;
  markdown += "| | |\n|---|---|\n";
  for (const auto& row : rows) Row(markdown, row);
  markdown += "\n";
}

void GatesPart(std::string& markdown, const Facts& facts) {
  if (facts.gates.empty()) return;
  CappedTable(markdown, "### Gates\n\n| Gate | Status | Detail |\n|---|---|---|\n", facts.gates,
              [](const report::Gate& gate) -> std::vector<std::string> {
                std::string status = report::GateStatusText(gate.status);
                if (gate.status == "fail") status = "\u274c **" + status + "**";
                if (gate.status == "pass") status = "\u2705 " + status;
                return {Text(gate.name), status, Text(gate.detail)};
              });
}

std::string FindingsCell(const RehearsedMigration& migration) {
  std::vector<std::string> lines;
  for (const std::string& difference : migration.differences) lines.push_back(Text(difference));
  for (const std::string& order : migration.column_order) lines.push_back(Text(order));
  for (const std::string& loss : migration.data_loss) lines.push_back("data loss: " + Text(loss));
  if (!migration.error.empty()) lines.push_back("error: " + Text(migration.error));
  return Join(lines);
}

void RehearsalPart(std::string& markdown, const Facts& facts) {
  markdown += "### Rehearsal\n\n" + Text(report::RehearsalSentence(facts)) + "\n\n";
  if (!facts.rehearsal || facts.rehearsal->migrations.empty()) return;
  CappedTable(markdown,
              "| Migration | Outcome | Up | Down | Way back | What does not come back |\n"
              "|---|---|---:|---:|---|---|\n",
              facts.rehearsal->migrations,
              [](const RehearsedMigration& migration) -> std::vector<std::string> {
                std::string outcome = Text(report::OutcomeText(migration.outcome));
                if (report::OutcomeIsProblem(migration.outcome)) {
                  outcome = "\u26a0\ufe0f **" + outcome + "**";
                }
                std::string way_back = Text(migration.rollback_path);
                if (migration.irreversible) way_back = "restore (irreversible)";
                return {Code(report::MigrationLabel(migration.version, migration.name)),
                        outcome,
                        Text(report::DurationText(migration.up_ms)),
                        Text(report::DurationText(migration.down_ms)),
                        way_back,
                        FindingsCell(migration)};
              });
}

void LintPart(std::string& markdown, const Facts& facts) {
  if (facts.lint.empty()) {
    markdown += "No lint findings.\n\n";
    return;
  }
  CappedTable(markdown,
              "### Lint findings\n\n| Migration | Severity | Rule | Finding |\n|---|---|---|---|\n",
              facts.lint, [](const report::LintFinding& finding) -> std::vector<std::string> {
                return {Code(finding.version), Text(finding.severity), Code(finding.rule),
                        Text(finding.message)};
              });
}

// Without a rehearsal nothing else names the migrations, so the plan lists them.
void PendingPart(std::string& markdown, const Facts& facts) {
  bool rehearsed = facts.rehearsal && !facts.rehearsal->migrations.empty();
  if (facts.pending.empty() || rehearsed) return;
  CappedTable(markdown, "### Pending migrations\n\n| Migration | Notes |\n|---|---|\n",
              facts.pending,
              [](const report::PendingMigration& migration) -> std::vector<std::string> {
                return {Code(report::MigrationLabel(migration.version, migration.name)),
                        Join(report::PendingNotes(migration))};
              });
}

void AppliedPart(std::string& markdown, const Facts& facts) {
  if (facts.applied.empty()) return;
  CappedTable(markdown, "### Applied by this run\n\n| Migration | Took |\n|---|---:|\n",
              facts.applied,
              [](const report::AppliedMigration& migration) -> std::vector<std::string> {
                return {Code(report::MigrationLabel(migration.version, migration.name)),
                        Text(report::DurationText(migration.took_ms))};
              });
}

}  // namespace

std::string RenderMarkdownSummary(const nlohmann::json& document) {
  Facts facts = report::ReadFacts(document);
  std::string markdown;
  VerdictPart(markdown, facts);
  RollbackPart(markdown, facts);
  ReleasePart(markdown, facts);
  GatesPart(markdown, facts);
  RehearsalPart(markdown, facts);
  LintPart(markdown, facts);
  PendingPart(markdown, facts);
  AppliedPart(markdown, facts);
  return markdown;
}

}  // namespace safemig
