#pragma once
/// @file os/child_setup.hpp
/// What every new child does first, just after fork() or clone() (and a fresh image just after
/// its exec): tie its life to its parent's, lead its own process group, reset signals.
#include <csignal>
#include <cstdint>

#include <sys/types.h>

namespace procpool::os {

/// The exit code of a child that finds its parent already gone (it died before the child could
/// arm PR_SET_PDEATHSIG): 128 + SIGKILL, what a shell reports for the SIGKILL that
/// PR_SET_PDEATHSIG would have sent had it been armed in time.
inline constexpr int kParentGoneExitCode = 128 + SIGKILL;

/// The bit of `sig` in ChildSetup::default_signals.
[[nodiscard]] constexpr std::uint64_t signal_bit(int sig) noexcept { return std::uint64_t{1} << (sig - 1); }

/// One child's first steps. A plain value, prepared by the parent before the fork: apply() only
/// makes system calls, so that it may run in a forked child of a threaded process or in a
/// CLONE_VM child.
struct ChildSetup {
  /// The parent this child belongs to: the child gets SIGKILL when the parent *thread* that
  /// started it ends (PR_SET_PDEATHSIG; start children from a long-lived thread), and exits at
  /// once with kParentGoneExitCode if getppid() is no longer `parent`. 0: not tied.
  pid_t parent = 0;
  /// Lead a new process group (setpgid(0, 0)), so that the parent can signal the whole group.
  bool new_process_group = false;
  /// Signals whose disposition goes back to SIG_DFL (signal_bit(SIGPIPE): the parent ignores
  /// SIGPIPE, the child's program must not inherit that).
  std::uint64_t default_signals = 0;
  /// Every signal that has a handler goes back to SIG_DFL, as exec would do. Needed before
  /// unblocking signals in a CLONE_VM child: a handler run there runs on the parent's memory.
  bool default_caught_signals = false;

  /// Applies the steps in the order above; may end the process (the parent is gone).
  /// Async-signal-safe. Thread-safe (it touches only the calling process).
  void apply() const noexcept;
};

} // namespace procpool::os
