#pragma once
/// @file detail/os/robust_lock.hpp
/// The one robust futex lock: a 32-bit word holding the owner's id (a pid or a tid, as the
/// owner scope says), so that a waiter can tell when the owner has died and take the lock
/// over. Under Lock, RLock, Condition, Barrier, Value/Array (detail/robust_mutex.hpp) and both
/// locks of the ring (lib/ring.cpp).
///
/// Why not the kernel's robust list (FUTEX_OWNER_DIED)? It links the lock into the acquiring
/// thread's list, glibc already owns that list, and Python lets any thread release a Lock,
/// which a per-thread list cannot express. Instead a blocked waiter spins (detail/os/wait.hpp),
/// then sleeps in slices; when a slice ends with the lock still held it checks the owner
/// (os/liveness.hpp), and if the owner is gone it takes the lock over with one CAS (so exactly
/// one waiter recovers it) and is told so through AcquireResult::AcquiredOwnerDied.
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "procpool/detail/os/deadline.hpp"
#include "procpool/detail/os/futex.hpp"

namespace procpool::os {

/// Who owns a lock word and therefore how its death is detected.
enum class OwnerScope : std::uint8_t {
  None,     ///< never checked (thread backend: the owner is this very process)
  Process,  ///< the id is a pid: dead once the process has exited (zombies count as dead)
  Thread,   ///< the id is a tid: dead once that thread has exited
};

/// Lives in shared memory (or on the heap for threads): atomics only, trivially destructible.
struct RobustLockState {
  static constexpr std::uint32_t kWaiters = 0x4000'0000u;  ///< someone may sleep on `word`
  static constexpr std::uint32_t kIdMask = 0x3fff'ffffu;   ///< pids/tids fit (pid_max <= 2^22)

  std::atomic<std::uint32_t> word{0};        ///< 0: free; else owner id | kWaiters
  std::atomic<std::uint32_t> owner_died{0};  ///< the current holder took it from a dead owner
  std::atomic<std::uint32_t> dead_owner{0};  ///< that dead owner's id, for diagnostics
  std::atomic<std::uint32_t> spin{0};        ///< the adaptive spin budget (os::SpinBudget)
};
static_assert(std::is_trivially_destructible_v<RobustLockState>);

enum class AcquireResult : std::uint8_t { Acquired, AcquiredOwnerDied, Failed };

/// The contended path: spin, then sleep in slices checking the owner's liveness (not for
/// OwnerScope::None). `self` must be non-zero and fit kIdMask. Non-blocking: one try, and a
/// takeover if the owner is dead. Defined in lib/os/robust_lock.cpp. Thread- and process-safe.
AcquireResult robust_lock_slow(RobustLockState& st, std::uint32_t self, OwnerScope scope, bool shared,
                               bool blocking, const Deadline& deadline) noexcept;

/// Acquires `st` for `self`. Thread-safe and process-safe.
inline AcquireResult robust_lock(RobustLockState& st, std::uint32_t self, OwnerScope scope, bool shared,
                                 bool blocking, const Deadline& deadline) noexcept {
  std::uint32_t expected = 0;
  if (st.word.compare_exchange_strong(expected, self, std::memory_order_acquire, std::memory_order_relaxed))
    return AcquireResult::Acquired;
  return robust_lock_slow(st, self, scope, shared, blocking, deadline);
}

/// Releases `st`, waking one sleeper if any. Returns the previous word (0: it was not locked;
/// writing 0 over 0 changed nothing). Thread-safe and process-safe.
inline std::uint32_t robust_unlock(RobustLockState& st, bool shared) noexcept {
  // Store only when set: an unconditional store right before the xchg costs ~5 ns per unlock.
  if (st.owner_died.load(std::memory_order_relaxed) != 0) st.owner_died.store(0, std::memory_order_relaxed);
  const std::uint32_t old = st.word.exchange(0, std::memory_order_release);
  if ((old & RobustLockState::kWaiters) != 0) futex::wake(st.word, shared, 1);
  return old;
}

/// robust_unlock() with a plain store instead of an atomic exchange, for a hot path whose
/// caller holds the lock for sure (the ring). A waiter that sets its bit exactly as the owner
/// reads the word may miss this wake-up; waiters sleep in bounded slices, so that costs a
/// delay, never a hang. Thread-safe and process-safe.
inline void robust_unlock_unfenced(RobustLockState& st, bool shared) noexcept {
  if (st.owner_died.load(std::memory_order_relaxed) != 0) st.owner_died.store(0, std::memory_order_relaxed);
  const std::uint32_t old = st.word.load(std::memory_order_relaxed);
  st.word.store(0, std::memory_order_release);
  if ((old & RobustLockState::kWaiters) != 0) futex::wake(st.word, shared, 1);
}

/// The id currently holding `st` (0 when free). Thread-safe (a snapshot).
[[nodiscard]] inline std::uint32_t robust_owner(const RobustLockState& st) noexcept {
  return st.word.load(std::memory_order_relaxed) & RobustLockState::kIdMask;
}

/// Whether the owner `id` of a lock of scope `scope` has ended (never for OwnerScope::None,
/// nor for the caller itself). Defined in lib/os/robust_lock.cpp. Thread-safe.
[[nodiscard]] bool owner_ended(std::uint32_t id, OwnerScope scope) noexcept;

} // namespace procpool::os
