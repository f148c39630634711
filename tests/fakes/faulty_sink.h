// A Sink that fails like a full disk or a failed fsync, for tests that check errors
// travel up a stream chain unchanged (LevelDB's SpecialEnv idea, for backup streams).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "backup/stream.h"
#include "core/error.h"

namespace safemig::testing {

class FaultySink : public Sink {
 public:
  // Accepts `capacity` bytes, then throws the way FileSink does on ENOSPC. With
  // `fail_finish`, Finish() throws the way FileSink does when fsync fails.
  explicit FaultySink(std::uint64_t capacity, bool fail_finish = false)
      : capacity_(capacity), fail_finish_(fail_finish) {}

  void Write(const char* /*data*/, std::size_t size) override {
    ++writes_;
    // Like a real disk, it takes what fits before failing, so a partial write happens.
    const std::uint64_t room = capacity_ - bytes_;
    bytes_ += std::min<std::uint64_t>(room, size);
    if (size > room) {
      ++failures_;
      throw Error(Category::kMigrationFailed,
                  "cannot write /faulty/part.zst: No space left on device",
                  "check free space and permissions of the backup directory");
    }
  }

  void Finish() override {
    ++finishes_;
    if (fail_finish_) {
      ++failures_;
      throw Error(Category::kMigrationFailed, "cannot fsync /faulty/part.zst: Input/output error",
                  "check free space and permissions of the backup directory");
    }
  }

  [[nodiscard]] std::uint64_t bytes() const { return bytes_; }
  [[nodiscard]] int writes() const { return writes_; }
  [[nodiscard]] int finishes() const { return finishes_; }
  [[nodiscard]] int failures() const { return failures_; }

 private:
  std::uint64_t capacity_;
  bool fail_finish_;
  std::uint64_t bytes_ = 0;
  int writes_ = 0;
  int finishes_ = 0;
  int failures_ = 0;
};

}  // namespace safemig::testing
