#pragma once
// --limit CMD: GNU parallel's dynamic job limit, a command asked before each job start.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace procpool::cli {

/// What the --limit command's exit status says (GNU parallel's): 0 start a job, 2 kill the
/// youngest running job (and start none), anything else start none for now.
enum class LimitVerdict { Start, Wait, KillYoungest };
LimitVerdict limit_verdict(int exit_status);

class JobLimit {
 public:
  /// `spec`: a shell command, or one of GNU parallel's predefined limits, which procpool computes
  /// itself: `mem SIZE` (wait below SIZE of free, buffer and cache memory, kill the youngest below
  /// half of it), `load N` (wait while more than N other processes are runnable), `io N` (wait while
  /// a disk is busier than N%, over the last second). Throws UsageError for a bad SIZE or N.
  explicit JobLimit(const std::string& spec);
  /// Runs the command (/bin/sh -c, stdin /dev/null, SSHLOGIN=: as GNU parallel sets it) and waits
  /// for it, or computes the predefined limit.
  LimitVerdict check();

  /// `mem`: Cached + SwapCached + MemFree + Buffers of a /proc/meminfo text, in bytes.
  static std::optional<std::uint64_t> cached_and_free(const std::string& meminfo);
  /// `io`: each disk's milliseconds spent doing I/O (the 13th field of /proc/diskstats).
  static std::map<std::string, std::uint64_t> io_ticks(const std::string& diskstats);

 private:
  enum class Kind { Command, Mem, Load, Io };
  Kind kind_ = Kind::Command;
  std::string command_;
  double value_ = 0;
  std::map<std::string, std::uint64_t> last_ticks_;  // io: the previous sample
  std::chrono::steady_clock::time_point last_sample_{};
  std::optional<double> busiest_;  // io: the busiest disk's utilisation over the last interval, %
};

} // namespace procpool::cli
