#pragma once
/// @file detail/sync_support.hpp
/// Shared plumbing of the synchronisation primitives: timeouts, cached process/thread ids,
/// owner liveness, spinning. (The spawn hand-off of shared objects: detail/shared_handle.hpp.)
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "procpool/detail/deadline.hpp"
#include "procpool/detail/futex.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/errors.hpp"
#include "procpool/timeout.hpp"

namespace procpool {
namespace detail {

// ---------------------------------------------------------------------------------------
// Ids. getpid()/gettid() are real syscalls in glibc >= 2.25, too slow for an uncontended
// lock, so both are cached; a pthread_atfork child handler resets the caches.
inline std::atomic<pid_t> g_cached_pid{0};
inline thread_local pid_t t_cached_tid = 0;

/// Registers the atfork reset once and returns getpid(). Defined in sync.cpp.
pid_t refresh_cached_pid() noexcept;
/// Registers the atfork reset once and returns gettid(). Defined in sync.cpp.
pid_t refresh_cached_tid() noexcept;

/// The calling process's pid (cached). Thread-safe.
inline pid_t current_pid() noexcept {
  const pid_t pid = g_cached_pid.load(std::memory_order_relaxed);
  return pid != 0 ? pid : refresh_cached_pid();
}

/// The calling thread's kernel tid (cached), unique across processes of one pid namespace.
inline pid_t current_tid() noexcept {
  const pid_t tid = t_cached_tid;
  return tid != 0 ? tid : refresh_cached_tid();
}

/// Who owns a lock word and therefore how its death is detected.
enum class OwnerScope : std::uint8_t {
  None,     ///< never checked (thread-backend Lock: its owner is this very process)
  Process,  ///< the id is a pid: dead once the process has exited (zombies count as dead)
  Thread,   ///< the id is a tid: dead once that thread has exited
};

/// Whether the process or thread `id` still runs. Reads /proc/<id>/stat (a few µs), so it is
/// only called when a waiter's sleep slice expires. Defined in sync.cpp. Thread-safe.
bool owner_alive(pid_t id, OwnerScope scope) noexcept;

/// Throws ValueError, naming `what`, `bytes` and the memory available, when `bytes` of shared
/// or heap memory cannot fit in this machine's (or this cgroup's) available RAM plus swap:
/// committing them would only end with the OOM killer. Defined in sync.cpp. Thread-safe.
void check_memory_fits(std::size_t bytes, const char* what);

/// Reports (at warn level) that `dead_id` died holding a lock now held by the caller.
void log_owner_died(const char* what, pid_t dead_id) noexcept;

// ---------------------------------------------------------------------------------------
// Time.

using Clock = futex::Clock;
using Deadline = futex::Deadline;

/// Longest timeout taken literally: beyond this (31 years) a timeout means "forever", which
/// also keeps the nanosecond arithmetic from overflowing.
inline constexpr double kForeverSeconds = 1e9;

/// Deadline of an acquire-style call. Negative or NaN timeouts are a ValueError, as in Python.
inline Deadline acquire_deadline(const Timeout& timeout) {
  if (!timeout) return std::nullopt;
  const double s = timeout->count();
  if (std::isnan(s) || s < 0) throw ValueError("procpool: timeout value must be a non-negative duration");
  if (s >= kForeverSeconds) return std::nullopt;
  return detail::deadline_after(*timeout);
}

/// Deadline of a wait-style call (Event/Condition/Barrier): negative means "do not wait",
/// as Python's Condition.wait treats it.
inline Deadline wait_deadline(const Timeout& timeout) {
  if (!timeout) return std::nullopt;
  const double s = timeout->count();
  if (std::isnan(s)) throw ValueError("procpool: timeout must not be NaN");
  if (s >= kForeverSeconds) return std::nullopt;
  if (s <= 0) return Clock::now();
  return detail::deadline_after(*timeout);
}

/// Python's argument checks of acquire(). A timeout without blocking: threading's locks and
/// semaphores (the thread backend) raise ValueError; multiprocessing's (the process backend)
/// ignore the timeout. A negative timeout is a ValueError on both.
inline void check_acquire_args(bool blocking, const Timeout& timeout, bool interprocess) {
  if (!timeout) return;
  if (!blocking) {
    if (interprocess) return;
    throw ValueError("procpool: can't specify a timeout for a non-blocking call");
  }
  if (std::isnan(timeout->count()) || timeout->count() < 0)
    throw ValueError("procpool: timeout value must be a non-negative duration");
}

inline bool expired(const Deadline& deadline) noexcept { return deadline && Clock::now() >= *deadline; }

/// Spin iterations before sleeping on a futex when nothing adaptive applies (semaphores, events).
inline constexpr int kShortSpin = 64;

/// The std Lockable / TimedLockable members (lock, unlock, try_lock, try_lock_for,
/// try_lock_until), for std::lock_guard, std::unique_lock and std::scoped_lock, in terms of
/// Derived's Python-style acquire(blocking, timeout) and release(). Thread-safe as those are.
template <class Derived>
class StdLockable {
public:
  void lock() { self().acquire(); }
  void unlock() { self().release(); }
  [[nodiscard]] bool try_lock() { return self().acquire(false); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return self().acquire(true, std::chrono::duration<double>(d < d.zero() ? d.zero() : d));
  }
  template <class C, class D>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<C, D>& t) {
    const auto now = C::now();
    // Compared first: t - now overflows for a time_point far in the past.
    if (t <= now) return try_lock_for(std::chrono::duration<double>::zero());
    return try_lock_for(t - now);
  }

private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

} // namespace detail
} // namespace procpool
