#pragma once
/// @file sync/condition.hpp
/// Condition: Python's threading.Condition / multiprocessing.Condition over its own RLock.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "procpool/backend.hpp"
#include "procpool/detail/os/futex.hpp"
#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/errors.hpp"
#include "procpool/sync/rlock.hpp"

namespace procpool {
namespace detail {
/// Python's Condition wakes at most n waiters per notify(n), and only waiters that were
/// waiting when it was called. The state says how: waiter i gets ticket i; notify(n) hands
/// out min(n, waiting) wake-up tokens that only tickets issued before it (below `horizon`)
/// may take. A waiter returns true only by taking a token, so never more than n return true,
/// however the futex wakes them (spuriously, or before they slept). All fields but `seq` are
/// changed only under `lock`.
struct ConditionState {
  RLockState lock;
  std::atomic<std::uint32_t> seq{0};      ///< bumped by every notify; the waiters' futex word
  std::atomic<std::uint32_t> tickets{0};  ///< next waiter's ticket
  std::atomic<std::uint32_t> horizon{0};  ///< tickets below this may take a token
  std::atomic<std::uint32_t> waiting{0};  ///< waiters not yet given a token
  std::atomic<std::uint32_t> tokens{0};   ///< wake-ups handed out and not yet taken
};
static_assert(std::is_trivially_destructible_v<ConditionState>);
} // namespace detail

/// A condition variable bundled with its re-entrant lock (Python's default Condition()).
/// Acquire it (lock_guard, unique_lock or acquire()) before wait/notify. The lock is robust
/// like RLock: a waiter re-acquiring it after its holder died gets it, and owner_died() says
/// so. notify(n) wakes at most n waiters, as in Python. Pinned. Thread-safe and process-safe.
/// A process killed inside wait() stays counted as a waiter: a notify may grant it a wake-up,
/// which a later waiter may then take on top of a later notify's n.
template <class Backend>
class BasicCondition : public detail::SharedHandle<BasicCondition<Backend>, Backend> {
public:
  BasicCondition() : state_(), lock_(&state_->lock) {}
  BasicCondition(const BasicCondition&) = delete;
  BasicCondition& operator=(const BasicCondition&) = delete;

  /// The underlying lock's acquire/release (Python: Condition.acquire/release).
  bool acquire(bool blocking = true, const Timeout& timeout = std::nullopt) { return lock_.acquire(blocking, timeout); }
  void release() { lock_.release(); }
  void lock() { lock_.lock(); }
  void unlock() { lock_.unlock(); }
  [[nodiscard]] bool try_lock() { return lock_.try_lock(); }
  /// Whether the current holder took the lock over from a dead owner.
  [[nodiscard]] bool owner_died() const noexcept { return lock_.owner_died(); }
  /// The underlying re-entrant lock.
  [[nodiscard]] BasicRLock<Backend>& get_lock() noexcept { return lock_; }

  /// Python's wait(timeout=None): releases the lock (all recursion levels), sleeps until
  /// notified or `timeout` passes, re-acquires the lock. False on timeout. StateError if the
  /// calling thread does not hold the lock.
  bool wait(const Timeout& timeout = std::nullopt) {
    auto& st = *state_;
    if (!detail::rlock_is_owned(st.lock)) throw StateError("procpool: cannot wait on un-acquired lock");
    const os::Deadline deadline = detail::wait_deadline(timeout);
    constexpr auto relaxed = std::memory_order_relaxed;
    const std::uint32_t ticket = st.tickets.fetch_add(1, relaxed);
    st.waiting.fetch_add(1, relaxed);
    const std::uint32_t depth = st.lock.count;
    for (;;) {
      // Read under the lock: a notify after the unlock bumps seq, so the futex refuses to
      // sleep and no wake-up is lost.
      const std::uint32_t seen = st.seq.load(std::memory_order_acquire);
      st.lock.count = 0;
      os::robust_unlock(st.lock.mutex, Backend::interprocess);
      const bool timed_out = !os::futex::wait(st.seq, seen, Backend::interprocess, deadline);
      reacquire(st, depth);
      // Signed distance: tickets wrap around.
      const bool eligible = static_cast<std::int32_t>(ticket - st.horizon.load(relaxed)) < 0;
      if (eligible && st.tokens.load(relaxed) > 0) {
        st.tokens.fetch_sub(1, relaxed);
        return true;
      }
      if (timed_out || os::expired(deadline)) {
        st.waiting.fetch_sub(1, relaxed);
        return false;
      }
      // Woken for someone else (a token another waiter took) or spuriously: sleep again.
    }
  }

  /// Python's wait_for(predicate, timeout=None): waits until `pred()` is true or `timeout`
  /// passes; returns the last value of `pred()`. Call with the lock held.
  template <class Predicate>
  bool wait_for(Predicate pred, const Timeout& timeout = std::nullopt) {
    const os::Deadline deadline = detail::wait_deadline(timeout);
    bool result = static_cast<bool>(pred());
    while (!result) {
      if (deadline) {
        const auto left = *deadline - os::SteadyClock::now();
        if (left <= left.zero()) break;
        wait(std::chrono::duration<double>(left));
      } else {
        wait();
      }
      result = static_cast<bool>(pred());
    }
    return result;
  }

  /// Wakes up to `n` of the threads waiting now (later waiters are not woken by this call).
  /// StateError if the calling thread does not hold the lock.
  void notify(int n = 1) {
    auto& st = *state_;
    if (!detail::rlock_is_owned(st.lock)) throw StateError("procpool: cannot notify on un-acquired lock");
    constexpr auto relaxed = std::memory_order_relaxed;
    const std::uint32_t waiting = st.waiting.load(relaxed);
    if (n <= 0 || waiting == 0) return;
    const std::uint32_t k = std::min(waiting, static_cast<std::uint32_t>(n));
    st.waiting.store(waiting - k, relaxed);
    st.tokens.fetch_add(k, relaxed);
    st.horizon.store(st.tickets.load(relaxed), relaxed);
    st.seq.fetch_add(1, std::memory_order_release);
    os::futex::wake(st.seq, Backend::interprocess, static_cast<int>(std::min<std::uint32_t>(k, INT_MAX)));
  }
  /// Wakes every waiter.
  void notify_all() { notify(INT_MAX); }

private:
  // Spawn hand-off (detail::SharedHandle): the state segment, lock included, is the whole handle.
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const { detail::encode_segment_handle(out, state_.handle()); }
  BasicCondition(detail::AttachTag, std::string_view& in)
      : state_(detail::decode_segment_handle(in)), lock_(&state_->lock) {}

  static void reacquire(detail::ConditionState& st, std::uint32_t depth) {
    // Blocking, no timeout: cannot fail, and recovers the lock from a dead holder.
    detail::rlock_acquire(st.lock, Backend::interprocess, true, std::nullopt);
    st.lock.count = depth;
  }

  typename Backend::template Storage<detail::ConditionState> state_;
  BasicRLock<Backend> lock_;
};

using Condition = Processes::Condition;
namespace dummy {
using Condition = Threads::Condition;
} // namespace dummy

} // namespace procpool
