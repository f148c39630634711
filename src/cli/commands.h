// Registration of the command families. Each Setup* binds a subcommand's options and a
// callback that calls engine code and renders its result; nothing more.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/context.h"
#include "engine/deploy.h"
#include "engine/rollback.h"

namespace safemig::cli {

// `init`, `new`.
void SetupProjectCommands(CLI::App& app, GlobalOptions& options, int& exit_code);
// `backup create|list|show|verify|prune`, `restore`.
void SetupBackupCommands(CLI::App& app, GlobalOptions& options);
// `status`, `up`, `down`, `validate`, `history`.
void SetupMigrateCommands(CLI::App& app, GlobalOptions& options, int& exit_code);
// `deploy`, `rehearse`, `plan`.
void SetupDeployCommands(CLI::App& app, GlobalOptions& options, int& exit_code);

// The options of a watch, as typed (durations parsed when the watch starts). `watch` binds
// them as --for, --every, ...; `deploy`/`up` as --watch-for, --watch-every, ... after
// --watch (docs/watch.md).
struct WatchOptions {
  bool enabled = false;  // deploy/up --watch
  std::string duration;  // --for
  std::string every;
  std::string check_timeout;
  std::string rollback_deadline;
  int failures = 0;  // 0: not given
  bool auto_rollback = false;
  bool no_auto_rollback = false;
  bool no_config_checks = false;  // watch only
  std::vector<std::string> checks;
  std::vector<std::string> check_cmds;
};
// `watch`.
void SetupWatchCommand(CLI::App& app, GlobalOptions& options, int& exit_code);
// Binds the watch options on `deploy`/`up`: --watch and its --watch-* options.
void AddDeployWatchOptions(CLI::App& command, WatchOptions& watch);
// The watch after a deploy that applied migrations (run id `deploy_id`) on `target`: adds
// "watch" to `document` (the deploy's JSON, printed by the caller) and sets exit_code to
// 7 when the checks failed.
void WatchAfterDeploy(const GlobalOptions& options, const WatchOptions& watch, Target& target,
                      const std::string& deploy_id, nlohmann::json& document, int& exit_code);

// The options of the deploy pipeline, shared by `deploy` and `up`.
struct DeployFlags {
  std::string to;
  int steps = 0;
  bool skip_backup = false;
  std::string outside_window;  // --outside-window REASON
  std::string from_backup;     // rehearse --from-backup ID
  bool keep = false;           // rehearse --keep
  std::string report;          // --report FILE.html: the go/no-go page
  std::string summary;         // --summary FILE.md: the same in Markdown
  WatchOptions watch;          // --watch: watch the health checks afterwards
};
void AddDeployOptions(CLI::App& command, DeployFlags& flags);
// Runs the pipeline as `command` ("deploy" or "up"); a no-go sets exit_code to 5.
void RunDeploy(const GlobalOptions& options, const DeployFlags& flags, const std::string& command,
               int& exit_code);
// A no-go whose document or summary was printed: the reason and the way forward go to
// stderr, and exit_code becomes 5.
void Refuse(const DeployReport& report, int& exit_code);
void Refuse(const Error& refusal, int& exit_code);
// Asks a person at a terminal to type the database name before changing a protected
// environment; empty (no way to ask) when stdin is not a terminal or in JSON mode.
std::function<bool(const std::string&)> ApprovalPrompt(const GlobalOptions& options,
                                                       const std::string& environment);
// `recover`.
void SetupRecoverCommand(CLI::App& app, GlobalOptions& options);
// `lint`.
void SetupLintCommand(CLI::App& app, GlobalOptions& options, int& exit_code);
// The linter as the deploy pipeline calls it: the pending migrations of `files`, with the
// config's [lint] ignore list.
LintHook MakeLintHook(const Resolved& resolved, const std::vector<Migration>& files);
// `ci`.
void SetupCiCommand(CLI::App& app, GlobalOptions& options, int& exit_code);
// `adopt`, `baseline`.
void SetupAdoptCommands(CLI::App& app, GlobalOptions& options);
// `rollback`.
void SetupRollbackCommand(CLI::App& app, GlobalOptions& options, int& exit_code);
// A rollback of `target` with what every caller sets the same way: environment, URL, the
// migration files still there (none is fine), jobs and who runs it.
RollbackRequest RollbackRequestFor(const GlobalOptions& options, const Target& target);
// The rollback plan for a person: both ways back side by side, the choice and why.
void PrintRollbackPlan(const Console& console, const RollbackPlan& plan);

}  // namespace safemig::cli
