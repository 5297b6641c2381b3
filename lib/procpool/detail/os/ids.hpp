#pragma once
/// @file detail/os/ids.hpp
/// The calling process's pid and thread's tid, cached. getpid() and gettid() are real system
/// calls in glibc >= 2.25, too slow for an uncontended lock (whose word holds the owner's id),
/// so both are cached here, once for the whole library; the one fork hook that resets the
/// caches in a child lives in lib/os/ids.cpp.
#include <atomic>

#include <sys/types.h>

namespace procpool::os {

namespace ids_detail {
inline std::atomic<pid_t> g_cached_pid{0};
inline thread_local pid_t t_cached_tid = 0;
/// Returns getpid() and caches it (and makes sure the fork hook is registered).
pid_t refresh_pid() noexcept;
/// Returns gettid() and caches it for this thread (and makes sure the fork hook is registered).
pid_t refresh_tid() noexcept;
} // namespace ids_detail

/// The calling process's pid (cached; right in a forked child too). Thread-safe.
[[nodiscard]] inline pid_t current_pid() noexcept {
  const pid_t pid = ids_detail::g_cached_pid.load(std::memory_order_relaxed);
  return pid != 0 ? pid : ids_detail::refresh_pid();
}

/// The calling thread's kernel tid (cached), unique across the processes of one pid
/// namespace. Thread-safe.
[[nodiscard]] inline pid_t current_tid() noexcept {
  const pid_t tid = ids_detail::t_cached_tid;
  return tid != 0 ? tid : ids_detail::refresh_tid();
}

/// Whether the calling thread is its process's main thread (tid == pid). Thread-safe.
[[nodiscard]] inline bool is_main_thread() noexcept { return current_tid() == current_pid(); }

} // namespace procpool::os
