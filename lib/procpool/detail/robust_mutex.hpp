#pragma once
/// @file detail/robust_mutex.hpp
/// The sync primitives' side of the one robust lock (detail/os/robust_lock.hpp): acquiring it
/// with Python's timeout rules and a warning when a dead owner's lock is taken over, and the
/// re-entrant form under RLock, Condition, Value and Array.
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "procpool/detail/os/deadline.hpp"
#include "procpool/detail/os/ids.hpp"
#include "procpool/detail/os/robust_lock.hpp"
#include "procpool/detail/sync_support.hpp"

namespace procpool::detail {

/// os::robust_lock_slow(), and a warning naming the dead owner when it took the lock over.
/// Defined in sync.cpp. Thread-safe and process-safe.
os::AcquireResult robust_acquire_slow(os::RobustLockState& st, std::uint32_t self, os::OwnerScope scope, bool shared,
                                   bool blocking, const os::Deadline& deadline) noexcept;

/// Acquires `st` for `self` (see os::robust_lock). Thread-safe and process-safe.
inline os::AcquireResult robust_acquire(os::RobustLockState& st, std::uint32_t self, os::OwnerScope scope, bool shared,
                                     bool blocking, const os::Deadline& deadline) noexcept {
  std::uint32_t expected = 0;
  if (st.word.compare_exchange_strong(expected, self, std::memory_order_acquire, std::memory_order_relaxed))
    return os::AcquireResult::Acquired;
  return robust_acquire_slow(st, self, scope, shared, blocking, deadline);
}

/// A re-entrant robust mutex: RLock, and the lock of Condition, Value and Array.
/// The owner is a tid, so ownership checks work across threads and processes alike.
struct RLockState {
  os::RobustLockState mutex;
  std::uint32_t count = 0;  ///< recursion depth; only the owner touches it
};
static_assert(std::is_trivially_destructible_v<RLockState>);

/// Acquires `st` for the calling thread, re-entrantly. Returns false only on timeout or a
/// failed non-blocking attempt. Thread-safe and process-safe.
inline bool rlock_acquire(RLockState& st, bool shared, bool blocking, const Timeout& timeout) {
  check_acquire_args(blocking, timeout, shared);
  const auto self = static_cast<std::uint32_t>(os::current_tid());
  if (os::robust_owner(st.mutex) == self) {
    ++st.count;
    return true;
  }
  if (robust_acquire(st.mutex, self, os::OwnerScope::Thread, shared, blocking,
                  blocking ? acquire_deadline(timeout) : std::nullopt) == os::AcquireResult::Failed)
    return false;
  st.count = 1;
  return true;
}

/// Whether the calling thread holds `st`. Thread-safe.
inline bool rlock_is_owned(const RLockState& st) noexcept {
  return os::robust_owner(st.mutex) == static_cast<std::uint32_t>(os::current_tid());
}

/// Releases one level of `st`; the calling thread must own it (Python: RuntimeError).
inline void rlock_release(RLockState& st, bool shared) {
  if (!rlock_is_owned(st)) throw StateError("procpool: cannot release un-acquired lock (RLock is owned by another thread or by none)");
  if (--st.count == 0) os::robust_unlock(st.mutex, shared);
}

} // namespace procpool::detail
