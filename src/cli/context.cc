#include "cli/context.h"

#include <unistd.h>

#include <iostream>

#include <fmt/format.h>

#include "core/clock.h"
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
  app.add_option("--format", options.format, "output format")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("-y,--yes", options.yes, "answer yes to confirmations (non-interactive)");
  app.add_flag("-q,--quiet", options.quiet, "print only errors");
  app.add_flag("-v,--verbose", options.verbose, "print more detail");
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

class TextReporter : public Reporter {
 public:
  explicit TextReporter(const Console& console) : console_(console) {}

  void Note(std::string_view message) override { console_.Line(std::string(message)); }
  void Warning(std::string_view message) override { console_.Warning(std::string(message)); }

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
  return std::make_unique<TextReporter>(console);
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
  target.driver = OpenDriver(target.url, OpenOptions{create_if_missing});
  target.driver->SetTimeouts(target.resolved.environment.lock_timeout,
                             target.resolved.environment.statement_timeout);
  return target;
}

std::vector<Migration> LoadMigrations(const Resolved& resolved) {
  return DiscoverMigrations(resolved.migrations);
}

std::string RunnerName() {
  return fmt::format("{} pid {}", CurrentUserAtHost(), static_cast<long>(::getpid()));
}

}  // namespace safemig::cli
