// How the engine tells the outside world what it is doing.
//
// The engine never writes to stdout/stderr: it reports events here, and src/cli renders
// them as text, JSON or progress bars. All methods have empty defaults so a renderer
// overrides only what it shows. Called from the engine's thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace safemig {

struct PlannedStep;

class Reporter {
 public:
  virtual ~Reporter() = default;

  virtual void Note(std::string_view /*message*/) {}
  virtual void Warning(std::string_view /*message*/) {}

  virtual void StepStarted(const PlannedStep& /*step*/, std::size_t /*index*/,
                           std::size_t /*count*/) {}
  virtual void StepFinished(const PlannedStep& /*step*/, std::chrono::milliseconds /*took*/) {}
  virtual void StepFailed(const PlannedStep& /*step*/, std::string_view /*message*/) {}
  // A step of this run being undone because a later one failed (all-or-nothing).
  virtual void StepReverted(const PlannedStep& /*step*/, std::chrono::milliseconds /*took*/) {}

  // Long work (backups, restores): `total` is 0 when unknown.
  virtual void Progress(std::string_view /*task*/, std::uint64_t /*done*/,
                        std::uint64_t /*total*/) {}
};

}  // namespace safemig
