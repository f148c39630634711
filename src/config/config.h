// safemig.toml: environments, their databases and policies.
//
//   migrations = "db/migrations"         # default "migrations"
//   default_environment = "dev"          # optional
//   [environments.staging]
//   url = "postgres://app:${STAGING_DB_PASSWORD}@db-staging/app"
//   backups = "/var/backups/safemig/staging"   # default .safemig/backups/<env>
//   protected = false
//   lock_timeout = "10s"
//   window = "Mon-Fri 02:00-05:00 UTC"          # deploys only inside it
//   promote_from = "staging"                    # same migrations applied there first
//   max_duration = "15m"                        # apply deadline: past it, roll back
//   rehearsal_url = "postgres://ci@db-scratch/postgres"   # server for the staging copy
//   rehearsal_max_age = "24h"                   # how long a passing rehearsal counts
//   [environments.staging.watch]                # health checks after a deploy
//   checks = ["orders_ok: SELECT count(*) > 0 FROM orders"]
//   check_cmds = ["curl -fsS https://staging.example.com/health"]
//   every = "30s"; for = "30m"; failures = 3; auto_rollback = true
//
// ${VAR} is expanded from the process environment in every string value (an unset
// variable is an error; a set but empty one expands to ""; "$${" is a literal "${";
// "$$${X}" is "$" then X's value; "$VAR" and other '$' are left alone; values are not
// rescanned). Loading is pure apart from reading the file and the environment;
// thread-compatible.
//
// Strictness: top-level scalars other than migrations and default_environment are errors
// (a misspelt setting must not fall back silently to a default); unknown top-level
// tables such as [lint] are ignored so that files written for later versions load,
// except names close to "environments". Keys inside an environment are never rejected.
// Environment names are letters, digits, '-' and '_' (they name backup directories).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/duration.h"

namespace safemig {

// When deploys may run: days of the week and a time span in UTC, as written in
// `window = "Mon-Fri 02:00-05:00 UTC"`. A span whose end is before its start crosses
// midnight and belongs to the day it starts on ("Sat 22:00-02:00 UTC" is Saturday night).
struct DeployWindow {
  std::string text;       // as written, for messages
  unsigned days = 0;      // bit 0 = Monday ... bit 6 = Sunday
  int start_minute = 0;   // minutes after 00:00 UTC
  int end_minute = 0;     // exclusive

  bool Contains(std::chrono::system_clock::time_point when) const;
};

// Parses "Mon-Fri 02:00-05:00 UTC", "Sat,Sun 00:00-06:00 UTC", "Mon-Sun 22:00-02:00 UTC".
// Days are Mon..Sun, single or ranges, separated by commas; times are HH:MM; the zone must
// be UTC. Throws Error(kConfig) naming `where` on anything else: a window that silently
// parsed as something else would let a deploy through at the wrong hour.
DeployWindow ParseDeployWindow(std::string_view text, std::string_view where);

// [environments.NAME.watch]: the health checks `watch` and `deploy --watch` run, and how
// (docs/watch.md). Every value is optional; the command line adds checks and overrides
// the rest.
struct WatchConfig {
  std::vector<std::string> checks;      // SQL; a "NAME: " prefix names the check
  std::vector<std::string> check_cmds;  // shell commands, same naming
  std::optional<std::chrono::milliseconds> every;
  std::optional<std::chrono::milliseconds> duration;  // `for`
  std::optional<int> failures;                        // >= 1
  std::optional<bool> auto_rollback;
  std::optional<std::chrono::milliseconds> check_timeout;
  std::optional<std::chrono::milliseconds> rollback_deadline;
};

struct Environment {
  std::string name;
  std::string url;  // after ${VAR} expansion; may contain a password: never print raw
  std::filesystem::path backups;  // resolved; default <config dir>/.safemig/backups/<name>
  bool is_protected = false;
  std::optional<std::string> migrations;  // per-environment override of the directory
  std::chrono::milliseconds lock_timeout{std::chrono::seconds(10)};
  std::optional<std::chrono::milliseconds> statement_timeout;
  // Deploy policies (docs/deploy.md).
  std::optional<DeployWindow> window;
  std::optional<std::string> promote_from;  // an environment defined in the same file
  std::optional<std::chrono::milliseconds> max_duration;
  std::optional<std::string> rehearsal_url;  // after expansion; may hold a password
  std::chrono::milliseconds rehearsal_max_age{std::chrono::hours(24)};
  WatchConfig watch;
  // Every key of the [environments.NAME] table, after expansion, for the policies of
  // later features (window, promote_from, ...). Unknown keys are kept, not rejected.
  // Strings are stored as their (expanded) text, booleans as "true"/"false", anything
  // else (numbers, arrays, inline or sub-tables) as TOML text printed by toml++.
  std::map<std::string, std::string> raw;
};

struct Config {
  std::optional<std::filesystem::path> file;  // where it was loaded from, if anywhere
  std::filesystem::path migrations = "migrations";
  std::optional<std::string> default_environment;
  std::map<std::string, Environment> environments;
  std::set<std::string> lint_ignore;  // [lint] ignore: rule ids silenced everywhere
};

// Expands ${VAR} from the process environment. Throws Error(kConfig) naming the variable
// and `where` when it is unset.
std::string ExpandEnvironment(std::string_view text, std::string_view where);

// Loads and validates a config file. Relative paths in it (migrations, backups and their
// defaults) are resolved against the file's directory by joining it lexically, so they
// stay relative when `file` is relative (and are then relative to the working directory
// of the caller). Throws Error(kConfig), starting "FILE:LINE:" with FILE as given, on a
// TOML syntax error (also ":COLUMN"), a wrong type, a bad duration, an unset ${VAR}, an
// environment without a url, an unknown top-level setting, or a default_environment that
// is not defined. Does not validate URLs (Resolve() does, for the chosen one).
Config LoadConfig(const std::filesystem::path& file);

// What the command line says about where to run.
struct Selection {
  std::optional<std::filesystem::path> config_file;  // --config; else ./safemig.toml if present
  std::optional<std::string> env;                    // -e/--env
  std::optional<std::string> url;                    // --url (beats SAFEMIG_DATABASE_URL)
  std::optional<std::filesystem::path> dir;          // --dir
};

struct Resolved {
  Config config;
  Environment environment;          // the chosen one; url already overridden
  std::filesystem::path migrations; // the directory to read migrations from
};

// Chooses the environment: --env, else default_environment, else the only one, else
// "default" (when --url/SAFEMIG_DATABASE_URL is given or an environment of that name
// exists). The URL comes from --url, else SAFEMIG_DATABASE_URL (ignored when empty),
// else the environment. Without a config file --url alone works (environment "default",
// or the --env label; backups under ./.safemig/backups/<env>). The migrations directory
// is --dir, else the environment's, else the config's, else "migrations". The chosen URL
// is checked with ParseDatabaseUrl, and its error is prefixed with where the URL came
// from. Throws Error(kConfig/kUsage) with a one-line reason: unknown --env (listing the
// known ones; even with --url, to catch typos), several environments and no way to
// choose, no URL anywhere (kUsage), an explicit --config that does not exist (kUsage).
// Unlike LoadConfig, an unset ${VAR} only fails when it belongs to the chosen environment
// (and is not its url overridden by --url or SAFEMIG_DATABASE_URL): CI jobs for one
// environment rarely hold another's secrets. Values of other environments that use an
// unset variable keep their text as written in Resolved::config.
Resolved Resolve(const Selection& selection);

}  // namespace safemig
