// The contended path of the one robust lock (see procpool/detail/os/robust_lock.hpp).
#include "procpool/detail/os/robust_lock.hpp"

#include <algorithm>
#include <chrono>

#include "os/liveness.hpp"
#include "procpool/detail/os/ids.hpp"
#include "procpool/detail/os/wait.hpp"

namespace procpool::os {
namespace {

// First sleep slice of a blocked waiter before it checks the owner; slices double up to the
// maximum, which bounds how long a dead owner (or a wake-up missed by
// robust_unlock_unfenced) goes unnoticed. An owner check costs a few µs (a pidfd), so even
// at the maximum rate a long-blocked waiter spends well under 0.1% of a core on it.
constexpr auto kFirstSlice = std::chrono::milliseconds(2);
constexpr auto kMaxSlice = std::chrono::milliseconds(10);

} // namespace

bool owner_ended(std::uint32_t id, OwnerScope scope) noexcept {
  if (id == 0) return false;
  const auto task = static_cast<pid_t>(id);
  switch (scope) {
    case OwnerScope::None: return false;
    case OwnerScope::Process: return task != current_pid() && process_ended(task);
    case OwnerScope::Thread: return task != current_tid() && thread_ended(task);
  }
  return false;
}

AcquireResult robust_lock_slow(RobustLockState& st, std::uint32_t self, OwnerScope scope, bool shared,
                               bool blocking, const Deadline& deadline) noexcept {
  constexpr std::uint32_t W = RobustLockState::kWaiters;
  constexpr std::uint32_t M = RobustLockState::kIdMask;

  // Takes over a word still naming a dead owner; exactly one CAS wins.
  auto try_recover = [&](std::uint32_t observed) -> bool {
    const std::uint32_t dead = observed & M;
    if (!owner_ended(dead, scope)) return false;
    if (!st.word.compare_exchange_strong(observed, self | W, std::memory_order_acquire, std::memory_order_relaxed))
      return false;
    st.dead_owner.store(dead, std::memory_order_relaxed);
    st.owner_died.store(1, std::memory_order_relaxed);
    return true;
  };

  if (!blocking) {
    std::uint32_t w = st.word.load(std::memory_order_relaxed);
    if (w == 0 && st.word.compare_exchange_strong(w, self, std::memory_order_acquire, std::memory_order_relaxed))
      return AcquireResult::Acquired;
    if (w != 0 && try_recover(w)) return AcquireResult::AcquiredOwnerDied;
    return AcquireResult::Failed;
  }

  // Spin first: most critical sections are shorter than a futex round trip.
  const auto take_free = [&] {
    std::uint32_t w = st.word.load(std::memory_order_relaxed);
    return w == 0 && st.word.compare_exchange_weak(w, self, std::memory_order_acquire, std::memory_order_relaxed);
  };
  const auto sleep = [&] {
    auto slice = std::chrono::duration_cast<SteadyClock::duration>(kFirstSlice);
    for (;;) {
      std::uint32_t w = st.word.load(std::memory_order_relaxed);
      if (w == 0) {
        // Others may sleep: keep the waiters bit so our release wakes them.
        if (st.word.compare_exchange_weak(w, self | W, std::memory_order_acquire, std::memory_order_relaxed))
          return AcquireResult::Acquired;
        continue;
      }
      if ((w & W) == 0) {
        if (!st.word.compare_exchange_weak(w, w | W, std::memory_order_relaxed, std::memory_order_relaxed)) continue;
        w |= W;
      }
      const auto now = SteadyClock::now();
      if (deadline && now >= *deadline) return AcquireResult::Failed;
      Deadline wake_at = now + slice;
      if (deadline && *deadline < *wake_at) wake_at = deadline;
      if (!futex::wait(st.word, w, shared, wake_at)) {
        // The slice ran out with the lock still held: is its owner still there?
        if (try_recover(st.word.load(std::memory_order_relaxed))) return AcquireResult::AcquiredOwnerDied;
        slice = std::min<SteadyClock::duration>(slice * 2, kMaxSlice);
      }
    }
  };
  return spin_then_sleep(&st.spin, deadline, AcquireResult::Acquired, take_free, sleep);
}

} // namespace procpool::os
