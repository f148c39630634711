// safemig: builds the command line, runs one command, maps errors to exit codes.
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/context.h"
#include "config/url.h"
#include "core/error.h"
#include "core/interrupt.h"

namespace {

std::string CommandName(const CLI::App& app) {
  auto subcommands = app.get_subcommands();
  return subcommands.empty() ? std::string() : subcommands.front()->get_name();
}

int ReportError(const CLI::App& app, const safemig::cli::GlobalOptions& options,
                safemig::Category category, const std::string& message,
                const std::string& hint) {
  const int code = safemig::ExitCodeFor(category);
  std::string clean_message = safemig::RedactSecrets(message);
  std::string clean_hint = safemig::RedactSecrets(hint);
  std::cerr << "error: " << clean_message << '\n';
  if (!clean_hint.empty()) std::cerr << "hint: " << clean_hint << '\n';
  if (options.json()) {
    nlohmann::json document = {
        {"command", CommandName(app)},
        {"ok", false},
        {"error",
         {{"category", safemig::CategoryName(category)},
          {"exit_code", code},
          {"message", clean_message},
          {"hint", clean_hint}}}};
    std::cout << document.dump(2) << '\n';
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "safemig: database schema changes with an automatic backup, a rehearsal and paired "
      "down-migrations"};
  app.set_version_flag("--version", std::string("safemig ") + SAFEMIG_VERSION);
  app.require_subcommand(1);
  // Global options may come before or after the command name.
  app.fallthrough();
  safemig::InstallInterruptHandlers();
  safemig::cli::GlobalOptions options;
  int exit_code = 0;
  safemig::cli::SetupGlobalOptions(app, options);
  safemig::cli::SetupProjectCommands(app, options, exit_code);
  safemig::cli::SetupMigrateCommands(app, options, exit_code);
  safemig::cli::SetupDeployCommands(app, options, exit_code);
  safemig::cli::SetupBackupCommands(app, options);
  safemig::cli::SetupRecoverCommand(app, options);
  safemig::cli::SetupLintCommand(app, options, exit_code);
  safemig::cli::SetupAdoptCommands(app, options);
  safemig::cli::SetupCiCommand(app, options, exit_code);
  safemig::cli::SetupWatchCommand(app, options, exit_code);
  safemig::cli::SetupRollbackCommand(app, options, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0: let CLI11 print them.
    if (e.get_exit_code() == 0) return app.exit(e);
    // Anything else may echo an argument, and an argument may be a URL with a password.
    return ReportError(app, options, safemig::Category::kUsage, e.what(),
                       "run `safemig --help`, or `safemig COMMAND --help`");
  } catch (const safemig::Error& e) {
    return ReportError(app, options, e.category(), e.what(), e.hint());
  } catch (const std::exception& e) {
    return ReportError(app, options, safemig::Category::kInternal,
                       std::string("internal error: ") + e.what(),
                       "this is a bug in safemig; please report it with the command you ran");
  }
  return exit_code;
}
