#pragma once
/// @file sync/barrier.hpp
/// Barrier: Python's threading.Barrier / multiprocessing.Barrier.
#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "procpool/backend.hpp"
#include "procpool/codec.hpp"
#include "procpool/detail/os/futex.hpp"
#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/errors.hpp"

namespace procpool {
namespace detail {
/// `word` = generation << 1 | broken. A generation ends either when all parties arrived
/// (success) or by reset(); bit (generation % 64) of `ended_broken` records which, so a
/// waiter that wakes after the barrier moved on still learns how its own round ended.
struct BarrierState {
  os::RobustLockState mutex;                 ///< guards count and the transitions
  std::atomic<std::uint32_t> word{0};        ///< futex word of the waiters
  std::atomic<std::uint64_t> ended_broken{0};
  std::uint32_t parties = 0;
  std::uint32_t count = 0;  ///< arrived in the current generation
};
static_assert(std::is_trivially_destructible_v<BarrierState>);
} // namespace detail

/// A barrier for a fixed number of parties. Pinned. Thread-safe and process-safe.
/// The optional `action` runs in the last party to arrive, before the others are released;
/// it is a callable of this process: a forked child has its copy, a spawned child has none.
/// The constructor's default timeout travels with the barrier to children of every start method.
template <class Backend>
class BasicBarrier : public detail::SharedHandle<BasicBarrier<Backend>, Backend> {
public:
  /// Python's Barrier(parties, action=None, timeout=None). ValueError when parties < 1.
  explicit BasicBarrier(std::size_t parties, std::function<void()> action = {}, Timeout timeout = std::nullopt)
      : state_(), action_(std::move(action)), timeout_(timeout) {
    if (parties < 1 || parties > INT_MAX) throw ValueError("procpool: Barrier parties must be between 1 and INT_MAX");
    state_->parties = static_cast<std::uint32_t>(parties);
  }
  BasicBarrier(const BasicBarrier&) = delete;
  BasicBarrier& operator=(const BasicBarrier&) = delete;

  /// Python's wait(timeout=None): waits until all parties have called wait(); returns this
  /// party's arrival index (0 .. parties-1). Throws BrokenBarrierError if the barrier is or
  /// gets broken (abort(), reset() while waiting, a failed action, or any party's timeout;
  /// a timeout breaks the barrier for every party, as in Python). `timeout` defaults to the
  /// one given to the constructor.
  std::size_t wait(const Timeout& timeout = std::nullopt) {
    auto& st = *state_;
    const os::Deadline deadline = detail::wait_deadline(timeout ? timeout : timeout_);
    lock();
    const std::uint32_t w = st.word.load(std::memory_order_relaxed);
    if ((w & 1u) != 0) {
      unlock();
      throw BrokenBarrierError("procpool: the barrier is broken (call reset() to reuse it)");
    }
    const std::uint32_t gen = w >> 1;
    const std::size_t index = st.count++;
    if (st.count == st.parties) {
      if (action_) {
        try {
          action_();
        } catch (...) {
          break_locked(st);
          unlock();
          throw;
        }
      }
      finish_generation(st, gen, false);
      unlock();
      return index;
    }
    unlock();

    for (;;) {
      const std::uint32_t cur = st.word.load(std::memory_order_acquire);
      if ((cur >> 1) != gen) return outcome(st, gen, index);
      if ((cur & 1u) != 0) throw broken_error();
      if (!os::futex::wait(st.word, cur, Backend::interprocess, deadline)) {
        lock();
        const std::uint32_t now = st.word.load(std::memory_order_relaxed);
        if ((now >> 1) == gen && (now & 1u) == 0) break_locked(st);
        unlock();
        if ((now >> 1) != gen) return outcome(st, gen, index);
        throw BrokenBarrierError("procpool: Barrier.wait timed out; the barrier is now broken");
      }
    }
  }

  /// Returns the barrier to its empty, unbroken state; current waiters get BrokenBarrierError.
  void reset() {
    auto& st = *state_;
    lock();
    const std::uint32_t w = st.word.load(std::memory_order_relaxed);
    if (st.count > 0 || (w & 1u) != 0) finish_generation(st, w >> 1, true);
    unlock();
  }

  /// Breaks the barrier: current and future wait() calls throw BrokenBarrierError until reset().
  void abort() {
    lock();
    break_locked(*state_);
    unlock();
  }

  [[nodiscard]] std::size_t parties() const noexcept { return state_->parties; }
  /// Parties currently waiting (a snapshot).
  [[nodiscard]] std::size_t n_waiting() const noexcept {
    auto& st = *state_;
    lock();
    const std::uint32_t n = (st.word.load(std::memory_order_relaxed) & 1u) != 0 ? 0 : st.count;
    unlock();
    return n;
  }
  /// Whether the barrier is broken.
  [[nodiscard]] bool broken() const noexcept { return (state_->word.load(std::memory_order_acquire) & 1u) != 0; }

private:
  static constexpr os::OwnerScope kScope = Backend::interprocess ? os::OwnerScope::Process : os::OwnerScope::None;

  // Spawn hand-off (detail::SharedHandle): the state segment, then the default timeout, which
  // is per object (not in shared memory) and so travels with the handle.
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const {
    detail::encode_segment_handle(out, state_.handle());
    codec::encode_to(out, timeout_.has_value());
    codec::encode_to(out, timeout_ ? timeout_->count() : 0.0);
  }
  BasicBarrier(detail::AttachTag, std::string_view& in) : state_(detail::decode_segment_handle(in)) {
    const bool has_timeout = codec::decode_from<bool>(in);
    const double seconds = codec::decode_from<double>(in);
    if (has_timeout) timeout_ = std::chrono::duration<double>(seconds);
  }

  static BrokenBarrierError broken_error() { return BrokenBarrierError("procpool: the barrier was broken while waiting"); }

  // The internal mutex is robust, so a party killed inside these few lines cannot wedge it.
  void lock() const noexcept {
    detail::robust_acquire(state_->mutex, static_cast<std::uint32_t>(os::current_pid()), kScope,
                           Backend::interprocess, true, std::nullopt);
  }
  void unlock() const noexcept { os::robust_unlock(state_->mutex, Backend::interprocess); }

  static void set_ended_broken(detail::BarrierState& st, std::uint32_t gen, bool broken) noexcept {
    const std::uint64_t bit = std::uint64_t{1} << (gen % 64);
    if (broken)
      st.ended_broken.fetch_or(bit, std::memory_order_relaxed);
    else
      st.ended_broken.fetch_and(~bit, std::memory_order_relaxed);
  }

  // Ends generation `gen` (success or reset) and starts the next, unbroken one.
  static void finish_generation(detail::BarrierState& st, std::uint32_t gen, bool broken) noexcept {
    set_ended_broken(st, gen, broken);
    st.count = 0;
    st.word.store((gen + 1) << 1, std::memory_order_release);
    os::futex::wake(st.word, Backend::interprocess, INT_MAX);
  }

  static void break_locked(detail::BarrierState& st) noexcept {
    const std::uint32_t w = st.word.load(std::memory_order_relaxed);
    if ((w & 1u) != 0) return;
    set_ended_broken(st, w >> 1, true);
    st.count = 0;
    st.word.store(w | 1u, std::memory_order_release);
    os::futex::wake(st.word, Backend::interprocess, INT_MAX);
  }

  static std::size_t outcome(detail::BarrierState& st, std::uint32_t gen, std::size_t index) {
    const std::uint64_t bit = std::uint64_t{1} << (gen % 64);
    if ((st.ended_broken.load(std::memory_order_acquire) & bit) != 0) throw broken_error();
    return index;
  }

  typename Backend::template Storage<detail::BarrierState> state_;
  std::function<void()> action_;
  Timeout timeout_;
};

using Barrier = Processes::Barrier;
namespace dummy {
using Barrier = Threads::Barrier;
} // namespace dummy

} // namespace procpool
