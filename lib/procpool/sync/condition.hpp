#pragma once
/// @file sync/condition.hpp
/// Condition: Python's threading.Condition / multiprocessing.Condition over its own RLock.
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "procpool/detail/futex.hpp"
#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/errors.hpp"
#include "procpool/sync/rlock.hpp"

namespace procpool {
namespace detail {
struct ConditionState {
  RLockState lock;
  std::atomic<std::uint32_t> seq{0};      ///< bumped by every notify; the waiters' futex word
  std::atomic<std::uint32_t> waiters{0};  ///< waiting threads (a dead one only costs a spare wake)
};
static_assert(std::is_trivially_destructible_v<ConditionState>);
} // namespace detail

/// A condition variable bundled with its re-entrant lock (Python's default Condition()).
/// Acquire it (lock_guard, unique_lock or acquire()) before wait/notify. The lock is robust
/// like RLock: a waiter re-acquiring it after its holder died gets it, and owner_died() says
/// so. As with std::condition_variable, wait() may return without a matching notify;
/// wait_for(predicate) loops for you. Pinned. Thread-safe and process-safe.
template <class Backend>
class BasicCondition : public detail::SharedTypeMarker<Backend::interprocess> {
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
    const detail::Deadline deadline = detail::wait_deadline(timeout);
    const std::uint32_t start = st.seq.load(std::memory_order_relaxed);
    st.waiters.fetch_add(1, std::memory_order_relaxed);
    const std::uint32_t depth = st.lock.count;
    st.lock.count = 0;
    detail::robust_unlock(st.lock.mutex, Backend::interprocess);
    // A notify after the unlock bumps seq, so the futex refuses to sleep: no lost wake-up.
    bool notified = false;
    for (;;) {
      if (st.seq.load(std::memory_order_acquire) != start) {
        notified = true;
        break;
      }
      if (!detail::futex::wait(st.seq, start, Backend::interprocess, deadline)) {
        notified = st.seq.load(std::memory_order_acquire) != start;
        break;
      }
    }
    st.waiters.fetch_sub(1, std::memory_order_relaxed);
    reacquire(st, depth);
    return notified;
  }

  /// Python's wait_for(predicate, timeout=None): waits until `pred()` is true or `timeout`
  /// passes; returns the last value of `pred()`. Call with the lock held.
  template <class Predicate>
  bool wait_for(Predicate pred, const Timeout& timeout = std::nullopt) {
    const detail::Deadline deadline = detail::wait_deadline(timeout);
    bool result = static_cast<bool>(pred());
    while (!result) {
      if (deadline) {
        const auto left = *deadline - detail::Clock::now();
        if (left <= left.zero()) break;
        wait(std::chrono::duration<double>(left));
      } else {
        wait();
      }
      result = static_cast<bool>(pred());
    }
    return result;
  }

  /// Wakes up to `n` waiters. StateError if the calling thread does not hold the lock.
  void notify(int n = 1) {
    auto& st = *state_;
    if (!detail::rlock_is_owned(st.lock)) throw StateError("procpool: cannot notify on un-acquired lock");
    if (n <= 0 || st.waiters.load(std::memory_order_relaxed) == 0) return;
    st.seq.fetch_add(1, std::memory_order_release);
    detail::futex::wake(st.seq, Backend::interprocess, n);
  }
  /// Wakes every waiter.
  void notify_all() { notify(INT_MAX); }

  void procpool_encode_handle(std::string& out) const
    requires Backend::interprocess
  {
    detail::encode_segment_handle(out, state_.handle());
  }
  static std::unique_ptr<BasicCondition> procpool_attach(std::string_view& in)
    requires Backend::interprocess
  {
    const detail::SegmentHandle handle = detail::decode_segment_handle(in);
    return std::unique_ptr<BasicCondition>(new BasicCondition(detail::AttachTag{}, handle));
  }

private:
  BasicCondition(detail::AttachTag, const detail::SegmentHandle& handle) : state_(handle), lock_(&state_->lock) {}

  static void reacquire(detail::ConditionState& st, std::uint32_t depth) {
    // Blocking, no timeout: cannot fail, and recovers the lock from a dead holder.
    detail::rlock_acquire(st.lock, Backend::interprocess, true, std::nullopt);
    st.lock.count = depth;
  }

  typename Backend::template Storage<detail::ConditionState> state_;
  BasicRLock<Backend> lock_;
};

using Condition = BasicCondition<detail::ProcessBackend>;
namespace dummy {
using Condition = BasicCondition<detail::ThreadBackend>;
} // namespace dummy

} // namespace procpool
