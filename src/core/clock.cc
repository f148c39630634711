#include "core/clock.h"

#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <random>
#include <sstream>

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
  using std::chrono::system_clock;
  std::tm tm{};
  std::istringstream in{std::string(text)};
  in >> std::get_time(&tm, "%Y-%m-%d");
  if (in.fail()) return std::nullopt;
  std::chrono::milliseconds offset{0};
  std::chrono::milliseconds fraction{0};
  if (in.peek() == 'T' || in.peek() == 't' || in.peek() == ' ') {
    in.get();
    in >> std::get_time(&tm, "%H:%M");
    if (in.fail()) return std::nullopt;
    if (in.peek() == ':') {
      in.get();
      int seconds = -1;
      char tens = static_cast<char>(in.get());
      char ones = static_cast<char>(in.get());
      if (std::isdigit(static_cast<unsigned char>(tens)) == 0 ||
          std::isdigit(static_cast<unsigned char>(ones)) == 0) {
        return std::nullopt;
      }
      seconds = (tens - '0') * 10 + (ones - '0');
      if (seconds > 60) return std::nullopt;
      tm.tm_sec = seconds;
      if (in.peek() == '.' || in.peek() == ',') {
        in.get();
        int scale = 100;
        while (std::isdigit(in.peek()) != 0) {
          fraction += std::chrono::milliseconds((in.get() - '0') * scale);
          scale /= 10;
        }
      }
    }
    const int zone = in.peek();
    if (zone == 'Z' || zone == 'z') {
      in.get();
    } else if (zone == '+' || zone == '-') {
      in.get();
      // +hh:mm, +hhmm or +hh.
      auto two_digits = [&in]() -> int {
        const int tens = in.get();
        const int ones = in.get();
        if (std::isdigit(tens) == 0 || std::isdigit(ones) == 0) return -1;
        return (tens - '0') * 10 + (ones - '0');
      };
      const int hours = two_digits();
      int minutes = 0;
      if (in.peek() == ':') {
        in.get();
        minutes = two_digits();
      } else if (std::isdigit(in.peek()) != 0) {
        minutes = two_digits();
      }
      if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59) return std::nullopt;
      offset = std::chrono::hours(hours) + std::chrono::minutes(minutes);
      if (zone == '-') offset = -offset;
    }
  }
  if (in.peek() != std::char_traits<char>::eof()) return std::nullopt;
  return system_clock::from_time_t(timegm(&tm)) + fraction - offset;
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
