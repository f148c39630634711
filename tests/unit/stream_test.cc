#include "backup/stream.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/error.h"
#include "core/sha256.h"
#include "fakes/faulty_sink.h"

namespace safemig {
namespace {

namespace fs = std::filesystem;
using safemig::testing::FaultySink;

constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

// A fresh directory per instance, named after the test, removed with its contents.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("safemig_stream_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) +
             "_" + (test != nullptr ? test->name() : "x"));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path operator/(const std::string& name) const { return path_ / name; }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string Quote(const fs::path& path) { return "'" + path.string() + "'"; }

struct CommandResult {
  int exit_code = -1;
  std::string out;
};

// Runs `command` through the shell, capturing stdout (stderr is left to the test log).
CommandResult RunShell(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.out.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Runs `body` in a forked child and returns what it returned (or "exception: ...").
// Used where a test must change process-wide state (rlimits) or needs a fresh peak-RSS
// mark: ru_maxrss only ever grows, so in-process it would reflect whichever earlier test
// used the most memory and hide growth up to that level.
std::string RunInChild(const std::function<std::string()>& body) {
  std::array<int, 2> fds{};
  if (::pipe(fds.data()) != 0) return "pipe failed";
  std::fflush(nullptr);  // or the child would print gtest's pending output a second time
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    ::close(fds[0]);
    std::string answer;
    try {
      answer = body();
    } catch (const Error& e) {
      answer = std::string("exception: ") + CategoryName(e.category()) + ": " + e.what();
    } catch (const std::exception& e) {
      answer = std::string("exception: ") + e.what();
    }
    const char* data = answer.data();
    std::size_t left = answer.size();
    while (left > 0) {
      const ssize_t n = ::write(fds[1], data, left);
      if (n <= 0) break;
      data += n;
      left -= static_cast<std::size_t>(n);
    }
    ::_exit(0);  // no atexit handlers, no gtest teardown in the child
  }
  ::close(fds[1]);
  std::string answer;
  std::array<char, 4096> buffer{};
  ssize_t n = 0;
  while ((n = ::read(fds[0], buffer.data(), buffer.size())) > 0) {
    answer.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "child crashed: " + answer;
  return answer;
}

// Runs `fn`, which must throw safemig::Error, and returns that error.
template <typename Fn>
Error CaptureError(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a safemig::Error, nothing was thrown";
  return {Category::kInternal, "(nothing thrown)"};
}

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// Table-like rows interleaved with random bytes, so data compresses like a real table
// would instead of collapsing to nothing or not compressing at all: `random_quarters` of
// every 64 bytes are random (1 gives about 3.5:1, 2 about 2:1). Generated while read, so
// a test can stream any amount through a chain without holding it.
class GeneratedSource : public Source {
 public:
  GeneratedSource(std::uint64_t size, std::uint64_t seed, int random_quarters = 1)
      : remaining_(size), random_(seed | 1), random_quarters_(random_quarters) {}

  std::size_t Read(char* data, std::size_t size) override {
    static constexpr std::string_view kRow =
        "42\tactive\t2024-05-01 12:00:00\tcustomer@example.com\n";
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(size, remaining_));
    for (std::size_t i = 0; i < n; ++i, ++position_) {
      if (static_cast<int>((position_ / 16) % 4) < random_quarters_) {
        if (position_ % 8 == 0) {
          random_ ^= random_ << 13;  // xorshift64: cheap and reproducible
          random_ ^= random_ >> 7;
          random_ ^= random_ << 17;
        }
        data[i] = static_cast<char>(random_ >> (8 * (position_ % 8)));
      } else {
        data[i] = kRow[position_ % kRow.size()];
      }
    }
    remaining_ -= n;
    return n;
  }

 private:
  std::uint64_t remaining_;
  std::uint64_t random_;
  int random_quarters_;
  std::uint64_t position_ = 0;
};

std::string MakeData(std::uint64_t size, std::uint64_t seed = 1) {
  GeneratedSource source(size, seed);
  StringSink sink;
  Pump(source, sink);
  return sink.text();
}

// Writes `data` in uneven pieces, so chunk boundaries fall everywhere.
void WriteInPieces(Sink& sink, const std::string& data) {
  static constexpr std::array<std::size_t, 6> kPieces = {1, 7, 4096, 65537, 1, 3 * kMiB + 5};
  std::size_t offset = 0;
  for (std::size_t i = 0; offset < data.size(); ++i) {
    const std::size_t n = std::min(kPieces[i % kPieces.size()], data.size() - offset);
    sink.Write(data.data() + offset, n);
    offset += n;
  }
}

struct Written {
  std::uint64_t raw_bytes = 0;
  std::string raw_sha256;
  std::uint64_t stored_bytes = 0;
  std::string stored_sha256;
};

// The chain a backup part is written with (see stream.h).
Written WritePart(const fs::path& path, const std::string& data, int level = 3) {
  FileSink file(path);
  HashingSink stored(file);
  ZstdCompressSink zstd(stored, level);
  HashingSink raw(zstd);
  WriteInPieces(raw, data);
  raw.Finish();
  return {raw.bytes(), raw.hex_digest(), stored.bytes(), stored.hex_digest()};
}

struct ReadBack {
  std::string text;
  std::uint64_t bytes = 0;
  std::string sha256;
};

// The chain a backup part is restored with.
ReadBack ReadPart(const fs::path& path) {
  FileSource file(path);
  ZstdDecompressSource zstd(file);
  HashingSource raw(zstd);
  StringSink sink;
  Pump(raw, sink);
  return {sink.text(), raw.bytes(), raw.HexDigest()};
}

std::string Sha256Sum(const fs::path& path) {
  const CommandResult result = RunShell("sha256sum " + Quote(path));
  EXPECT_EQ(result.exit_code, 0);
  return result.out.substr(0, result.out.find(' '));
}

std::string ZstdCliDecompress(const fs::path& part, const fs::path& out) {
  EXPECT_EQ(RunShell("zstd -q -dc " + Quote(part) + " > " + Quote(out)).exit_code, 0);
  return ReadFile(out);
}

// Checks everything a user or DBA relies on for one part written from `data`.
void ExpectFaithfulPart(const TempDir& dir, const std::string& data) {
  const fs::path part = dir / "part.zst";
  const Written written = WritePart(part, data);

  EXPECT_EQ(written.raw_bytes, data.size());
  EXPECT_EQ(written.raw_sha256, Sha256Hex(data));
  EXPECT_EQ(written.stored_bytes, fs::file_size(part));
  EXPECT_EQ(written.stored_sha256, Sha256Sum(part));

  const ReadBack read = ReadPart(part);
  EXPECT_TRUE(read.text == data) << "safemig read back " << read.text.size() << " bytes of "
                                 << data.size();
  EXPECT_EQ(read.bytes, data.size());
  EXPECT_EQ(read.sha256, written.raw_sha256);

  // The backup must stay usable without safemig.
  EXPECT_TRUE(ZstdCliDecompress(part, dir / "cli.out") == data);
  EXPECT_EQ(RunShell("zstd -q -t " + Quote(part)).exit_code, 0);
  const CommandResult listing = RunShell("zstd -lv " + Quote(part) + " 2>&1");
  EXPECT_TRUE(Contains(listing.out, "Check: XXH64")) << "frame checksums must be on";
}

void FlipByte(const fs::path& path, std::uint64_t offset) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekg(static_cast<std::streamoff>(offset));
  const char byte = static_cast<char>(file.get());
  file.seekp(static_cast<std::streamoff>(offset));
  file.put(static_cast<char>(byte ^ 0x5a));
}

std::string Compress(const std::string& data) {
  StringSink sink;
  ZstdCompressSink zstd(sink);
  Sink& chain = zstd;
  chain.Write(data);
  chain.Finish();
  return sink.text();
}

std::string Decompress(const std::string& compressed) {
  StringSource source(compressed);
  ZstdDecompressSource zstd(source);
  StringSink sink;
  Pump(zstd, sink);
  return sink.text();
}

// ---------------------------------------------------------------------------------------
// Sha256, HashingSink, HashingSource, Pump, StringSource

TEST(Sha256, MatchesKnownDigests) {
  Sha256 empty;
  EXPECT_EQ(empty.HexDigest(), kEmptySha256);
  Sha256 abc;
  abc.Update("abc", 3);
  EXPECT_EQ(abc.HexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, IncrementalDigestMatchesOneShotWhateverTheChunking) {
  const std::string data = MakeData(200000);
  for (std::size_t piece : {std::size_t{1}, std::size_t{63}, std::size_t{64}, std::size_t{4099}}) {
    Sha256 sha;
    for (std::size_t offset = 0; offset < data.size(); offset += piece) {
      sha.Update(data.data() + offset, std::min(piece, data.size() - offset));
    }
    EXPECT_EQ(sha.HexDigest(), Sha256Hex(data)) << "piece size " << piece;
  }
}

TEST(Sha256, SecondHexDigestReturnsTheSameDigest) {
  Sha256 sha;
  sha.Update("x", 1);
  const std::string first = sha.HexDigest();
  EXPECT_EQ(sha.HexDigest(), first);
  EXPECT_EQ(CaptureError([&] { sha.Update("y", 1); }).category(), Category::kInternal);
}

TEST(HashingSink, PassesBytesOnCountsHashesAndFinishesTheChain) {
  const std::string data = MakeData(100000);
  StringSink inner;
  HashingSink hashing(inner);
  WriteInPieces(hashing, data);
  EXPECT_FALSE(inner.finished());
  hashing.Finish();
  EXPECT_TRUE(inner.finished());
  EXPECT_TRUE(inner.text() == data);
  EXPECT_EQ(hashing.bytes(), data.size());
  EXPECT_EQ(hashing.hex_digest(), Sha256Hex(data));
}

TEST(HashingSink, EmptyInputHasTheEmptyDigest) {
  StringSink inner;
  HashingSink hashing(inner);
  hashing.Finish();
  EXPECT_EQ(hashing.bytes(), 0u);
  EXPECT_EQ(hashing.hex_digest(), kEmptySha256);
}

TEST(HashingSource, CountsAndHashesWhatPassesThrough) {
  const std::string data = MakeData(3 * kMiB + 17);
  StringSource source(data);
  HashingSource hashing(source);
  StringSink sink;
  EXPECT_EQ(Pump(hashing, sink), data.size());
  EXPECT_TRUE(sink.text() == data);
  EXPECT_EQ(hashing.bytes(), data.size());
  EXPECT_EQ(hashing.HexDigest(), Sha256Hex(data));
}

TEST(Pump, CopiesMoreThanItsBufferAndLeavesFinishToTheCaller) {
  const std::string data = MakeData(5 * kMiB + 3);
  StringSource source(data);
  StringSink sink;
  EXPECT_EQ(Pump(source, sink), data.size());
  EXPECT_TRUE(sink.text() == data);
  EXPECT_FALSE(sink.finished());
}

TEST(Pump, EmptySourceCopiesNothing) {
  StringSource source("");
  StringSink sink;
  EXPECT_EQ(Pump(source, sink), 0u);
  EXPECT_EQ(sink.text(), "");
}

TEST(StringStream, SourceHandsOutTheTextInPiecesThenReturnsZero) {
  StringSource source("hello");
  std::array<char, 3> buffer{};
  ASSERT_EQ(source.Read(buffer.data(), buffer.size()), 3u);
  EXPECT_EQ(std::string_view(buffer.data(), 3), "hel");
  ASSERT_EQ(source.Read(buffer.data(), buffer.size()), 2u);
  EXPECT_EQ(std::string_view(buffer.data(), 2), "lo");
  EXPECT_EQ(source.Read(buffer.data(), buffer.size()), 0u);
  EXPECT_EQ(source.Read(buffer.data(), buffer.size()), 0u);
}

// ---------------------------------------------------------------------------------------
// ZstdCompressSink: round trips through files, checked against the real zstd CLI

TEST(ZstdSink, RoundTripsEmptyInput) {
  TempDir dir;
  ExpectFaithfulPart(dir, "");
  // An empty table still yields a real zstd frame, not an empty file restore would reject.
  EXPECT_GT(fs::file_size(dir / "part.zst"), 0u);
}

TEST(ZstdSink, RoundTripsSmallInput) {
  TempDir dir;
  ExpectFaithfulPart(dir, "CREATE TABLE t (id integer primary key);\n");
}

TEST(ZstdSink, RoundTrips20MBAndTheZstdCliAgrees) {
  TempDir dir;
  const std::string data = MakeData(20 * kMiB, 7);
  ExpectFaithfulPart(dir, data);
  EXPECT_LT(fs::file_size(dir / "part.zst"), data.size() / 2) << "the data should compress";
}

TEST(ZstdSink, OtherLevelsProduceTheSameData) {
  const std::string data = MakeData(300000);
  for (int level : {1, 19}) {
    StringSink sink;
    ZstdCompressSink zstd(sink, level);
    WriteInPieces(zstd, data);
    zstd.Finish();
    EXPECT_TRUE(Decompress(sink.text()) == data) << "level " << level;
  }
}

TEST(ZstdSink, PropagatesADiskFullErrorFromWrite) {
  FaultySink disk(1000);
  HashingSink stored(disk);
  ZstdCompressSink zstd(stored);
  HashingSink raw(zstd);
  // Poorly compressible and larger than a zstd block, so Write() itself must emit data.
  const std::string data = MakeData(4 * kMiB);
  const Error error = CaptureError([&] { raw.Write(data.data(), data.size()); });
  EXPECT_EQ(error.category(), Category::kMigrationFailed);
  EXPECT_TRUE(Contains(error.what(), "No space left on device"));
  EXPECT_EQ(disk.failures(), 1);

  // The part is broken now; finishing must not pretend otherwise or fsync it as complete.
  EXPECT_EQ(CaptureError([&] { raw.Finish(); }).category(), Category::kInternal);
  EXPECT_EQ(disk.finishes(), 0);
}

TEST(ZstdSink, PropagatesADiskFullErrorFromFinish) {
  // Room for less than the compressed data: nothing reaches the disk until the frame ends.
  FaultySink disk(20);
  HashingSink stored(disk);
  ZstdCompressSink zstd(stored);
  HashingSink raw(zstd);
  const std::string data = MakeData(5000);
  raw.Write(data.data(), data.size());
  const Error error = CaptureError([&] { raw.Finish(); });
  EXPECT_EQ(error.category(), Category::kMigrationFailed);
  EXPECT_TRUE(Contains(error.what(), "No space left on device"));
  EXPECT_EQ(disk.finishes(), 0);
}

TEST(ZstdSink, PropagatesAFailedFsyncFromFinish) {
  FaultySink disk(UINT64_MAX, /*fail_finish=*/true);
  ZstdCompressSink zstd(disk);
  const std::string data = MakeData(5000);
  zstd.Write(data.data(), data.size());
  const Error error = CaptureError([&] { zstd.Finish(); });
  EXPECT_EQ(error.category(), Category::kMigrationFailed);
  EXPECT_TRUE(Contains(error.what(), "Input/output error"));
  EXPECT_EQ(disk.finishes(), 1);
}

TEST(ZstdSink, RefusesWritesAfterFinish) {
  StringSink sink;
  ZstdCompressSink zstd(sink);
  zstd.Finish();
  EXPECT_TRUE(sink.finished());
  EXPECT_EQ(CaptureError([&] { zstd.Write("x", 1); }).category(), Category::kInternal);
}

TEST(ZstdSink, MemoryStaysBoundedFor200MB) {
  TempDir dir;
  const fs::path part = dir / "big.zst";
  constexpr std::uint64_t kSize = 200 * kMiB;
  const std::string answer = RunInChild([&] {
    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    // Compresses to about 100 MB, so holding either side of the chain in memory fails.
    GeneratedSource source(kSize, 3, /*random_quarters=*/2);
    FileSink file(part);
    HashingSink stored(file);
    ZstdCompressSink zstd(stored);
    HashingSink raw(zstd);
    Pump(source, raw);
    raw.Finish();
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    // ru_maxrss is in KiB on Linux.
    return std::to_string(after.ru_maxrss - before.ru_maxrss) + " " + std::to_string(raw.bytes()) +
           " " + std::to_string(stored.bytes());
  });
  std::istringstream fields(answer);
  long growth_kib = -1;
  std::uint64_t raw_bytes = 0;
  std::uint64_t stored_bytes = 0;
  ASSERT_TRUE(fields >> growth_kib >> raw_bytes >> stored_bytes) << answer;
  EXPECT_EQ(raw_bytes, kSize);
  EXPECT_EQ(stored_bytes, fs::file_size(part));
  EXPECT_GT(stored_bytes, 80 * kMiB) << "the test data compresses too well to catch buffering";
  EXPECT_GE(growth_kib, 0);
  EXPECT_LT(growth_kib, 64 * 1024) << "peak RSS grew by " << growth_kib << " KiB";
}

// ---------------------------------------------------------------------------------------
// ZstdDecompressSource: damaged input is an integrity error, never wrong data

TEST(ZstdSource, FlippedByteInTheMiddleIsAnIntegrityError) {
  TempDir dir;
  const fs::path part = dir / "part.zst";
  WritePart(part, MakeData(kMiB));
  FlipByte(part, fs::file_size(part) / 2);
  const Error error = CaptureError([&] { ReadPart(part); });
  EXPECT_EQ(error.category(), Category::kIntegrity);
  EXPECT_FALSE(error.hint().empty());
  EXPECT_NE(RunShell("zstd -q -t " + Quote(part) + " 2>/dev/null").exit_code, 0)
      << "the zstd CLI should agree the part is damaged";
}

TEST(ZstdSource, DamagedChecksumIsAnIntegrityError) {
  // Frame data intact, only the trailing XXH64 checksum differs: caught only because the
  // reader verifies checksums, which is what catches damage inside stored raw blocks.
  const std::string data = MakeData(10000);
  std::string compressed = Compress(data);
  compressed.back() = static_cast<char>(compressed.back() ^ 1);
  const Error error = CaptureError([&] { Decompress(compressed); });
  EXPECT_EQ(error.category(), Category::kIntegrity);
  EXPECT_TRUE(Contains(error.what(), "checksum"));
}

TEST(ZstdSource, TruncatedFileIsAnIntegrityError) {
  TempDir dir;
  const fs::path original = dir / "part.zst";
  WritePart(original, MakeData(kMiB));
  const std::uint64_t size = fs::file_size(original);
  for (std::uint64_t keep : {std::uint64_t{1}, std::uint64_t{4}, size / 2, size - 1}) {
    const fs::path cut = dir / ("cut" + std::to_string(keep) + ".zst");
    fs::copy_file(original, cut);
    fs::resize_file(cut, keep);
    const Error error = CaptureError([&] { ReadPart(cut); });
    EXPECT_EQ(error.category(), Category::kIntegrity) << "kept " << keep << " bytes";
    EXPECT_TRUE(Contains(error.what(), "truncated")) << "kept " << keep << " bytes";
  }
}

TEST(ZstdSource, EmptyInputIsAnIntegrityError) {
  const Error error = CaptureError([] { Decompress(""); });
  EXPECT_EQ(error.category(), Category::kIntegrity);
  EXPECT_TRUE(Contains(error.what(), "empty"));
}

TEST(ZstdSource, DataThatIsNotZstdIsAnIntegrityError) {
  const Error error = CaptureError([] { Decompress("id,name\n1,alice\n"); });
  EXPECT_EQ(error.category(), Category::kIntegrity);
  EXPECT_TRUE(Contains(error.what(), "zstd"));
}

TEST(ZstdSource, GarbageAfterAValidFrameIsAnIntegrityError) {
  const std::string compressed = Compress("row\n") + "junk appended to the file";
  EXPECT_EQ(CaptureError([&] { Decompress(compressed); }).category(), Category::kIntegrity);
}

TEST(ZstdSource, ReadsConcatenatedFrames) {
  // `cat a.zst b.zst` is valid zstd; the reader must not stop after the first frame.
  const std::string a = MakeData(200000, 1);
  const std::string b = MakeData(300000, 2);
  EXPECT_TRUE(Decompress(Compress(a) + Compress("") + Compress(b)) == a + b);
}

TEST(ZstdSource, ReadsWhatTheZstdCliWrote) {
  TempDir dir;
  const std::string data = MakeData(3 * kMiB);
  WriteFile(dir / "raw", data);
  ASSERT_EQ(RunShell("zstd -q --no-check " + Quote(dir / "raw") + " -o " + Quote(dir / "raw.zst"))
                .exit_code,
            0);
  EXPECT_TRUE(ReadPart(dir / "raw.zst").text == data);
}

TEST(ZstdSource, TinyReadsStillReturnEverything) {
  // One-byte reads leave decoded bytes inside zstd between calls; none may be lost.
  const std::string data = MakeData(300000);
  StringSource source(Compress(data));
  ZstdDecompressSource zstd(source);
  std::string out;
  char byte = 0;
  while (zstd.Read(&byte, 1) == 1) out.push_back(byte);
  EXPECT_TRUE(out == data);
  EXPECT_EQ(zstd.Read(&byte, 1), 0u);
}

// ---------------------------------------------------------------------------------------
// FileSink, FileSource, SyncDirectory

TEST(BackgroundSink, PassesEverythingOnInOrderThenFinishesTheChain) {
  const std::string data = MakeData(3000000);
  StringSink inner;
  BackgroundSink background(inner, /*block_bytes=*/4096, /*depth=*/2);
  WriteInPieces(background, data);
  background.Flush();
  EXPECT_FALSE(inner.finished());
  EXPECT_TRUE(inner.text() == data);
  background.Write("tail");
  background.Finish();
  EXPECT_TRUE(inner.finished());
  EXPECT_TRUE(inner.text() == data + "tail");
}

TEST(BackgroundSink, NeverSplitsOneWriteAcrossBlocks) {
  class BlockSink : public Sink {
   public:
    using Sink::Write;
    void Write(const char* data, std::size_t size) override { blocks.emplace_back(data, size); }
    void Finish() override {}
    std::vector<std::string> blocks;
  } inner;
  BackgroundSink background(inner, /*block_bytes=*/10, /*depth=*/1);
  for (int i = 0; i < 50; ++i) background.Write("record-" + std::to_string(i) + ";");
  background.Flush();
  std::string all;
  for (const std::string& block : inner.blocks) {
    EXPECT_EQ(block.back(), ';') << block;
    all += block;
  }
  EXPECT_EQ(all.substr(0, 18), "record-0;record-1;");
  EXPECT_GT(inner.blocks.size(), 10u);
}

TEST(BackgroundSink, AnErrorOnTheBackgroundThreadReachesTheWriter) {
  safemig::testing::FaultySink full(1000);
  BackgroundSink background(full, /*block_bytes=*/256, /*depth=*/2);
  const std::string data = MakeData(100000);
  try {
    WriteInPieces(background, data);
    background.Flush();
    FAIL() << "no error reached the writer";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kMigrationFailed);
    EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos);
  }
  EXPECT_EQ(full.failures(), 1);  // blocks after the failure were dropped, not retried
  EXPECT_THROW(background.Finish(), Error);
}

TEST(BackgroundSink, DestroyedWithoutFlushDropsWhatWaitsAndJoins) {
  StringSink inner;
  {
    BackgroundSink background(inner, /*block_bytes=*/16, /*depth=*/4);
    WriteInPieces(background, MakeData(100000));
  }
  EXPECT_FALSE(inner.finished());
  EXPECT_LE(inner.text().size(), 100000u);
}

TEST(FileSink, RefusesToOverwriteAnExistingFile) {
  TempDir dir;
  const fs::path path = dir / "part.zst";
  WriteFile(path, "an older backup");
  const Error error = CaptureError([&] { FileSink sink(path); });
  EXPECT_EQ(error.category(), Category::kMigrationFailed);
  EXPECT_TRUE(Contains(error.what(), "cannot create " + path.string() + ": File exists"));
  EXPECT_FALSE(error.hint().empty());
  EXPECT_EQ(ReadFile(path), "an older backup");
}

TEST(FileSink, CreatesFilesWithMode0600WhateverTheUmask) {
  TempDir dir;
  for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{077}}) {
    const mode_t old_mask = ::umask(mask);
    const fs::path path = dir / ("part" + std::to_string(mask));
    {
      FileSink sink(path);
      sink.Write("secret rows", 11);
      sink.Finish();
    }
    ::umask(old_mask);
    struct stat info {};
    ASSERT_EQ(::stat(path.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u) << "umask " << mask;
  }
}

TEST(FileSink, WritesSmallAndLargeWritesInOrder) {
  TempDir dir;
  const fs::path path = dir / "part";
  const std::string data = MakeData(9 * kMiB);
  {
    FileSink sink(path);
    WriteInPieces(sink, data);
    sink.Finish();
  }
  EXPECT_TRUE(ReadFile(path) == data);
}

TEST(FileSink, MissingDirectoryIsAMigrationFailureNamingThePath) {
  TempDir dir;
  const fs::path path = dir / "no-such-dir" / "part.zst";
  const Error error = CaptureError([&] { FileSink sink(path); });
  EXPECT_EQ(error.category(), Category::kMigrationFailed);
  EXPECT_TRUE(Contains(error.what(), path.string() + ": No such file or directory"));
}

TEST(FileSink, WriteErrorNamesThePathAndTheReason) {
  // A file-size limit makes the kernel fail writes the way a full disk does: first a
  // short write, then an error. Done in a child so the limit cannot hurt other tests.
  TempDir dir;
  const std::string answer = RunInChild([&] {
    std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
    constexpr rlim_t kLimit = rlim_t{64} * 1024;
    const rlimit limit{kLimit, kLimit};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::string report;
    // Small enough to sit in the buffer until Finish(), where a short write that went
    // unnoticed would leave a truncated file behind a successful fsync.
    for (std::uint64_t size : {100 * std::uint64_t{1000}, 3 * kMiB}) {
      const fs::path path = dir / ("part" + std::to_string(size));
      FileSink sink(path);
      const Error error = CaptureError([&] {
        WriteInPieces(sink, MakeData(size));
        sink.Finish();
      });
      // Afterwards the sink refuses to go on rather than write a file with a hole.
      const Error again = CaptureError([&] { sink.Finish(); });
      report += std::string(CategoryName(error.category())) + "|" + error.what() + "|" +
                error.hint() + "|" + CategoryName(again.category()) + "\n";
    }
    return report;
  });
  const std::string hint = "check free space and permissions of the backup directory";
  EXPECT_EQ(answer, "failed|cannot write " + (dir / "part100000").string() + ": File too large|" +
                        hint + "|internal\n" + "failed|cannot write " +
                        (dir / "part3145728").string() + ": File too large|" + hint +
                        "|internal\n");
}

TEST(FileSource, MissingFileIsAnIntegrityErrorNamingThePath) {
  TempDir dir;
  const fs::path path = dir / "parts" / "gone.zst";
  const Error error = CaptureError([&] { FileSource source(path); });
  EXPECT_EQ(error.category(), Category::kIntegrity);
  EXPECT_TRUE(Contains(error.what(), path.string()));
  EXPECT_TRUE(Contains(error.what(), "missing"));
}

TEST(FileSource, UnreadableFileIsAnIntegrityError) {
  TempDir dir;
  FileSource source(dir.path());  // opening a directory works; reading it does not
  char byte = 0;
  const Error error = CaptureError([&] { source.Read(&byte, 1); });
  EXPECT_EQ(error.category(), Category::kIntegrity);
  EXPECT_TRUE(Contains(error.what(), "cannot read " + dir.path().string()));
}

TEST(FileSync, SyncDirectorySucceedsOnADirectory) {
  TempDir dir;
  EXPECT_NO_THROW(SyncDirectory(dir.path()));
}

TEST(FileSync, SyncDirectoryFailsOnAMissingDirectory) {
  TempDir dir;
  const Error error = CaptureError([&] { SyncDirectory(dir / "missing"); });
  EXPECT_EQ(error.category(), Category::kMigrationFailed);
  EXPECT_TRUE(Contains(error.what(), (dir / "missing").string()));
}

}  // namespace
}  // namespace safemig
