#include "core/clock.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>

#include <fmt/format.h>

namespace safemig {
namespace {

std::tm UtcTm(std::chrono::system_clock::time_point when) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return tm;
}

}  // namespace

std::string FormatIso8601(std::chrono::system_clock::time_point when) {
  std::tm tm = UtcTm(when);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch())
                    .count() %
                1000;
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

std::string NowIso8601() { return FormatIso8601(std::chrono::system_clock::now()); }

std::optional<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text) {
  std::tm tm{};
  int millis = 0;
  int consumed = 0;
  const std::string copy(text);
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    std::size_t digits = 1;
    while (digits < rest.size() && digits <= 3 && rest[digits] >= '0' && rest[digits] <= '9') {
      millis = millis * 10 + (rest[digits] - '0');
      ++digits;
    }
    if (digits != 4) return std::nullopt;
    rest = rest.substr(digits);
  }
  if (rest == "Z") rest = {};
  if (!rest.empty() || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t seconds = timegm(&tm);
  return std::chrono::system_clock::from_time_t(seconds) + std::chrono::milliseconds(millis);
}

std::string FormatVersionStamp(std::chrono::system_clock::time_point when) {
  std::tm tm = UtcTm(when);
  return fmt::format("{:04}{:02}{:02}{:02}{:02}{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string NewRunId() {
  std::tm tm = UtcTm(std::chrono::system_clock::now());
  std::random_device random;
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:08x}", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, random());
}

std::string CurrentUserAtHost() {
  std::string user;
  if (const passwd* entry = getpwuid(geteuid()); entry != nullptr && entry->pw_name != nullptr) {
    user = entry->pw_name;
  } else if (const char* env_user = std::getenv("USER"); env_user != nullptr) {
    user = env_user;
  } else {
    user = fmt::format("uid{}", geteuid());
  }
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return host[0] != '\0' ? user + "@" + host : user;
}

std::string FormatDuration(std::chrono::milliseconds duration) {
  auto ms = duration.count();
  if (ms < 1000) return fmt::format("{} ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000.0);
  auto seconds = ms / 1000;
  if (seconds < 3600) return fmt::format("{} min {:02} s", seconds / 60, seconds % 60);
  return fmt::format("{} h {:02} min", seconds / 3600, (seconds % 3600) / 60);
}

}  // namespace safemig
