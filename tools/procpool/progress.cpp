#include "progress.hpp"

#include "os/fd.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <sys/ioctl.h>
#include <unistd.h>

namespace procpool::cli {
namespace {

constexpr auto kRefreshInterval = std::chrono::milliseconds(200);

unsigned terminal_width() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

std::string format_duration(double seconds) {
  const auto s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

void write_stderr(const std::string& s) {
  (void)os::write_all(STDERR_FILENO, s, os::WhenFull::Stop);  // a progress line is not worth blocking or failing for
}

} // namespace

Progress::Progress(ProgressStyle style, bool force) : style_(style) {
  if (!force && ::isatty(STDERR_FILENO) == 0) style_ = ProgressStyle::None;
}

std::string Progress::render(const ProgressCounts& c, unsigned width) const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double per_job = c.done > 0 ? elapsed / static_cast<double>(c.done) : 0;
  std::optional<std::uint64_t> left;
  if (total_) left = *total_ > c.done + c.skipped ? *total_ - c.done - c.skipped : 0;
  const std::string eta = (left && c.done > 0) ? format_duration(per_job * static_cast<double>(*left)) : "?";
  const std::string counts = fmt::format("{} done, {} failed, {} running", c.done, c.failed, c.running);
  switch (style_) {
    case ProgressStyle::Bar: {
      std::string tail;
      double fraction = 0;
      if (total_ && *total_ > 0) {
        fraction = std::min(1.0, static_cast<double>(c.done + c.skipped) / static_cast<double>(*total_));
        tail = fmt::format(" {:3.0f}% {}/{} | {} | ETA {}", fraction * 100, c.done + c.skipped, *total_, counts, eta);
      } else {
        tail = fmt::format(" {} | {}", counts, format_duration(elapsed));
      }
      const unsigned bar_width = width > tail.size() + 12 ? std::min<unsigned>(40, width - static_cast<unsigned>(tail.size()) - 2) : 10;
      const auto filled = static_cast<unsigned>(fraction * bar_width);
      std::string bar = "[" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "]";
      if (!total_) bar = "[" + std::string(bar_width, '?') + "]";
      return bar + tail;
    }
    case ProgressStyle::Eta:
      return fmt::format("ETA: {} Left: {} AVG: {:.2f}s  {}", eta, left ? std::to_string(*left) : "?", per_job, counts);
    case ProgressStyle::Progress:
      return fmt::format("local: {}/{}/{:.2f}s  {}, elapsed {}", c.running, c.done, per_job, counts,
                         format_duration(elapsed));
    case ProgressStyle::None: break;
  }
  return {};
}

void Progress::update(const ProgressCounts& counts, bool force) {
  if (!active()) return;
  const auto now = Clock::now();
  if (!force && now - last_draw_ < kRefreshInterval) return;
  last_draw_ = now;
  drawn_ = true;
  const unsigned width = terminal_width();
  std::string line = render(counts, width);
  if (line.size() >= width) line.resize(width - 1);
  write_stderr("\r" + line + "\x1b[K");
}

void Progress::erase() {
  if (!active() || !drawn_) return;
  write_stderr("\r\x1b[K");
  drawn_ = false;
}

void Progress::finish(const ProgressCounts& counts) {
  if (!active()) return;
  update(counts, true);
  write_stderr("\n");
}

} // namespace procpool::cli
