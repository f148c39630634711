// The backup archive and store: publishing, every kind of damage, traversal, modes,
// abandoned partial directories, retention.
#include "backup/archive.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "backup/store.h"
#include "core/error.h"
#include "core/sha256.h"
#include "test_util.h"

namespace safemig {
namespace {

namespace fs = std::filesystem;
using safemig::testing::ReadFile;
using safemig::testing::TempDir;
using safemig::testing::WriteFile;

Manifest BasicManifest(const std::string& reason = "manual") {
  Manifest m;
  m.engine = "sqlite";
  m.database = "sqlite:test.db";
  m.environment = "default";
  m.created_at = "2026-11-26T03:00:00.000Z";
  m.reason = reason;
  m.fingerprint.objects["table t"] = "table t: column id INTEGER";
  m.fingerprint.tables["t"] = TableData{2, "abc"};
  return m;
}

std::string Payload(size_t size) {
  std::string text;
  text.reserve(size);
  for (size_t i = 0; text.size() < size; ++i) text += "row " + std::to_string(i * 7919 % 1000) + "\n";
  text.resize(size);
  return text;
}

fs::path WriteBackup(const fs::path& store, const std::string& id, const std::string& data,
                     const std::string& reason = "manual") {
  ArchiveWriter writer(store, id, 3);
  Sink& sink = writer.BeginPart("data.bin.zst", "test");
  sink.Write(data);
  writer.EndPart(2);
  Sink& second = writer.BeginPart("empty.zst", "test");
  (void)second;
  writer.EndPart();
  return writer.Publish(BasicManifest(reason));
}

Category CategoryOf(const std::function<void()>& fn, std::string* message) {
  try {
    fn();
  } catch (const Error& e) {
    *message = e.what();
    return e.category();
  }
  return Category::kInternal;
}

class StringCollector : public Sink {
 public:
  void Write(const char* data, std::size_t size) override { text.append(data, size); }
  void Finish() override {}
  std::string text;
};

TEST(Archive, RoundTripsPartsAndManifest) {
  TempDir dir;
  const std::string data = Payload(3'000'000);
  fs::path published = WriteBackup(dir.path(), "b1", data);
  EXPECT_EQ(published, dir / "b1");
  EXPECT_FALSE(fs::exists(dir / "b1.partial"));
  ArchiveReader reader = ArchiveReader::Open(published);
  ASSERT_EQ(reader.manifest().parts.size(), 2u);
  const PartInfo& part = reader.manifest().parts[0];
  EXPECT_EQ(part.raw_bytes, data.size());
  EXPECT_LT(part.stored_bytes, part.raw_bytes / 5);
  EXPECT_EQ(part.raw_sha256, Sha256Hex(data));
  EXPECT_EQ(part.rows, 2);
  EXPECT_NO_THROW(reader.Verify());
  StringCollector out;
  reader.ExtractPart(part, out);
  EXPECT_EQ(out.text, data);
  EXPECT_EQ(reader.manifest().fingerprint.Digest(), BasicManifest().fingerprint.Digest());
}

TEST(Archive, PartsAreReadableWithStandardTools) {
  TempDir dir;
  const std::string data = Payload(100'000);
  fs::path published = WriteBackup(dir.path(), "b1", data);
  std::string command = "cd '" + published.string() + "' && sha256sum --quiet -c SHA256SUMS && " +
                        "zstd -q -dc parts/data.bin.zst > '" + (dir / "out").string() + "'";
  ASSERT_EQ(std::system(command.c_str()), 0);
  EXPECT_EQ(ReadFile(dir / "out"), data);
}

TEST(Archive, FilesAre0600AndDirectories0700) {
  TempDir dir;
  fs::path published = WriteBackup(dir.path() / "store", "b1", "data");
  auto mode = [](const fs::path& p) {
    struct stat st {};
    ::stat(p.c_str(), &st);
    return st.st_mode & 0777;
  };
  EXPECT_EQ(mode(dir / "store"), 0700u);
  EXPECT_EQ(mode(published), 0700u);
  EXPECT_EQ(mode(published / "parts"), 0700u);
  EXPECT_EQ(mode(published / "manifest.json"), 0600u);
  EXPECT_EQ(mode(published / "SHA256SUMS"), 0600u);
  EXPECT_EQ(mode(published / "parts" / "data.bin.zst"), 0600u);
}

TEST(Archive, FlippedByteIsNamedWithItsPart) {
  TempDir dir;
  fs::path published = WriteBackup(dir.path(), "b1", Payload(200'000));
  fs::path part = published / "parts" / "data.bin.zst";
  std::string bytes = ReadFile(part);
  bytes[bytes.size() / 2] ^= 0x01;
  WriteFile(part, bytes);
  std::string message;
  EXPECT_EQ(CategoryOf([&] { ArchiveReader::Open(published).Verify(); }, &message),
            Category::kIntegrity);
  EXPECT_NE(message.find("corrupt part"), std::string::npos) << message;
  EXPECT_NE(message.find("data.bin.zst"), std::string::npos) << message;
}

TEST(Archive, TruncatedPartIsNamed) {
  TempDir dir;
  fs::path published = WriteBackup(dir.path(), "b1", Payload(200'000));
  fs::path part = published / "parts" / "data.bin.zst";
  fs::resize_file(part, fs::file_size(part) / 2);
  std::string message;
  EXPECT_EQ(CategoryOf([&] { ArchiveReader::Open(published).CheckParts(); }, &message),
            Category::kIntegrity);
  EXPECT_NE(message.find("truncated part"), std::string::npos) << message;
}

TEST(Archive, MissingPartIsNamed) {
  TempDir dir;
  fs::path published = WriteBackup(dir.path(), "b1", "data");
  fs::remove(published / "parts" / "empty.zst");
  std::string message;
  EXPECT_EQ(CategoryOf([&] { ArchiveReader::Open(published).Verify(); }, &message),
            Category::kIntegrity);
  EXPECT_NE(message.find("missing part"), std::string::npos) << message;
  EXPECT_NE(message.find("empty.zst"), std::string::npos) << message;
}

TEST(Archive, EditedManifestIsDetected) {
  TempDir dir;
  fs::path published = WriteBackup(dir.path(), "b1", "data");
  std::string manifest = ReadFile(published / "manifest.json");
  manifest.replace(manifest.find("\"default\""), 9, "\"prod-01\"");
  WriteFile(published / "manifest.json", manifest);
  std::string message;
  EXPECT_EQ(CategoryOf([&] { ArchiveReader::Open(published); }, &message), Category::kIntegrity);
  EXPECT_NE(message.find("edited manifest"), std::string::npos) << message;
}

TEST(Archive, UnknownFormatVersionIsRefused) {
  TempDir dir;
  fs::path published = WriteBackup(dir.path(), "b1", "data");
  std::string manifest = ReadFile(published / "manifest.json");
  manifest.replace(manifest.find("\"format_version\": 1"), 19, "\"format_version\": 7");
  WriteFile(published / "manifest.json", manifest);
  std::string message;
  EXPECT_EQ(CategoryOf([&] { ArchiveReader::Open(published); }, &message), Category::kIntegrity);
  EXPECT_NE(message.find("unknown format version"), std::string::npos) << message;
}

TEST(Archive, PartNamesThatEscapeTheDirectoryAreRefused) {
  for (const std::string& name :
       {std::string("../evil"), std::string("a/b"), std::string(".."), std::string(""),
        std::string("x\0y", 3), std::string("..\\x")}) {
    EXPECT_THROW(CheckPartName(name), Error) << name;
  }
  EXPECT_NO_THROW(CheckPartName("public.orders.copy.zst"));
  TempDir dir;
  fs::path published = WriteBackup(dir.path(), "b1", "data");
  std::string manifest = ReadFile(published / "manifest.json");
  manifest.replace(manifest.find("\"data.bin.zst\""), 14, "\"../../../x\"");
  WriteFile(published / "manifest.json", manifest);
  // Even with a matching SHA256SUMS (a deliberate tamper), the name is refused.
  WriteFile(published / "SHA256SUMS", Sha256Hex(manifest) + "  manifest.json\n");
  std::string message;
  EXPECT_EQ(CategoryOf([&] { ArchiveReader::Open(published); }, &message), Category::kIntegrity);
  EXPECT_NE(message.find("outside the backup directory"), std::string::npos) << message;
}

TEST(Archive, UnpublishedWriterLeavesNothing) {
  TempDir dir;
  {
    ArchiveWriter writer(dir.path(), "b1", 3);
    writer.BeginPart("x.zst", "test").Write("abc");
  }
  EXPECT_FALSE(fs::exists(dir / "b1.partial"));
  EXPECT_TRUE(BackupStore(dir.path()).List().empty());
}

TEST(BackupStore, KilledWriterLeavesOnlyAPartialThatTheNextRunRemoves) {
  TempDir dir;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ArchiveWriter writer(dir.path(), "doomed", 3);
    writer.BeginPart("x.zst", "test").Write(Payload(100'000));
    char c = 'r';
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  BackupStore store(dir.path());
  // While the writer lives, cleanup leaves its directory alone.
  EXPECT_TRUE(store.RemoveAbandoned().empty());
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(fs::exists(dir / "doomed.partial"));
  EXPECT_TRUE(store.List().empty());
  EXPECT_EQ(store.RemoveAbandoned(), std::vector<std::string>{"doomed"});
  EXPECT_FALSE(fs::exists(dir / "doomed.partial"));
}

// A writer makes its directory under a hidden name and locks it before it becomes
// .partial, so a concurrent clean-up (another safemig sharing the store) never deletes a
// live backup; a hidden directory left by a writer killed in between goes after a minute.
TEST(BackupStore, CleanupNeverSeesAnUnlockedDirectoryOfALiveWriter) {
  TempDir dir;
  BackupStore store(dir.path());
  for (int i = 0; i < 50; ++i) {
    ArchiveWriter writer(dir.path(), "live" + std::to_string(i), 3);
    EXPECT_TRUE(store.RemoveAbandoned().empty());
    EXPECT_TRUE(fs::exists(dir / ("live" + std::to_string(i) + ".partial")));
  }
  fs::create_directories(dir / ".fresh.new");
  fs::create_directories(dir / ".stale.new");
  fs::last_write_time(dir / ".stale.new",
                      fs::file_time_type::clock::now() - std::chrono::minutes(5));
  store.RemoveAbandoned();
  EXPECT_TRUE(fs::exists(dir / ".fresh.new"));
  EXPECT_FALSE(fs::exists(dir / ".stale.new"));
  EXPECT_TRUE(store.List().empty());
}

TEST(BackupStore, IdsSortByTimeAndNameEnvironmentAndVersion) {
  TempDir dir;
  BackupStore store(dir.path());
  std::string id = store.NewId("production", "20260127110000");
  EXPECT_NE(id.find("_production_v20260127110000"), std::string::npos) << id;
  EXPECT_EQ(id.size(), std::string("20261126T030536.123Z_production_v20260127110000").size());
  WriteBackup(dir.path(), id, "x");
  std::string second = store.NewId("production", "20260127110000");
  EXPECT_NE(second, id);
  EXPECT_NE(store.NewId("dev", "").find("_dev_v0"), std::string::npos);
}

TEST(BackupStore, LatestIsTheLastCreatedEvenWithinOneSecond) {
  TempDir dir;
  BackupStore store(dir.path());
  WriteBackup(dir.path(), store.NewId("dev", "20260127110000"), "newer version, older backup");
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::string later = store.NewId("dev", "20260120160000");
  WriteBackup(dir.path(), later, "older version, newer backup");
  EXPECT_EQ(store.Find("latest").id, later);
}

TEST(BackupStore, FindsByPrefixAndLatest) {
  TempDir dir;
  WriteBackup(dir.path(), "20260101T000000Z_default_v1", "a");
  WriteBackup(dir.path(), "20260102T000000Z_default_v2", "b");
  BackupStore store(dir.path());
  EXPECT_EQ(store.Find("latest").id, "20260102T000000Z_default_v2");
  EXPECT_EQ(store.Find("20260101").id, "20260101T000000Z_default_v1");
  EXPECT_THROW(store.Find("2026"), Error);
  EXPECT_THROW(store.Find("nope"), Error);
}

TEST(BackupStore, PruneKeepsLastNButNeverTheNewestVerifiedOrPreChangeBackup) {
  TempDir dir;
  WriteBackup(dir.path(), "20260101T000000Z_default_v1", "a", "before-up");
  WriteBackup(dir.path(), "20260102T000000Z_default_v2", "b");
  WriteBackup(dir.path(), "20260103T000000Z_default_v3", "c");
  WriteBackup(dir.path(), "20260104T000000Z_default_v4", "d");
  WriteBackup(dir.path(), "20260105T000000Z_default_v5", "e");
  BackupStore store(dir.path());
  store.MarkVerified("20260102T000000Z_default_v2", "verify");
  Retention keep_one;
  keep_one.keep_last = 1;
  std::vector<std::string> would = store.Prune(keep_one, {}, /*dry_run=*/true);
  EXPECT_EQ(would, (std::vector<std::string>{"20260103T000000Z_default_v3",
                                             "20260104T000000Z_default_v4"}));
  EXPECT_EQ(store.List().size(), 5u);
  store.Prune(keep_one, {}, /*dry_run=*/false);
  std::vector<std::string> left;
  for (const BackupEntry& entry : store.List()) left.push_back(entry.id);
  EXPECT_EQ(left, (std::vector<std::string>{"20260101T000000Z_default_v1",
                                            "20260102T000000Z_default_v2",
                                            "20260105T000000Z_default_v5"}));
}

TEST(BackupStore, PruneByAgeRemovesOnlyOldBackups) {
  TempDir dir;
  WriteBackup(dir.path(), "20260101T000000Z_default_v1", "a");  // created_at in BasicManifest
  BackupStore store(dir.path());
  Retention year;
  year.max_age = std::chrono::hours(24 * 365 * 30);
  EXPECT_TRUE(store.Prune(year, {}, false).empty());
  WriteBackup(dir.path(), "20260102T000000Z_default_v2", "b");
  Retention minute;
  minute.max_age = std::chrono::minutes(1);
  // The newest is not protected by count here, but it is the newest verified? No: none is
  // verified and none was taken before a change, so age alone decides.
  EXPECT_EQ(store.Prune(minute, {}, true).size(), 2u);
  EXPECT_EQ(store.Prune(minute, {"20260102T000000Z_default_v2"}, true).size(), 1u);
}

}  // namespace
}  // namespace safemig

namespace safemig {
namespace {

TEST(Archive, ParallelPartsWrittenFromThreadsAreListedInOrder) {
  safemig::testing::TempDir dir;
  ArchiveWriter writer(dir.path(), "b1", 3);
  std::vector<std::unique_ptr<ArchiveWriter::ParallelPart>> parts;
  for (int i = 0; i < 4; ++i) {
    parts.push_back(writer.BeginParallelPart("t" + std::to_string(i) + ".zst", "test"));
  }
  std::vector<PartInfo> finished(parts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < parts.size(); ++i) {
    threads.emplace_back([&, i] {
      parts[i]->sink().Write(Payload(50'000 * (i + 1)));
      finished[i] = parts[i]->Finish(static_cast<std::int64_t>(i));
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (PartInfo& info : finished) writer.AddFinishedPart(info);
  fs::path published = writer.Publish(BasicManifest());
  ArchiveReader reader = ArchiveReader::Open(published);
  ASSERT_EQ(reader.manifest().parts.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(reader.manifest().parts[i].name, "t" + std::to_string(i) + ".zst");
    EXPECT_EQ(reader.manifest().parts[i].raw_bytes, 50'000 * (i + 1));
    EXPECT_EQ(reader.manifest().parts[i].rows, static_cast<std::int64_t>(i));
  }
  EXPECT_NO_THROW(reader.Verify());
}

}  // namespace
}  // namespace safemig
