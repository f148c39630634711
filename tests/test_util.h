// Helpers shared by the unit tests: temporary directories, files, and running the
// safemig binary as a user would.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/fingerprint.h"

namespace safemig::testing {

// What keeps `counts` from being `full` (a FingerprintDepth::kFull fingerprint) as
// FingerprintDepth::kRowCounts reads it: the same tables with the same row counts and no
// content hashes. One line per difference; empty when there is none.
inline std::string RowCountsDiffer(const Fingerprint& full, const Fingerprint& counts) {
  std::string differences;
  for (const auto& [key, data] : full.tables) {
    auto counted = counts.tables.find(key);
    if (data.content_sha256.empty()) differences += key + ": not hashed in the full one\n";
    if (counted == counts.tables.end()) {
      differences += key + ": missing\n";
    } else if (counted->second.rows != data.rows) {
      differences += key + ": " + std::to_string(counted->second.rows) + " rows, not " +
                     std::to_string(data.rows) + "\n";
    } else if (!counted->second.content_sha256.empty()) {
      differences += key + ": content hashed\n";
    }
  }
  for (const auto& entry : counts.tables) {
    if (full.tables.count(entry.first) == 0) differences += entry.first + ": not in the full one\n";
  }
  return differences;
}

// A fresh directory removed (with its contents) when the object goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            ("safemig-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `safemig ARGS` through the shell in `cwd`, capturing stdout and stderr.
inline CommandResult RunSafemig(const std::string& args,
                                const std::filesystem::path& cwd = std::filesystem::current_path(),
                                const std::string& env = "") {
  static int counter = 0;
  std::filesystem::path err_file = std::filesystem::temp_directory_path() /
                                   ("safemig-test-stderr-" + std::to_string(::getpid()) + "-" +
                                    std::to_string(counter++));
  std::string command = "cd '" + cwd.string() + "' && env -u SAFEMIG_DATABASE_URL " + env + " " +
                        SAFEMIG_BINARY + " " + args + " 2>'" + err_file.string() + "' </dev/null";
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.out.append(buffer.data(), n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.err = ReadFile(err_file);
  std::filesystem::remove(err_file);
  return result;
}

// A run's journal details (JSON) say it is in the middle of statement `statement` of a
// migration: what a run records before each statement, so a crash there can be found.
inline bool JournalAtStatement(const std::string& details, int statement) {
  auto json = nlohmann::json::parse(details, nullptr, false);
  return json.is_object() && json.contains("in_progress") &&
         json["in_progress"]["statement"] == statement;
}

struct KilledRun {
  bool reached = false;  // `reached` said yes before the deadline
  bool killed = false;   // the run was still going, and SIGKILL ended it
};

// Starts `safemig ARGS` in `cwd` with `env` added (output discarded), asks `reached` every
// 40 ms for up to two minutes, then kills the run with SIGKILL, as a power cut would.
inline KilledRun KillSafemigWhen(const std::vector<std::string>& args,
                                 const std::filesystem::path& cwd,
                                 const std::vector<std::pair<std::string, std::string>>& env,
                                 const std::function<bool()>& reached) {
  pid_t pid = ::fork();
  if (pid < 0) return {};
  if (pid == 0) {
    if (::chdir(cwd.c_str()) != 0) ::_exit(127);
    ::unsetenv("SAFEMIG_DATABASE_URL");
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> argv = {const_cast<char*>(SAFEMIG_BINARY)};
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    if (std::freopen("/dev/null", "w", stdout) == nullptr ||
        std::freopen("/dev/null", "w", stderr) == nullptr) {
      ::_exit(127);
    }
    ::execv(SAFEMIG_BINARY, argv.data());
    ::_exit(127);
  }
  KilledRun result;
  // Backups and the rehearsal come first; on a loaded machine they take a while.
  for (int i = 0; i < 3000 && !result.reached; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    result.reached = reached();
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.killed = WIFSIGNALED(status);
  return result;
}

}  // namespace safemig::testing
