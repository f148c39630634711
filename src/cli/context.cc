#include "cli/context.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/discovery.h"
#include "engine/migrator.h"

namespace safemig::cli {

void SetupGlobalOptions(CLI::App& app, GlobalOptions& options) {
  app.add_option("--config", options.config_file,
                 "config file (default: ./safemig.toml if present)");
  app.add_option("-e,--env", options.env, "environment from the config file");
  app.add_option("--url", options.url,
                 "database URL (overrides config and SAFEMIG_DATABASE_URL); "
                 "sqlite:PATH, postgres://..., mysql://...");
  app.add_option("--dir", options.dir, "migrations directory (overrides config)");
  app.add_option("--lock-timeout", options.lock_timeout,
                 "how long to wait for another runner's lock, e.g. 30s (default 10s)");
  app.add_option("-j,--jobs", options.jobs,
                 "parallel connections for backups and restores of server databases "
                 "(default: one per core)")
      ->check(CLI::Range(0, 64));
  app.add_option("--format", options.format, "output format")
      ->check(CLI::IsMember({"text", "json", "github"}));
  app.add_flag("-y,--yes", options.yes, "answer yes to confirmations (non-interactive)");
  app.add_flag("-q,--quiet", options.quiet, "print only errors");
  app.add_flag("-v,--verbose", options.verbose, "print more detail");
}

std::string Bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[unit]);
}

void Confirm(const GlobalOptions& options, const std::string& question) {
  if (options.yes) return;
  if (!::isatty(STDIN_FILENO)) {
    throw Error(Category::kUsage, question + ": refusing without confirmation",
                "pass --yes to confirm in a non-interactive run");
  }
  std::cerr << question << "? Type yes to continue: " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != "yes") throw Error(Category::kUsage, "not confirmed; nothing was changed");
}

std::filesystem::path BackupDir(const Resolved& resolved) {
  return resolved.environment.backups;
}

void Console::Line(const std::string& text) const {
  if (json() || options_.quiet) return;
  std::cout << RedactSecrets(text) << '\n';
}

void Console::Warning(const std::string& text) const {
  if (options_.quiet) return;
  std::cerr << "warning: " << RedactSecrets(text) << '\n';
}

void Console::Json(const nlohmann::json& document) const {
  std::cout << RedactSecrets(document.dump(2)) << '\n';
}

namespace {

// A one-line bar on stderr (bytes, rate, ETA), redrawn at most ten times a second. Drawn
// only when stderr is a terminal, not in JSON mode and not under CI.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  ~ProgressBar() { Clear(); }

  void Update(std::string_view task, std::uint64_t done, std::uint64_t total) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (task != task_) {
      Clear();
      task_ = std::string(task);
      started_ = now;
    }
    if (done < total && now - drawn_ < std::chrono::milliseconds(100)) return;
    drawn_ = now;
    double seconds = std::chrono::duration<double>(now - started_).count();
    double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    std::string line;
    if (total > 0) {
      int filled = static_cast<int>(30.0 * static_cast<double>(done) / static_cast<double>(total));
      filled = std::clamp(filled, 0, 30);
      std::string eta = rate > 0 && done < total
                            ? fmt::format(" ETA {:.0f} s", static_cast<double>(total - done) / rate)
                            : "";
      line = fmt::format("  {:<8}[{}{}] {:3.0f}%  {} / {}  {}/s{}", task_, std::string(filled, '#'),
                         std::string(30 - filled, '.'),
                         100.0 * static_cast<double>(done) / static_cast<double>(total),
                         Bytes(done), Bytes(total), Bytes(static_cast<std::uint64_t>(rate)), eta);
    } else {
      line = fmt::format("  {:<8}{}  {}/s", task_, Bytes(done),
                         Bytes(static_cast<std::uint64_t>(rate)));
    }
    std::cerr << "\r\033[K" << line << std::flush;
    visible_ = true;
  }

  void Clear() {
    if (visible_) std::cerr << "\r\033[K" << std::flush;
    visible_ = false;
  }

 private:
  bool enabled_;
  bool visible_ = false;
  std::string task_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point drawn_;
};

bool WantProgressBar(const GlobalOptions& options) {
  const char* ci = std::getenv("CI");
  bool under_ci = ci != nullptr && std::string(ci) != "" && std::string(ci) != "false";
  return !options.json() && !options.quiet && !under_ci && ::isatty(STDERR_FILENO);
}

class TextReporter : public Reporter {
 public:
  TextReporter(const Console& console, bool progress_bar)
      : console_(console), bar_(progress_bar) {}

  void Progress(std::string_view task, std::uint64_t done, std::uint64_t total) override {
    bar_.Update(task, done, total);
  }

  void Note(std::string_view message) override {
    bar_.Clear();
    console_.Line(std::string(message));
  }
  void Warning(std::string_view message) override {
    bar_.Clear();
    console_.Warning(std::string(message));
  }

  void StepStarted(const PlannedStep& step, std::size_t index, std::size_t count) override {
    index_ = index;
    count_ = count;
    (void)step;
  }
  void StepFinished(const PlannedStep& step, std::chrono::milliseconds took) override {
    console_.Line(fmt::format("  [{}/{}] {} {}_{} ({})", index_ + 1, count_, Arrow(step),
                              step.version, step.name, FormatDuration(took)));
  }
  void StepFailed(const PlannedStep& step, std::string_view message) override {
    console_.Line(fmt::format("  [{}/{}] {} {}_{} FAILED: {}", index_ + 1, count_, Arrow(step),
                              step.version, step.name, message));
  }
  void StepReverted(const PlannedStep& step, std::chrono::milliseconds took) override {
    console_.Line(fmt::format("        reverted {}_{} ({})", step.version, step.name,
                              FormatDuration(took)));
  }

 private:
  static const char* Arrow(const PlannedStep& step) {
    return step.direction == Direction::kUp ? "up  " : "down";
  }
  const Console& console_;
  ProgressBar bar_;
  std::size_t index_ = 0;
  std::size_t count_ = 0;
};

class JsonReporter : public Reporter {
 public:
  explicit JsonReporter(const Console& console) : console_(console) {}
  void Warning(std::string_view message) override { console_.Warning(std::string(message)); }

 private:
  const Console& console_;
};

}  // namespace

std::unique_ptr<Reporter> MakeReporter(const Console& console) {
  if (console.json()) return std::make_unique<JsonReporter>(console);
  return std::make_unique<TextReporter>(console, WantProgressBar(console.options()));
}

Selection ToSelection(const GlobalOptions& options) {
  Selection selection;
  if (!options.config_file.empty()) selection.config_file = options.config_file;
  if (!options.env.empty()) selection.env = options.env;
  if (!options.url.empty()) selection.url = options.url;
  if (!options.dir.empty()) selection.dir = options.dir;
  return selection;
}

Target OpenTarget(const GlobalOptions& options, bool create_if_missing) {
  Target target;
  target.resolved = Resolve(ToSelection(options));
  if (!options.lock_timeout.empty()) {
    target.resolved.environment.lock_timeout = ParseDuration(options.lock_timeout, "--lock-timeout");
  }
  target.url = ParseDatabaseUrl(target.resolved.environment.url);
  target.driver = OpenDriver(target.url, OpenOptions{create_if_missing, options.jobs});
  target.driver->SetTimeouts(target.resolved.environment.lock_timeout,
                             target.resolved.environment.statement_timeout);
  return target;
}

std::vector<Migration> LoadMigrations(const Resolved& resolved) {
  return DiscoverMigrations(resolved.migrations);
}

std::filesystem::path MigrationsDirWithoutDatabase(const GlobalOptions& options) {
  if (!options.dir.empty()) return options.dir;
  std::filesystem::path file = options.config_file.empty() ? "safemig.toml" : options.config_file;
  if (std::filesystem::exists(file)) return LoadConfig(file).migrations;
  return "migrations";
}

bool NamesADatabase(const GlobalOptions& options) {
  const char* env_url = std::getenv("SAFEMIG_DATABASE_URL");
  return !options.url.empty() || (env_url != nullptr && *env_url != '\0') ||
         !options.config_file.empty() || std::filesystem::exists("safemig.toml");
}

Dialect ParseDialectName(const std::string& name) {
  if (name == "postgres") return Dialect::kPostgres;
  if (name == "mysql") return Dialect::kMySql;
  return Dialect::kSqlite;
}

Dialect DialectOf(Engine engine) {
  switch (engine) {
    case Engine::kPostgres: return Dialect::kPostgres;
    case Engine::kMySql: return Dialect::kMySql;
    default: return Dialect::kSqlite;
  }
}

std::string RunnerName() {
  return fmt::format("{} pid {}", CurrentUserAtHost(), static_cast<long>(::getpid()));
}

}  // namespace safemig::cli
