// Durations as people write them in config files, flags and directives. Thread-safe.
#pragma once

#include <chrono>
#include <string_view>

namespace safemig {

// Parses "500ms", "30s", "5m", "1h", "1h30m", "30d": whole numbers with units, largest unit first,
// each at most once. A bare number is refused ("10" could mean seconds or milliseconds).
// Throws Error(kConfig) naming `what` on anything else.
std::chrono::milliseconds ParseDuration(std::string_view text, std::string_view what);

}  // namespace safemig
