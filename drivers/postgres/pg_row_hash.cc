#include "drivers/postgres/pg_row_hash.h"

#include <array>
#include <cstring>

#include "drivers/postgres/pg_fingerprint.h"

namespace safemig {
namespace {

constexpr std::uint32_t Rotate(std::uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

// lookup3's reversible mixing of the three state words.
inline void Mix(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
  a -= c;
  a ^= Rotate(c, 4);
  c += b;
  b -= a;
  b ^= Rotate(a, 6);
  a += c;
  c -= b;
  c ^= Rotate(b, 8);
  b += a;
  a -= c;
  a ^= Rotate(c, 16);
  c += b;
  b -= a;
  b ^= Rotate(a, 19);
  a += c;
  c -= b;
  c ^= Rotate(b, 4);
  b += a;
}

// lookup3's final mixing.
inline void Final(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
  c ^= b;
  c -= Rotate(b, 14);
  a ^= c;
  a -= Rotate(c, 11);
  b ^= a;
  b -= Rotate(a, 25);
  c ^= b;
  c -= Rotate(b, 16);
  a ^= c;
  a -= Rotate(c, 4);
  b ^= a;
  b -= Rotate(a, 14);
  c ^= b;
  c -= Rotate(b, 24);
}

// The server reads the key as little-endian words on the machines it runs on in practice
// (x86-64, ARM64); a big-endian server hashes differently, which FingerprintPostgres checks
// for before a backup relies on this function.
inline std::uint32_t Load32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

// Appends the decimal digits of `value`.
template <typename Int>
void AppendDecimal(std::string& out, Int value) {
  char digits[48];
  std::size_t n = 0;
  const bool negative = value < 0;
  do {
    const int digit = static_cast<int>(value % 10);
    digits[n++] = static_cast<char>('0' + (negative ? -digit : digit));
    value /= 10;
  } while (value != 0);
  if (negative) out.push_back('-');
  while (n > 0) out.push_back(digits[--n]);
}

}  // namespace

namespace {

// lookup3 over `size` bytes for each of N seeds at once: the words are read once, and the N
// independent states give the processor work to overlap.
template <std::size_t N>
std::array<std::uint64_t, N> HashBytesExtended(const char* data, std::size_t size,
                                               const std::array<std::uint64_t, N>& seeds) {
  const auto* k = reinterpret_cast<const unsigned char*>(data);
  // The server's length is an int; rows are far below 1 GB.
  const std::uint32_t initial = 0x9e3779b9U + static_cast<std::uint32_t>(size) + 3923095U;
  std::array<std::uint32_t, N> a;
  std::array<std::uint32_t, N> b;
  std::array<std::uint32_t, N> c;
  for (std::size_t i = 0; i < N; ++i) {
    a[i] = b[i] = c[i] = initial;
    if (seeds[i] != 0) {
      a[i] += static_cast<std::uint32_t>(seeds[i] >> 32);
      b[i] += static_cast<std::uint32_t>(seeds[i]);
      Mix(a[i], b[i], c[i]);
    }
  }
  std::size_t left = size;
  while (left >= 12) {
    const std::uint32_t wa = Load32(k);
    const std::uint32_t wb = Load32(k + 4);
    const std::uint32_t wc = Load32(k + 8);
    for (std::size_t i = 0; i < N; ++i) {
      a[i] += wa;
      b[i] += wb;
      c[i] += wc;
      Mix(a[i], b[i], c[i]);
    }
    k += 12;
    left -= 12;
  }
  // The last 11 bytes; the lowest byte of c is left for the length, as lookup3 does.
  std::uint32_t ta = 0;
  std::uint32_t tb = 0;
  std::uint32_t tc = 0;
  switch (left) {
    case 11:
      tc += static_cast<std::uint32_t>(k[10]) << 24;
      [[fallthrough]];
    case 10:
      tc += static_cast<std::uint32_t>(k[9]) << 16;
      [[fallthrough]];
    case 9:
      tc += static_cast<std::uint32_t>(k[8]) << 8;
      [[fallthrough]];
    case 8:
      tb += static_cast<std::uint32_t>(k[7]) << 24;
      [[fallthrough]];
    case 7:
      tb += static_cast<std::uint32_t>(k[6]) << 16;
      [[fallthrough]];
    case 6:
      tb += static_cast<std::uint32_t>(k[5]) << 8;
      [[fallthrough]];
    case 5:
      tb += k[4];
      [[fallthrough]];
    case 4:
      ta += static_cast<std::uint32_t>(k[3]) << 24;
      [[fallthrough]];
    case 3:
      ta += static_cast<std::uint32_t>(k[2]) << 16;
      [[fallthrough]];
    case 2:
      ta += static_cast<std::uint32_t>(k[1]) << 8;
      [[fallthrough]];
    case 1:
      ta += k[0];
      break;
    default:
      break;
  }
  std::array<std::uint64_t, N> hashes;
  for (std::size_t i = 0; i < N; ++i) {
    a[i] += ta;
    b[i] += tb;
    c[i] += tc;
    Final(a[i], b[i], c[i]);
    hashes[i] = static_cast<std::uint64_t>(b[i]) << 32 | c[i];
  }
  return hashes;
}

}  // namespace

std::uint64_t HashTextExtended(const char* data, std::size_t size, std::uint64_t seed) {
  return HashBytesExtended<1>(data, size, {seed})[0];
}

void RowHashSums::Add(const char* line, std::size_t size) {
  ++rows_;
  const std::array<std::uint64_t, 2> hashes =
      HashBytesExtended<2>(line, size, {kPgRowHashSeed1, kPgRowHashSeed2});
  // The server sums bigints: the same 64 bits read as signed.
  sum1_ += static_cast<std::int64_t>(hashes[0]);
  sum2_ += static_cast<std::int64_t>(hashes[1]);
}

void RowHashSums::AddLines(const char* data, std::size_t size) {
  const char* end = data + size;
  while (data < end) {
    const auto* newline =
        static_cast<const char*>(std::memchr(data, '\n', static_cast<std::size_t>(end - data)));
    if (newline == nullptr) {
      pending_.append(data, end);
      return;
    }
    if (pending_.empty()) {
      Add(data, static_cast<std::size_t>(newline - data));
    } else {
      pending_.append(data, newline);
      Add(pending_.data(), pending_.size());
      pending_.clear();
    }
    data = newline + 1;
  }
}

TableData RowHashSums::Data() const {
  std::string sum1;
  std::string sum2;
  AppendDecimal(sum1, sum1_);
  AppendDecimal(sum2, sum2_);
  return PgTableData(rows_, sum1, sum2);
}

}  // namespace safemig
