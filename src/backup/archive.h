// The backup archive: a directory of independent zstd parts plus manifest.json and a
// SHA256SUMS file, written as <id>.partial/ and published by an atomic rename.
//
//   <store>/<id>/manifest.json   what, when, from where, and every part's sizes and hashes
//   <store>/<id>/SHA256SUMS      sha256sum(1) format over manifest.json and every part, so
//                                `sha256sum -c SHA256SUMS` checks a backup without safemig
//   <store>/<id>/parts/NAME.zst  each an independent zstd stream with frame checksums
//
// Files are 0600 and directories 0700. docs/backup-format.md is the reference. Writers
// and readers are not thread-safe; one thread each.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backup/stream.h"
#include "core/fingerprint.h"

namespace safemig {

constexpr int kBackupFormatVersion = 1;

struct PartInfo {
  std::string name;  // file name under parts/, e.g. "database.sqlite3.zst"
  std::string kind;  // "sqlite-database", later "schema", "table", "post-data"
  std::uint64_t raw_bytes = 0;
  std::uint64_t stored_bytes = 0;
  std::string raw_sha256;  // of the decompressed bytes
  std::string sha256;      // of the stored (compressed) file
  std::int64_t rows = -1;  // -1: not counted
};

struct Manifest {
  int format_version = kBackupFormatVersion;
  std::string id;
  std::string engine;          // "sqlite", "postgres", "mysql"
  std::string server_version;
  std::string database;        // redacted description; never a password
  std::string environment;
  std::string created_at;
  std::string finished_at;
  std::string tool_version;
  std::string migration_version;  // "" when no migration was applied
  std::string scope = "database";
  std::string reason;  // "manual", "before-up", "before-down", "before-restore"
  std::string label;
  int compression_level = 3;
  Fingerprint fingerprint;  // of what the backup holds, safemig's tables included
  std::vector<PartInfo> parts;

  std::uint64_t RawBytes() const;
  std::uint64_t StoredBytes() const;
  std::string ToJson() const;
  // Throws Error(kIntegrity): not JSON, missing fields, an unknown format_version, a part
  // name that could escape the directory ('/', '..', NUL, empty).
  static Manifest FromJson(const std::string& text);
};

// Called now and then with (bytes done, bytes total); total is 0 when unknown.
using ProgressFn = std::function<void(std::uint64_t, std::uint64_t)>;

// Passes bytes on to `next`, calling `progress` every 8 MiB and at `total`. `progress`
// must outlive the sink.
class ProgressSink : public Sink {
 public:
  using Sink::Write;
  ProgressSink(Sink& next, std::uint64_t total, const ProgressFn& progress)
      : next_(next), total_(total), progress_(progress) {}
  void Write(const char* data, std::size_t size) override;
  void Finish() override { next_.Finish(); }

 private:
  Sink& next_;
  std::uint64_t total_;
  const ProgressFn& progress_;
  std::uint64_t done_ = 0;
  std::uint64_t reported_ = 0;
};

// Rejects part names that could point outside parts/. Throws Error(kIntegrity).
void CheckPartName(const std::string& name);

// A backup directory is made as ".<id>.new", locked, then renamed to "<id>.partial";
// one left under the first name by a writer that died at once is removed by the store's
// clean-up when it is old enough.
inline constexpr const char* kArchiveStagingSuffix = ".new";

// Writes one backup. The directory <store>/<id>.partial is created at construction and
// flock()ed so a concurrent cleanup never removes a backup still being written; it is
// removed by the destructor unless Publish() succeeded. A killed writer leaves the
// .partial directory, which BackupStore removes on its next run.
class ArchiveWriter {
 public:
  // Throws Error(kMigrationFailed) when the directory cannot be created.
  ArchiveWriter(const std::filesystem::path& store, const std::string& id, int level);
  ~ArchiveWriter();
  ArchiveWriter(const ArchiveWriter&) = delete;
  ArchiveWriter& operator=(const ArchiveWriter&) = delete;

  // Scratch space inside the .partial directory (removed with it), e.g. for a snapshot
  // file that is then streamed into a part.
  std::filesystem::path ScratchPath(const std::string& name) const;

  // Starts a part; write its raw bytes into the returned sink, then call EndPart().
  // REQUIRES: no other part is open.
  Sink& BeginPart(const std::string& name, const std::string& kind);
  void EndPart(std::int64_t rows = -1);

  const std::vector<PartInfo>& parts() const { return parts_; }

 private:
  struct OpenPart;  // declared this early for ParallelPart

 public:
  // A part written on a worker thread while other parts are open (e.g. one table per
  // connection): the same file and chain as BeginPart's. Each object belongs to one thread.
  // Destroyed without Finish(), its incomplete file is removed with the .partial directory.
  class ParallelPart {
   public:
    ~ParallelPart();
    ParallelPart(const ParallelPart&) = delete;
    ParallelPart& operator=(const ParallelPart&) = delete;
    Sink& sink();
    // Finishes the chain (fsyncing the file) and describes the part for AddFinishedPart().
    PartInfo Finish(std::int64_t rows = -1);

   private:
    friend class ArchiveWriter;
    explicit ParallelPart(std::unique_ptr<OpenPart> open);
    std::unique_ptr<OpenPart> open_;
  };

  // Thread-safe (reads only what the constructor fixed): may be called from several
  // threads at once, and while a BeginPart() part is open.
  std::unique_ptr<ParallelPart> BeginParallelPart(const std::string& name,
                                                  const std::string& kind) const;
  // Lists a part returned by ParallelPart::Finish() after the parts listed so far; parts
  // appear in the manifest in the order they were listed. The writer's thread only.
  void AddFinishedPart(PartInfo info);

  // Writes manifest.json (with these parts) and SHA256SUMS, fsyncs, renames <id>.partial
  // to <id> and fsyncs the store directory. Returns the published directory.
  std::filesystem::path Publish(Manifest manifest);

 private:
  static PartInfo FinishChain(OpenPart& open, std::int64_t rows);

  std::filesystem::path store_;
  std::string id_;
  std::filesystem::path partial_;
  int level_;
  int lock_fd_ = -1;
  bool published_ = false;
  std::unique_ptr<OpenPart> open_;
  std::vector<PartInfo> parts_;
};

// What is wrong with a backup, for messages and tests.
enum class Damage { kNone, kMissingPart, kTruncatedPart, kCorruptPart, kEditedManifest,
                    kUnreadableManifest, kUnknownFormat };
const char* DamageName(Damage damage);

// Reads a published backup. Open() checks the manifest (parsable, known format, safe part
// names, matches its SHA256SUMS line); CheckParts() checks every part's size and hash
// without decompressing; Verify() also decompresses every part fully. All throw
// Error(kIntegrity) whose message names the backup, the part and the kind of damage.
class ArchiveReader {
 public:
  static ArchiveReader Open(const std::filesystem::path& dir);

  const Manifest& manifest() const { return manifest_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path PartPath(const PartInfo& part) const;

  using Progress = ProgressFn;
  void CheckParts(const Progress& progress = {}) const;
  void Verify(const Progress& progress = {}) const;

  // Streams the decompressed bytes of `part` into `sink` (without finishing it), checking
  // the raw SHA-256 at the end. Throws Error(kIntegrity) on any mismatch.
  void ExtractPart(const PartInfo& part, Sink& sink, const Progress& progress = {}) const;

 private:
  std::filesystem::path dir_;
  Manifest manifest_;
};

}  // namespace safemig
