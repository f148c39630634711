// Registration of the command families. Each Setup* binds a subcommand's options and a
// callback that calls engine code and renders its result; nothing more.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/context.h"

namespace safemig::cli {

// `init`, `new`.
void SetupProjectCommands(CLI::App& app, GlobalOptions& options, int& exit_code);
// `backup create|list|show|verify|prune`, `restore`.
void SetupBackupCommands(CLI::App& app, GlobalOptions& options);
// `status`, `up`, `down`, `validate`, `history`.
void SetupMigrateCommands(CLI::App& app, GlobalOptions& options, int& exit_code);
// `recover`.
void SetupRecoverCommand(CLI::App& app, GlobalOptions& options);

}  // namespace safemig::cli
// `lint`.
void SetupLintCommand(CLI::App& app, GlobalOptions& options, int& exit_code);
