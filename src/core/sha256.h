// SHA-256 over byte strings, via OpenSSL's EVP interface. Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace safemig {

// Lower-case hex digest of `data`. Throws Error(kInternal) if OpenSSL fails.
std::string Sha256Hex(std::string_view data);

}  // namespace safemig
