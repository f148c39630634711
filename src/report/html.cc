// The HTML page of the go/no-go report: one file a release engineer can mail, attach to a
// ticket or print, so it carries its CSS and its chart inline and runs no script.
#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "report/facts.h"
#include "report/report.h"

namespace safemig {
namespace {

using report::Facts;
using report::RehearsedMigration;

std::string Escape(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&#39;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

// SVG text does not wrap: a very long migration name is cut (its full text stays in the
// row's <title>), on a character boundary so the UTF-8 stays valid.
std::string Shorten(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "\u2026";
}

// Black and white printers lose the colours, so every status also reads as a word.
const char* kStyle = R"css(
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1b1b1b;
  background: #fff; max-width: 1100px; margin: 24px auto; padding: 0 20px; line-height: 1.45; }
h2 { font-size: 20px; border-bottom: 2px solid #1b1b1b; padding-bottom: 2px; margin: 28px 0 10px; }
.verdict { border: 8px solid #6b6b6b; border-radius: 10px; padding: 14px 24px; }
.verdict.go { border-color: #1d7a35; background: #e6f4ea; }
.verdict.no-go { border-color: #b3261e; border-style: double; background: #fdecea; }
.verdict.none { border-style: dashed; background: #f2f2f2; }
.verdict .context { margin: 0; font-size: 15px; color: #333; }
.verdict h1 { font-size: 64px; line-height: 1.1; margin: 6px 0; letter-spacing: 2px; }
.verdict.go h1 { color: #1d7a35; }
.verdict.no-go h1 { color: #b3261e; }
.verdict .summary { font-size: 18px; margin: 4px 0; }
.verdict ul { font-size: 17px; margin: 6px 0 4px; }
.rollback { font-size: 20px; font-weight: bold; margin: 6px 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { border: 1px solid #bdbdbd; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f1f1f1; }
table.facts th { width: 190px; }
td.num { white-space: nowrap; text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1d7a35; font-weight: bold; }
.fail { color: #b3261e; font-weight: bold; }
.skip { color: #555; }
tr.problem td { background: #fdecea; }
td ul { margin: 0; padding-left: 18px; }
code { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 13px;
  overflow-wrap: anywhere; }
.muted { color: #555; }
svg text { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 13px;
  fill: #1b1b1b; }
svg .label { font-weight: bold; }
svg .muted { fill: #555; }
footer { margin-top: 32px; font-size: 12px; color: #555; }
section { break-inside: avoid; page-break-inside: avoid; }
@media print {
  body { max-width: none; margin: 0; padding: 0; }
  .verdict, tr.problem td, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
)css";

struct Bar {
  const char* kind;  // "up", "down", "applied": also the bar's fill in the legend
  std::optional<std::int64_t> ms;
};

struct BarRow {
  std::string label;
  std::vector<Bar> bars;
};

std::string BarFill(std::string_view kind) {
  if (kind == "down") return "url(#down-hatch)";
  if (kind == "applied") return "#2f6f4f";
  return "#2b5fa8";
}

// Horizontal bars, one group per migration, all scaled to the longest time in the chart so
// the slow step stands out; every bar carries its duration in words as well.
std::string TimelineSvg(const std::vector<BarRow>& rows, const std::vector<const char*>& legend,
                        const std::string& caption) {
  constexpr int kWidth = 1000;
  constexpr int kBarX = 80;
  constexpr int kBarMaxWidth = 760;
  constexpr int kBarHeight = 13;
  constexpr int kBarGap = 17;
  constexpr int kLegendHeight = 34;
  std::int64_t longest = 1;
  for (const BarRow& row : rows) {
    for (const Bar& bar : row.bars) longest = std::max(longest, bar.ms.value_or(0));
  }
  int height = kLegendHeight;
  for (const BarRow& row : rows) height += 22 + static_cast<int>(row.bars.size()) * kBarGap + 8;

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0} {1}\" width=\"100%\" "
      "role=\"img\" aria-label=\"{2}\">\n<title>{2}</title>\n",
      kWidth, height, Escape(caption));
  // Down bars are hatched so they differ from up bars without colour.
  if (std::find(legend.begin(), legend.end(), std::string_view("down")) != legend.end()) {
    svg +=
        "<defs><pattern id=\"down-hatch\" patternUnits=\"userSpaceOnUse\" width=\"6\" "
        "height=\"6\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" "
        "fill=\"#f3c9a8\"/><rect width=\"3\" height=\"6\" fill=\"#a8471a\"/></pattern></defs>\n";
  }
  int x = 0;
  for (const char* kind : legend) {
    svg += fmt::format(
        "<rect x=\"{}\" y=\"8\" width=\"26\" height=\"{}\" fill=\"{}\" stroke=\"#1b1b1b\" "
        "stroke-width=\"0.5\"/><text x=\"{}\" y=\"19\">{}</text>\n",
        x, kBarHeight, BarFill(kind), x + 32, kind);
    x += 110;
  }
  svg +=
      fmt::format("<text x=\"{}\" y=\"19\" class=\"muted\">bars scaled to the longest: {}</text>\n",
                  x + 10, Escape(report::DurationText(longest)));

  int y = kLegendHeight;
  for (const BarRow& row : rows) {
    svg += fmt::format("<g><title>{}</title>\n<text x=\"0\" y=\"{}\" class=\"label\">{}</text>\n",
                       Escape(row.label), y + 15, Escape(Shorten(row.label, 120)));
    int bar_y = y + 22;
    for (const Bar& bar : row.bars) {
      svg += fmt::format("<text x=\"0\" y=\"{}\">{}</text>", bar_y + 11, bar.kind);
      if (bar.ms) {
        int width = static_cast<int>(static_cast<double>(std::max<std::int64_t>(*bar.ms, 0)) /
                                     static_cast<double>(longest) * kBarMaxWidth);
        width = std::max(width, 2);  // a 0 ms step still shows that it ran
        svg += fmt::format(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"#1b1b1b\" "
            "stroke-width=\"0.5\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            kBarX, bar_y, width, kBarHeight, BarFill(bar.kind), kBarX + width + 8, bar_y + 11,
            Escape(report::DurationText(bar.ms)));
      } else {
        svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"muted\">not run</text>\n", kBarX,
                           bar_y + 11);
      }
      bar_y += kBarGap;
    }
    svg += "</g>\n";
    y = bar_y + 8;
  }
  svg += "</svg>\n";
  return svg;
}

std::string List(const std::vector<std::string>& items) {
  std::string html = "<ul>";
  for (const std::string& item : items) html += "<li>" + Escape(item) + "</li>";
  return html + "</ul>";
}

void AddFactRow(std::string& html, const char* heading, const std::string& value_html) {
  html += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", heading, value_html);
}

std::string Code(const std::string& text) { return "<code>" + Escape(text) + "</code>"; }

std::string VerdictHeader(const Facts& facts) {
  const char* css = facts.verdict == report::Verdict::kGo     ? "go"
                    : facts.verdict == report::Verdict::kNoGo ? "no-go"
                                                              : "none";
  const char* mark = facts.verdict == report::Verdict::kGo     ? "\u2714 "
                     : facts.verdict == report::Verdict::kNoGo ? "\u2718 "
                                                               : "";
  std::vector<std::string> context;
  if (!facts.command.empty()) context.push_back("safemig " + facts.command);
  if (!facts.environment.empty()) context.push_back(facts.environment);
  if (!facts.from_version.empty() || !facts.to_version.empty()) {
    context.push_back((facts.from_version.empty() ? "(empty)" : facts.from_version) + " \u2192 " +
                      (facts.to_version.empty() ? "(unknown)" : facts.to_version));
  }
  std::string context_html;
  for (const std::string& part : context) {
    if (!context_html.empty()) context_html += " \u00b7 ";
    context_html += Escape(part);
  }
  std::string html = fmt::format(
      "<header class=\"verdict {}\">\n<p class=\"context\">{}</p>\n"
      "<h1><span aria-hidden=\"true\">{}</span>{}</h1>\n<p class=\"summary\">{}</p>\n",
      css, context_html, mark, report::VerdictWord(facts), Escape(report::VerdictSummary(facts)));
  if (!facts.reasons.empty()) html += List(facts.reasons) + "\n";
  if (facts.failure) {
    const report::Failure& failure = *facts.failure;
    std::string kind = failure.category;
    if (failure.exit_code)
      kind += fmt::format("{}exit {}", kind.empty() ? "" : ", ", *failure.exit_code);
    html += fmt::format("<p><strong>Error{}:</strong> {}</p>\n",
                        kind.empty() ? "" : " (" + Escape(kind) + ")", Escape(failure.message));
    if (!failure.hint.empty()) {
      html += fmt::format("<p><strong>What to do:</strong> {}</p>\n", Escape(failure.hint));
    }
  }
  return html + "</header>\n";
}

std::string RollbackSection(const Facts& facts) {
  std::string html = "<section id=\"rollback\">\n<h2>Rollback readiness</h2>\n";
  html += "<p class=\"rollback\">" + Escape(report::RollbackSentence(facts)) + "</p>\n";
  for (const std::string& sentence :
       {report::RecommendationSentence(facts), report::VerifiedSentence(facts)}) {
    if (!sentence.empty()) html += "<p>" + Escape(sentence) + "</p>\n";
  }
  return html + "</section>\n";
}

std::string ReleaseSection(const Facts& facts) {
  std::string rows;
  if (!facts.environment.empty()) AddFactRow(rows, "Environment", Escape(facts.environment));
  if (!facts.database.empty()) AddFactRow(rows, "Database", Code(facts.database));
  if (!facts.from_version.empty() || !facts.to_version.empty()) {
    AddFactRow(rows, "Versions",
               (facts.from_version.empty() ? "(empty database)" : Code(facts.from_version)) +
                   " \u2192 " + (facts.to_version.empty() ? "(unknown)" : Code(facts.to_version)));
  }
  if (!facts.pending.empty()) {
    AddFactRow(rows, "Migrations in the plan", fmt::format("{}", facts.pending.size()));
  }
  if (!facts.plan_hash.empty()) AddFactRow(rows, "Plan", Code(facts.plan_hash));
  if (facts.backup) {
    const report::Backup& backup = *facts.backup;
    std::string value = backup.id.empty() ? "(no id)" : Code(backup.id);
    value += fmt::format(": {} stored", Escape(report::SizeText(backup.bytes)));
    if (backup.raw_bytes)
      value += fmt::format(" of {}", Escape(report::SizeText(backup.raw_bytes)));
    if (backup.took_ms)
      value += fmt::format(", taken in {}", Escape(report::DurationText(backup.took_ms)));
    if (backup.reused) value += " (reused: nothing changed since it was taken)";
    AddFactRow(rows, "Backup", value);
  }
  if (facts.backup_estimate_bytes) {
    AddFactRow(rows, "Backup estimate", Escape(report::SizeText(facts.backup_estimate_bytes)));
  }
  if (!facts.run_id.empty()) AddFactRow(rows, "Run", Code(facts.run_id));
  if (facts.took_ms) AddFactRow(rows, "Took", Escape(report::DurationText(facts.took_ms)));
  if (rows.empty()) return {};
  return "<section id=\"release\">\n<h2>Release</h2>\n<table class=\"facts\">\n" + rows +
         "</table>\n</section>\n";
}

std::string GatesSection(const Facts& facts) {
  std::string html = "<section id=\"gates\">\n<h2>Gates</h2>\n";
  if (facts.gates.empty())
    return html + "<p class=\"muted\">No gates in this report.</p>\n</section>\n";
  html += "<table>\n<tr><th>Gate</th><th>Status</th><th>Detail</th></tr>\n";
  for (const report::Gate& gate : facts.gates) {
    const char* css = gate.status == "pass" ? "pass" : gate.status == "fail" ? "fail" : "skip";
    html +=
        fmt::format("<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>\n", Escape(gate.name),
                    css, Escape(report::GateStatusText(gate.status)), Escape(gate.detail));
  }
  return html + "</table>\n</section>\n";
}

std::string ReversibleText(const RehearsedMigration& migration) {
  if (migration.irreversible) return "no: marked irreversible";
  if (!migration.reversible) return "unknown";
  return *migration.reversible ? "yes" : "no";
}

std::string WayBackText(const RehearsedMigration& migration) {
  if (migration.rollback_path == "down") return "down-migration";
  if (migration.rollback_path == "restore") return "restore";
  return migration.rollback_path.empty() ? "unknown" : migration.rollback_path;
}

std::string FindingsCell(const RehearsedMigration& migration) {
  std::string html;
  auto add = [&html](const char* heading, const std::vector<std::string>& items) {
    if (items.empty()) return;
    html += fmt::format("<strong>{}</strong>{}", heading, List(items));
  };
  add("Schema after down:", migration.differences);
  add("Column order:", migration.column_order);
  add("Data loss:", migration.data_loss);
  if (!migration.error.empty()) html += "<strong>Error:</strong> " + Escape(migration.error);
  return html.empty() ? "<span class=\"muted\">none</span>" : html;
}

std::string RehearsalSection(const Facts& facts) {
  std::string html = "<section id=\"rehearsal\">\n<h2>Rehearsal</h2>\n";
  html += "<p>" + Escape(report::RehearsalSentence(facts)) + "</p>\n";
  if (!facts.rehearsal || facts.rehearsal->migrations.empty()) return html + "</section>\n";
  const auto& migrations = facts.rehearsal->migrations;

  std::vector<BarRow> rows;
  for (const RehearsedMigration& migration : migrations) {
    rows.push_back({report::MigrationLabel(migration.version, migration.name),
                    {{"up", migration.up_ms}, {"down", migration.down_ms}}});
  }
  html += TimelineSvg(rows, {"up", "down"}, "Up and down times of each migration in the rehearsal");

  html +=
      "<h3>Reversibility</h3>\n<table>\n<tr><th>Migration</th><th>Outcome</th><th>Up</th>"
      "<th>Down</th><th>Up again</th><th>Reversible</th><th>Way back</th>"
      "<th>What does not come back</th></tr>\n";
  for (const RehearsedMigration& migration : migrations) {
    bool problem = report::OutcomeIsProblem(migration.outcome);
    html += fmt::format(
        "<tr{}><td>{}</td><td>{}{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        problem ? " class=\"problem\"" : "",
        Code(report::MigrationLabel(migration.version, migration.name)), problem ? "\u26a0 " : "",
        Escape(report::OutcomeText(migration.outcome)),
        Escape(report::DurationText(migration.up_ms)),
        Escape(report::DurationText(migration.down_ms)),
        Escape(report::DurationText(migration.reapply_ms)), Escape(ReversibleText(migration)),
        Escape(WayBackText(migration)), FindingsCell(migration));
  }
  return html + "</table>\n</section>\n";
}

std::string LintSection(const Facts& facts) {
  std::string html = "<section id=\"lint\">\n<h2>Lint findings</h2>\n";
  if (facts.lint.empty()) return html + "<p class=\"muted\">No lint findings.</p>\n</section>\n";
  html += "<table>\n<tr><th>Migration</th><th>Severity</th><th>Rule</th><th>Finding</th></tr>\n";
  for (const report::LintFinding& finding : facts.lint) {
    html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                        Code(finding.version), Escape(finding.severity), Code(finding.rule),
                        Escape(finding.message));
  }
  return html + "</table>\n</section>\n";
}

std::string PendingSection(const Facts& facts) {
  if (facts.pending.empty()) return {};
  std::string html =
      "<section id=\"pending\">\n<h2>Pending migrations</h2>\n<table>\n"
      "<tr><th>Migration</th><th>File</th><th>Notes</th></tr>\n";
  for (const report::PendingMigration& migration : facts.pending) {
    std::string notes_text;
    for (const std::string& note : report::PendingNotes(migration)) {
      notes_text += (notes_text.empty() ? "" : "; ") + note;
    }
    html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                        Code(report::MigrationLabel(migration.version, migration.name)),
                        Code(migration.file), Escape(notes_text));
  }
  return html + "</table>\n</section>\n";
}

std::string AppliedSection(const Facts& facts) {
  if (facts.applied.empty()) return {};
  std::string html = "<section id=\"applied\">\n<h2>Applied by this run</h2>\n";
  std::vector<BarRow> rows;
  for (const report::AppliedMigration& migration : facts.applied) {
    rows.push_back({report::MigrationLabel(migration.version, migration.name),
                    {{"applied", migration.took_ms}}});
  }
  html += TimelineSvg(rows, {"applied"}, "Time each migration took to apply");
  return html + "</section>\n";
}

}  // namespace

std::string RenderHtmlReport(const nlohmann::json& document) {
  Facts facts = report::ReadFacts(document);
  std::string title = "safemig";
  if (!facts.command.empty()) title += " " + facts.command;
  title += ": " + report::VerdictWord(facts);
  if (!facts.environment.empty()) title += " (" + facts.environment + ")";

  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  html += "<title>" + Escape(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  html += VerdictHeader(facts);
  html += RollbackSection(facts);
  html += ReleaseSection(facts);
  html += GatesSection(facts);
  html += RehearsalSection(facts);
  html += LintSection(facts);
  html += PendingSection(facts);
  html += AppliedSection(facts);
  html += "<footer>Generated by safemig " SAFEMIG_VERSION
          " from the command's JSON document.</footer>\n";
  html += "</body>\n</html>\n";
  return html;
}

}  // namespace safemig
