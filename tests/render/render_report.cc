// Renders a JSON document of rehearse/plan/deploy into the HTML report (and optionally the
// Markdown summary), so the render test can open the page in a real browser.
//   safemig_render_report DOCUMENT.json REPORT.html [SUMMARY.md]
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/report.h"

namespace {

bool WriteFile(const char* path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) std::cerr << "safemig_render_report: cannot write " << path << "\n";
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::cerr << "usage: safemig_render_report DOCUMENT.json REPORT.html [SUMMARY.md]\n";
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::cerr << "safemig_render_report: cannot read " << argv[1] << "\n";
    return 1;
  }
  nlohmann::json document = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    std::cerr << "safemig_render_report: " << argv[1] << " is not JSON\n";
    return 1;
  }
  if (!WriteFile(argv[2], safemig::RenderHtmlReport(document))) return 1;
  if (argc == 4 && !WriteFile(argv[3], safemig::RenderMarkdownSummary(document))) return 1;
  return 0;
}
