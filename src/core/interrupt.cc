#include "core/interrupt.h"

#include <csignal>
#include <cstring>

#include <atomic>
#include <string>

#include "core/error.h"

namespace safemig {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void OnInterrupt(int signal_number) {
  if (g_interrupted.exchange(true)) {
    // Second signal: the person means it. Restore the default action and re-raise.
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
  }
}

}  // namespace

void InstallInterruptHandlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool InterruptRequested() { return g_interrupted.load(); }

void ThrowIfInterrupted(std::string_view what) {
  if (InterruptRequested()) {
    throw Error(Category::kMigrationFailed, "interrupted while " + std::string(what),
                "nothing half-done was kept; run the command again when ready");
  }
}

void SetInterruptedForTesting(bool interrupted) { g_interrupted = interrupted; }

}  // namespace safemig
