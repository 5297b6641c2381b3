#pragma once
// --bar / --eta / --progress: one status line on stderr, redrawn in place a few times a second.
#include "options.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace procpool::cli {

struct ProgressCounts {
  std::uint64_t done = 0;     ///< finished jobs (succeeded + failed)
  std::uint64_t failed = 0;
  std::uint64_t running = 0;
  std::uint64_t skipped = 0;  ///< skipped by --resume
};

class Progress {
 public:
  using Clock = std::chrono::steady_clock;
  /// Active only when a style is chosen and stderr is a terminal (or forced).
  Progress(ProgressStyle style, bool force);
  [[nodiscard]] bool active() const { return style_ != ProgressStyle::None; }
  void set_total(std::optional<std::uint64_t> total) { total_ = total; }
  /// Redraws if the last draw is older than the refresh interval (or `force`).
  void update(const ProgressCounts& counts, bool force = false);
  /// Clears the line before other output reaches the terminal; the next update redraws it.
  void erase();
  /// Draws the final state and ends the line.
  void finish(const ProgressCounts& counts);
  /// The line for these counts, without terminal control codes (exposed for tests).
  [[nodiscard]] std::string render(const ProgressCounts& counts, unsigned width) const;

 private:
  ProgressStyle style_;
  std::optional<std::uint64_t> total_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_draw_{};
  bool drawn_ = false;
};

} // namespace procpool::cli
