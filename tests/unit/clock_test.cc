// core/clock: the one ISO 8601 parser reads back what safemig writes and what people type.
#include "core/clock.h"

#include <gtest/gtest.h>

#include <chrono>

namespace safemig {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::system_clock;

system_clock::time_point At(int64_t seconds, int64_t millis = 0) {
  return system_clock::time_point(std::chrono::seconds(seconds)) + milliseconds(millis);
}

constexpr int64_t kNoon = 1795694400;  // 2026-11-26T12:00:00Z

TEST(ParseIso8601, ReadsBackWhatFormatIso8601Writes) {
  const system_clock::time_point when = At(kNoon, 123);
  EXPECT_EQ(ParseIso8601(FormatIso8601(when)), when);
  EXPECT_EQ(ParseIso8601("2026-11-26T12:00:00.123Z"), when);
  EXPECT_EQ(ParseIso8601("2026-11-26T12:00:00Z"), At(kNoon));
  EXPECT_EQ(ParseIso8601("2026-11-26T12:00:00"), At(kNoon));
}

TEST(ParseIso8601, ReadsWhatPeopleType) {
  EXPECT_EQ(ParseIso8601("2026-11-26 12:00:00"), At(kNoon));
  EXPECT_EQ(ParseIso8601("2026-11-26T12:00"), At(kNoon));
  EXPECT_EQ(ParseIso8601("2026-11-26"), At(kNoon) - hours(12));
  EXPECT_EQ(ParseIso8601("2026-11-26T13:00:00+01:00"), At(kNoon));
  EXPECT_EQ(ParseIso8601("2026-11-26T07:30:00-0430"), At(kNoon));
  EXPECT_EQ(ParseIso8601("2026-11-26T14:00:00+02"), At(kNoon));
  EXPECT_EQ(ParseIso8601("2026-11-26T12:00:00.5Z"), At(kNoon, 500));
}

TEST(ParseIso8601, RefusesWhatIsNotADateTime) {
  for (const char* text :
       {"", "yesterday", "2026-13-01", "2026-11-26T25:00", "2026-11-26T12:00:00Q",
        "2026-11-26T12:00:00+24:00", "2026-11-26T12:00:00Z trailing", "2026-11-26T12:0x",
        "2026-11-26T12:00+1:00"}) {
    EXPECT_FALSE(ParseIso8601(text).has_value()) << text;
  }
}

}  // namespace
}  // namespace safemig
