// Byte streams for backups: Sink (write side) and Source (read side), and the wrappers
// that chain onto them: zstd compression, SHA-256 hashing and byte counting, files.
//
// A chain is built innermost first, e.g. for writing one backup part:
//   FileSink file(path);  HashingSink stored(file);  ZstdCompressSink zstd(stored, 3);
//   HashingSink raw(zstd);   ... raw.Write(...) ...;  raw.Finish();
// Finish() flushes and finishes the wrapped sink too (the whole chain), and may throw;
// destructors never throw and only release resources. Memory is bounded by fixed buffer
// sizes, never by how much data flows. Not thread-safe: one thread per chain.
//
// Errors are safemig::Error: kMigrationFailed for I/O failures on write (disk full, fsync
// failed), kIntegrity for damaged input on read (corrupt or truncated zstd data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace safemig {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Write(const char* data, std::size_t size) = 0;
  // Subclasses re-export this overload with `using Sink::Write;`.
  void Write(std::string_view data) { Write(data.data(), data.size()); }
  // Flushes everything written so far through the whole chain and makes it durable
  // (FileSink fsyncs). Write() must not be called afterwards.
  virtual void Finish() = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  // Reads up to `size` bytes into `data`; returns 0 only at the end of the stream.
  virtual std::size_t Read(char* data, std::size_t size) = 0;
};

// Copies `source` into `sink` (without calling Finish) and returns the byte count.
std::uint64_t Pump(Source& source, Sink& sink);

// Incremental SHA-256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const char* data, std::size_t size);
  // Finalises and returns the lower-case hex digest. Later calls return the same digest;
  // Update() after it throws Error(kInternal).
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Passes bytes through to `next`, counting them and hashing them with SHA-256.
class HashingSink : public Sink {
 public:
  using Sink::Write;
  explicit HashingSink(Sink& next) : next_(next) {}
  void Write(const char* data, std::size_t size) override;
  void Finish() override;
  std::uint64_t bytes() const { return bytes_; }
  // REQUIRES: Finish() was called.
  const std::string& hex_digest() const { return digest_; }

 private:
  Sink& next_;
  Sha256 sha_;
  std::uint64_t bytes_ = 0;
  std::string digest_;
};

// Reads through `next`, counting and hashing what passes.
class HashingSource : public Source {
 public:
  explicit HashingSource(Source& next) : next_(next) {}
  std::size_t Read(char* data, std::size_t size) override;
  std::uint64_t bytes() const { return bytes_; }
  // Finalises the hash; call once, after Read() returned 0.
  std::string HexDigest() { return sha_.HexDigest(); }

 private:
  Source& next_;
  Sha256 sha_;
  std::uint64_t bytes_ = 0;
};

// zstd streaming compression (ZSTD_compressStream2) with frame checksums on, so
// `zstd -t` / `zstd -dc` verify the data independently of safemig. `level` is zstd's
// (1..19, out-of-range values are clamped); no worker threads. Errors from `next`
// propagate unchanged; after any exception the frame is broken, so later calls throw
// Error(kInternal) and `next` is never finished.
class ZstdCompressSink : public Sink {
 public:
  using Sink::Write;
  explicit ZstdCompressSink(Sink& next, int level = 3);
  ~ZstdCompressSink() override;
  void Write(const char* data, std::size_t size) override;
  void Finish() override;  // ends the frame, then finishes `next`

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// zstd streaming decompression of one or more concatenated frames. Throws
// Error(kIntegrity) on corrupt data, a failed frame checksum, empty input, or input that
// ends in the middle of a frame (a truncated file).
class ZstdDecompressSource : public Source {
 public:
  explicit ZstdDecompressSource(Source& next);
  ~ZstdDecompressSource() override;
  std::size_t Read(char* data, std::size_t size) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes a new file (O_EXCL, mode 0600) through a 1 MiB buffer. Finish() flushes, fsyncs
// and closes the file. Throws Error(kMigrationFailed) naming the path and the system's
// reason on any failure (ENOSPC included); after one, later calls throw Error(kInternal).
// Destroyed without Finish(), the incomplete file stays on disk for the caller to remove.
// Making the new directory entry durable is SyncDirectory()'s job.
class FileSink : public Sink {
 public:
  using Sink::Write;
  explicit FileSink(const std::filesystem::path& path);
  ~FileSink() override;
  void Write(const char* data, std::size_t size) override;
  void Finish() override;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::string buffer_;
};

class FileSource : public Source {
 public:
  // Throws Error(kIntegrity) naming the path if it cannot be opened (missing part);
  // Read() does the same on an I/O error.
  explicit FileSource(const std::filesystem::path& path);
  ~FileSource() override;
  std::size_t Read(char* data, std::size_t size) override;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// Collects everything into a string (tests, small manifests).
class StringSink : public Sink {
 public:
  using Sink::Write;
  void Write(const char* data, std::size_t size) override { text_.append(data, size); }
  void Finish() override { finished_ = true; }
  const std::string& text() const { return text_; }
  bool finished() const { return finished_; }

 private:
  std::string text_;
  bool finished_ = false;
};

class StringSource : public Source {
 public:
  explicit StringSource(std::string text) : text_(std::move(text)) {}
  std::size_t Read(char* data, std::size_t size) override;

 private:
  std::string text_;
  std::size_t offset_ = 0;
};

// Passes what is written on to `next` on a thread of its own, in blocks of about
// `block_bytes` with at most `depth` blocks waiting (memory stays bounded), so the caller
// goes on producing while `next` hashes, compresses or writes. A single Write() is never
// split across blocks. Flush() returns once `next` has had everything; it, and every
// Write() that completes a block, rethrow the first error `next` threw (blocks after that
// error are dropped, not written). Finish() flushes, then finishes `next` on the caller's
// thread. Destroyed without either, it drops what was waiting and joins.
// The one exception to "one thread per chain": `next` runs on the background thread.
class BackgroundSink : public Sink {
 public:
  using Sink::Write;
  explicit BackgroundSink(Sink& next, std::size_t block_bytes = 1 << 20, std::size_t depth = 4);
  ~BackgroundSink() override;
  BackgroundSink(const BackgroundSink&) = delete;
  BackgroundSink& operator=(const BackgroundSink&) = delete;
  void Write(const char* data, std::size_t size) override;
  void Flush();
  void Finish() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// fsyncs a directory so a rename or a new entry in it is durable. Throws
// Error(kMigrationFailed) naming the directory.
void SyncDirectory(const std::filesystem::path& dir);

}  // namespace safemig
