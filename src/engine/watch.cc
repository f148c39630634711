#include "engine/watch.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "config/url.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/migration.h"

extern char** environ;

namespace safemig {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr size_t kMaxLastLine = 200;
constexpr size_t kOutputTail = 8192;  // bytes of a command's output kept to find its last line

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Trim(std::string_view text) {
  const char* blanks = " \t\r\n";
  size_t begin = text.find_first_not_of(blanks);
  if (begin == std::string_view::npos) return "";
  size_t end = text.find_last_not_of(blanks);
  return std::string(text.substr(begin, end - begin + 1));
}

std::string Shorten(std::string text) {
  if (text.size() > kMaxLastLine) {
    text.resize(kMaxLastLine - 3);
    text += "...";
  }
  return text;
}

// A value that reads as a number, and whether it is zero. "1e3", "-0.0", "0x" (not a number).
std::optional<bool> NumberIsZero(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  // strtod also reads "inf", "nan" and hex; only plain decimal numbers count here.
  if (text.find_first_not_of("0123456789+-.eE") != std::string::npos) return std::nullopt;
  return value == 0.0;
}

std::string LastLine(const std::string& output) {
  size_t end = output.size();
  while (end > 0) {
    size_t start = output.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    std::string line = Trim(std::string_view(output).substr(start, end - start));
    if (!line.empty()) return Shorten(RedactSecrets(line));
    if (start == 0) break;
    end = start - 1;
  }
  return "";
}

void RealSleep(milliseconds duration) {
  const auto until = steady_clock::now() + duration;
  while (!InterruptRequested()) {
    const auto left = until - steady_clock::now();
    if (left <= steady_clock::duration::zero()) return;
    std::this_thread::sleep_for(std::min<steady_clock::duration>(left, milliseconds(50)));
  }
}

// ------------------------------------------------------------------------------------
// SQL checks

// The database's own words from a driver error: QueryText's errors open with what the
// driver was doing ("could not read a table of another tool in DB: "), which says nothing
// about a health check.
std::string DatabaseMessage(const std::string& message) {
  const std::string_view prefix = "could not read a table of another tool";
  if (message.rfind(prefix, 0) != 0) return message;
  const size_t colon = message.find(": ", prefix.size());
  return colon == std::string::npos ? message : message.substr(colon + 2);
}

class SqlCheck : public Check {
 public:
  SqlCheck(CheckSpec spec, CheckConnection& connection)
      : spec_(std::move(spec)), connection_(connection) {}
  const CheckSpec& spec() const override { return spec_; }

  CheckResult Run() override {
    const auto start = steady_clock::now();
    CheckResult result;
    try {
      result = EvaluateQueryResult(connection_.Query(spec_.text));
    } catch (const Error& e) {
      result.passed = false;
      result.detail = Shorten("error: " + RedactSecrets(DatabaseMessage(e.what())));
    }
    result.name = spec_.name;
    result.kind = CheckKind::kSql;
    result.took = Since(start);
    // MariaDB ends a statement stopped by max_statement_time with an empty result rather
    // than an error: say why there were no rows.
    if (!result.passed && result.detail == "no rows" && result.took >= connection_.timeout()) {
      result.detail += " (stopped at the " + FormatDuration(connection_.timeout()) + " timeout)";
    }
    return result;
  }

 private:
  CheckSpec spec_;
  CheckConnection& connection_;
};

// ------------------------------------------------------------------------------------
// Command checks

class CommandCheck : public Check {
 public:
  CommandCheck(CheckSpec spec, milliseconds timeout) : spec_(std::move(spec)), timeout_(timeout) {}
  const CheckSpec& spec() const override { return spec_; }

  CheckResult Run() override {
    CheckResult result;
    result.name = spec_.name;
    result.kind = CheckKind::kCommand;
    CommandRun run = RunShellCommand(spec_.text, timeout_);
    result.took = run.took;
    result.passed = run.exit_code && *run.exit_code == 0;
    std::string what;
    if (run.timed_out) {
      what = "timed out after " + FormatDuration(timeout_);
    } else if (run.interrupted) {
      what = "interrupted";
    } else if (!run.exit_code) {
      what = fmt::format("killed by signal {}", run.signal);
    } else if (*run.exit_code != 0) {
      what = fmt::format("exit {}", *run.exit_code);
    }
    if (!result.passed) {
      result.detail = run.last_line.empty() ? what : what + ": " + run.last_line;
    }
    return result;
  }

 private:
  CheckSpec spec_;
  milliseconds timeout_;
};

using PosixFd = std::unique_ptr<int, void (*)(int*)>;
void CloseFd(int* fd) {
  if (fd != nullptr && *fd >= 0) ::close(*fd);
  delete fd;
}

// Stops the command's whole process group: politely first, then for good.
void StopGroup(pid_t pid) {
  ::kill(-pid, SIGTERM);
  const auto until = steady_clock::now() + milliseconds(500);
  int status = 0;
  while (steady_clock::now() < until) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      ::kill(-pid, SIGKILL);  // anything it left behind in its group
      return;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  ::kill(-pid, SIGKILL);
  ::waitpid(pid, &status, 0);
}

// ------------------------------------------------------------------------------------
// Journal

std::string KindName(CheckKind kind) { return kind == CheckKind::kSql ? "sql" : "command"; }

nlohmann::json ResultsJson(const std::vector<CheckResult>& results,
                           const std::vector<int>& failed_ticks) {
  nlohmann::json checks = nlohmann::json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const CheckResult& r = results[i];
    checks.push_back({{"name", r.name},
                      {"kind", KindName(r.kind)},
                      {"passed", r.passed},
                      {"detail", RedactSecrets(r.detail)},
                      {"took_ms", r.took.count()},
                      {"failed_ticks", i < failed_ticks.size() ? failed_ticks[i] : 0}});
  }
  return checks;
}

// The journal row of one watch; write failures become one warning each, since the
// database being watched may be the thing that is failing.
class WatchJournal {
 public:
  // `driver` is a reference to the owner: a restore-based rollback replaces the connection.
  WatchJournal(std::unique_ptr<Driver>& driver, Reporter& reporter)
      : driver_(driver), reporter_(reporter) {}

  void Start(JournalEntry entry) {
    entry_ = std::move(entry);
    try {
      driver_->EnsureMetadata();
      entry_.id = driver_->InsertJournal(entry_);
    } catch (const Error& e) {
      Warn(e);
    }
  }

  void Update(const nlohmann::json& details, const std::string& outcome, bool finished) {
    entry_.details = RedactSecrets(details.dump());
    entry_.outcome = outcome;
    if (finished) entry_.finished_at = NowIso8601();
    try {
      if (finished && !StillThere()) {
        // A rollback that restored the pre-deploy backup took this row with it: the
        // watch that led to it must still be on record.
        entry_.id = driver_->InsertJournal(entry_);
        return;
      }
      if (entry_.id != 0) driver_->UpdateJournal(entry_);
    } catch (const Error& e) {
      Warn(e);
    }
  }

  std::int64_t id() const { return entry_.id; }

 private:
  void Warn(const Error& e) {
    if (warned_) return;
    warned_ = true;
    reporter_.Warning("could not write the watch's journal row (the watch goes on): " +
                      RedactSecrets(e.what()));
  }

  bool StillThere() {
    if (entry_.id == 0) return false;
    for (const JournalEntry& row : driver_->ReadJournal(200)) {
      if (row.id == entry_.id)
        return row.kind == entry_.kind && row.started_at == entry_.started_at;
    }
    return false;
  }

  std::unique_ptr<Driver>& driver_;
  Reporter& reporter_;
  JournalEntry entry_;
  bool warned_ = false;
};

nlohmann::json Details(const WatchOutcome& outcome, const WatchSettings& settings) {
  nlohmann::json details = WatchJson(outcome, settings);
  details.erase("journal_id");
  // What the trigger led to (the rollback's strategy and result, or the plan's), compact.
  if (outcome.response.is_object()) {
    for (const auto& [key, value] : outcome.response.items()) details[key] = value;
  }
  return details;
}

}  // namespace

// ------------------------------------------------------------------------------------

CheckSpec ParseCheckSpec(CheckKind kind, std::string_view text, int position) {
  CheckSpec spec;
  spec.kind = kind;
  spec.text = Trim(text);
  spec.name = fmt::format("{}{}", kind == CheckKind::kSql ? "sql" : "cmd", position);
  size_t colon = spec.text.find(": ");
  if (colon == std::string::npos || colon == 0) return spec;
  const std::string name = spec.text.substr(0, colon);
  const bool is_name = std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
  if (!is_name) return spec;
  std::string rest = Trim(std::string_view(spec.text).substr(colon + 2));
  if (rest.empty()) return spec;
  spec.name = name;
  spec.text = std::move(rest);
  return spec;
}

CheckResult EvaluateQueryResult(const QueryResult& result) {
  CheckResult check;
  check.kind = CheckKind::kSql;
  if (result.rows.empty()) {
    check.detail = "no rows";
    return check;
  }
  const std::vector<std::optional<std::string>>& row = result.rows.front();
  if (row.empty()) {
    check.passed = true;  // a row without columns is still a row
    return check;
  }
  if (!row.front()) {
    check.detail = "returned NULL";
    return check;
  }
  const std::string value = Lower(Trim(*row.front()));
  if (value == "t" || value == "true") {
    check.passed = true;
  } else if (value == "f" || value == "false") {
    check.detail = "returned " + value;
  } else if (std::optional<bool> zero = NumberIsZero(value)) {
    check.passed = !*zero;
    if (*zero) check.detail = "returned " + value;
  } else {
    check.passed = true;
  }
  return check;
}

CheckConnection::CheckConnection(DriverOpener open, milliseconds timeout)
    : open_(std::move(open)), timeout_(timeout) {}

void CheckConnection::Open() {
  driver_ = open_();
  driver_->SetTimeouts(timeout_, timeout_);
  // Each engine's own words for "read-only, and no statement longer than the timeout".
  // A check that takes longer fails with the server's message; the watch goes on.
  const long long ms = timeout_.count();
  switch (driver_->dialect()) {
    case Dialect::kPostgres:
      driver_->QueryText(fmt::format("SET statement_timeout = {}", ms));
      driver_->QueryText("SET default_transaction_read_only = on");
      break;
    case Dialect::kMySql: {
      // SET returns no rows; the driver's query call may still complain about that after
      // the server applied it, so the effect is read back rather than trusted.
      const bool mariadb = Lower(driver_->ServerVersion()).find("mariadb") != std::string::npos;
      auto set = [&](const std::string& sql) {
        try {
          driver_->QueryText(sql);
        } catch (const std::exception&) {  // "no result set": the server applied it anyway
        }
      };
      set(mariadb ? fmt::format("SET SESSION max_statement_time = {:.3f}", ms / 1000.0)
                  : fmt::format("SET SESSION max_execution_time = {}", ms));
      set("SET SESSION TRANSACTION READ ONLY");
      QueryResult mode = driver_->QueryText(mariadb ? "SELECT @@session.tx_read_only"
                                                    : "SELECT @@session.transaction_read_only");
      if (mode.rows.empty() || mode.rows[0].empty() || !mode.rows[0][0] ||
          *mode.rows[0][0] != "1") {
        throw Error(Category::kConnection, "could not make the checks' connection read-only",
                    "check that the server accepts SET SESSION TRANSACTION READ ONLY");
      }
      break;
    }
    case Dialect::kSqlite:
      driver_->QueryText("PRAGMA query_only = ON");
      break;
  }
}

QueryResult CheckConnection::Query(const std::string& sql) {
  try {
    if (!driver_) Open();
    return driver_->QueryText(sql);
  } catch (const Error&) {
    driver_.reset();  // next tick starts from a fresh connection
    throw;
  }
}

std::unique_ptr<Check> MakeSqlCheck(CheckSpec spec, CheckConnection& connection) {
  return std::make_unique<SqlCheck>(std::move(spec), connection);
}

std::unique_ptr<Check> MakeCommandCheck(CheckSpec spec, milliseconds timeout) {
  return std::make_unique<CommandCheck>(std::move(spec), timeout);
}

CommandRun RunShellCommand(const std::string& command, milliseconds timeout) {
  CommandRun run;
  const auto start = steady_clock::now();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw Error(Category::kInternal, std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  PosixFd read_end(new int(fds[0]), CloseFd);
  PosixFd write_end(new int(fds[1]), CloseFd);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, *write_end, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, *write_end, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Its own process group, so a timeout stops everything it started; default signal
  // actions and mask, whatever ours are.
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int number : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD}) sigaddset(&defaults, number);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, "/bin/sh", &actions, &attributes,
                                    const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    throw Error(Category::kInternal,
                std::string("cannot start /bin/sh for a check command: ") + std::strerror(spawned),
                "check that /bin/sh exists and can be run");
  }
  write_end.reset();  // ours; the child has its copy

  std::string tail;
  const auto deadline = start + timeout;
  int status = 0;
  bool exited = false;
  bool open = true;
  while (open) {
    if (InterruptRequested()) {
      run.interrupted = true;
      break;
    }
    const auto left = deadline - steady_clock::now();
    if (left <= steady_clock::duration::zero()) {
      run.timed_out = true;
      break;
    }
    const auto wait = std::min<milliseconds>(
        std::chrono::duration_cast<milliseconds>(left) + milliseconds(1), milliseconds(50));
    pollfd poll_fd{*read_end, POLLIN, 0};
    const int ready = ::poll(&poll_fd, 1, static_cast<int>(wait.count()));
    if (ready > 0) {
      char buffer[4096];
      const ssize_t n = ::read(*read_end, buffer, sizeof(buffer));
      if (n > 0) {
        tail.append(buffer, static_cast<size_t>(n));
        if (tail.size() > kOutputTail) tail.erase(0, tail.size() - kOutputTail);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        open = false;
      }
      continue;
    }
    // Nothing to read: the shell may have exited while something it started in the
    // background still holds the pipe; its result is known, so stop waiting.
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
  }
  if (!exited && (run.timed_out || run.interrupted)) {
    StopGroup(pid);
  } else if (!exited) {
    // The output ended; the exit follows at once, unless the timeout passes first.
    while (::waitpid(pid, &status, WNOHANG) != pid) {
      if (steady_clock::now() >= deadline || InterruptRequested()) {
        run.timed_out = !InterruptRequested();
        run.interrupted = InterruptRequested();
        StopGroup(pid);
        break;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    exited = !run.timed_out && !run.interrupted;
  }
  if (exited) {
    if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  }
  run.last_line = LastLine(tail);
  run.took = Since(start);
  return run;
}

WatchPlan MergeWatchSettings(const WatchConfig& config, const WatchFlags& flags) {
  WatchPlan plan;
  WatchSettings& s = plan.settings;
  // The environment's values first, then the command line's over them (same fields).
  auto apply = [&s](const auto& from) {
    if (from.duration) s.duration = *from.duration;
    if (from.every) s.every = *from.every;
    if (from.failures) s.failures = *from.failures;
    if (from.auto_rollback) s.auto_rollback = *from.auto_rollback;
    if (from.check_timeout) s.check_timeout = *from.check_timeout;
    if (from.rollback_deadline) s.rollback_deadline = from.rollback_deadline;
  };
  apply(config);
  apply(flags);
  if (s.every.count() <= 0 || s.duration.count() <= 0 || s.check_timeout.count() <= 0) {
    throw Error(Category::kUsage,
                "watch durations (--for, --every, --check-timeout) must be "
                "longer than 0s",
                "write them like 30m, 30s or 500ms");
  }
  if (s.failures < 1) {
    throw Error(Category::kUsage, "--failures must be at least 1",
                "it is how many failing ticks in a row trigger the rollback");
  }
  auto add = [&](CheckKind kind, const std::vector<std::string>& texts, int& position) {
    for (const std::string& text : texts)
      plan.checks.push_back(ParseCheckSpec(kind, text, ++position));
  };
  int sql = 0;
  int cmd = 0;
  if (!flags.skip_config_checks) {
    add(CheckKind::kSql, config.checks, sql);
    add(CheckKind::kCommand, config.check_cmds, cmd);
  }
  add(CheckKind::kSql, flags.checks, sql);
  add(CheckKind::kCommand, flags.check_cmds, cmd);
  if (plan.checks.empty()) {
    throw Error(Category::kUsage, "watch has no checks to run",
                "pass --check SQL or --check-cmd CMD, or set checks in "
                "[environments.NAME.watch] of safemig.toml");
  }
  return plan;
}

int PlannedTicks(const WatchSettings& settings) {
  const auto every = std::max<milliseconds::rep>(settings.every.count(), 1);
  const auto ticks = (settings.duration.count() + every - 1) / every;
  return static_cast<int>(std::clamp<milliseconds::rep>(ticks, 1, 1'000'000));
}

const char* WatchVerdictName(WatchVerdict verdict) {
  switch (verdict) {
    case WatchVerdict::kHealthy:
      return "healthy";
    case WatchVerdict::kFailed:
      return "failed";
    case WatchVerdict::kInterrupted:
      return "interrupted";
  }
  return "failed";
}

int FailureCounter::Record(bool tick_passed) {
  consecutive_ = tick_passed ? 0 : consecutive_ + 1;
  return consecutive_;
}

std::string TriggerReason(int failures, const std::vector<CheckResult>& last) {
  std::string names;
  for (const CheckResult& r : last) {
    if (r.passed) continue;
    if (!names.empty()) names += ", ";
    names += r.name;
  }
  return fmt::format("watch: {} consecutive failing check{} ({})", failures,
                     failures == 1 ? "" : "s", names);
}

nlohmann::json WatchJson(const WatchOutcome& outcome, const WatchSettings& settings) {
  return {
      {"outcome", outcome.outcome.empty() ? WatchVerdictName(outcome.verdict) : outcome.outcome},
      {"journal_id", outcome.journal_id},
      {"deploy_id", outcome.deploy_id},
      {"version", outcome.version},
      {"every_ms", settings.every.count()},
      {"for_ms", settings.duration.count()},
      {"failures", settings.failures},
      {"auto_rollback", settings.auto_rollback},
      {"check_timeout_ms", settings.check_timeout.count()},
      {"ticks", outcome.ticks},
      {"planned_ticks", outcome.planned_ticks},
      {"consecutive_failures", outcome.consecutive_failures},
      {"trigger", outcome.trigger.empty() ? nlohmann::json() : nlohmann::json(outcome.trigger)},
      {"checks", ResultsJson(outcome.last, outcome.failed_ticks)},
      {"took_ms", outcome.took.count()}};
}

WatchOutcome Watch(std::unique_ptr<Driver>& journal_driver, WatchRequest& request,
                   Reporter& reporter) {
  const WatchSettings& settings = request.settings;
  WatchClock& clock = request.clock;
  auto sleep = clock.sleep ? clock.sleep : RealSleep;
  const auto start = clock.now();

  WatchOutcome outcome;
  outcome.planned_ticks = PlannedTicks(settings);
  outcome.failed_ticks.assign(request.checks.size(), 0);
  // What is being watched: the version now, and the deploy that brought it.
  std::vector<HistoryRow> history;
  try {
    history = journal_driver->ReadHistory();
  } catch (const Error& e) {
    reporter.Warning("could not read the migration history: " + RedactSecrets(e.what()));
  }
  const HistoryRow* newest = nullptr;
  for (const HistoryRow& row : history) {
    if (newest == nullptr || CompareVersions(row.version, newest->version) > 0) newest = &row;
  }
  if (newest != nullptr) outcome.version = newest->version;
  outcome.deploy_id = !request.deploy_id.empty() ? request.deploy_id
                      : newest != nullptr        ? newest->deploy_id
                                                 : "";

  WatchJournal journal(journal_driver, reporter);
  JournalEntry entry;
  entry.kind = "watch";
  entry.environment = request.environment.name;
  entry.deploy_id = outcome.deploy_id;
  entry.started_at = FormatIso8601(clock.wall());
  entry.outcome = "running";
  entry.from_version = outcome.version;
  entry.to_version = outcome.version;
  entry.details = Details(outcome, settings).dump();
  journal.Start(entry);
  outcome.journal_id = journal.id();

  auto finish = [&](const std::string& result) {
    outcome.outcome = result;
    outcome.took = std::chrono::duration_cast<milliseconds>(clock.now() - start);
    journal.Update(Details(outcome, settings), result, /*finished=*/true);
  };

  FailureCounter counter(settings.failures);
  bool interrupted = false;
  for (int tick = 1; tick <= outcome.planned_ticks; ++tick) {
    WatchTick current;
    current.number = tick;
    current.planned = outcome.planned_ticks;
    current.at = clock.wall();
    current.passed = true;
    for (size_t i = 0; i < request.checks.size(); ++i) {
      if (InterruptRequested()) break;
      CheckResult result = request.checks[i]->Run();
      if (!result.passed) {
        current.passed = false;
        ++outcome.failed_ticks[i];
      }
      current.results.push_back(std::move(result));
    }
    if (InterruptRequested()) {
      interrupted = true;
      break;
    }
    current.consecutive_failures = counter.Record(current.passed);
    outcome.ticks = tick;
    outcome.consecutive_failures = counter.consecutive();
    outcome.last = current.results;
    if (request.on_tick) request.on_tick(current);
    if (counter.Triggered()) {
      outcome.verdict = WatchVerdict::kFailed;
      outcome.trigger = TriggerReason(settings.failures, outcome.last);
      break;
    }
    outcome.took = std::chrono::duration_cast<milliseconds>(clock.now() - start);
    journal.Update(Details(outcome, settings), "running", /*finished=*/false);
    // The next tick on the schedule; a tick slower than `every` is followed at once.
    const auto next = start + settings.every * tick;
    const auto left = std::chrono::duration_cast<milliseconds>(next - clock.now());
    if (left.count() > 0) sleep(left);
    if (InterruptRequested()) {
      interrupted = true;
      break;
    }
  }

  if (interrupted) {
    outcome.verdict = WatchVerdict::kInterrupted;
    finish("interrupted");
    ThrowIfInterrupted(fmt::format("watching (after {} of {} ticks; journal row {})", outcome.ticks,
                                   outcome.planned_ticks, outcome.journal_id));
  }
  if (outcome.verdict == WatchVerdict::kHealthy) {
    finish("healthy");
    return outcome;
  }
  TriggerResponse response;
  if (request.on_trigger) {
    try {
      response = request.on_trigger(outcome);
    } catch (const Error& e) {
      outcome.response = {{"error", RedactSecrets(e.what())}};
      finish("failed");
      throw;
    }
  }
  outcome.response = response.details;
  finish(response.outcome);
  return outcome;
}

}  // namespace safemig
