#pragma once
/// @file sync/rlock.hpp
/// RLock: Python's re-entrant lock, owned by a thread, robust against a dead owner.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "procpool/backend.hpp"
#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/errors.hpp"

namespace procpool {

/// A re-entrant lock: the owning thread may acquire it again and must release it as many
/// times; release by another thread is a StateError (Python: RuntimeError). Ownership is per
/// thread (by kernel tid), across processes too. If the owning thread or process dies, the
/// next acquirer gets it and `owner_died()` is true until it fully releases.
/// Usable with the std lock guards. Pinned. All members are thread-safe and process-safe.
namespace detail {
template <class Backend>
class BorrowedRLock;
} // namespace detail

template <class Backend>
class BasicRLock : public detail::SharedHandle<BasicRLock<Backend>, Backend>,
                   public detail::StdLockable<BasicRLock<Backend>> {
public:
  BasicRLock() : own_(std::make_unique<Storage>()), st_(own_->get()) {}
  BasicRLock(const BasicRLock&) = delete;
  BasicRLock& operator=(const BasicRLock&) = delete;

  /// Python's acquire(blocking=True, timeout=-1); re-entrant for the owner.
  bool acquire(bool blocking = true, const Timeout& timeout = std::nullopt) {
    return detail::rlock_acquire(*st_, Backend::interprocess, blocking, timeout);
  }
  /// Releases one level. StateError when the calling thread does not own it.
  void release() { detail::rlock_release(*st_, Backend::interprocess); }

  /// Whether the calling thread owns it.
  [[nodiscard]] bool is_owned() const noexcept { return detail::rlock_is_owned(*st_); }
  /// Whether anyone owns it (a snapshot).
  [[nodiscard]] bool locked() const noexcept { return os::robust_owner(st_->mutex) != 0; }
  /// The recursion depth, meaningful to the owner.
  [[nodiscard]] std::uint32_t count() const noexcept { return is_owned() ? st_->count : 0; }
  /// True while the owner got the lock from a thread or process that died holding it.
  [[nodiscard]] bool owner_died() const noexcept {
    return st_->mutex.owner_died.load(std::memory_order_relaxed) != 0;
  }

private:
  template <class, class, bool>
  friend class BasicValue;
  template <class, class, bool>
  friend class BasicArray;
  template <class>
  friend class BasicCondition;
  template <class>
  friend class detail::BorrowedRLock;

  // Spawn hand-off (detail::SharedHandle): the state segment is the whole handle. A Value's,
  // Array's or Condition's lock (a view) cannot travel alone: its owner does.
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const {
    if (!own_)
      throw StateError("procpool: the lock of a Value, Array or Condition cannot be passed to a spawned process "
                       "on its own; pass the object that owns it");
    detail::encode_segment_handle(out, own_->handle());
  }
  BasicRLock(detail::AttachTag, std::string_view& in)
      : own_(std::make_unique<Storage>(detail::decode_segment_handle(in))), st_(own_->get()) {}
  /// A view of an RLock living inside another object's shared state.
  explicit BasicRLock(detail::RLockState* st) noexcept : st_(st) {}

  using Storage = typename Backend::template Storage<detail::RLockState>;
  // Null for a view; a pointer (not std::optional) keeps GCC 12's -Wmaybe-uninitialized quiet.
  std::unique_ptr<Storage> own_;
  detail::RLockState* st_;
};

namespace detail {
/// Holds an RLock's state for a scope (Value's and Array's accessors); nothing for null (the
/// unlocked RawValue and RawArray). Re-entrant: it nests inside the holder's get_lock().
template <class Backend>
class RLockStateGuard {
public:
  explicit RLockStateGuard(RLockState* st) : st_(st) {
    if (st_ != nullptr) rlock_acquire(*st_, Backend::interprocess, true, std::nullopt);
  }
  ~RLockStateGuard() {
    if (st_ != nullptr) rlock_release(*st_, Backend::interprocess);
  }
  RLockStateGuard(const RLockStateGuard&) = delete;
  RLockStateGuard& operator=(const RLockStateGuard&) = delete;

private:
  RLockState* st_;
};

/// The lock a Value or Array shares with other objects (Python's `Value(..., lock=rlock)`): a
/// view of the caller's RLock, which must outlive the object; in a spawned child, the same lock
/// attached from its handle. Empty when the object uses a lock of its own.
template <class Backend>
class BorrowedRLock {
public:
  BorrowedRLock() = default;
  explicit BorrowedRLock(const BasicRLock<Backend>& lock) noexcept : lock_(&lock) {}
  /// The shared lock's state, or `own` when the object has its own lock.
  [[nodiscard]] RLockState* state_or(RLockState* own) const noexcept { return lock_ != nullptr ? lock_->st_ : own; }
  /// Spawn hand-off: a flag, then the shared lock's handle (StateError when that lock is
  /// itself another object's, as for any lock view).
  void encode(std::string& out) const {
    out.push_back(lock_ != nullptr ? '\1' : '\0');
    if (lock_ != nullptr) HandleAccess::encode(*lock_, out);
  }
  static BorrowedRLock decode(std::string_view& in) {
    if (in.empty()) throw SerializationError("procpool: truncated shared-object handle: missing its lock flag");
    const bool shared = in.front() != '\0';
    in.remove_prefix(1);
    BorrowedRLock borrowed;
    if (shared) {
      borrowed.attached_ = HandleAccess::attach<BasicRLock<Backend>>(in);
      borrowed.lock_ = borrowed.attached_.get();
    }
    return borrowed;
  }

private:
  const BasicRLock<Backend>* lock_ = nullptr;
  std::unique_ptr<BasicRLock<Backend>> attached_;
};
} // namespace detail

using RLock = Processes::RLock;
namespace dummy {
using RLock = Threads::RLock;
} // namespace dummy

} // namespace procpool
