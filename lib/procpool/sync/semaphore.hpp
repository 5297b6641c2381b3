#pragma once
/// @file sync/semaphore.hpp
/// Semaphore and BoundedSemaphore: Python's counting semaphores, across threads or processes.
///
/// Like Python's, a semaphore does not know who holds it: if a process dies between acquire()
/// and release(), its unit is lost (Python's documentation of Process.terminate(): "if the
/// process has acquired a lock or semaphore etc. then terminating it is liable to cause other
/// processes to deadlock"). Lock and RLock do not have this limit.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

#include "procpool/backend.hpp"
#include "procpool/detail/os/futex.hpp"
#include "procpool/detail/os/wait.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/errors.hpp"

namespace procpool {
namespace detail {
struct SemaphoreState {
  std::atomic<std::uint32_t> value{0};    ///< the counter; futex word of the waiters
  std::atomic<std::uint32_t> waiters{0};  ///< sleepers (a dead one only costs a spare wake)
  std::uint32_t bound = 0;                ///< BoundedSemaphore's initial value
  std::atomic<std::uint32_t> spin{0};     ///< the waiters' adaptive spin budget (os::SpinBudget)
};
static_assert(std::is_trivially_destructible_v<SemaphoreState>);
} // namespace detail

/// A counting semaphore. `Bounded`: release() beyond the initial value is a ValueError
/// (Python's BoundedSemaphore). Usable with the std lock guards (`with s:` in Python).
/// Pinned. All members are thread-safe and process-safe.
template <class Backend, bool Bounded>
class BasicSemaphore : public detail::SharedHandle<BasicSemaphore<Backend, Bounded>, Backend>,
                       public detail::StdLockable<BasicSemaphore<Backend, Bounded>> {
public:
  /// Python's Semaphore(value=1). ValueError for a negative value.
  explicit BasicSemaphore(long long value = 1) : state_() {
    if (value < 0) throw ValueError("procpool: semaphore initial value must be >= 0");
    if (value > static_cast<long long>(kMax)) throw ValueError("procpool: semaphore initial value is too large");
    state_->value.store(static_cast<std::uint32_t>(value), std::memory_order_relaxed);
    state_->bound = static_cast<std::uint32_t>(value);
  }
  BasicSemaphore(const BasicSemaphore&) = delete;
  BasicSemaphore& operator=(const BasicSemaphore&) = delete;

  /// Python's acquire(blocking=True, timeout=None): decrements the counter, waiting while it
  /// is zero. False when non-blocking and zero, or on timeout. A timeout without blocking is
  /// ignored on the process backend (multiprocessing.Semaphore) and a ValueError on the
  /// thread backend (threading.Semaphore).
  bool acquire(bool blocking = true, const Timeout& timeout = std::nullopt) {
    detail::check_acquire_args(blocking, timeout, Backend::interprocess);
    auto& st = *state_;
    if (try_decrement(st)) return true;
    if (!blocking) return false;
    const os::Deadline deadline = detail::acquire_deadline(timeout);
    const auto sleep = [&] {
      for (;;) {
        if (os::expired(deadline)) return try_decrement(st);
        st.waiters.fetch_add(1, std::memory_order_seq_cst);
        os::futex::wait(st.value, 0, Backend::interprocess, deadline);
        st.waiters.fetch_sub(1, std::memory_order_relaxed);
        if (try_decrement(st)) return true;
      }
    };
    return os::spin_then_sleep(&st.spin, deadline, true, [&] { return try_decrement(st); }, sleep);
  }

  /// Python's release(n=1): increments by `n` and wakes up to `n` waiters. ValueError for
  /// n < 1, and for a BoundedSemaphore released above its initial value.
  void release(unsigned n = 1) {
    if (n < 1) throw ValueError("procpool: release count n must be at least one");
    auto& st = *state_;
    std::uint32_t v = st.value.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint64_t next = std::uint64_t{v} + n;
      if (Bounded && next > st.bound) throw ValueError("procpool: Semaphore released too many times");
      if (next > kMax) throw ValueError("procpool: semaphore value would overflow");
      if (st.value.compare_exchange_weak(v, static_cast<std::uint32_t>(next), std::memory_order_seq_cst,
                                         std::memory_order_relaxed))
        break;
    }
    if (st.waiters.load(std::memory_order_seq_cst) != 0)
      os::futex::wake(st.value, Backend::interprocess, static_cast<int>(std::min<unsigned>(n, INT32_MAX)));
  }

  /// The current counter (multiprocessing's get_value()); a snapshot.
  [[nodiscard]] std::uint32_t get_value() const noexcept { return state_->value.load(std::memory_order_relaxed); }

private:
  static constexpr std::uint32_t kMax = std::numeric_limits<std::int32_t>::max();

  // Spawn hand-off (detail::SharedHandle): the state segment is the whole handle.
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const { detail::encode_segment_handle(out, state_.handle()); }
  BasicSemaphore(detail::AttachTag, std::string_view& in) : state_(detail::decode_segment_handle(in)) {}

  static bool try_decrement(detail::SemaphoreState& st) noexcept {
    std::uint32_t v = st.value.load(std::memory_order_relaxed);
    while (v > 0) {
      if (st.value.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    }
    return false;
  }

  typename Backend::template Storage<detail::SemaphoreState> state_;
};

using Semaphore = Processes::Semaphore;
using BoundedSemaphore = Processes::BoundedSemaphore;
namespace dummy {
using Semaphore = Threads::Semaphore;
using BoundedSemaphore = Threads::BoundedSemaphore;
} // namespace dummy

} // namespace procpool
