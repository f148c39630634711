#include "backup/stream.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/interrupt.h"

namespace safemig {
namespace {

// Large enough that a backup of many gigabytes costs few syscalls, small enough that
// memory stays flat however big the database is.
constexpr std::size_t kFileBufferSize = std::size_t{1} << 20;
constexpr std::size_t kPumpBufferSize = std::size_t{1} << 20;

constexpr const char* kWriteHint = "check free space and permissions of the backup directory";
constexpr const char* kDamagedHint =
    "the backup is damaged; check it with `zstd -t`, and restore from another backup";

// errno is read at once: anything called between the failing syscall and here (even
// string formatting) may overwrite it.
[[noreturn]] void ThrowWriteError(const char* verb, const std::filesystem::path& path) {
  const int error = errno;
  const char* hint = error == EEXIST ? "safemig never overwrites a backup file; remove the stale "
                                       "file or choose another backup directory"
                                     : kWriteHint;
  throw Error(Category::kMigrationFailed,
              std::string("cannot ") + verb + " " + path.string() + ": " + std::strerror(error),
              hint);
}

[[noreturn]] void ThrowCorrupt(const std::string& what) {
  throw Error(Category::kIntegrity, "backup data is damaged: " + what, kDamagedHint);
}

// Sink::Finish() documents that Write() must not follow it; breaking that is a bug in
// the caller, not something a user can fix.
[[noreturn]] void ThrowMisuse(const char* what) {
  throw Error(Category::kInternal, std::string("stream misuse: ") + what);
}

struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

struct ZstdCCtxDeleter {
  void operator()(ZSTD_CCtx* ctx) const { ZSTD_freeCCtx(ctx); }
};

struct ZstdDCtxDeleter {
  void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};

// Closes `fd`, retrying nothing: on Linux the descriptor is released even when close()
// reports EINTR, so a retry could close a descriptor another thread just opened.
void CloseQuietly(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace

std::uint64_t Pump(Source& source, Sink& sink) {
  // On the heap: 1 MiB would be a risky amount of stack for a worker thread.
  std::vector<char> buffer(kPumpBufferSize);
  std::uint64_t total = 0;
  while (const std::size_t n = source.Read(buffer.data(), buffer.size())) {
    // Between chunks is a safe point: Ctrl-C stops here and destructors clean up.
    ThrowIfInterrupted("copying data");
    sink.Write(buffer.data(), n);
    total += n;
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// Sha256

struct Sha256::Impl {
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter> ctx;
  std::string digest;  // set once finalised; EVP cannot finalise twice
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx.reset(EVP_MD_CTX_new());
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw Error(Category::kInternal, "OpenSSL could not start a SHA-256 digest");
  }
}

Sha256::~Sha256() = default;

void Sha256::Update(const char* data, std::size_t size) {
  if (!impl_->digest.empty()) ThrowMisuse("Sha256::Update after HexDigest");
  if (EVP_DigestUpdate(impl_->ctx.get(), data, size) != 1) {
    throw Error(Category::kInternal, "OpenSSL could not update a SHA-256 digest");
  }
}

std::string Sha256::HexDigest() {
  // A second call returns the same digest rather than failing, so a chain whose
  // Finish() is retried after an error does not turn into an OpenSSL failure.
  if (!impl_->digest.empty()) return impl_->digest;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(impl_->ctx.get(), digest.data(), &length) != 1) {
    throw Error(Category::kInternal, "OpenSSL could not finish a SHA-256 digest");
  }
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(std::size_t{length} * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0x0f]);
  }
  impl_->digest = hex;
  return hex;
}

// ---------------------------------------------------------------------------------------
// HashingSink, HashingSource

void HashingSink::Write(const char* data, std::size_t size) {
  sha_.Update(data, size);
  bytes_ += size;
  next_.Write(data, size);
}

void HashingSink::Finish() {
  digest_ = sha_.HexDigest();
  next_.Finish();
}

std::size_t HashingSource::Read(char* data, std::size_t size) {
  const std::size_t n = next_.Read(data, size);
  sha_.Update(data, n);
  bytes_ += n;
  return n;
}

// ---------------------------------------------------------------------------------------
// ZstdCompressSink

struct ZstdCompressSink::Impl {
  enum class State { kOpen, kFinished, kFailed };

  Sink& next;
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxDeleter> cctx;
  std::vector<char> out;
  State state = State::kOpen;

  explicit Impl(Sink& next_sink) : next(next_sink), out(ZSTD_CStreamOutSize()) {}

  void Check(std::size_t result, const char* what) const {
    if (ZSTD_isError(result)) {
      throw Error(Category::kMigrationFailed,
                  std::string("zstd could not ") + what + ": " + ZSTD_getErrorName(result),
                  "this is usually a lack of memory; run again with more memory available");
    }
  }

  // Feeds `input` to zstd and passes every compressed byte on. With kEnd, returns only
  // once the frame (epilogue and checksum included) has been written to `next`.
  void Compress(ZSTD_inBuffer& input, ZSTD_EndDirective mode) {
    while (true) {
      ZSTD_outBuffer output{out.data(), out.size(), 0};
      const std::size_t remaining = ZSTD_compressStream2(cctx.get(), &output, &input, mode);
      Check(remaining, "compress");
      if (output.pos > 0) next.Write(out.data(), output.pos);
      const bool done = mode == ZSTD_e_end ? remaining == 0 : input.pos == input.size;
      if (done) return;
    }
  }

  // After any exception zstd has consumed input that never reached `next`, so the frame
  // is broken; refusing further use keeps a caller from finishing a file that looks whole.
  template <typename Fn>
  void Guarded(Fn&& fn) {
    if (state == State::kFinished) ThrowMisuse("ZstdCompressSink used after Finish");
    if (state == State::kFailed) ThrowMisuse("ZstdCompressSink used after an error");
    try {
      fn();
    } catch (...) {
      state = State::kFailed;
      throw;
    }
  }
};

ZstdCompressSink::ZstdCompressSink(Sink& next, int level) : impl_(std::make_unique<Impl>(next)) {
  impl_->cctx.reset(ZSTD_createCCtx());
  if (!impl_->cctx) throw Error(Category::kInternal, "zstd could not allocate a context");
  // Frame checksums let `zstd -t` and a DBA's `zstd -dc` detect damage without safemig.
  // No worker threads: the caller's thread does the work, so memory and CPU stay
  // predictable, and a backup already runs tables in parallel.
  impl_->Check(ZSTD_CCtx_setParameter(impl_->cctx.get(), ZSTD_c_compressionLevel, level),
               "set the compression level");
  impl_->Check(ZSTD_CCtx_setParameter(impl_->cctx.get(), ZSTD_c_checksumFlag, 1),
               "enable frame checksums");
  impl_->Check(ZSTD_CCtx_setParameter(impl_->cctx.get(), ZSTD_c_nbWorkers, 0),
               "disable worker threads");
}

ZstdCompressSink::~ZstdCompressSink() = default;

void ZstdCompressSink::Write(const char* data, std::size_t size) {
  impl_->Guarded([&] {
    ZSTD_inBuffer input{data, size, 0};
    impl_->Compress(input, ZSTD_e_continue);
  });
}

void ZstdCompressSink::Finish() {
  impl_->Guarded([&] {
    // Also for zero bytes written: an empty part is still a valid (empty) zstd frame, so
    // `zstd -dc` and restore treat it like any other part.
    ZSTD_inBuffer input{nullptr, 0, 0};
    impl_->Compress(input, ZSTD_e_end);
    impl_->next.Finish();
  });
  impl_->state = Impl::State::kFinished;
}

// ---------------------------------------------------------------------------------------
// ZstdDecompressSource

struct ZstdDecompressSource::Impl {
  Source& next;
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter> dctx;
  std::vector<char> in_buffer;
  ZSTD_inBuffer input{nullptr, 0, 0};
  bool next_at_end = false;
  bool saw_input = false;
  // What zstd last said about the current frame: 0 once a frame is complete and flushed.
  // A file that ends while this is non-zero was cut off mid-frame.
  std::size_t frame_remaining = 0;

  explicit Impl(Source& next_source) : next(next_source), in_buffer(ZSTD_DStreamInSize()) {
    input.src = in_buffer.data();
  }
};

ZstdDecompressSource::ZstdDecompressSource(Source& next) : impl_(std::make_unique<Impl>(next)) {
  impl_->dctx.reset(ZSTD_createDCtx());
  if (!impl_->dctx) throw Error(Category::kInternal, "zstd could not allocate a context");
}

ZstdDecompressSource::~ZstdDecompressSource() = default;

std::size_t ZstdDecompressSource::Read(char* data, std::size_t size) {
  if (size == 0) return 0;
  Impl& s = *impl_;
  ZSTD_outBuffer output{data, size, 0};
  while (true) {
    if (s.input.pos == s.input.size && !s.next_at_end) {
      const std::size_t n = s.next.Read(s.in_buffer.data(), s.in_buffer.size());
      s.input.size = n;
      s.input.pos = 0;
      s.next_at_end = n == 0;
      s.saw_input = s.saw_input || n > 0;
    }
    const std::size_t in_before = s.input.pos;
    // Called even with no input left: zstd may still hold decoded bytes that did not
    // fit into the caller's buffer last time.
    const std::size_t result = ZSTD_decompressStream(s.dctx.get(), &output, &s.input);
    if (ZSTD_isError(result)) ThrowCorrupt(std::string("zstd: ") + ZSTD_getErrorName(result));
    // A call without progress says nothing about the frame; between frames zstd answers
    // with a size hint for the next header, which must not read as "truncated".
    if (s.input.pos != in_before || output.pos > 0) s.frame_remaining = result;
    if (output.pos > 0) return output.pos;
    if (s.input.pos == s.input.size && s.next_at_end) {
      if (!s.saw_input) ThrowCorrupt("the input is empty, not a zstd stream");
      if (s.frame_remaining != 0) {
        ThrowCorrupt("the input ends in the middle of a zstd frame (truncated)");
      }
      return 0;
    }
  }
}

// ---------------------------------------------------------------------------------------
// FileSink

// NOLINTNEXTLINE(modernize-pass-by-value): the signature is part of stream.h
FileSink::FileSink(const std::filesystem::path& path) : path_(path) {
  // O_EXCL: a backup never silently replaces an older file of the same name. 0600
  // because a backup holds every row of the database; umask can only narrow it.
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd_ < 0) ThrowWriteError("create", path_);
  buffer_.reserve(kFileBufferSize);
}

FileSink::~FileSink() {
  // Without Finish() the file is incomplete; it stays on disk for the caller to remove
  // (a backup is written inside a `.partial` directory that is discarded as a whole).
  CloseQuietly(fd_);
}

namespace {

// Writes all of `data`, resuming after signals and short writes (a pipe, a nearly full
// disk). Throws on the first real error, errno's text included.
void WriteAll(int fd, const std::filesystem::path& path, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowWriteError("write", path);
    }
    if (n == 0) {
      // POSIX allows this only when nothing can be written; looping would spin forever.
      errno = ENOSPC;
      ThrowWriteError("write", path);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

void FileSink::Write(const char* data, std::size_t size) {
  if (fd_ < 0) ThrowMisuse("FileSink::Write after Finish or after a failed write");
  try {
    if (buffer_.size() + size > kFileBufferSize && !buffer_.empty()) {
      WriteAll(fd_, path_, buffer_.data(), buffer_.size());
      buffer_.clear();
    }
    if (size >= kFileBufferSize) {
      // Big writes skip the copy; the buffer only exists to batch small ones.
      WriteAll(fd_, path_, data, size);
    } else {
      buffer_.append(data, size);
    }
  } catch (...) {
    // The file now has a hole where the failed bytes belong; closing it makes any later
    // Write() or Finish() fail instead of producing a file that looks complete.
    CloseQuietly(fd_);
    fd_ = -1;
    throw;
  }
}

void FileSink::Finish() {
  if (fd_ < 0) ThrowMisuse("FileSink::Finish twice or after a failed write");
  const int fd = fd_;
  // Marked finished up front: after a failed fsync the page cache may already have
  // dropped the dirty pages, so retrying could report success for lost data.
  fd_ = -1;
  try {
    WriteAll(fd, path_, buffer_.data(), buffer_.size());
    buffer_.clear();
    buffer_.shrink_to_fit();
    if (::fsync(fd) != 0) ThrowWriteError("fsync", path_);
  } catch (...) {
    CloseQuietly(fd);
    throw;
  }
  // Some file systems (NFS) report write-back errors only at close.
  if (::close(fd) != 0 && errno != EINTR) ThrowWriteError("close", path_);
}

// ---------------------------------------------------------------------------------------
// FileSource

// NOLINTNEXTLINE(modernize-pass-by-value): the signature is part of stream.h
FileSource::FileSource(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    const int error = errno;
    if (error == ENOENT) {
      throw Error(Category::kIntegrity, "backup file " + path_.string() + " is missing",
                  "the backup is incomplete; restore from another backup");
    }
    throw Error(Category::kIntegrity, "cannot open " + path_.string() + ": " + std::strerror(error),
                "check that the backup files are readable by this user");
  }
}

FileSource::~FileSource() { CloseQuietly(fd_); }

std::size_t FileSource::Read(char* data, std::size_t size) {
  while (true) {
    const ssize_t n = ::read(fd_, data, size);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    const int error = errno;
    throw Error(Category::kIntegrity, "cannot read " + path_.string() + ": " + std::strerror(error),
                "the backup file cannot be read back; restore from another backup");
  }
}

// ---------------------------------------------------------------------------------------
// StringSource, SyncDirectory

std::size_t StringSource::Read(char* data, std::size_t size) {
  const std::size_t n = std::min(size, text_.size() - offset_);
  if (n > 0) std::memcpy(data, text_.data() + offset_, n);
  offset_ += n;
  return n;
}

// --- BackgroundSink ----------------------------------------------------------------------

struct BackgroundSink::Impl {
  Impl(Sink& next_sink, std::size_t block, std::size_t max_waiting)
      : next(next_sink), block_bytes(std::max<std::size_t>(block, 1)),
        depth(std::max<std::size_t>(max_waiting, 1)) {
    thread = std::thread([this] { Run(); });
  }
  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
      waiting.clear();
    }
    changed.notify_all();
    thread.join();
  }

  void Run() {
    for (;;) {
      std::string block;
      bool skip = false;  // after an error, blocks are dropped
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return stopping || !waiting.empty(); });
        if (waiting.empty()) return;  // stopping
        block = std::move(waiting.front());
        waiting.pop_front();
        busy = true;
        skip = error != nullptr;
      }
      changed.notify_all();
      std::exception_ptr failed;
      try {
        if (!skip) next.Write(block);
      } catch (...) {
        failed = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (failed && !error) error = failed;
        busy = false;
      }
      changed.notify_all();
    }
  }

  void RethrowIfFailed() {
    if (error) std::rethrow_exception(error);
  }

  // Queues `current` (waiting while `depth` blocks are queued) and starts a new one.
  void Hand() {
    if (current.empty()) return;
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return error || waiting.size() < depth; });
    RethrowIfFailed();
    waiting.push_back(std::move(current));
    current = std::string();
    current.reserve(block_bytes + block_bytes / 8);
    lock.unlock();
    changed.notify_all();
  }

  void Drain() {
    Hand();
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return waiting.empty() && !busy; });
    RethrowIfFailed();
  }

  Sink& next;
  const std::size_t block_bytes;
  const std::size_t depth;
  std::string current;
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::string> waiting;
  bool busy = false;
  bool stopping = false;
  std::exception_ptr error;
  std::thread thread;  // last: starts once everything above exists
};

BackgroundSink::BackgroundSink(Sink& next, std::size_t block_bytes, std::size_t depth)
    : impl_(std::make_unique<Impl>(next, block_bytes, depth)) {}

BackgroundSink::~BackgroundSink() = default;

void BackgroundSink::Write(const char* data, std::size_t size) {
  impl_->current.append(data, size);
  if (impl_->current.size() >= impl_->block_bytes) impl_->Hand();
}

void BackgroundSink::Flush() { impl_->Drain(); }

void BackgroundSink::Finish() {
  impl_->Drain();
  impl_->next.Finish();
}

void SyncDirectory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowWriteError("open directory", dir);
  if (::fsync(fd) != 0) {
    const int error = errno;
    CloseQuietly(fd);
    errno = error;
    ThrowWriteError("fsync directory", dir);
  }
  CloseQuietly(fd);
}

}  // namespace safemig
