#pragma once
/// @file detail/robust_mutex.hpp
/// The futex mutex under Lock, RLock, Condition, Barrier and Value/Array: a 32-bit word
/// holding the owner's pid or tid, so that a waiter can tell when the owner has died.
///
/// Why not the kernel's robust list (FUTEX_OWNER_DIED)? It links the lock into the acquiring
/// thread's list, glibc already owns that list, and Python lets any thread release a Lock,
/// which a per-thread list cannot express. Instead a blocked waiter sleeps in slices; when
/// a slice ends with the lock still held it checks the owner in /proc, and if the owner is
/// gone it takes the lock over with one CAS (so exactly one waiter recovers it) and the
/// caller is told through `owner_died`.
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "procpool/detail/futex.hpp"
#include "procpool/detail/sync_support.hpp"

namespace procpool::detail {

/// Lives in shared memory (or on the heap for threads): atomics only, trivially destructible.
struct RobustMutexState {
  static constexpr std::uint32_t kWaiters = 0x4000'0000u;  ///< someone may sleep on `word`
  static constexpr std::uint32_t kIdMask = 0x3fff'ffffu;   ///< pids/tids fit (pid_max <= 2^22)

  std::atomic<std::uint32_t> word{0};        ///< 0: free; else owner id | kWaiters
  std::atomic<std::uint32_t> owner_died{0};  ///< the current holder took it from a dead owner
  std::atomic<std::uint32_t> dead_owner{0};  ///< that dead owner's id, for diagnostics
  std::atomic<std::uint32_t> spin{0};        ///< adaptive spin estimate (glibc ADAPTIVE_NP style)
};
static_assert(std::is_trivially_destructible_v<RobustMutexState>);

enum class AcquireResult : std::uint8_t { Acquired, AcquiredOwnerDied, Failed };

/// The contended path: spin, then sleep in slices checking the owner's liveness.
/// Defined in sync.cpp. `self` must be non-zero and fit kIdMask.
AcquireResult robust_lock_slow(RobustMutexState& st, std::uint32_t self, OwnerScope scope, bool shared,
                               bool blocking, const Deadline& deadline) noexcept;

/// Acquires `st` for `self`. Thread-safe and process-safe.
inline AcquireResult robust_lock(RobustMutexState& st, std::uint32_t self, OwnerScope scope, bool shared,
                                 bool blocking, const Deadline& deadline) noexcept {
  std::uint32_t expected = 0;
  if (st.word.compare_exchange_strong(expected, self, std::memory_order_acquire, std::memory_order_relaxed))
    return AcquireResult::Acquired;
  return robust_lock_slow(st, self, scope, shared, blocking, deadline);
}

/// Releases `st`, waking one sleeper if any. Returns the previous word (0: it was not locked;
/// writing 0 over 0 changed nothing).
inline std::uint32_t robust_unlock(RobustMutexState& st, bool shared) noexcept {
  // Store only when set: an unconditional store right before the xchg costs ~5 ns per unlock.
  if (st.owner_died.load(std::memory_order_relaxed) != 0) st.owner_died.store(0, std::memory_order_relaxed);
  const std::uint32_t old = st.word.exchange(0, std::memory_order_release);
  if ((old & RobustMutexState::kWaiters) != 0) futex::wake(st.word, shared, 1);
  return old;
}

/// The id currently holding `st` (0 when free).
inline std::uint32_t robust_owner(const RobustMutexState& st) noexcept {
  return st.word.load(std::memory_order_relaxed) & RobustMutexState::kIdMask;
}

} // namespace procpool::detail

namespace procpool::detail {

/// A re-entrant robust mutex: RLock, and the lock of Condition, Value and Array.
/// The owner is a tid, so ownership checks work across threads and processes alike.
struct RLockState {
  RobustMutexState mutex;
  std::uint32_t count = 0;  ///< recursion depth; only the owner touches it
};
static_assert(std::is_trivially_destructible_v<RLockState>);

/// Acquires `st` for the calling thread, re-entrantly. Returns false only on timeout or a
/// failed non-blocking attempt. Thread-safe and process-safe.
inline bool rlock_acquire(RLockState& st, bool shared, bool blocking, const Timeout& timeout) {
  check_acquire_args(blocking, timeout, shared);
  const auto self = static_cast<std::uint32_t>(current_tid());
  if (robust_owner(st.mutex) == self) {
    ++st.count;
    return true;
  }
  std::uint32_t expected = 0;
  if (!st.mutex.word.compare_exchange_strong(expected, self, std::memory_order_acquire, std::memory_order_relaxed)) {
    if (robust_lock_slow(st.mutex, self, OwnerScope::Thread, shared, blocking,
                         blocking ? acquire_deadline(timeout) : std::nullopt) ==
        AcquireResult::Failed)
      return false;
  }
  st.count = 1;
  return true;
}

/// Whether the calling thread holds `st`.
inline bool rlock_is_owned(const RLockState& st) noexcept {
  return robust_owner(st.mutex) == static_cast<std::uint32_t>(current_tid());
}

/// Releases one level of `st`; the calling thread must own it (Python: RuntimeError).
inline void rlock_release(RLockState& st, bool shared) {
  if (!rlock_is_owned(st)) throw StateError("procpool: cannot release un-acquired lock (RLock is owned by another thread or by none)");
  if (--st.count == 0) robust_unlock(st.mutex, shared);
}

} // namespace procpool::detail
