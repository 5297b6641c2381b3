#pragma once
/// @file os/spawn.hpp
/// Starting a new program image: clone(CLONE_VM | CLONE_VFORK) + execve, the fastest way
/// measured (bench/cli.sh, bench/process.sh): no page tables are copied, and the parent waits
/// only until the child has exec'd.
#include <csignal>
#include <span>

#include <sys/types.h>

#include "os/child_setup.hpp"

namespace procpool::os {

/// One descriptor for the child: dup2(from, to). from == to keeps the descriptor and clears its
/// FD_CLOEXEC (posix_spawn's convention), so a close-on-exec descriptor can be passed as is.
struct FdMap {
  int from = -1;
  int to = -1;
};

/// What to start and how. Everything is prepared by the caller: the child only makes system
/// calls on it (it shares the caller's memory until it execs).
struct SpawnRequest {
  const char* path = nullptr;      ///< the program (execve: no $PATH search)
  char* const* argv = nullptr;     ///< its argv, null-terminated
  char* const* envp = nullptr;     ///< its environment; nullptr: this process's `environ`
  /// Tried when `path` cannot be exec'd (the command runs a line through /bin/sh -c when the
  /// word is no program). nullptr: none.
  const char* fallback_path = nullptr;
  char* const* fallback_argv = nullptr;
  std::span<const FdMap> fds;      ///< applied in order, after `setup`
  int close_from = -1;             ///< >= 0: close every descriptor from this one up, after `fds`
  const char* working_dir = nullptr;  ///< chdir() there first; nullptr: stay
  ChildSetup setup;                ///< the child's first steps
  /// The signal mask the program starts with; nullptr: the calling thread's.
  const sigset_t* signal_mask = nullptr;
  /// Run in the child after `setup`, before `fds`; async-signal-safe code only (it runs on the
  /// caller's memory while the caller waits). Its writes reach the caller only through MAP_SHARED
  /// memory: a TSan build gives the child a copy of memory instead (see spawn.cpp).
  void (*in_child)(void* arg) noexcept = nullptr;
  void* in_child_arg = nullptr;
};

/// A started child.
struct Spawned {
  pid_t pid = -1;
  /// 0 when the program runs; otherwise why the last execve (or chdir, or a dup2) failed: the
  /// child has then already exited with 127 and must still be reaped by the caller.
  int exec_error = 0;
};

/// Starts `request` as a new process, a child of the calling thread (PR_SET_PDEATHSIG follows
/// that thread), with the calling thread's signal mask. Returns once the child has exec'd or
/// failed to. Throws std::system_error when no process could be made (clone). Thread-safe: each
/// call uses its own child stack; the calling thread is suspended meanwhile, other threads are not.
[[nodiscard]] Spawned spawn(const SpawnRequest& request);

} // namespace procpool::os
