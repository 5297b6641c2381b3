#pragma once
/// @file os/liveness.hpp
/// Whether a process or a thread has ended: how a waiter on a robust lock tells that the lock's
/// owner died.
#include <sys/types.h>

namespace procpool::os {

/// Whether process `pid` has ended. A zombie (ended, not yet reaped) counts as ended, since its
/// parent may be the very caller; a process whose main thread exited while others still run
/// has not. Uses a pidfd (readable once the process has exited), /proc on kernels without
/// pidfd_open. False when unsure. A few µs; thread-safe.
[[nodiscard]] bool process_ended(pid_t pid) noexcept;

/// A pidfd for process `pid` (close-on-exec, readable once it has exited), or -1 with errno set
/// (ESRCH: gone; ENOSYS: a kernel before 5.3). Thread-safe.
[[nodiscard]] int pidfd_open(pid_t pid) noexcept;

/// Whether thread `tid` (of any process in this pid namespace) has ended, a zombie included.
/// False when unsure. A few µs (kill(tid, 0), then /proc); thread-safe.
[[nodiscard]] bool thread_ended(pid_t tid) noexcept;

} // namespace procpool::os
