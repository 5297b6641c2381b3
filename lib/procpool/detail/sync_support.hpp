#pragma once
/// @file detail/sync_support.hpp
/// Shared plumbing of the synchronisation primitives: Python's timeout rules, memory checks and
/// the std Lockable members. (The spawn hand-off of shared objects: detail/shared_handle.hpp.)
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "procpool/detail/os/deadline.hpp"
#include "procpool/detail/os/ids.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/errors.hpp"
#include "procpool/timeout.hpp"

namespace procpool {
namespace detail {

/// Throws ValueError, naming `what`, `bytes` and the memory available, when `bytes` of shared
/// or heap memory cannot fit in this machine's (or this cgroup's) available RAM plus swap:
/// committing them would only end with the OOM killer. Defined in sync.cpp. Thread-safe.
void check_memory_fits(std::size_t bytes, const char* what);

/// Reports (at warn level) that `dead_id` died holding a lock now held by the caller.
void log_owner_died(const char* what, pid_t dead_id) noexcept;

// ---------------------------------------------------------------------------------------
// Time: the convention of detail/os/deadline.hpp, with Python's argument checks.

/// Deadline of an acquire-style call. Negative or NaN timeouts are a ValueError, as in Python.
inline os::Deadline acquire_deadline(const Timeout& timeout) {
  if (!timeout) return std::nullopt;
  const double s = timeout->count();
  if (std::isnan(s) || s < 0) throw ValueError("procpool: timeout value must be a non-negative duration");
  return os::as_deadline(os::deadline_after(*timeout));
}

/// Deadline of a wait-style call (Event/Condition/Barrier): negative means "do not wait",
/// as Python's Condition.wait treats it.
inline os::Deadline wait_deadline(const Timeout& timeout) {
  if (!timeout) return std::nullopt;
  if (std::isnan(timeout->count())) throw ValueError("procpool: timeout must not be NaN");
  return os::as_deadline(os::deadline_after(*timeout));  // negative: now, i.e. do not wait
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
