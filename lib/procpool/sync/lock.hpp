#pragma once
/// @file sync/lock.hpp
/// Lock: Python's threading.Lock / multiprocessing.Lock, robust against a dead owner.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "procpool/backend.hpp"
#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/errors.hpp"

namespace procpool {

/// A non-recursive lock. As in Python, any thread (or process) may release it, not only the
/// one that acquired it. Process backend: it lives in shared memory; if the process holding
/// it dies, the next acquirer gets it and `owner_died()` is true until that acquirer releases.
/// Usable with std::lock_guard / std::unique_lock (timed) / std::scoped_lock.
/// Pinned: neither copyable nor movable. All members are thread-safe and process-safe.
template <class Backend>
class BasicLock : public detail::SharedHandle<BasicLock<Backend>, Backend>,
                  public detail::StdLockable<BasicLock<Backend>> {
public:
  BasicLock() = default;
  BasicLock(const BasicLock&) = delete;
  BasicLock& operator=(const BasicLock&) = delete;

  /// Python's acquire(blocking=True, timeout=-1): true once acquired; false when
  /// non-blocking and taken, or when `timeout` ran out. ValueError on a negative timeout,
  /// and (thread backend, as threading.Lock) on a timeout without blocking; the process
  /// backend ignores such a timeout, as multiprocessing.Lock.
  bool acquire(bool blocking = true, const Timeout& timeout = std::nullopt) {
    detail::check_acquire_args(blocking, timeout, Backend::interprocess);
    const auto self = static_cast<std::uint32_t>(os::current_pid());
    std::uint32_t expected = 0;
    if (state_->word.compare_exchange_strong(expected, self, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
    // The fast path is inlined here so that it does not compute the deadline.
    return detail::robust_acquire_slow(*state_, self, kScope, Backend::interprocess, blocking,
                                       blocking ? detail::acquire_deadline(timeout) : std::nullopt) !=
           os::AcquireResult::Failed;
  }

  /// Releases the lock (from any thread or process). If it is not locked: ValueError on the
  /// process backend (multiprocessing.Lock), StateError on the thread backend (Python's
  /// RuntimeError from threading.Lock).
  void release() {
    if (os::robust_unlock(*state_, Backend::interprocess) == 0) {
      if constexpr (Backend::interprocess) throw ValueError("procpool: semaphore or lock released too many times");
      else throw StateError("procpool: release unlocked lock");
    }
  }

  /// Whether someone holds the lock (a snapshot).
  [[nodiscard]] bool locked() const noexcept { return state_->word.load(std::memory_order_relaxed) != 0; }

  /// True while the current holder got the lock from an owner that died holding it: the data
  /// it guards may be half-updated. Cleared by release(). Meaningful to the holder only.
  [[nodiscard]] bool owner_died() const noexcept { return state_->owner_died.load(std::memory_order_relaxed) != 0; }

private:
  // Process backend: the owner is a pid (any thread of the owning process may release it).
  // Thread backend: the owner is this process, which cannot die under its own threads.
  static constexpr os::OwnerScope kScope =
      Backend::interprocess ? os::OwnerScope::Process : os::OwnerScope::None;

  // Spawn hand-off (detail::SharedHandle): the state segment is the whole handle.
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const { detail::encode_segment_handle(out, state_.handle()); }
  BasicLock(detail::AttachTag, std::string_view& in) : state_(detail::decode_segment_handle(in)) {}

  typename Backend::template Storage<os::RobustLockState> state_;
};

/// Process backend: a Lock shared with child processes.
using Lock = Processes::Lock;
namespace dummy {
/// Thread backend: the same Lock for threads (multiprocessing.dummy).
using Lock = Threads::Lock;
} // namespace dummy

} // namespace procpool
