#pragma once
/// @file sync/value.hpp
/// Value<T> and RawValue<T>: Python's multiprocessing.Value / RawValue, a single T in
/// shared memory, with or without a lock.
#include <concepts>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>

#include "procpool/backend.hpp"
#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/sync/rlock.hpp"

namespace procpool {
namespace detail {
/// Raw storage, so that T need not be default-constructible; T is built in place once.
template <class T>
struct ValueSlot {
  alignas(T) unsigned char bytes[sizeof(T)];
};
template <class T, bool Locked>
struct ValueState {
  ValueSlot<T> slot;
};
template <class T>
struct ValueState<T, true> {
  RLockState lock;
  ValueSlot<T> slot;
};
} // namespace detail

/// One T in shared memory (process backend) or on the heap (thread backend).
/// `Locked` (Value): value()/set() take the object's RLock, get_lock() exposes it for
/// read-modify-write sequences. Not locked (RawValue): plain shared memory.
/// Pinned. value()/set() are thread-safe and process-safe when Locked; get_obj() never is.
template <class T, class Backend, bool Locked>
class BasicValue : public detail::SharedHandle<BasicValue<T, Backend, Locked>, Backend> {
  static_assert(std::is_trivially_copyable_v<T> && !std::is_pointer_v<T>,
                "procpool::Value<T>/RawValue<T> need a trivially copyable, non-pointer T: the bytes live in "
                "memory shared between processes, where heap pointers (std::string, containers) mean nothing. "
                "Send such values through a Queue or Pipe instead.");

public:
  /// Python's Value(typecode) with no initial value: T{} (zero for arithmetic types).
  BasicValue()
    requires std::is_default_constructible_v<T>
      : BasicValue(T{}) {}
  /// Python's Value(typecode, initial).
  explicit BasicValue(const T& initial) : state_() { ::new (static_cast<void*>(state_->slot.bytes)) T(initial); }
  /// Python's Value(typecode, initial, lock=rlock): guarded by an existing RLock, shared with
  /// whatever else it guards (several values updated under one lock). The lock must outlive
  /// this Value; get_lock() is that lock. It travels with the Value to spawned children.
  BasicValue(const T& initial, const BasicRLock<Backend>& lock)
    requires Locked
      : state_(), borrowed_(lock), lock_(lock_state(*state_, borrowed_)) {
    ::new (static_cast<void*>(state_->slot.bytes)) T(initial);
  }
  /// Python also takes a plain Lock; procpool takes an RLock only, since value() and set()
  /// inside `std::lock_guard g(v.get_lock())` would deadlock on a plain one.
  template <class L>
    requires std::same_as<L, BasicLock<Backend>>
  BasicValue(const T&, L&) {
    static_assert(sizeof(L) == 0, "procpool::Value(initial, lock): pass an RLock (value()/set() under get_lock() "
                                  "would deadlock on a plain Lock)");
  }
  BasicValue(const BasicValue&) = delete;
  BasicValue& operator=(const BasicValue&) = delete;

  /// Python's `.value` read: a copy, taken under the lock when Locked.
  [[nodiscard]] T value() const {
    if constexpr (Locked) {
      Guard g(guarded_by());
      return obj();
    } else {
      return obj();
    }
  }
  /// Python's `.value = x`, under the lock when Locked.
  void set(const T& v) {
    if constexpr (Locked) {
      Guard g(guarded_by());
      obj() = v;
    } else {
      obj() = v;
    }
  }
  /// The lock guarding this value (an RLock, as in Python): hold it around read-modify-write
  /// (`std::lock_guard g(v.get_lock()); v.set(v.value() + 1);`).
  [[nodiscard]] BasicRLock<Backend>& get_lock() noexcept
    requires Locked
  {
    return lock_;
  }
  /// The shared T itself, without locking (Python's get_obj()).
  [[nodiscard]] T& get_obj() const noexcept { return obj(); }

private:
  using State = detail::ValueState<T, Locked>;
  struct NoLock {
    explicit NoLock(detail::RLockState*) noexcept {}
  };
  using LockMember = std::conditional_t<Locked, BasicRLock<Backend>, NoLock>;

  using Guard = detail::RLockStateGuard<Backend>;
  [[nodiscard]] detail::RLockState* guarded_by() const noexcept {
    if constexpr (Locked)
      return lock_.st_;
    else
      return nullptr;
  }

  // Spawn hand-off (detail::SharedHandle): the state segment, own lock included, and the
  // shared lock's handle when there is one.
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const {
    detail::encode_segment_handle(out, state_.handle());
    if constexpr (Locked) borrowed_.encode(out);
  }
  BasicValue(detail::AttachTag, std::string_view& in)
      : state_(detail::decode_segment_handle(in)), borrowed_(decode_borrowed(in)), lock_(lock_state(*state_, borrowed_)) {}

  struct NoBorrowed {};
  using Borrowed = std::conditional_t<Locked, detail::BorrowedRLock<Backend>, NoBorrowed>;
  static Borrowed decode_borrowed(std::string_view& in) {
    if constexpr (Locked)
      return detail::BorrowedRLock<Backend>::decode(in);
    else
      return {};
  }
  static detail::RLockState* lock_state(State& st, const Borrowed& borrowed) noexcept {
    if constexpr (Locked)
      return borrowed.state_or(&st.lock);
    else
      return nullptr;
  }
  T& obj() const noexcept { return *std::launder(reinterpret_cast<T*>(state_->slot.bytes)); }

  typename Backend::template Storage<State> state_;
  Borrowed borrowed_{};
  LockMember lock_{lock_state(*state_, borrowed_)};
};

/// Process backend: Python's multiprocessing.Value (locked) and RawValue.
template <class T>
using Value = Processes::Value<T>;
template <class T>
using RawValue = Processes::RawValue<T>;
namespace dummy {
template <class T>
using Value = Threads::Value<T>;
template <class T>
using RawValue = Threads::RawValue<T>;
} // namespace dummy

} // namespace procpool
