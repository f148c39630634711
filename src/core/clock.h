// Wall-clock helpers shared by the engine and the drivers. Thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace safemig {

// "2026-11-26T02:47:16.123Z" for `when` (default: now), UTC, millisecond precision.
std::string FormatIso8601(std::chrono::system_clock::time_point when);
std::string NowIso8601();
// ISO 8601 date-times, as safemig writes them and as people type them:
// "2026-11-26T02:47:16.123Z" (FormatIso8601's form), "2026-11-26 02:47:16+01:00",
// "2026-11-26T02:47" (no zone: UTC), "2026-11-26" (midnight UTC). nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text);

// "20261126024716" for `when`: the version format `safemig new` writes.
std::string FormatVersionStamp(std::chrono::system_clock::time_point when);

// A fresh id for one run: "20261126T024716Z-1a2b3c4d" (sortable by time, unique).
std::string NewRunId();

// "alice@build-7" from the OS user and host name; never reads secrets.
std::string CurrentUserAtHost();

// Milliseconds elapsed on the monotonic clock since `start`: what every timing reports.
inline std::chrono::milliseconds Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

// Human duration: "850 ms", "12.3 s", "4 min 05 s".
std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace safemig
