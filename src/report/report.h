// The go/no-go report of `rehearse`, `plan` and `deploy`/`up`, rendered from the same JSON
// document those commands print with `--format json` (docs/json-output.md, docs/report.md).
//
// Both renderings show what the document holds and never throw on a missing, null or
// mistyped field: a plan without a rehearsal reads "no rehearsal yet". Every string taken
// from the document is escaped, so a migration named `<script>` shows as text. Pure
// functions of their argument, thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace safemig {

// One self-contained HTML page for the release meeting: inline CSS and SVG, no script and
// no external resource, readable printed in black and white (the verdict is a word).
std::string RenderHtmlReport(const nlohmann::json& document);

// The same content as GitHub-flavoured Markdown, short enough for a pull-request comment
// or a CI step summary.
std::string RenderMarkdownSummary(const nlohmann::json& document);

}  // namespace safemig
