#pragma once
/// @file sync/event.hpp
/// Event: Python's threading.Event / multiprocessing.Event.
#include <atomic>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "procpool/backend.hpp"
#include "procpool/detail/os/futex.hpp"
#include "procpool/detail/os/wait.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/detail/sync_support.hpp"

namespace procpool {
namespace detail {
/// Bit 0: the flag. Bits 1..31: a generation bumped by every set(), so a waiter woken by a
/// set() that is cleared again before it runs still returns true, as in Python. The only
/// state is this word: a peer dying at any point cannot strand a waiter.
struct EventState {
  std::atomic<std::uint32_t> word{0};
  std::atomic<std::uint32_t> waiters{0};  ///< sleepers; a dead one only costs a spare wake
  std::atomic<std::uint32_t> spin{0};     ///< the waiters' adaptive spin budget (os::SpinBudget)
};
static_assert(std::is_trivially_destructible_v<EventState>);
} // namespace detail

/// An event flag that threads or processes wait for. Pinned. All members are thread-safe
/// and process-safe.
template <class Backend>
class BasicEvent : public detail::SharedHandle<BasicEvent<Backend>, Backend> {
public:
  BasicEvent() = default;
  BasicEvent(const BasicEvent&) = delete;
  BasicEvent& operator=(const BasicEvent&) = delete;

  /// Whether the flag is set.
  [[nodiscard]] bool is_set() const noexcept { return (state_->word.load(std::memory_order_acquire) & 1u) != 0; }

  /// Sets the flag and wakes every waiter.
  void set() noexcept {
    auto& st = *state_;
    std::uint32_t w = st.word.load(std::memory_order_relaxed);
    do {
      if ((w & 1u) != 0) return;
    } while (!st.word.compare_exchange_weak(w, (w + 2u) | 1u, std::memory_order_seq_cst, std::memory_order_relaxed));
    if (st.waiters.load(std::memory_order_seq_cst) != 0) os::futex::wake(st.word, Backend::interprocess, INT_MAX);
  }

  /// Resets the flag.
  void clear() noexcept { state_->word.fetch_and(~1u, std::memory_order_release); }

  /// Python's wait(timeout=None): blocks until the flag is set (or was set while waiting)
  /// or `timeout` passes. Returns the flag, i.e. false only on timeout.
  bool wait(const Timeout& timeout = std::nullopt) {
    auto& st = *state_;
    const std::uint32_t start = st.word.load(std::memory_order_acquire);
    if ((start & 1u) != 0) return true;
    auto signalled = [&](std::uint32_t w) { return (w & 1u) != 0 || (w >> 1) != (start >> 1); };
    const os::Deadline deadline = detail::wait_deadline(timeout);
    const auto ready = [&] { return signalled(st.word.load(std::memory_order_acquire)); };
    const auto sleep = [&] {
      st.waiters.fetch_add(1, std::memory_order_seq_cst);
      bool result = false;
      for (;;) {
        const std::uint32_t w = st.word.load(std::memory_order_acquire);
        if (signalled(w)) {
          result = true;
          break;
        }
        if (!os::futex::wait(st.word, w, Backend::interprocess, deadline)) {
          result = signalled(st.word.load(std::memory_order_acquire));
          break;
        }
      }
      st.waiters.fetch_sub(1, std::memory_order_relaxed);
      return result;
    };
    return os::spin_then_sleep(&st.spin, deadline, true, ready, sleep);
  }

private:
  // Spawn hand-off (detail::SharedHandle): the state segment is the whole handle.
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const { detail::encode_segment_handle(out, state_.handle()); }
  BasicEvent(detail::AttachTag, std::string_view& in) : state_(detail::decode_segment_handle(in)) {}

  typename Backend::template Storage<detail::EventState> state_;
};

using Event = Processes::Event;
namespace dummy {
using Event = Threads::Event;
} // namespace dummy

} // namespace procpool
