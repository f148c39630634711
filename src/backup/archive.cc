#include "backup/archive.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/sha256.h"

namespace safemig {
namespace fs = std::filesystem;
namespace {

constexpr const char* kManifestName = "manifest.json";
constexpr const char* kSumsName = "SHA256SUMS";
constexpr const char* kPartsDir = "parts";

Error WriteError(const std::string& what) {
  return Error(Category::kMigrationFailed, what,
               "check free space and permissions of the backup directory");
}

void MakePrivateDir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw WriteError(fmt::format("cannot create {}: {}", dir.string(), std::strerror(errno)));
  }
  ::chmod(dir.c_str(), 0700);
}

void WriteSmallFile(const fs::path& path, const std::string& text) {
  FileSink sink(path);
  sink.Write(text.data(), text.size());
  sink.Finish();
}

std::string ReadSmallFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Discards bytes (used to decompress fully when only checking).
class NullSink : public Sink {
 public:
  void Write(const char*, std::size_t) override {}
  void Finish() override {}
};

Error Damaged(const fs::path& dir, Damage damage, const std::string& detail) {
  return Error(Category::kIntegrity,
               fmt::format("backup {} is damaged ({}): {}", dir.filename().string(),
                           DamageName(damage), detail),
               "use another backup (`safemig backup list`); this one cannot be trusted");
}

}  // namespace

void ProgressSink::Write(const char* data, std::size_t size) {
  next_.Write(data, size);
  done_ += size;
  if (progress_ && (done_ - reported_ >= (8u << 20) || done_ == total_)) {
    reported_ = done_;
    progress_(done_, total_);
  }
}

const char* DamageName(Damage damage) {
  switch (damage) {
    case Damage::kNone: return "none";
    case Damage::kMissingPart: return "missing part";
    case Damage::kTruncatedPart: return "truncated part";
    case Damage::kCorruptPart: return "corrupt part";
    case Damage::kEditedManifest: return "edited manifest";
    case Damage::kUnreadableManifest: return "unreadable manifest";
    case Damage::kUnknownFormat: return "unknown format version";
  }
  return "unknown";
}

void CheckPartName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\\') != std::string::npos || name.find('\0') != std::string::npos ||
      name.find("..") != std::string::npos) {
    throw Error(Category::kIntegrity,
                fmt::format("backup manifest names a part '{}' that could point outside the "
                            "backup directory; refusing it",
                            name.find('\0') != std::string::npos ? std::string("<NUL>") : name),
                "the manifest was tampered with: use another backup");
  }
}

std::uint64_t Manifest::RawBytes() const {
  std::uint64_t total = 0;
  for (const PartInfo& part : parts) total += part.raw_bytes;
  return total;
}

std::uint64_t Manifest::StoredBytes() const {
  std::uint64_t total = 0;
  for (const PartInfo& part : parts) total += part.stored_bytes;
  return total;
}

std::string Manifest::ToJson() const {
  nlohmann::ordered_json parts_json = nlohmann::ordered_json::array();
  for (const PartInfo& part : parts) {
    parts_json.push_back({{"name", part.name},
                          {"kind", part.kind},
                          {"raw_bytes", part.raw_bytes},
                          {"stored_bytes", part.stored_bytes},
                          {"raw_sha256", part.raw_sha256},
                          {"sha256", part.sha256},
                          {"rows", part.rows}});
  }
  nlohmann::ordered_json j = {
      {"format", "safemig-backup"},
      {"format_version", format_version},
      {"id", id},
      {"engine", engine},
      {"server_version", server_version},
      {"database", database},
      {"environment", environment},
      {"created_at", created_at},
      {"finished_at", finished_at},
      {"tool_version", tool_version},
      {"migration_version", migration_version},
      {"scope", scope},
      {"reason", reason},
      {"label", label},
      {"compression", {{"algorithm", "zstd"}, {"level", compression_level},
                       {"frame_checksums", true}}},
      {"raw_bytes", RawBytes()},
      {"stored_bytes", StoredBytes()},
      {"fingerprint_sha256", fingerprint.Digest()},
      {"fingerprint", nlohmann::ordered_json::parse(fingerprint.ToJson())},
      {"parts", parts_json}};
  return j.dump(2) + "\n";
}

Manifest Manifest::FromJson(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    throw Error(Category::kIntegrity, "manifest.json is not valid JSON",
                "the backup is damaged: use another backup");
  }
  try {
    if (j.value("format", "") != "safemig-backup") {
      throw Error(Category::kIntegrity, "manifest.json is not a safemig backup manifest");
    }
    Manifest m;
    m.format_version = j.at("format_version").get<int>();
    if (m.format_version != kBackupFormatVersion) {
      throw Error(Category::kIntegrity,
                  fmt::format("manifest format_version {} is not one this safemig reads ({})",
                              m.format_version, kBackupFormatVersion),
                  "use the safemig version that wrote it, or restore by hand as "
                  "docs/backup-format.md describes");
    }
    m.id = j.at("id").get<std::string>();
    m.engine = j.at("engine").get<std::string>();
    m.server_version = j.value("server_version", "");
    m.database = j.value("database", "");
    m.environment = j.value("environment", "");
    m.created_at = j.at("created_at").get<std::string>();
    m.finished_at = j.value("finished_at", "");
    m.tool_version = j.value("tool_version", "");
    m.migration_version = j.value("migration_version", "");
    m.scope = j.value("scope", "database");
    m.reason = j.value("reason", "");
    m.label = j.value("label", "");
    if (j.contains("compression")) m.compression_level = j["compression"].value("level", 3);
    m.fingerprint = Fingerprint::FromJson(j.at("fingerprint").dump());
    for (const auto& p : j.at("parts")) {
      PartInfo part;
      part.name = p.at("name").get<std::string>();
      CheckPartName(part.name);
      part.kind = p.at("kind").get<std::string>();
      part.raw_bytes = p.at("raw_bytes").get<std::uint64_t>();
      part.stored_bytes = p.at("stored_bytes").get<std::uint64_t>();
      part.raw_sha256 = p.at("raw_sha256").get<std::string>();
      part.sha256 = p.at("sha256").get<std::string>();
      part.rows = p.value("rows", static_cast<std::int64_t>(-1));
      m.parts.push_back(std::move(part));
    }
    if (m.parts.empty()) throw Error(Category::kIntegrity, "manifest.json lists no parts");
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw Error(Category::kIntegrity,
                fmt::format("manifest.json is missing a field or has a wrong type ({})", e.what()),
                "the backup is damaged: use another backup");
  }
}

// --- writer ---------------------------------------------------------------------------

struct ArchiveWriter::OpenPart {
  PartInfo info;
  std::unique_ptr<FileSink> file;
  std::unique_ptr<HashingSink> stored;
  std::unique_ptr<ZstdCompressSink> zstd;
  std::unique_ptr<HashingSink> raw;
};

ArchiveWriter::ArchiveWriter(const fs::path& store, const std::string& id, int level)
    : store_(store), id_(id), partial_(store / (id + ".partial")), level_(level) {
  std::error_code ec;
  fs::create_directories(store_, ec);
  if (ec) throw WriteError(fmt::format("cannot create {}: {}", store_.string(), ec.message()));
  ::chmod(store_.c_str(), 0700);
  // The directory gets its lock before it carries the .partial name, so another process
  // cleaning up abandoned backups never sees it unlocked (a window in which it would be
  // deleted under a live writer). The lock is held until this object dies, with the
  // process if it must: cleanup skips locked ones.
  const fs::path staging = store_ / ("." + id + kArchiveStagingSuffix);
  if (::mkdir(staging.c_str(), 0700) != 0) {
    throw WriteError(fmt::format("cannot create {}: {}", staging.string(), std::strerror(errno)));
  }
  lock_fd_ = ::open((staging / ".writer.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0 ||
      ::rename(staging.c_str(), partial_.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    throw WriteError(fmt::format("cannot lock {}: {}", partial_.string(), why));
  }
  MakePrivateDir(partial_ / kPartsDir);
}

ArchiveWriter::~ArchiveWriter() {
  open_.reset();
  if (!published_) {
    std::error_code ignored;
    fs::remove_all(partial_, ignored);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

fs::path ArchiveWriter::ScratchPath(const std::string& name) const { return partial_ / name; }

Sink& ArchiveWriter::BeginPart(const std::string& name, const std::string& kind) {
  CheckPartName(name);
  open_ = std::make_unique<OpenPart>();
  open_->info.name = name;
  open_->info.kind = kind;
  open_->file = std::make_unique<FileSink>(partial_ / kPartsDir / name);
  open_->stored = std::make_unique<HashingSink>(*open_->file);
  open_->zstd = std::make_unique<ZstdCompressSink>(*open_->stored, level_);
  open_->raw = std::make_unique<HashingSink>(*open_->zstd);
  return *open_->raw;
}

// Finishes the whole chain (fsyncing the file) and describes the part.
PartInfo ArchiveWriter::FinishChain(OpenPart& open, std::int64_t rows) {
  open.raw->Finish();
  PartInfo info = open.info;
  info.raw_bytes = open.raw->bytes();
  info.raw_sha256 = open.raw->hex_digest();
  info.stored_bytes = open.stored->bytes();
  info.sha256 = open.stored->hex_digest();
  info.rows = rows;
  return info;
}

void ArchiveWriter::EndPart(std::int64_t rows) {
  parts_.push_back(FinishChain(*open_, rows));
  open_.reset();
}

ArchiveWriter::ParallelPart::ParallelPart(std::unique_ptr<OpenPart> open)
    : open_(std::move(open)) {}

ArchiveWriter::ParallelPart::~ParallelPart() = default;

Sink& ArchiveWriter::ParallelPart::sink() { return *open_->raw; }

PartInfo ArchiveWriter::ParallelPart::Finish(std::int64_t rows) {
  return ArchiveWriter::FinishChain(*open_, rows);
}

std::unique_ptr<ArchiveWriter::ParallelPart> ArchiveWriter::BeginParallelPart(
    const std::string& name, const std::string& kind) const {
  CheckPartName(name);
  auto open = std::make_unique<OpenPart>();
  open->info.name = name;
  open->info.kind = kind;
  open->file = std::make_unique<FileSink>(partial_ / kPartsDir / name);
  open->stored = std::make_unique<HashingSink>(*open->file);
  open->zstd = std::make_unique<ZstdCompressSink>(*open->stored, level_);
  open->raw = std::make_unique<HashingSink>(*open->zstd);
  return std::unique_ptr<ParallelPart>(new ParallelPart(std::move(open)));
}

void ArchiveWriter::AddFinishedPart(PartInfo info) { parts_.push_back(std::move(info)); }

fs::path ArchiveWriter::Publish(Manifest manifest) {
  manifest.id = id_;
  manifest.parts = parts_;
  std::string manifest_text = manifest.ToJson();
  WriteSmallFile(partial_ / kManifestName, manifest_text);
  std::string sums = fmt::format("{}  {}\n", Sha256Hex(manifest_text), kManifestName);
  for (const PartInfo& part : parts_) {
    sums += fmt::format("{}  {}/{}\n", part.sha256, kPartsDir, part.name);
  }
  WriteSmallFile(partial_ / kSumsName, sums);
  // Scratch files never belong to a published backup.
  for (const auto& entry : fs::directory_iterator(partial_)) {
    const std::string name = entry.path().filename().string();
    if (name != kManifestName && name != kSumsName && name != kPartsDir) {
      std::error_code ignored;
      fs::remove_all(entry.path(), ignored);
    }
  }
  SyncDirectory(partial_ / kPartsDir);
  SyncDirectory(partial_);
  fs::path final_dir = store_ / id_;
  if (::rename(partial_.c_str(), final_dir.c_str()) != 0) {
    throw WriteError(fmt::format("cannot publish backup {}: {}", final_dir.string(),
                                 std::strerror(errno)));
  }
  published_ = true;
  SyncDirectory(store_);
  return final_dir;
}

// --- reader ---------------------------------------------------------------------------

ArchiveReader ArchiveReader::Open(const fs::path& dir) {
  ArchiveReader reader;
  reader.dir_ = dir;
  const fs::path manifest_path = dir / kManifestName;
  if (!fs::exists(manifest_path)) {
    throw Damaged(dir, Damage::kUnreadableManifest, "manifest.json is missing");
  }
  std::string text = ReadSmallFile(manifest_path);
  try {
    reader.manifest_ = Manifest::FromJson(text);
  } catch (const Error& e) {
    Damage damage = std::string(e.what()).find("format_version") != std::string::npos
                        ? Damage::kUnknownFormat
                        : Damage::kUnreadableManifest;
    if (std::string(e.what()).find("outside the backup") != std::string::npos) throw;
    throw Error(Category::kIntegrity,
                fmt::format("backup {} is damaged ({}): {}", dir.filename().string(),
                            DamageName(damage), e.what()),
                e.hint());
  }
  // The manifest's own hash is the first line of SHA256SUMS.
  std::string sums = ReadSmallFile(dir / kSumsName);
  std::string expected = fmt::format("{}  {}", Sha256Hex(text), kManifestName);
  if (sums.compare(0, expected.size(), expected) != 0) {
    throw Damaged(dir, Damage::kEditedManifest,
                  "manifest.json does not match its SHA256SUMS entry (edited after the backup "
                  "was written)");
  }
  return reader;
}

fs::path ArchiveReader::PartPath(const PartInfo& part) const {
  return dir_ / kPartsDir / part.name;
}

void ArchiveReader::CheckParts(const Progress& progress) const {
  const std::uint64_t total = manifest_.StoredBytes();
  std::uint64_t done_before = 0;
  for (const PartInfo& part : manifest_.parts) {
    const fs::path path = PartPath(part);
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      throw Damaged(dir_, Damage::kMissingPart, fmt::format("part {} is missing", part.name));
    }
    const std::uint64_t size = fs::file_size(path, ec);
    if (size < part.stored_bytes) {
      throw Damaged(dir_, Damage::kTruncatedPart,
                    fmt::format("part {} is truncated: {} of {} bytes", part.name, size,
                                part.stored_bytes));
    }
    if (size > part.stored_bytes) {
      throw Damaged(dir_, Damage::kCorruptPart,
                    fmt::format("part {} has {} bytes, the manifest says {}", part.name, size,
                                part.stored_bytes));
    }
    FileSource file(path);
    HashingSource hashing(file);
    NullSink discard;
    Progress shifted;
    if (progress) {
      shifted = [&](std::uint64_t done, std::uint64_t) { progress(done_before + done, total); };
    }
    ProgressSink counted(discard, total, shifted);
    Pump(hashing, counted);
    if (hashing.HexDigest() != part.sha256) {
      throw Damaged(dir_, Damage::kCorruptPart,
                    fmt::format("part {} fails its SHA-256 check (bytes changed on disk)",
                                part.name));
    }
    done_before += size;
  }
  if (progress) progress(total, total);
}

void ArchiveReader::ExtractPart(const PartInfo& part, Sink& sink,
                                const Progress& progress) const {
  FileSource file(PartPath(part));
  ZstdDecompressSource zstd(file);
  HashingSource raw(zstd);
  ProgressSink counted(sink, part.raw_bytes, progress);
  try {
    Pump(raw, counted);
  } catch (const Error& e) {
    if (e.category() != Category::kIntegrity) throw;
    throw Damaged(dir_, Damage::kCorruptPart, fmt::format("part {}: {}", part.name, e.what()));
  }
  if (raw.bytes() != part.raw_bytes || raw.HexDigest() != part.raw_sha256) {
    throw Damaged(dir_, Damage::kCorruptPart,
                  fmt::format("part {} decompresses to different data than was backed up",
                              part.name));
  }
}

void ArchiveReader::Verify(const Progress& progress) const {
  CheckParts();
  const std::uint64_t total = manifest_.RawBytes();
  std::uint64_t done_before = 0;
  for (const PartInfo& part : manifest_.parts) {
    NullSink discard;
    Progress shifted;
    if (progress) {
      shifted = [&](std::uint64_t done, std::uint64_t) { progress(done_before + done, total); };
    }
    ExtractPart(part, discard, shifted);
    done_before += part.raw_bytes;
  }
  if (progress) progress(total, total);
}

}  // namespace safemig
