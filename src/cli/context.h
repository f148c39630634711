// What every command shares: the global options, the console (text or JSON), and opening
// the target database. Only src/cli writes to stdout/stderr.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "config/config.h"
#include "config/url.h"
#include "core/migration.h"
#include "driver/driver.h"
#include "engine/reporter.h"

namespace safemig::cli {

struct GlobalOptions {
  std::string config_file;
  std::string env;
  std::string url;
  std::string dir;
  std::string lock_timeout;  // overrides the environment's lock_timeout when set
  int jobs = 0;              // parallel connections for backups/restores (0: one per core)
  std::string format = "text";  // text | json
  bool yes = false;
  bool quiet = false;
  int verbose = 0;

  bool json() const { return format == "json"; }
};

// Binds the global options to the top-level app.
void SetupGlobalOptions(CLI::App& app, GlobalOptions& options);

// Text goes to stdout unless quiet; warnings to stderr; JSON mode prints exactly one JSON
// document on stdout at the end of a command.
class Console {
 public:
  explicit Console(const GlobalOptions& options) : options_(options) {}
  bool json() const { return options_.json(); }
  bool verbose() const { return options_.verbose > 0; }
  const GlobalOptions& options() const { return options_; }
  void Line(const std::string& text) const;     // text mode, not quiet
  void Warning(const std::string& text) const;  // stderr, both modes (not quiet)
  void Json(const nlohmann::json& document) const;

 private:
  const GlobalOptions& options_;
};

// Renders engine events for a person (text) or swallows them (JSON: the result document
// carries the same facts).
std::unique_ptr<Reporter> MakeReporter(const Console& console);

struct Target {
  Resolved resolved;
  DatabaseUrl url;
  std::unique_ptr<Driver> driver;
};

Selection ToSelection(const GlobalOptions& options);

// Resolves config/environment/URL and connects. `create_if_missing`: see OpenOptions.
Target OpenTarget(const GlobalOptions& options, bool create_if_missing);

// The migrations in the resolved directory.
std::vector<Migration> LoadMigrations(const Resolved& resolved);

// Where migrations live when no database is named (validate without a URL, `new`):
// --dir, else the config file's `migrations`, else "migrations".
std::filesystem::path MigrationsDirWithoutDatabase(const GlobalOptions& options);

// True when the command line, the environment or a config file names a database.
bool NamesADatabase(const GlobalOptions& options);

// "postgres" | "mysql" | "sqlite" (as checked by the option) to a dialect.
Dialect ParseDialectName(const std::string& name);
// The SQL dialect an engine speaks.
Dialect DialectOf(Engine engine);

// "alice@host pid 123": how this run names itself to other runners and in history.
std::string RunnerName();

// Asks `question` on a terminal; non-interactive runs must pass --yes. Throws
// Error(kUsage) when not confirmed.
void Confirm(const GlobalOptions& options, const std::string& question);

// "1.4 GiB"
std::string Bytes(std::uint64_t bytes);

// The backup store of the resolved environment.
std::filesystem::path BackupDir(const Resolved& resolved);

}  // namespace safemig::cli
