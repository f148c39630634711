// PostgreSQL backup and restore (pg_dump.h).
//
// Decisions worth knowing before changing this file:
// - pg_dump runs with --no-owner --no-privileges: a backup must restore as another role and
//   on another server (the rehearsal's scratch database, a laptop), where the source's
//   roles may not exist. Restored objects belong to the restoring role and carry no GRANTs;
//   the fingerprint describes neither, so the check after a restore does not object.
//   --no-subscriptions: a restored copy must never start replicating from the publisher.
// - Table data is COPY text in UTF-8 with ISO dates, written and read with the same session
//   settings (kCopySettings), so the bytes mean the same on both sides.
// - The pre-data part starts with a "-- safemig database: {json}" comment carrying the
//   source database's encoding and locale: a restore creates its database from template0
//   with them (template1 may hold objects, and the collation decides the order text keys
//   sort in).
// - A restore into a new database or over an existing one builds a separate database
//   (safemig_restore_*) and renames it to the target only once its fingerprint matched, so
//   a failed restore leaves the target as it was. An existing empty database (one a DBA
//   created for a role without CREATEDB) is restored into directly; a failure then leaves
//   what was restored so far, and the error says so.
// - The dump's snapshot connection holds ACCESS SHARE locks on every table it copies, so
//   no DDL changes them mid-dump (as pg_dump does). A schema change that queues behind those
//   locks would make every later lock request wait behind it while it waits for us, a
//   deadlock through this process that the server cannot see; so the COPY workers lock with
//   NOWAIT, and pg_dump and the fingerprint session wait at most kLockWaitMs, turning it
//   into an error.
#include "drivers/postgres/pg_dump.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/transaction>
#include <random>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "drivers/postgres/pg_connection.h"
#include "drivers/postgres/pg_fingerprint.h"
#include "drivers/postgres/pg_row_hash.h"
#include "drivers/table_restore.h"

extern char** environ;  // NOLINT: POSIX declares it nowhere else

namespace safemig {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPreDataPart = "pre-data.sql.zst";
constexpr const char* kPreDataKind = "pg-pre-data";
// "-2": rows are COPY'd with their columns in name order and hashed as COPY lines
// (pg_fingerprint.cc, "safemig-pg-rows-3"). Backups of the earlier "pg-table-data" kind carry
// fingerprints this version cannot reproduce, and are refused by name before a restore starts.
constexpr const char* kTableDataKind = "pg-table-data-2";
constexpr const char* kEarlierTableDataKind = "pg-table-data";
constexpr const char* kSequencesPart = "sequences.sql.zst";
constexpr const char* kSequencesKind = "pg-sequences";
constexpr const char* kPostDataPart = "post-data.sql.zst";
constexpr const char* kPostDataKind = "pg-post-data";

constexpr std::string_view kTableHeaderPrefix = "-- safemig table: ";
constexpr std::string_view kDatabaseHeaderPrefix = "-- safemig database: ";

// SQL scripts are executed whole with PQexec, so they are held in memory; pg_dump's schema
// sections stay far below this even for thousands of tables.
constexpr std::uint64_t kMaxScriptBytes = std::uint64_t{64} << 20;
// COPY rows arrive one by one from libpq; batching them keeps hashing and compression
// calls large.
constexpr std::size_t kCopyBatchBytes = std::size_t{1} << 20;
// A header names at most 1600 columns of at most 63 bytes each.
constexpr std::size_t kMaxHeaderBytes = std::size_t{1} << 20;
constexpr std::size_t kMaxStderrBytes = 64 << 10;
constexpr std::uint64_t kProgressStep = std::uint64_t{8} << 20;
// How long pg_dump and the fingerprint session wait for a lock. The snapshot connection
// already holds ACCESS SHARE on every table, so a wait means a schema change queued behind
// us: the deadlock described at the top of the file.
constexpr int kLockWaitMs = 30000;

// A role's or database's timeouts must not cut our sessions short: the snapshot
// transaction sits idle while pg_dump and the workers run.
constexpr const char* kNoTimeouts =
    "SET statement_timeout = 0; SET lock_timeout = 0; "
    "SET idle_in_transaction_session_timeout = 0";

// Thrown inside a worker when another worker failed first; never reaches the caller.
struct Cancelled {};

std::string TrimEnd(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r')) {
    text.pop_back();
  }
  return text;
}

// Re-throws a kMigrationFailed error with `context` in front of its message.
template <typename Fn>
auto InContext(const std::string& context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    if (e.category() != Category::kMigrationFailed) throw;
    throw Error(e.category(), context + ": " + e.what(), e.hint());
  }
}

// --- libpq helpers ---------------------------------------------------------------------

void IgnoreNotice(void* /*arg*/, const char* /*message*/) {}

enum class Session {
  kPlain,  // kNoTimeouts
  kCopy,   // kNoTimeouts and kPgRowTextSettings: where COPY data is written or read
};

// A libpq connection for our own sessions. Notices are dropped: only src/cli prints, and
// pg_dump's scripts raise harmless ones.
//
// COPY text must mean the same on the dumping and the restoring side, and be the very line
// the fingerprint hashes (kPgRowTextSettings). row_security off: a table whose policies
// would hide rows from this role fails instead of losing them. search_path '': names in
// reg* values come out schema-qualified, as pg_dump writes them. The client encoding is
// `copy_encoding`, or the database's own when empty: a backup's lines are then the bytes
// the server hashes in place, and a restore sends them in the encoding they were written in.
PgConn Connect(const DatabaseUrl& url, const std::string& database, Session session,
               const std::string& copy_encoding = "") {
  PgConn conn = ConnectLibpq(url, database);
  PQsetNoticeProcessor(conn.get(), &IgnoreNotice, nullptr);
  ExecLibpq(conn.get(), kNoTimeouts);
  if (session == Session::kCopy) {
    ExecLibpq(conn.get(), kPgRowTextSettings);
    if (copy_encoding.empty()) {
      ExecLibpq(conn.get(),
                "SELECT pg_catalog.set_config('client_encoding', "
                "pg_catalog.current_setting('server_encoding'), false)");
    } else if (PQsetClientEncoding(conn.get(), copy_encoding.c_str()) != 0) {
      throw Error(Category::kMigrationFailed,
                  fmt::format("cannot send data in the backup's encoding {}: {}", copy_encoding,
                              TrimEnd(PQerrorMessage(conn.get()))));
    }
  }
  return conn;
}

std::string Value(const PgResult& result, int row, int column) {
  return {PQgetvalue(result.get(), row, column),
          static_cast<std::size_t>(PQgetlength(result.get(), row, column))};
}

std::string ResultMessage(PGconn* conn, const PGresult* result) {
  std::string message = TrimEnd(result != nullptr ? PQresultErrorMessage(result) : "");
  if (message.empty()) message = TrimEnd(PQerrorMessage(conn));
  const char* sqlstate = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  return fmt::format("PostgreSQL: {}{}", RedactSecrets(message),
                     sqlstate != nullptr ? fmt::format(" (SQLSTATE {})", sqlstate) : "");
}

std::string SqlState(const PGresult* result) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  return state != nullptr ? state : "";
}

// Runs a statement with text parameters (never spliced into the SQL).
PgResult ExecParams(PGconn* conn, const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& param : params) values.push_back(param.c_str());
  PgResult result(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw Error(Category::kMigrationFailed, ResultMessage(conn, result.get()));
  }
  return result;
}

// Runs a script of any number of statements (pg_dump's sections, the setval lines); one
// made only of comments is fine. The simple protocol runs it as one transaction, so a
// failing section leaves nothing of itself behind.
void ExecScript(PGconn* conn, const std::string& sql) {
  PgResult result(PQexec(conn, sql.c_str()));
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
    throw Error(Category::kMigrationFailed, ResultMessage(conn, result.get()));
  }
}

struct PqFreemem {
  void operator()(void* memory) const { PQfreemem(memory); }
};

std::string QuoteLiteral(PGconn* conn, const std::string& value) {
  std::unique_ptr<char, PqFreemem> quoted(PQescapeLiteral(conn, value.data(), value.size()));
  if (!quoted) {
    throw Error(Category::kMigrationFailed,
                "cannot quote a value for PostgreSQL: " + TrimEnd(PQerrorMessage(conn)));
  }
  return quoted.get();
}

// --- progress --------------------------------------------------------------------------

// One ProgressFn fed from several threads: called under a lock, every 8 MiB.
class SharedProgress {
 public:
  SharedProgress(const ProgressFn& progress, std::uint64_t total)
      : progress_(progress), total_(total) {}

  void Add(std::uint64_t bytes) {
    if (!progress_) return;
    std::lock_guard<std::mutex> lock(mutex_);
    done_ += bytes;
    if (done_ - reported_ >= kProgressStep) {
      reported_ = done_;
      progress_(done_, std::max(done_, total_));  // the total may be an estimate
    }
  }

  void Complete() {
    if (!progress_) return;
    std::lock_guard<std::mutex> lock(mutex_);
    progress_(done_, done_);
  }

 private:
  const ProgressFn& progress_;
  const std::uint64_t total_;
  std::mutex mutex_;
  std::uint64_t done_ = 0;
  std::uint64_t reported_ = 0;
};

// Passes bytes on, telling SharedProgress how many went by.
class CountingSink : public Sink {
 public:
  using Sink::Write;
  CountingSink(Sink& next, SharedProgress& progress) : next_(next), progress_(progress) {}
  void Write(const char* data, std::size_t size) override {
    next_.Write(data, size);
    progress_.Add(size);
  }
  void Finish() override { next_.Finish(); }

 private:
  Sink& next_;
  SharedProgress& progress_;
};

// --- threads ---------------------------------------------------------------------------

// The first exception of a group of workers; the others stop at their next check.
class FirstError {
 public:
  void Record(std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::move(error);
    failed_ = true;
  }
  [[nodiscard]] bool failed() const { return failed_; }
  void RethrowIfAny() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::mutex mutex_;
  std::exception_ptr error_;
  std::atomic<bool> failed_{false};
};

// Joins its threads on destruction, so no worker outlives the state it uses when the
// caller unwinds.
class ThreadGroup {
 public:
  ThreadGroup() = default;
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;
  ~ThreadGroup() { JoinAll(); }

  // Runs `body` on a new thread; its exceptions go to `errors` (Cancelled is dropped).
  template <typename Fn>
  void Start(FirstError& errors, Fn body) {
    threads_.emplace_back([&errors, task = std::move(body)]() mutable {
      try {
        task();
      } catch (const Cancelled&) {
      } catch (...) {
        errors.Record(std::current_exception());
      }
    });
  }

  void JoinAll() {
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  std::vector<std::thread> threads_;
};

// --- child processes -------------------------------------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  [[nodiscard]] int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

Pipe MakePipe() {
  int fds[2];
  // Close-on-exec: no other child (another thread's) may inherit our ends.
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw Error(Category::kMigrationFailed,
                fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  }
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

// A running child; the destructor kills and reaps one that was not waited for, so an
// exception never leaves a zombie or an orphaned pg_dump behind.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }
  // Returns the wait status.
  int Wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

struct SpawnActions {
  posix_spawn_file_actions_t actions;
  SpawnActions() { posix_spawn_file_actions_init(&actions); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
};

struct SpawnAttributes {
  posix_spawnattr_t attributes;
  SpawnAttributes() { posix_spawnattr_init(&attributes); }
  ~SpawnAttributes() { posix_spawnattr_destroy(&attributes); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
};

struct ProcessResult {
  int status = 0;
  std::string stderr_text;  // the first 64 KiB
};

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return "ended abnormally";
}

bool Succeeded(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

struct Command {
  std::vector<std::string> argv;  // argv[0] an absolute path
  std::vector<std::string> env;   // the child's whole environment
};

// Runs `command` without a shell and with /dev/null as stdin, streaming its stdout into
// `out`. Both pipes are drained together so a chatty stderr cannot stall the child while
// we wait on stdout.
ProcessResult RunProcess(const Command& command, Sink& out) {
  const std::vector<std::string>& argv = command.argv;
  Pipe out_pipe = MakePipe();
  Pipe err_pipe = MakePipe();
  SpawnActions actions;
  posix_spawn_file_actions_addopen(&actions.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions.actions, out_pipe.write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions.actions, err_pipe.write.get(), 2);
  // Signals blocked or ignored in this process (worker threads, a CLI ignoring SIGPIPE)
  // must not carry over into pg_dump.
  SpawnAttributes attributes;
  sigset_t none;
  sigemptyset(&none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attributes.attributes, &none);
  posix_spawnattr_setsigdefault(&attributes.attributes, &defaults);
  posix_spawnattr_setflags(&attributes.attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  // posix_spawn's signature predates const; it does not write through these.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(command.env.size() + 1);
  for (const std::string& entry : command.env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  const int spawn_error = ::posix_spawn(&pid, argv[0].c_str(), &actions.actions,
                                        &attributes.attributes, args.data(), envp.data());
  if (spawn_error != 0) {
    throw Error(Category::kConfig,
                fmt::format("cannot run {}: {}", argv[0], std::strerror(spawn_error)),
                "install the PostgreSQL client tools (pg_dump) and put them on PATH");
  }
  Child child(pid);
  out_pipe.write.Reset();
  err_pipe.write.Reset();

  ProcessResult result;
  std::vector<char> buffer(64 << 10);
  while (out_pipe.read.get() >= 0 || err_pipe.read.get() >= 0) {
    pollfd fds[2] = {{out_pipe.read.get(), POLLIN, 0}, {err_pipe.read.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw Error(Category::kMigrationFailed,
                  fmt::format("cannot read from {}: {}", argv[0], std::strerror(errno)));
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      Fd& fd = i == 0 ? out_pipe.read : err_pipe.read;
      const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        throw Error(Category::kMigrationFailed,
                    fmt::format("cannot read from {}: {}", argv[0], std::strerror(errno)));
      }
      if (n == 0) {
        fd.Reset();
      } else if (i == 0) {
        out.Write(buffer.data(), static_cast<std::size_t>(n));
      } else if (result.stderr_text.size() < kMaxStderrBytes) {
        result.stderr_text.append(
            buffer.data(),
            std::min(static_cast<std::size_t>(n), kMaxStderrBytes - result.stderr_text.size()));
      }
    }
  }
  result.status = child.Wait();
  return result;
}

// --- pg_dump ---------------------------------------------------------------------------

bool IsExecutable(const fs::path& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

// pg_dump from PATH. Debian's /usr/bin/pg_dump is pg_wrapper, which picks a version by the
// local clusters rather than the server we dump; then the newest installed pg_dump is
// taken instead, as a newer pg_dump reads every older server.
std::string FindPgDump() {
  std::optional<fs::path> found;
  const char* path_env = std::getenv("PATH");
  std::string_view dirs = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  while (!found) {
    const std::size_t colon = dirs.find(':');
    const std::string dir(dirs.substr(0, colon));
    if (!dir.empty() && IsExecutable(fs::path(dir) / "pg_dump")) found = fs::path(dir) / "pg_dump";
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  std::error_code ec;
  const bool is_wrapper = found && fs::canonical(*found, ec).filename() == "pg_wrapper" && !ec;
  if (!found || is_wrapper) {
    int best = -1;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      const std::string name = entry.path().filename().string();
      const int version = std::atoi(name.c_str());
      if (version > best && IsExecutable(entry.path() / "bin" / "pg_dump")) {
        best = version;
        found = entry.path() / "bin" / "pg_dump";
      }
    }
  }
  if (!found) {
    throw Error(Category::kConfig, "pg_dump was not found on PATH",
                "install the PostgreSQL client tools matching the server (e.g. "
                "postgresql-client-15) and put pg_dump on PATH");
  }
  return found->string();
}

// Our environment, with PGPASSWORD replaced by the URL's password when it has one: the
// child's own environment is the one place a password may travel (argv shows in ps). A
// PGPASSWORD the user set is kept otherwise, as our own connections honour it too.
std::vector<std::string> ChildEnvironment(const std::optional<std::string>& password) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (!password || std::strncmp(*entry, "PGPASSWORD=", 11) != 0) env.emplace_back(*entry);
  }
  if (password) env.push_back("PGPASSWORD=" + *password);
  return env;
}

struct PgDumpTool {
  std::string path;
  std::string version;  // "15.18"
  int version_num = 0;  // in server_version_num units: 150000, 90600
};

PgDumpTool ProbePgDump() {
  PgDumpTool tool;
  tool.path = FindPgDump();
  StringSink out;
  const ProcessResult result =
      RunProcess({{tool.path, "--version"}, ChildEnvironment(std::nullopt)}, out);
  // "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
  const std::string& text = out.text();
  const std::size_t paren = text.find(')');
  const std::size_t digits =
      text.find_first_of("0123456789", paren == std::string::npos ? 0 : paren);
  if (!Succeeded(result.status) || digits == std::string::npos) {
    throw Error(Category::kConfig,
                fmt::format("cannot tell the version of {} (`--version` {}: {})", tool.path,
                            DescribeStatus(result.status),
                            TrimEnd(RedactSecrets(text + result.stderr_text))),
                "install the PostgreSQL client tools matching the server");
  }
  const std::size_t end = text.find_first_not_of("0123456789.", digits);
  tool.version = text.substr(digits, end == std::string::npos ? std::string::npos : end - digits);
  const int major = std::atoi(tool.version.c_str());
  const std::size_t dot = tool.version.find('.');
  const int minor = dot == std::string::npos ? 0 : std::atoi(tool.version.c_str() + dot + 1);
  tool.version_num = major >= 10 ? major * 10000 : major * 10000 + minor * 100;
  return tool;
}

// pg_dump refuses a server newer than itself; we refuse first, with both versions named.
void CheckPgDumpVersion(const PgDumpTool& tool, int server_num, const std::string& server) {
  const int server_major =
      server_num >= 100000 ? server_num / 10000 * 10000 : server_num / 100 * 100;
  if (tool.version_num < server_major) {
    throw Error(Category::kConfig,
                fmt::format("{} is pg_dump {}, older than the PostgreSQL {} server; an older "
                            "pg_dump cannot dump a newer server",
                            tool.path, tool.version, server),
                fmt::format("install pg_dump {} or newer (e.g. postgresql-client-{}) and put it "
                            "first on PATH",
                            server_major / 10000, server_major / 10000));
  }
}

void RunPgDump(const PgDumpTool& tool, const DatabaseUrl& url, const std::string& snapshot,
               const std::string& section, Sink& out) {
  DatabaseUrl without_password = url;
  without_password.password.reset();
  const std::vector<std::string> argv = {tool.path,
                                         "--dbname=" + PostgresConninfo(without_password),
                                         "--snapshot=" + snapshot,
                                         "--section=" + section,
                                         "--no-owner",
                                         "--no-privileges",
                                         "--no-subscriptions",
                                         "--no-password",
                                         fmt::format("--lock-wait-timeout={}", kLockWaitMs)};
  const ProcessResult result = RunProcess({argv, ChildEnvironment(url.password)}, out);
  if (!Succeeded(result.status)) {
    throw Error(Category::kMigrationFailed,
                fmt::format("pg_dump --section={} {}: {}", section, DescribeStatus(result.status),
                            TrimEnd(RedactSecrets(result.stderr_text))),
                "the backup was not written; fix what pg_dump reports and try again");
  }
}

// --- what is dumped --------------------------------------------------------------------

struct TableToCopy {
  std::string schema;
  std::string name;
  std::string key;                   // in Fingerprint::tables
  std::vector<std::string> columns;  // non-generated, in name order as the fingerprint
                                     // hashes them
  std::uint64_t bytes = 0;           // on-disk size, for ordering and progress
};

std::string QualifiedName(const std::string& schema, const std::string& name) {
  return QuotePgIdentifier(schema) + "." + QuotePgIdentifier(name);
}

// "(\"a\", \"b\")", or "" for a table without copied columns (COPY then takes no list).
std::string ColumnList(const std::vector<std::string>& columns) {
  std::string list;
  for (const std::string& column : columns) {
    list += (list.empty() ? "(" : ", ") + QuotePgIdentifier(column);
  }
  return list.empty() ? list : list + ")";
}

std::string TableHeader(const TableToCopy& table) {
  std::string columns = ColumnList(table.columns);
  return fmt::format("{}{} {}\n", kTableHeaderPrefix, QualifiedName(table.schema, table.name),
                     columns.empty() ? "()" : columns);
}

std::string TablePartName(std::size_t index) { return fmt::format("t{}.copy.zst", index + 1); }

// Schemas whose contents are the server's own.
constexpr const char* kUserSchema = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'";
// Objects an extension created come back with CREATE EXTENSION.
constexpr const char* kNotExtensionMember =
    "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = "
    "'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')";

// Ordinary tables and partitions (a partitioned parent holds no rows of its own), largest
// first so the longest COPY starts early.
std::vector<TableToCopy> ListTables(PGconn* conn, int server_num) {
  PgResult tables = ExecLibpq(
      conn, fmt::format("SELECT c.oid, n.nspname, c.relname, pg_catalog.pg_relation_size(c.oid) "
                        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND {} AND {} "
                        "ORDER BY 4 DESC, 2, 3",
                        kUserSchema, kNotExtensionMember));
  std::vector<TableToCopy> result;
  std::vector<std::string> oids;
  for (int row = 0; row < PQntuples(tables.get()); ++row) {
    oids.push_back(Value(tables, row, 0));
    TableToCopy table;
    table.schema = Value(tables, row, 1);
    table.name = Value(tables, row, 2);
    table.key = PgTableDataKey(table.schema, table.name);
    table.bytes = std::strtoull(Value(tables, row, 3).c_str(), nullptr, 10);
    result.push_back(std::move(table));
  }
  // Generated columns are computed again on the way in; COPY refuses values for them.
  PgResult columns = ExecLibpq(
      conn, fmt::format("SELECT a.attrelid, a.attname FROM pg_catalog.pg_attribute a "
                        "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind = 'r' AND {} AND a.attnum > 0 AND NOT a.attisdropped{} "
                        "ORDER BY a.attrelid, a.attnum",
                        kUserSchema, server_num >= 120000 ? " AND a.attgenerated = ''" : ""));
  std::map<std::string, std::size_t> by_oid;
  for (std::size_t i = 0; i < oids.size(); ++i) by_oid[oids[i]] = i;
  for (int row = 0; row < PQntuples(columns.get()); ++row) {
    auto table = by_oid.find(Value(columns, row, 0));
    if (table != by_oid.end()) result[table->second].columns.push_back(Value(columns, row, 1));
  }
  for (TableToCopy& table : result) std::sort(table.columns.begin(), table.columns.end());
  return result;
}

// Keeps DDL away from every table until the dump is complete, as pg_dump does.
void LockTables(PGconn* conn, const std::vector<TableToCopy>& tables) {
  constexpr std::size_t kBatch = 500;
  for (std::size_t begin = 0; begin < tables.size(); begin += kBatch) {
    std::string names;
    for (std::size_t i = begin; i < std::min(tables.size(), begin + kBatch); ++i) {
      names += (names.empty() ? "" : ", ") + QualifiedName(tables[i].schema, tables[i].name);
    }
    ExecLibpq(conn, "LOCK TABLE " + names + " IN ACCESS SHARE MODE");
  }
}

// Large objects live in pg_largeobject, outside every table copied here.
void RefuseLargeObjects(PGconn* conn) {
  PgResult count = ExecLibpq(conn, "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata");
  const std::string n = Value(count, 0, 0);
  if (n != "0") {
    throw Error(Category::kMigrationFailed,
                fmt::format("the database holds {} large objects (lo_create), which safemig "
                            "backups do not carry",
                            n),
                "back this database up with pg_dump instead, or move the large objects into "
                "bytea columns");
  }
}

// setval() for every sequence, read in the snapshot. Sequences are not transactional:
// this is the value when read (never below the snapshot's), as pg_dump writes it too.
void WriteSequences(PGconn* conn, Sink& out) {
  PgResult sequences =
      ExecLibpq(conn, fmt::format("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
                                  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                  "WHERE c.relkind = 'S' AND {} AND {} ORDER BY 1, 2",
                                  kUserSchema, kNotExtensionMember));
  for (int row = 0; row < PQntuples(sequences.get()); ++row) {
    const std::string name = QualifiedName(Value(sequences, row, 0), Value(sequences, row, 1));
    PgResult value = ExecLibpq(conn, "SELECT last_value, is_called FROM " + name);
    out.Write(fmt::format("SELECT pg_catalog.setval({}, {}, {});\n", QuoteLiteral(conn, name),
                          Value(value, 0, 0), Value(value, 0, 1) == "t" ? "true" : "false"));
  }
}

// The source database's encoding and locale as one JSON comment line.
std::string DatabaseHeader(PGconn* conn, int server_num) {
  const char* locale = server_num >= 170000   ? "d.datlocprovider, d.datlocale"
                       : server_num >= 150000 ? "d.datlocprovider, d.daticulocale"
                                              : "'c', NULL";
  PgResult row = ExecLibpq(
      conn, fmt::format("SELECT pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, "
                        "d.datctype, {} FROM pg_catalog.pg_database d "
                        "WHERE d.datname = pg_catalog.current_database()",
                        locale));
  const std::string provider = Value(row, 0, 3);
  nlohmann::ordered_json header = {{"encoding", Value(row, 0, 0)},
                                   {"lc_collate", Value(row, 0, 1)},
                                   {"lc_ctype", Value(row, 0, 2)},
                                   {"locale_provider", provider == "i"   ? "icu"
                                                       : provider == "b" ? "builtin"
                                                                         : "libc"},
                                   {"locale", Value(row, 0, 4)}};
  return std::string(kDatabaseHeaderPrefix) +
         header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// --- COPY out --------------------------------------------------------------------------

[[noreturn]] void ThrowCopyFailure(PGconn* conn, const std::string& what) {
  PgResult result(PQgetResult(conn));
  const std::string message = ResultMessage(conn, result.get());
  while (PgResult more{PQgetResult(conn)}) {
  }
  throw Error(Category::kMigrationFailed, what + ": " + message);
}

struct CopiedTable {
  PartInfo part;
  TableData data;  // hashed from the lines as they passed
};

CopiedTable CopyTableOut(PGconn* conn, const TableToCopy& table, const std::string& part_name,
                         const ArchiveWriter& archive, SharedProgress& progress,
                         const FirstError& errors) {
  const std::string name = QualifiedName(table.schema, table.name);
  const std::string what = "cannot back up table " + name;
  PgResult locked(PQexec(conn, ("LOCK TABLE " + name + " IN ACCESS SHARE MODE NOWAIT").c_str()));
  if (PQresultStatus(locked.get()) != PGRES_COMMAND_OK) {
    if (SqlState(locked.get()) == "55P03") {
      throw Error(Category::kMigrationFailed,
                  fmt::format("{}: another session is waiting for an exclusive lock on it (a "
                              "schema change?), which would wait for this backup to end while "
                              "the backup waits for it",
                              what),
                  "run the backup again once the schema change is done");
    }
    throw Error(Category::kMigrationFailed, what + ": " + ResultMessage(conn, locked.get()));
  }
  std::unique_ptr<ArchiveWriter::ParallelPart> part =
      archive.BeginParallelPart(part_name, kTableDataKind);
  Sink& sink = part->sink();
  std::string batch = TableHeader(table);
  const std::string columns = ColumnList(table.columns);
  const std::string sql =
      fmt::format("COPY {}{}{} TO STDOUT", name, columns.empty() ? "" : " ", columns);
  PgResult started(PQexec(conn, sql.c_str()));
  if (PQresultStatus(started.get()) != PGRES_COPY_OUT) {
    throw Error(Category::kMigrationFailed, what + ": " + ResultMessage(conn, started.get()));
  }
  auto flush = [&] {
    sink.Write(batch.data(), batch.size());
    progress.Add(batch.size());
    batch.clear();
  };
  RowHashSums sums;
  for (;;) {
    char* row = nullptr;
    const int n = PQgetCopyData(conn, &row, 0);
    if (n > 0) {
      std::unique_ptr<char, PqFreemem> owned(row);
      // libpq hands over one row per call, its newline last.
      if (row[n - 1] != '\n') {
        throw Error(Category::kMigrationFailed, what +
                                                    ": the server sent a row without its "
                                                    "line end");
      }
      sums.Add(row, static_cast<std::size_t>(n) - 1);
      batch.append(row, static_cast<std::size_t>(n));
      if (batch.size() >= kCopyBatchBytes) {
        flush();
        if (errors.failed()) throw Cancelled{};  // the connection's end aborts the COPY
      }
      continue;
    }
    if (n == -1) break;
    ThrowCopyFailure(conn, what);
  }
  flush();
  PgResult done(PQgetResult(conn));
  if (PQresultStatus(done.get()) != PGRES_COMMAND_OK) {
    throw Error(Category::kMigrationFailed, what + ": " + ResultMessage(conn, done.get()));
  }
  const std::int64_t rows = std::strtoll(PQcmdTuples(done.get()), nullptr, 10);
  while (PgResult more{PQgetResult(conn)}) {
  }
  if (rows != sums.rows()) {
    throw Error(
        Category::kMigrationFailed,
        fmt::format("{}: the server reported {} rows but sent {}", what, rows, sums.rows()));
  }
  return {part->Finish(rows), sums.Data()};
}

// Takes tables from `next` until none are left, on its own connection in the snapshot.
void CopyTablesOut(const DatabaseUrl& url, const std::string& snapshot,
                   const std::vector<TableToCopy>& tables, std::atomic<std::size_t>& next,
                   std::vector<CopiedTable>& copied, const ArchiveWriter& archive,
                   SharedProgress& progress, const FirstError& errors) {
  PgConn conn = Connect(url, "", Session::kCopy);
  ExecLibpq(conn.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  ExecLibpq(conn.get(), "SET TRANSACTION SNAPSHOT " + QuoteLiteral(conn.get(), snapshot));
  for (;;) {
    if (errors.failed()) throw Cancelled{};
    const std::size_t index = next++;
    if (index >= tables.size()) break;
    copied[index] =
        CopyTableOut(conn.get(), tables[index], TablePartName(index), archive, progress, errors);
  }
  ExecLibpq(conn.get(), "COMMIT");
}

// --- fingerprint -----------------------------------------------------------------------

// FingerprintPostgres on a connection of its own, in `snapshot` when given. Cancel() may
// be called from another thread to cut a running fingerprint short.
class FingerprintSession {
 public:
  Fingerprint Run(const DatabaseUrl& url, const std::string& database,
                  const std::optional<std::string>& snapshot, const HashOnServer& hash_on_server) {
    try {
      pqxx::connection conn(PostgresConninfo(url, database));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (cancelled_) throw Cancelled{};
        conn_ = &conn;
      }
      struct Detach {
        FingerprintSession* self;
        ~Detach() {
          std::lock_guard<std::mutex> lock(self->mutex_);
          self->conn_ = nullptr;
        }
      } detach{this};
      {
        pqxx::nontransaction session(conn);
        session.exec(kNoTimeouts);
        session.exec(fmt::format("SET lock_timeout = {}", kLockWaitMs));
        session.commit();
      }
      pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
      if (snapshot) tx.exec("SET TRANSACTION SNAPSHOT " + tx.quote(*snapshot));
      Fingerprint fingerprint = FingerprintPostgres(tx, /*include_metadata=*/true, hash_on_server);
      tx.commit();
      return fingerprint;
    } catch (const pqxx::broken_connection& e) {
      throw Error(Category::kConnection,
                  "cannot fingerprint the PostgreSQL database: " + RedactSecrets(e.what()));
    } catch (const pqxx::pqxx_exception& e) {
      throw Error(Category::kMigrationFailed,
                  "cannot fingerprint the PostgreSQL database: " + RedactSecrets(e.base().what()));
    }
  }

  void Cancel() {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_ = true;
    if (conn_ != nullptr) {
      try {
        conn_->cancel_query();
      } catch (...) {  // best effort: the fingerprint then just runs to its end
      }
    }
  }

 private:
  std::mutex mutex_;
  pqxx::connection* conn_ = nullptr;
  bool cancelled_ = false;
};

// A FingerprintSession in the snapshot on a thread of its own, so the catalog is read while
// the data is copied. Destroyed before Get() (the dump failed), it cancels query after
// query until the thread ends: FingerprintPostgres runs many.
class BackgroundFingerprint {
 public:
  BackgroundFingerprint(const DatabaseUrl& url, const std::string& snapshot,
                        HashOnServer hash_on_server)
      : hash_on_server_(std::move(hash_on_server)),
        thread_([this, url, snapshot] { Body(url, snapshot); }) {}
  BackgroundFingerprint(const BackgroundFingerprint&) = delete;
  BackgroundFingerprint& operator=(const BackgroundFingerprint&) = delete;
  ~BackgroundFingerprint() {
    if (!thread_.joinable()) return;
    while (!finished_) {
      session_.Cancel();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    thread_.join();
  }

  Fingerprint Get() {
    thread_.join();
    if (error_) std::rethrow_exception(error_);
    return std::move(*result_);
  }

 private:
  void Body(const DatabaseUrl& url, const std::string& snapshot) {
    try {
      result_ = session_.Run(url, "", snapshot, hash_on_server_);
    } catch (...) {
      error_ = std::current_exception();
    }
    finished_ = true;
  }

  HashOnServer hash_on_server_;
  FingerprintSession session_;
  std::optional<Fingerprint> result_;
  std::exception_ptr error_;
  std::atomic<bool> finished_{false};
  std::thread thread_;  // last: starts once everything it uses exists
};

// --- restore ---------------------------------------------------------------------------

struct CopyTarget {
  std::string schema;
  std::string table;
  std::vector<std::string> columns;
  [[nodiscard]] std::string Name() const { return QualifiedName(schema, table); }
};

enum class HeaderStatus { kIncomplete, kMalformed, kComplete };

// Parses `-- safemig table: "s"."t" ("a", "b")\n` at the start of `text`. Identifiers are
// read exactly (a name may hold quotes or even newlines) and quoted again by us, so the
// header cannot smuggle SQL into the COPY statement.
HeaderStatus ParseTableHeader(std::string_view text, CopyTarget* target, std::size_t* consumed) {
  std::size_t pos = 0;
  // kComplete when `literal` follows, kIncomplete when the text ends inside it.
  auto expect = [&](std::string_view literal) {
    const std::size_t available = std::min(literal.size(), text.size() - pos);
    if (text.substr(pos, available) != literal.substr(0, available))
      return HeaderStatus::kMalformed;
    if (available < literal.size()) return HeaderStatus::kIncomplete;
    pos += literal.size();
    return HeaderStatus::kComplete;
  };
  auto identifier = [&](std::string* name) {
    if (pos >= text.size()) return HeaderStatus::kIncomplete;
    if (text[pos] != '"') return HeaderStatus::kMalformed;
    ++pos;
    for (;;) {
      if (pos >= text.size()) return HeaderStatus::kIncomplete;
      if (text[pos] == '"') {
        if (pos + 1 >= text.size()) return HeaderStatus::kIncomplete;
        if (text[pos + 1] != '"') break;
        ++pos;
      }
      name->push_back(text[pos++]);
    }
    ++pos;
    return name->empty() ? HeaderStatus::kMalformed : HeaderStatus::kComplete;
  };
  CopyTarget parsed;
  HeaderStatus status = expect(kTableHeaderPrefix);
  if (status == HeaderStatus::kComplete) status = identifier(&parsed.schema);
  if (status == HeaderStatus::kComplete) status = expect(".");
  if (status == HeaderStatus::kComplete) status = identifier(&parsed.table);
  if (status == HeaderStatus::kComplete) status = expect(" (");
  if (status == HeaderStatus::kComplete && pos < text.size() && text[pos] != ')') {
    for (;;) {
      parsed.columns.emplace_back();
      status = identifier(&parsed.columns.back());
      if (status != HeaderStatus::kComplete) break;
      if (pos < text.size() && text[pos] == ')') break;
      status = expect(", ");
      if (status != HeaderStatus::kComplete) break;
    }
  }
  if (status == HeaderStatus::kComplete) status = expect(")\n");
  if (status == HeaderStatus::kComplete) {
    *target = std::move(parsed);
    *consumed = pos;
  }
  return status;
}

// Receives a table part: parses its header line, then feeds the rest to COPY FROM STDIN.
// Abandoned without End(), it aborts the COPY so the connection stays usable.
class CopyInSink : public Sink {
 public:
  using Sink::Write;
  // replace_rows: the table's rows are deleted and the COPY runs in the caller's open
  // transaction, which End() leaves open (a table restore in place).
  CopyInSink(PGconn* conn, std::string part_name, SharedProgress& progress,
             const FirstError& errors, bool replace_rows = false)
      : conn_(conn),
        part_name_(std::move(part_name)),
        progress_(progress),
        errors_(errors),
        replace_rows_(replace_rows) {}
  CopyInSink(const CopyInSink&) = delete;
  CopyInSink& operator=(const CopyInSink&) = delete;
  ~CopyInSink() override {
    if (copying_) {
      PQputCopyEnd(conn_, "safemig restore abandoned");
      while (PgResult more{PQgetResult(conn_)}) {
      }
    }
  }

  void Write(const char* data, std::size_t size) override {
    if (errors_.failed()) throw Cancelled{};
    progress_.Add(size);
    if (!started_) {
      const std::size_t before = header_.size();
      header_.append(data, std::min(size, kMaxHeaderBytes + 1 - std::min(before, kMaxHeaderBytes)));
      std::size_t consumed = 0;
      const HeaderStatus status = ParseTableHeader(header_, &target_, &consumed);
      if (status == HeaderStatus::kMalformed ||
          (status == HeaderStatus::kIncomplete && header_.size() > kMaxHeaderBytes)) {
        throw BadPart("its first line is not a safemig table header");
      }
      if (status == HeaderStatus::kIncomplete) return;
      Start();
      // What followed the header in this chunk is data.
      const std::size_t used = consumed - before;
      data += used;
      size -= used;
      header_.clear();
      header_.shrink_to_fit();
    }
    if (size == 0) return;
    sums_.AddLines(data, size);
    if (PQputCopyData(conn_, data, static_cast<int>(size)) != 1) {
      throw Error(Category::kMigrationFailed,
                  fmt::format("{}: {}", What(), TrimEnd(PQerrorMessage(conn_))));
    }
  }

  void Finish() override {}

  // Ends the COPY; returns the rows the server took in.
  std::int64_t End() {
    if (!started_) throw BadPart("it ends before its header line does");
    if (!sums_.at_line_start()) throw BadPart("its last row has no line end");
    copying_ = false;
    if (PQputCopyEnd(conn_, nullptr) != 1) {
      throw Error(Category::kMigrationFailed,
                  fmt::format("{}: {}", What(), TrimEnd(PQerrorMessage(conn_))));
    }
    PgResult done(PQgetResult(conn_));
    const bool ok = PQresultStatus(done.get()) == PGRES_COMMAND_OK;
    const std::string message = ok ? "" : ResultMessage(conn_, done.get());
    const std::int64_t rows = ok ? std::strtoll(PQcmdTuples(done.get()), nullptr, 10) : -1;
    while (PgResult more{PQgetResult(conn_)}) {
    }
    if (!ok) throw Error(Category::kMigrationFailed, What() + ": " + message);
    if (!replace_rows_) InContext(What(), [&] { return ExecLibpq(conn_, "COMMIT"); });
    return rows;
  }

  [[nodiscard]] std::string What() const {
    return fmt::format("cannot restore table {} (part {})",
                       started_ ? target_.Name() : std::string("?"), part_name_);
  }

  // REQUIRES: End() succeeded.
  [[nodiscard]] std::string Key() const { return PgTableDataKey(target_.schema, target_.table); }
  [[nodiscard]] std::string Name() const { return target_.Name(); }
  // The fingerprint entry of the lines sent (RowHashSums over them).
  [[nodiscard]] TableData Data() const { return sums_.Data(); }

 private:
  [[nodiscard]] Error BadPart(const std::string& why) const {
    return {Category::kIntegrity,
            fmt::format("part {} of the backup is not table data: {}", part_name_, why),
            "the backup cannot be trusted; use another one"};
  }

  // FREEZE writes the rows already frozen and all-visible, so the index builds, foreign key
  // checks and first reads that follow do not each rewrite every page to set hint bits.
  // PostgreSQL allows it only for a table created or emptied in the same transaction, hence
  // the TRUNCATE of the table pre-data has just created.
  // In place, TRUNCATE is not possible for a table other tables reference, so the rows are
  // deleted and written unfrozen.
  void Start() {
    started_ = true;
    InContext(What(), [&] {
      return ExecLibpq(conn_, fmt::format(replace_rows_ ? "DELETE FROM ONLY {}"
                                                        : "BEGIN; TRUNCATE ONLY {}",
                                          target_.Name()));
    });
    const std::string columns = ColumnList(target_.columns);
    const std::string sql = fmt::format("COPY {}{}{} FROM STDIN{}", target_.Name(),
                                        columns.empty() ? "" : " ", columns,
                                        replace_rows_ ? "" : " WITH (FREEZE)");
    PgResult result(PQexec(conn_, sql.c_str()));
    if (PQresultStatus(result.get()) != PGRES_COPY_IN) {
      throw Error(Category::kMigrationFailed, What() + ": " + ResultMessage(conn_, result.get()));
    }
    copying_ = true;
  }

  PGconn* conn_;
  std::string part_name_;
  SharedProgress& progress_;
  const FirstError& errors_;
  std::string header_;
  CopyTarget target_;
  RowHashSums sums_;
  bool replace_rows_ = false;
  bool started_ = false;
  bool copying_ = false;
};

// Collects a script part, refusing more bytes than the manifest promised (a tampered part
// could otherwise decompress into any amount of memory before its hash is checked).
class BoundedStringSink : public Sink {
 public:
  using Sink::Write;
  BoundedStringSink(std::uint64_t limit, std::string part_name)
      : limit_(limit), part_name_(std::move(part_name)) {}
  void Write(const char* data, std::size_t size) override {
    if (text_.size() + size > limit_) {
      throw Error(
          Category::kIntegrity,
          fmt::format("part {} decompresses to more bytes than the manifest says", part_name_),
          "the backup cannot be trusted; use another one");
    }
    text_.append(data, size);
  }
  void Finish() override {}
  std::string& text() { return text_; }

 private:
  std::uint64_t limit_;
  std::string part_name_;
  std::string text_;
};

struct RestorePlan {
  const PartInfo* pre_data = nullptr;
  const PartInfo* sequences = nullptr;
  const PartInfo* post_data = nullptr;
  std::vector<const PartInfo*> tables;
};

RestorePlan PlanRestore(const Manifest& manifest) {
  RestorePlan plan;
  auto single = [&manifest](const PartInfo& part, const PartInfo*& slot) {
    if (slot != nullptr) {
      throw Error(Category::kIntegrity,
                  fmt::format("backup {} has two parts of kind {}", manifest.id, part.kind),
                  "the backup cannot be trusted; use another one");
    }
    if (part.raw_bytes > kMaxScriptBytes) {
      throw Error(Category::kMigrationFailed,
                  fmt::format("part {} of backup {} holds {} MiB of SQL, more than the {} MiB "
                              "safemig executes in one piece",
                              part.name, manifest.id, part.raw_bytes >> 20, kMaxScriptBytes >> 20),
                  "restore it by hand with psql as docs/backup-format.md describes");
    }
    slot = &part;
  };
  for (const PartInfo& part : manifest.parts) {
    if (part.kind == kPreDataKind) {
      single(part, plan.pre_data);
    } else if (part.kind == kSequencesKind) {
      single(part, plan.sequences);
    } else if (part.kind == kPostDataKind) {
      single(part, plan.post_data);
    } else if (part.kind == kTableDataKind) {
      plan.tables.push_back(&part);
    } else if (part.kind == kEarlierTableDataKind) {
      throw Error(Category::kUsage,
                  fmt::format("backup {} was written by an earlier safemig, whose PostgreSQL "
                              "table fingerprints this version computes differently, so it "
                              "cannot check a restore of it",
                              manifest.id),
                  "restore it with the safemig version that wrote it (its manifest names the "
                  "tool_version), or by hand as docs/backup-format.md describes");
    } else {
      throw Error(Category::kIntegrity,
                  fmt::format("backup {} has a part {} of kind '{}', which this safemig does "
                              "not know",
                              manifest.id, part.name, part.kind),
                  "restore it with the safemig version that wrote it");
    }
  }
  if (plan.pre_data == nullptr || plan.sequences == nullptr || plan.post_data == nullptr) {
    throw Error(
        Category::kIntegrity,
        fmt::format("backup {} lacks its pre-data, sequences or post-data part", manifest.id),
        "the backup cannot be trusted; use another one");
  }
  return plan;
}

std::string ExtractScript(const ArchiveReader& archive, const PartInfo& part,
                          SharedProgress& progress) {
  BoundedStringSink text(part.raw_bytes, part.name);
  CountingSink counted(text, progress);
  archive.ExtractPart(part, counted);
  return std::move(text.text());
}

struct DatabaseOptions {
  std::string encoding;
  std::string lc_collate;
  std::string lc_ctype;
  std::string locale_provider;
  std::string locale;
};

std::optional<DatabaseOptions> ParseDatabaseHeader(const std::string& pre_data) {
  if (pre_data.compare(0, kDatabaseHeaderPrefix.size(), kDatabaseHeaderPrefix) != 0) {
    return std::nullopt;
  }
  const std::size_t end = pre_data.find('\n');
  const nlohmann::json header = nlohmann::json::parse(
      pre_data.substr(kDatabaseHeaderPrefix.size(), end == std::string::npos
                                                        ? std::string::npos
                                                        : end - kDatabaseHeaderPrefix.size()),
      nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) return std::nullopt;
  try {
    DatabaseOptions options;
    options.encoding = header.value("encoding", "");
    options.lc_collate = header.value("lc_collate", "");
    options.lc_ctype = header.value("lc_ctype", "");
    options.locale_provider = header.value("locale_provider", "libc");
    options.locale = header.value("locale", "");
    return options;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // then the server's defaults, as for an archive without the line
  }
}

std::string CreateDatabaseSql(PGconn* admin, const std::string& name,
                              const std::optional<DatabaseOptions>& options) {
  std::string sql = "CREATE DATABASE " + QuotePgIdentifier(name) + " TEMPLATE template0";
  if (!options) return sql;
  const int server = PQserverVersion(admin);
  if (!options->encoding.empty()) sql += " ENCODING " + QuoteLiteral(admin, options->encoding);
  if (!options->lc_collate.empty()) {
    sql += " LC_COLLATE " + QuoteLiteral(admin, options->lc_collate);
  }
  if (!options->lc_ctype.empty()) sql += " LC_CTYPE " + QuoteLiteral(admin, options->lc_ctype);
  if (options->locale_provider == "icu" && server >= 150000 && !options->locale.empty()) {
    sql += " LOCALE_PROVIDER icu ICU_LOCALE " + QuoteLiteral(admin, options->locale);
  } else if (options->locale_provider == "builtin" && server >= 170000 &&
             !options->locale.empty()) {
    sql += " LOCALE_PROVIDER builtin BUILTIN_LOCALE " + QuoteLiteral(admin, options->locale);
  }
  return sql;
}

// A connection to a database other than the target, for CREATE/DROP/RENAME DATABASE.
PgConn ConnectMaintenance(const DatabaseUrl& target) {
  std::vector<std::string> candidates;
  for (const char* name : {"postgres", "template1"}) {
    if (name != target.database) candidates.emplace_back(name);
  }
  for (std::size_t i = 0;; ++i) {
    try {
      return Connect(target, candidates[i], Session::kPlain);
    } catch (const Error& e) {
      if (e.category() != Category::kConnection || i + 1 == candidates.size()) throw;
    }
  }
}

bool DatabaseExists(PGconn* admin, const std::string& name) {
  PgResult result =
      ExecParams(admin, "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", {name});
  return PQntuples(result.get()) > 0;
}

std::int64_t CountUserRelations(const DatabaseUrl& target, const std::string& database) {
  PgConn conn = Connect(target, database, Session::kPlain);
  PgResult result =
      ExecLibpq(conn.get(), fmt::format("SELECT count(*) FROM pg_catalog.pg_class c "
                                        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {}",
                                        kUserSchema));
  return std::strtoll(Value(result, 0, 0).c_str(), nullptr, 10);
}

void DropDatabase(PGconn* admin, const std::string& name) {
  // FORCE (13+) ends sessions that autovacuum or a stray client opened meanwhile.
  ExecLibpq(admin, fmt::format("DROP DATABASE IF EXISTS {}{}", QuotePgIdentifier(name),
                               PQserverVersion(admin) >= 130000 ? " WITH (FORCE)" : ""));
}

// Drops a database this restore created unless Release()d: a failed restore never leaves
// a half-built database behind.
class CreatedDatabase {
 public:
  CreatedDatabase(PGconn* admin, std::string name) : admin_(admin), name_(std::move(name)) {}
  CreatedDatabase(const CreatedDatabase&) = delete;
  CreatedDatabase& operator=(const CreatedDatabase&) = delete;
  ~CreatedDatabase() {
    if (admin_ == nullptr) return;
    try {
      DropDatabase(admin_, name_);
    } catch (...) {  // best effort; the name (safemig_restore_*) says what it is
    }
  }
  void Release() { admin_ = nullptr; }

 private:
  PGconn* admin_;
  std::string name_;
};

std::string TemporaryDatabaseName() {
  std::random_device random;
  return fmt::format("safemig_restore_{}_{:08x}", static_cast<long>(::getpid()), random());
}

// pg_dump's post-data section cut into what may run on several connections at once.
struct PostData {
  std::string preamble;               // the SET lines before the first entry
  std::vector<std::string> parallel;  // indexes and single-table constraints (keys, unique)
  std::string rest;                   // everything else, in pg_dump's order
};

// pg_dump starts each object with a comment block "--\n-- Name: N; Type: T; Schema: ...".
// Index builds and primary/unique/exclusion constraints each lock one table and depend on
// nothing else in post-data, so they may run in parallel (as pg_restore -j runs them), while
// foreign keys (two tables each, which could deadlock), triggers, rules, comments on
// indexes, partition index attachments and the rest keep their order afterwards. A script
// without such comments is all `rest`.
PostData SplitPostData(const std::string& script) {
  constexpr std::string_view kEntryStart = "--\n-- Name: ";
  PostData split;
  std::size_t entry = script.compare(0, kEntryStart.size(), kEntryStart) == 0
                          ? 0
                          : script.find(std::string("\n") + std::string(kEntryStart));
  if (entry == std::string::npos) {
    split.rest = script;
    return split;
  }
  if (entry > 0) ++entry;  // past the newline that ends the line before
  split.preamble = script.substr(0, entry);
  while (entry < script.size()) {
    std::size_t next = script.find(std::string("\n") + std::string(kEntryStart), entry + 1);
    next = next == std::string::npos ? script.size() : next + 1;
    const std::string_view text(script.data() + entry, next - entry);
    const std::size_t header_end = text.find('\n', kEntryStart.size());
    const std::string_view header = text.substr(0, header_end);
    const bool parallel = header.find("; Type: INDEX; ") != std::string_view::npos ||
                          header.find("; Type: CONSTRAINT; ") != std::string_view::npos;
    if (parallel) {
      split.parallel.emplace_back(text);
    } else {
      split.rest.append(text);
    }
    entry = next;
  }
  return split;
}

// Runs each script of `scripts` on one of `jobs` connections to `database`, every connection
// starting with `preamble`.
void RunInParallel(const DatabaseUrl& target, const std::string& database,
                   const std::string& preamble, const std::vector<std::string>& scripts, int jobs) {
  std::atomic<std::size_t> next{0};
  FirstError errors;
  {
    ThreadGroup workers;
    const std::size_t count = std::min(scripts.size(), static_cast<std::size_t>(std::max(1, jobs)));
    try {
      for (std::size_t i = 0; i < count; ++i) {
        workers.Start(errors, [&] {
          PgConn conn = Connect(target, database, Session::kPlain);
          ExecScript(conn.get(), preamble);
          for (;;) {
            if (errors.failed()) throw Cancelled{};
            const std::size_t index = next++;
            if (index >= scripts.size()) break;
            ExecScript(conn.get(), scripts[index]);
          }
        });
      }
    } catch (...) {
      errors.Record(std::current_exception());
    }
  }
  errors.RethrowIfAny();
}

// The fingerprint entries of the tables restored so far, by key, from the lines sent.
class RestoredTables {
 public:
  // Throws Error(kIntegrity) for a table two parts claim.
  void Add(const std::string& key, TableData data, const std::string& part_name) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!tables_.emplace(key, std::move(data)).second) {
      throw Error(Category::kIntegrity,
                  fmt::format("part {} holds rows of table {}, which another part held already",
                              part_name, key),
                  "the backup cannot be trusted; use another one");
    }
  }
  // Call once the workers are done.
  [[nodiscard]] const std::map<std::string, TableData>& tables() const { return tables_; }

 private:
  std::mutex mutex_;
  std::map<std::string, TableData> tables_;
};

// One worker: takes table parts from `next` and COPYs them into `database`, sending them in
// `encoding` (the backup's).
void CopyTablesIn(const DatabaseUrl& target, const std::string& database,
                  const std::string& encoding, const fs::path& dir,
                  const std::vector<const PartInfo*>& parts, std::atomic<std::size_t>& next,
                  RestoredTables& restored, SharedProgress& progress, const FirstError& errors) {
  // ArchiveReader is one thread's: each worker reads through its own.
  const ArchiveReader reader = ArchiveReader::Open(dir);
  PgConn conn = Connect(target, database, Session::kCopy, encoding);
  for (;;) {
    if (errors.failed()) throw Cancelled{};
    const std::size_t index = next++;
    if (index >= parts.size()) break;
    const PartInfo& checked = *parts[index];
    const PartInfo* part = nullptr;
    for (const PartInfo& candidate : reader.manifest().parts) {
      if (candidate.name == checked.name && candidate.sha256 == checked.sha256 &&
          candidate.raw_sha256 == checked.raw_sha256) {
        part = &candidate;
      }
    }
    if (part == nullptr) {
      throw Error(Category::kIntegrity,
                  fmt::format("backup {} changed while it was being restored", dir.string()),
                  "make sure nothing writes to the backup store during a restore");
    }
    CopyInSink sink(conn.get(), part->name, progress, errors);
    reader.ExtractPart(*part, sink);
    const std::int64_t rows = sink.End();
    if (part->rows >= 0 && rows != part->rows) {
      throw Error(Category::kIntegrity,
                  fmt::format("{}: {} rows restored, the backup recorded {}", sink.What(), rows,
                              part->rows),
                  "the backup cannot be trusted; use another one");
    }
    TableData data = sink.Data();
    if (data.rows != rows) {
      throw Error(
          Category::kIntegrity,
          fmt::format("{}: the server took in {} rows from {} lines", sink.What(), rows, data.rows),
          "the backup cannot be trusted; use another one");
    }
    restored.Add(sink.Key(), std::move(data), part->name);
  }
}

// --- restoring some tables --------------------------------------------------------------

// Reads a table part's header line and stops: which table the part holds.
class HeaderSink : public Sink {
 public:
  using Sink::Write;
  struct Done {};
  explicit HeaderSink(std::string part_name) : part_name_(std::move(part_name)) {}
  void Write(const char* data, std::size_t size) override {
    text_.append(data, std::min(size, kMaxHeaderBytes + 1));
    std::size_t consumed = 0;
    const HeaderStatus status = ParseTableHeader(text_, &target_, &consumed);
    if (status == HeaderStatus::kComplete) throw Done{};
    if (status == HeaderStatus::kMalformed || text_.size() > kMaxHeaderBytes) {
      throw Error(Category::kIntegrity,
                  fmt::format("part {} of the backup is not table data: its first line is not "
                              "a safemig table header",
                              part_name_),
                  "the backup cannot be trusted; use another one");
    }
  }
  void Finish() override {}
  const CopyTarget& target() const { return target_; }

 private:
  std::string part_name_;
  std::string text_;
  CopyTarget target_;
};

// The table part of each of `keys`, by key, with the table's quoted name.
std::map<std::string, std::pair<const PartInfo*, std::string>> FindTableParts(
    const ArchiveReader& archive, const RestorePlan& plan, const std::vector<std::string>& keys) {
  std::map<std::string, std::pair<const PartInfo*, std::string>> found;
  for (const PartInfo* part : plan.tables) {
    HeaderSink header(part->name);
    try {
      archive.ExtractPart(*part, header);
    } catch (const HeaderSink::Done&) {
    }
    const std::string key = PgTableDataKey(header.target().schema, header.target().table);
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
      found[key] = {part, header.target().Name()};
    }
  }
  for (const std::string& key : keys) {
    if (found.count(key) == 0) throw MissingTablePart(archive.manifest().id, key);
  }
  return found;
}

// A foreign key from or to a table being replaced, read before it is set aside.
struct ForeignKey {
  std::string name;        // as the catalog has it
  std::string child;       // referencing table, qualified as regclass prints it
  std::string parent;      // referenced table
  std::string definition;  // pg_get_constraintdef
  std::string check;       // counts the rows of `child` without their `parent` row
};

std::string RegclassList(PGconn* conn, const std::vector<std::string>& tables) {
  std::string list;
  for (const std::string& table : tables) {
    list += (list.empty() ? "" : ", ") + QuoteLiteral(conn, table) + "::pg_catalog.regclass";
  }
  return list;
}

// The validated foreign keys from or to `tables` (quoted names). Each check is built by the
// server from the catalog: rows of the referencing table whose key columns are all set
// (MATCH SIMPLE) and match no referenced row.
std::vector<ForeignKey> ForeignKeysOf(PGconn* conn, const std::vector<std::string>& tables) {
  auto columns = [](const std::string& alias, const std::string& keys, const std::string& rel) {
    return "(SELECT string_agg('" + alias + ".' || quote_ident(a.attname), ', ' ORDER BY k.i) "
           "FROM unnest(" + keys + ") WITH ORDINALITY k(n, i) JOIN pg_catalog.pg_attribute a "
           "ON a.attrelid = " + rel + " AND a.attnum = k.n)";
  };
  const std::string list = RegclassList(conn, tables);
  const std::string sql = fmt::format(
      "SELECT c.conname, c.conrelid::pg_catalog.regclass::text, "
      "c.confrelid::pg_catalog.regclass::text, pg_catalog.pg_get_constraintdef(c.oid), "
      "format('SELECT count(*) FROM %s c WHERE (%s) IS NOT NULL AND NOT EXISTS (SELECT 1 "
      "FROM %s p WHERE (%s) = (%s))', c.conrelid::pg_catalog.regclass, {0}, "
      "c.confrelid::pg_catalog.regclass, {1}, {0}) "
      "FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' AND c.convalidated AND "
      "c.conparentid = 0 AND (c.conrelid IN ({2}) OR c.confrelid IN ({2})) ORDER BY 2, 1",
      columns("c", "c.conkey", "c.conrelid"), columns("p", "c.confkey", "c.confrelid"), list);
  PgResult result = ExecLibpq(conn, sql);
  std::vector<ForeignKey> keys;
  for (int row = 0; row < PQntuples(result.get()); ++row) {
    keys.push_back({Value(result, row, 0), Value(result, row, 1), Value(result, row, 2),
                    Value(result, row, 3), Value(result, row, 4)});
  }
  return keys;
}

// Refuses before anything changes when this role cannot alter a table the replace needs to
// (the tables themselves for their triggers, and both ends of their foreign keys).
void RequireOwnership(PGconn* conn, const std::vector<std::string>& tables,
                      const std::string& database) {
  std::vector<std::string> involved = tables;
  for (const ForeignKey& key : ForeignKeysOf(conn, tables)) {
    involved.push_back(key.child);
    involved.push_back(key.parent);
  }
  PgResult result = ExecLibpq(
      conn, fmt::format("SELECT c.oid::pg_catalog.regclass::text FROM pg_catalog.pg_class c "
                        "WHERE c.oid IN ({}) AND NOT pg_catalog.pg_has_role(c.relowner, "
                        "'USAGE') ORDER BY 1 LIMIT 1",
                        RegclassList(conn, involved)));
  if (PQntuples(result.get()) > 0) {
    throw Error(Category::kMigrationFailed,
                fmt::format("cannot replace tables in place in {}: this role does not own "
                            "table {}, whose triggers or foreign keys the replace must set "
                            "aside; nothing was changed",
                            database, Value(result, 0, 0)),
                "connect as the tables' owner, or restore into a new database instead");
  }
}

// Replaces the rows of options.tables in the existing database `target` with the backup's,
// in one transaction. Nothing may fire while rows are deleted and copied: the tables' own
// enabled triggers are disabled, and the foreign keys from and to them are dropped (an
// ON DELETE CASCADE from another table would empty it; a NO ACTION key would forbid
// refilling a referenced table). Before the commit every such key is checked
// (ForeignKeyRefusal on the first violation) and added back, which the server validates
// once more, and the triggers are enabled again. This works for the tables' owner; it
// needs no superuser (session_replication_role would).
RestoreReport ReplaceTables(const ArchiveReader& archive, const DatabaseUrl& target,
                            const RestorePlan& plan, const RestoreOptions& options,
                            const std::string& copy_encoding, SharedProgress& progress) {
  const Manifest& manifest = archive.manifest();
  const std::string shown = QuotePgIdentifier(target.database);
  const auto parts = FindTableParts(archive, plan, options.tables);
  {
    FingerprintSession session;
    const Fingerprint now = session.Run(target, target.database, std::nullopt,
                                        [](const std::string&) { return false; });
    RefuseChangedColumns(manifest.fingerprint, now, options.tables, shown, manifest.id);
  }
  std::vector<std::string> names;
  for (const std::string& key : options.tables) names.push_back(parts.at(key).second);
  PgConn conn = Connect(target, target.database, Session::kCopy, copy_encoding);
  InContext("cannot read the tables to replace",
            [&] { RequireOwnership(conn.get(), names, shown); });
  if (options.before_change) options.before_change();
  RestoreReport report;
  try {
    ExecLibpq(conn.get(), fmt::format("BEGIN; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
                                      fmt::join(names, ", ")));
    const std::vector<ForeignKey> keys = ForeignKeysOf(conn.get(), names);
    for (const ForeignKey& key : keys) {
      ExecLibpq(conn.get(), fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", key.child,
                                        QuotePgIdentifier(key.name)));
    }
    PgResult triggers = ExecLibpq(
        conn.get(), fmt::format("SELECT t.tgrelid::pg_catalog.regclass::text, t.tgname FROM "
                                "pg_catalog.pg_trigger t WHERE t.tgrelid IN ({}) AND NOT "
                                "t.tgisinternal AND t.tgenabled <> 'D' ORDER BY 1, 2",
                                RegclassList(conn.get(), names)));
    auto set_triggers = [&](const char* how) {
      for (int row = 0; row < PQntuples(triggers.get()); ++row) {
        ExecLibpq(conn.get(), fmt::format("ALTER TABLE {} {} TRIGGER {}", Value(triggers, row, 0),
                                          how, QuotePgIdentifier(Value(triggers, row, 1))));
      }
    };
    set_triggers("DISABLE");
    FirstError errors;
    for (const std::string& key : options.tables) {
      const PartInfo& part = *parts.at(key).first;
      const auto started = std::chrono::steady_clock::now();
      CopyInSink sink(conn.get(), part.name, progress, errors, /*replace_rows=*/true);
      archive.ExtractPart(part, sink);
      const std::int64_t rows = sink.End();
      const TableData sent = sink.Data();
      auto expected = manifest.fingerprint.tables.find(key);
      if (sent.rows != rows || (part.rows >= 0 && rows != part.rows) ||
          (expected != manifest.fingerprint.tables.end() &&
           (expected->second.rows != rows ||
            expected->second.content_sha256 != sent.content_sha256))) {
        throw Error(Category::kIntegrity,
                    fmt::format("{}: {} rows restored, which differ from what was backed up; "
                                "nothing was changed",
                                sink.What(), rows),
                    "the backup cannot be trusted; use another one");
      }
      report.tables.push_back({key, rows, Since(started)});
    }
    for (const ForeignKey& key : keys) {
      PgResult count = ExecLibpq(conn.get(), key.check);
      const std::int64_t broken = std::strtoll(Value(count, 0, 0).c_str(), nullptr, 10);
      if (broken > 0) throw ForeignKeyRefusal(key.name, key.child, key.parent, broken);
    }
    for (const ForeignKey& key : keys) {
      ExecLibpq(conn.get(), fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {}", key.child,
                                        QuotePgIdentifier(key.name), key.definition));
    }
    set_triggers("ENABLE");
    ExecLibpq(conn.get(), "COMMIT");
  } catch (const Error&) {
    try {
      ExecLibpq(conn.get(), "ROLLBACK");
    } catch (...) {  // the connection closes next, which rolls back as well
    }
    throw;
  }
  return report;
}

// Drops every table of `database` but `keep` (keys) and safemig's own, with CASCADE: views
// over them and foreign keys to them go too.
void KeepOnlyTables(const DatabaseUrl& target, const std::string& database,
                    const std::vector<std::string>& keep) {
  PgConn conn = Connect(target, database, Session::kPlain);
  PgResult tables = ExecLibpq(
      conn.get(), fmt::format("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN "
                              "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
                              "c.relkind IN ('r', 'p', 'f') AND NOT c.relispartition AND {}",
                              kUserSchema));
  std::vector<std::string> drop;
  for (int row = 0; row < PQntuples(tables.get()); ++row) {
    const std::string schema = Value(tables, row, 0);
    const std::string name = Value(tables, row, 1);
    if (name.rfind("safemig_", 0) == 0) continue;
    const std::string key = PgTableDataKey(schema, name);
    if (std::find(keep.begin(), keep.end(), key) == keep.end()) {
      drop.push_back(QualifiedName(schema, name));
    }
  }
  if (drop.empty()) return;
  InContext("cannot drop the tables not asked for", [&] {
    return ExecLibpq(conn.get(), fmt::format("DROP TABLE {} CASCADE", fmt::join(drop, ", ")));
  });
}

}  // namespace

std::string StripPsqlMetaCommands(const std::string& sql) {
  // A line is a meta-command only where psql would read it as one: starting (after blanks)
  // with a backslash outside any string, quoted identifier, dollar quote or comment. Inside
  // a function body a line may well start with a backslash.
  enum class State { kCode, kString, kEscapeString, kIdentifier, kDollar, kLineComment, kBlock };
  auto is_ident_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$' ||
           static_cast<unsigned char>(c) >= 0x80;
  };
  std::string out;
  out.reserve(sql.size());
  State state = State::kCode;
  std::string dollar_tag;
  int block_depth = 0;
  bool line_start = true;
  std::size_t i = 0;
  while (i < sql.size()) {
    if (line_start && state == State::kCode) {
      std::size_t first = i;
      while (first < sql.size() && (sql[first] == ' ' || sql[first] == '\t')) ++first;
      if (first < sql.size() && sql[first] == '\\') {
        const std::size_t end = sql.find('\n', first);
        i = end == std::string::npos ? sql.size() : end + 1;
        continue;
      }
    }
    const char c = sql[i];
    const char next = i + 1 < sql.size() ? sql[i + 1] : '\0';
    line_start = c == '\n';
    std::size_t length = 1;
    switch (state) {
      case State::kCode:
        if (c == '\'') {
          const bool escape = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                              (i < 2 || !is_ident_char(sql[i - 2]));
          state = escape ? State::kEscapeString : State::kString;
        } else if (c == '"') {
          state = State::kIdentifier;
        } else if (c == '-' && next == '-') {
          state = State::kLineComment;
          length = 2;
        } else if (c == '/' && next == '*') {
          state = State::kBlock;
          block_depth = 1;
          length = 2;
        } else if (c == '$' && (i == 0 || !is_ident_char(sql[i - 1]))) {
          std::size_t end = i + 1;
          if (end < sql.size() && std::isdigit(static_cast<unsigned char>(sql[end])) == 0) {
            while (end < sql.size() && sql[end] != '$' && is_ident_char(sql[end])) ++end;
          }
          if (end < sql.size() && sql[end] == '$') {
            dollar_tag = sql.substr(i, end - i + 1);
            state = State::kDollar;
            length = dollar_tag.size();
          }
        }
        break;
      case State::kString:
        // A doubled quote closes and reopens, which leaves the state right.
        if (c == '\'') state = State::kCode;
        break;
      case State::kEscapeString:
        if (c == '\\') {
          length = next == '\0' ? 1 : 2;
          line_start = next == '\n';
        } else if (c == '\'') {
          state = State::kCode;
        }
        break;
      case State::kIdentifier:
        if (c == '"') state = State::kCode;
        break;
      case State::kDollar:
        if (c == '$' && sql.compare(i, dollar_tag.size(), dollar_tag) == 0) {
          length = dollar_tag.size();
          state = State::kCode;
        }
        break;
      case State::kLineComment:
        if (c == '\n') state = State::kCode;
        break;
      case State::kBlock:
        if (c == '/' && next == '*') {
          ++block_depth;
          length = 2;
        } else if (c == '*' && next == '/') {
          length = 2;
          if (--block_depth == 0) state = State::kCode;
        }
        break;
    }
    out.append(sql, i, length);
    i += length;
  }
  return out;
}

Fingerprint DumpPostgres(const DatabaseUrl& url, ArchiveWriter& archive, int jobs,
                         const ArchiveReader::Progress& progress) {
  // The snapshot every other session imports; its transaction stays open to the end.
  PgConn main = Connect(url, "", Session::kCopy);
  ExecLibpq(main.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  const std::string snapshot =
      Value(ExecLibpq(main.get(), "SELECT pg_catalog.pg_export_snapshot()"), 0, 0);
  const int server_num = PQserverVersion(main.get());
  const std::string server_version =
      Value(ExecLibpq(main.get(), "SELECT pg_catalog.current_setting('server_version')"), 0, 0);
  const PgDumpTool pg_dump = ProbePgDump();
  CheckPgDumpVersion(pg_dump, server_num, server_version);

  std::vector<TableToCopy> tables;
  InContext("cannot back up the PostgreSQL database", [&] {
    RefuseLargeObjects(main.get());
    tables = ListTables(main.get(), server_num);
    LockTables(main.get(), tables);
  });
  std::uint64_t estimate = 0;
  for (const TableToCopy& table : tables) estimate += table.bytes;
  SharedProgress shared(progress, estimate);

  // The rows of every copied table are hashed as they stream past; the server hashes only
  // those of tables not copied (none, normally).
  std::set<std::string> copied_keys;
  for (const TableToCopy& table : tables) copied_keys.insert(table.key);
  BackgroundFingerprint fingerprint(url, snapshot, [&copied_keys](const std::string& key) {
    return copied_keys.count(key) == 0;
  });

  {
    Sink& part = archive.BeginPart(kPreDataPart, kPreDataKind);
    CountingSink counted(part, shared);
    counted.Write(DatabaseHeader(main.get(), server_num));
    RunPgDump(pg_dump, url, snapshot, "pre-data", counted);
    archive.EndPart();
  }

  std::vector<CopiedTable> copied(tables.size());
  {
    std::atomic<std::size_t> next{0};
    FirstError errors;
    {
      ThreadGroup workers;
      const std::size_t count =
          std::min(tables.size(), static_cast<std::size_t>(std::max(1, jobs)));
      try {
        for (std::size_t i = 0; i < count; ++i) {
          workers.Start(errors, [&] {
            CopyTablesOut(url, snapshot, tables, next, copied, archive, shared, errors);
          });
        }
      } catch (...) {
        errors.Record(std::current_exception());
      }
    }
    errors.RethrowIfAny();
    for (CopiedTable& table : copied) archive.AddFinishedPart(std::move(table.part));
  }

  {
    Sink& part = archive.BeginPart(kSequencesPart, kSequencesKind);
    CountingSink counted(part, shared);
    InContext("cannot back up the sequences", [&] { WriteSequences(main.get(), counted); });
    archive.EndPart();
  }
  {
    Sink& part = archive.BeginPart(kPostDataPart, kPostDataKind);
    CountingSink counted(part, shared);
    RunPgDump(pg_dump, url, snapshot, "post-data", counted);
    archive.EndPart();
  }

  Fingerprint result = fingerprint.Get();
  for (std::size_t i = 0; i < tables.size(); ++i) {
    auto entry = result.tables.find(tables[i].key);
    // A table the catalog query leaves out (one in a schema an extension owns) is restored
    // but not part of the fingerprint, as for a live database.
    if (entry != result.tables.end()) entry->second = copied[i].data;
  }
  ExecLibpq(main.get(), "COMMIT");
  shared.Complete();
  return result;
}

RestoreReport RestorePostgres(const ArchiveReader& archive, const DatabaseUrl& target,
                     const RestoreOptions& options, int jobs,
                     const ArchiveReader::Progress& progress) {
  const Manifest& manifest = archive.manifest();
  if (manifest.engine != EngineName(Engine::kPostgres)) {
    throw Error(Category::kUsage,
                fmt::format("backup {} holds a {} database, not a PostgreSQL one", manifest.id,
                            manifest.engine),
                "pass a target URL of the backup's engine");
  }
  // PostgreSQL would truncate a longer name, and the rename would land elsewhere.
  if (target.database.empty() || target.database.size() > 63) {
    throw Error(Category::kUsage,
                fmt::format("'{}' is not a usable PostgreSQL database name (1 to 63 bytes)",
                            target.database),
                "pass a target URL with a shorter database name");
  }
  // Nothing is touched until every part has passed its checksum.
  archive.CheckParts();
  const RestorePlan plan = PlanRestore(manifest);
  SharedProgress shared(progress, manifest.RawBytes());
  std::string pre_data = ExtractScript(archive, *plan.pre_data, shared);
  const std::optional<DatabaseOptions> database_options = ParseDatabaseHeader(pre_data);
  // The table parts are in the source database's encoding (empty: the target's own).
  const std::string copy_encoding = database_options ? database_options->encoding : "";
  if (options.replace_existing && !options.tables.empty()) {
    RestoreReport report = ReplaceTables(archive, target, plan, options, copy_encoding, shared);
    shared.Complete();
    return report;
  }

  PgConn admin = ConnectMaintenance(target);
  const bool exists = DatabaseExists(admin.get(), target.database);
  const std::string shown = QuotePgIdentifier(target.database);
  std::string database = target.database;  // what the restore writes into
  bool swap = true;
  if (exists && !options.replace_existing) {
    const std::int64_t relations = CountUserRelations(target, target.database);
    if (relations > 0) {
      throw Error(Category::kUsage,
                  fmt::format("database {} already exists and is not empty ({} tables, views or "
                              "sequences); a restore never overwrites it unasked",
                              shown, relations),
                  "restore into a new database, or replace this one with --in-place");
    }
    swap = false;
  }
  if (swap) {
    database = TemporaryDatabaseName();
    InContext(fmt::format("cannot create the database to restore {} into", shown), [&] {
      try {
        ExecLibpq(admin.get(), CreateDatabaseSql(admin.get(), database, database_options));
      } catch (const Error& e) {
        throw Error(e.category(), e.what(),
                    "the role needs CREATEDB and the server the backup's locale; or create an "
                    "empty database yourself and restore into it");
      }
    });
  }
  CreatedDatabase created(swap ? admin.get() : nullptr, database);
  const std::string failure_note =
      swap ? "" : fmt::format(" (database {} keeps what was restored so far)", shown);
  RestoreReport report;

  try {
    {
      PgConn conn = Connect(target, database, Session::kPlain);
      InContext("cannot restore the schema (pre-data)",
                [&] { ExecScript(conn.get(), StripPsqlMetaCommands(pre_data)); });
    }
    pre_data = std::string();

    RestoredTables restored;
    {
      std::atomic<std::size_t> next{0};
      FirstError errors;
      {
        ThreadGroup workers;
        const std::size_t count =
            std::min(plan.tables.size(), static_cast<std::size_t>(std::max(1, jobs)));
        try {
          for (std::size_t i = 0; i < count; ++i) {
            workers.Start(errors, [&] {
              CopyTablesIn(target, database, copy_encoding, archive.dir(), plan.tables, next,
                           restored, shared, errors);
            });
          }
        } catch (...) {
          errors.Record(std::current_exception());
        }
      }
      errors.RethrowIfAny();
    }

    {
      PgConn conn = Connect(target, database, Session::kPlain);
      const std::string sequences = ExtractScript(archive, *plan.sequences, shared);
      InContext("cannot restore the sequence values", [&] { ExecScript(conn.get(), sequences); });
      const PostData post_data =
          SplitPostData(StripPsqlMetaCommands(ExtractScript(archive, *plan.post_data, shared)));
      InContext("cannot restore indexes and constraints (post-data)", [&] {
        RunInParallel(target, database, post_data.preamble, post_data.parallel, jobs);
      });
      InContext("cannot restore foreign keys, triggers and the rest of post-data",
                [&] { ExecScript(conn.get(), post_data.preamble + post_data.rest); });
    }

    // The catalog as the server now describes it; each restored table's rows as the lines
    // that were sent and the server counted in (see docs/backup-format.md for what this
    // does and does not prove). A table no part filled is hashed by the server.
    const std::map<std::string, TableData>& sent = restored.tables();
    FingerprintSession session;
    Fingerprint restored_fingerprint =
        session.Run(target, database, std::nullopt,
                    [&sent](const std::string& key) { return sent.count(key) == 0; });
    for (auto& [key, data] : restored_fingerprint.tables) {
      auto it = sent.find(key);
      if (it != sent.end()) data = it->second;
    }
    if (restored_fingerprint.Digest() != manifest.fingerprint.Digest()) {
      const std::vector<std::string> differences =
          DescribeDifferences(manifest.fingerprint, restored_fingerprint);
      throw Error(
          Category::kIntegrity,
          fmt::format(
              "the restored copy of backup {} differs from what was backed up: {}", manifest.id,
              differences.empty() ? std::string("fingerprint digest") : differences.front()),
          "the backup cannot be trusted; use another one");
    }
    if (!options.tables.empty()) {
      KeepOnlyTables(target, database, options.tables);
      for (const std::string& key : options.tables) {
        auto it = restored_fingerprint.tables.find(key);
        report.tables.push_back(
            {key, it == restored_fingerprint.tables.end() ? 0 : it->second.rows,
             std::chrono::milliseconds(0)});
      }
    }
  } catch (const Error& e) {
    if (failure_note.empty()) throw;
    throw Error(e.category(), e.what() + failure_note, e.hint());
  }

  if (swap) {
    const std::string context =
        fmt::format("cannot put the restored database in place of {}", shown);
    if (exists) InContext(context, [&] { DropDatabase(admin.get(), target.database); });
    try {
      ExecLibpq(admin.get(),
                fmt::format("ALTER DATABASE {} RENAME TO {}", QuotePgIdentifier(database), shown));
    } catch (const Error& e) {
      if (!exists) throw Error(e.category(), context + ": " + e.what(), e.hint());
      // The old database is gone: the verified copy is all there is, so it stays.
      created.Release();
      throw Error(Category::kNeedsPerson,
                  fmt::format("{} was dropped, but the restored copy could not be renamed to it: "
                              "{}",
                              shown, e.what()),
                  fmt::format("the verified copy is database {}: rename it with ALTER DATABASE "
                              "... RENAME TO",
                              QuotePgIdentifier(database)));
    }
    created.Release();
  }
  shared.Complete();
  return report;
}

}  // namespace safemig
