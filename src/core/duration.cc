#include "core/duration.h"

#include <array>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace safemig {

using std::chrono::milliseconds;

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

milliseconds ParseDuration(std::string_view text, std::string_view what) {
  auto invalid = [&] {
    return Error(Category::kConfig,
                 std::string(what) + ": \"" + std::string(text) + "\" is not a duration",
                 "write a number and a unit (ms, s, m, h), largest unit first: 500ms, 30s, "
                 "5m, 1h30m");
  };
  // About 31 years: far beyond any sensible timeout, far below int64 overflow.
  constexpr int64_t kMax = 1'000'000'000'000;
  struct Unit {
    std::string_view suffix;
    int64_t factor;
  };
  // In the order they must appear in: largest first, each at most once.
  static constexpr std::array<Unit, 5> kUnits = {
      {{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};
  if (text.empty()) throw invalid();
  int64_t total = 0;
  int previous_unit = -1;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsDigit(text[i])) throw invalid();
    int64_t number = 0;
    while (i < text.size() && IsDigit(text[i])) {
      number = number * 10 + (text[i++] - '0');
      if (number > kMax) throw invalid();
    }
    // The longest suffix that matches wins, so "5ms" is never read as 5m plus junk.
    int unit = -1;
    for (int u = 0; u < static_cast<int>(kUnits.size()); ++u) {
      std::string_view suffix = kUnits[u].suffix;
      if (text.substr(i, suffix.size()) == suffix &&
          (unit < 0 || suffix.size() > kUnits[unit].suffix.size())) {
        unit = u;
      }
    }
    // A bare number is refused: "10" could mean seconds or milliseconds, and guessing
    // wrong turns a lock timeout into a hang or an instant failure.
    if (unit < 0 || unit <= previous_unit) throw invalid();
    i += kUnits[unit].suffix.size();
    previous_unit = unit;
    total += number * kUnits[unit].factor;
    if (total > kMax) throw invalid();
  }
  return milliseconds(total);
}

}  // namespace safemig
