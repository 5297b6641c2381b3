#pragma once
/// @file sync/array.hpp
/// Array<T> and RawArray<T>: Python's multiprocessing.Array / RawArray, a fixed-size array
/// of T in shared memory, with or without a lock.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <new>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "procpool/backend.hpp"
#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/errors.hpp"
#include "procpool/sync/rlock.hpp"

namespace procpool {
namespace detail {

/// A zero-filled block of bytes: a memfd segment for processes, aligned heap for threads.
template <bool Interprocess>
class Block;

template <>
class Block<true> {
public:
  explicit Block(std::size_t bytes) : segment_(SharedSegment::create(bytes, "procpool-array")) {}
  explicit Block(const SegmentHandle& handle) : segment_(SharedSegment::attach(handle)) {}
  [[nodiscard]] void* data() const noexcept { return segment_.data(); }
  [[nodiscard]] SegmentHandle handle() const noexcept { return segment_.handle(); }

private:
  SharedSegment segment_;
};

template <>
class Block<false> {
public:
  static constexpr std::align_val_t kAlign{64};
  explicit Block(std::size_t bytes) : data_(static_cast<std::byte*>(::operator new(bytes == 0 ? 1 : bytes, kAlign))) {
    std::fill_n(data_.get(), bytes, std::byte{0});
  }
  [[nodiscard]] void* data() const noexcept { return data_.get(); }

private:
  struct Free {
    void operator()(std::byte* p) const noexcept { ::operator delete(p, kAlign); }
  };
  std::unique_ptr<std::byte, Free> data_;
};

struct ArrayHeader {
  RLockState lock;     ///< used by Array, ignored by RawArray
  std::uint64_t size;  ///< element count, read by a spawned child on attach
};

} // namespace detail

/// A fixed-size array of T shared between processes (process backend) or threads (thread
/// backend). `Locked` (Array): get()/set()/to_vector() take the array's RLock, and
/// get_lock() exposes it for multi-step updates; indexing, iteration and span() are plain
/// memory access, like a std::span, with no locking. Not locked (RawArray): no lock at all.
/// Pinned. The size is fixed at construction.
template <class T, class Backend, bool Locked>
class BasicArray : public detail::SharedHandle<BasicArray<T, Backend, Locked>, Backend> {
  static_assert(std::is_trivially_copyable_v<T> && !std::is_pointer_v<T>,
                "procpool::Array<T>/RawArray<T> need a trivially copyable, non-pointer T: the elements live in "
                "memory shared between processes, where heap pointers (std::string, containers) mean nothing. "
                "Send such values through a Queue or Pipe instead.");
  static_assert(alignof(T) <= 64, "procpool::Array<T>: over-aligned element types are not supported");

public:
  using value_type = T;
  using size_type = std::size_t;
  using iterator = T*;
  using const_iterator = const T*;

  /// Python's Array(typecode, n): `n` value-initialised (zero) elements.
  explicit BasicArray(std::size_t n)
    requires std::is_default_constructible_v<T>
      : BasicArray(n, Uninit{}) {
    std::uninitialized_value_construct_n(data(), n);
  }
  /// Python's Array(typecode, [1, 2, 3]).
  BasicArray(std::initializer_list<T> items) : BasicArray(items.size(), Uninit{}) {
    std::uninitialized_copy(items.begin(), items.end(), data());
  }
  /// Python's Array(typecode, range(10)): the elements of any sized or multi-pass range
  /// convertible to T (build a single-pass range into a std::vector first).
  template <std::ranges::input_range R>
    requires(std::ranges::sized_range<R> || std::ranges::forward_range<R>) &&
            std::convertible_to<std::ranges::range_reference_t<R>, T>
  explicit BasicArray(R&& items) : BasicArray(std::forward<R>(items), nullptr) {}

  /// Python's Array(typecode, n, lock=rlock) and Array(typecode, items, lock=rlock): guarded by
  /// an existing RLock, shared with whatever else it guards. The lock must outlive this Array;
  /// get_lock() is that lock. It travels with the Array to spawned children. (Python also
  /// takes a plain Lock: get()/set() under get_lock() would then deadlock, so procpool does not.)
  BasicArray(std::size_t n, const BasicRLock<Backend>& lock)
    requires Locked && std::is_default_constructible_v<T>
      : BasicArray(n, Uninit{}, &lock) {
    std::uninitialized_value_construct_n(data(), n);
  }
  BasicArray(std::initializer_list<T> items, const BasicRLock<Backend>& lock)
    requires Locked
      : BasicArray(items.size(), Uninit{}, &lock) {
    std::uninitialized_copy(items.begin(), items.end(), data());
  }
  template <std::ranges::input_range R>
    requires Locked && (std::ranges::sized_range<R> || std::ranges::forward_range<R>) &&
             std::convertible_to<std::ranges::range_reference_t<R>, T>
  BasicArray(R&& items, const BasicRLock<Backend>& lock) : BasicArray(std::forward<R>(items), &lock) {}

private:
  template <class R>
  BasicArray(R&& items, const BasicRLock<Backend>* lock) : BasicArray(range_size(items), Uninit{}, lock) {
    std::size_t i = 0;
    for (auto&& x : items) {
      if (i == size_) break;
      ::new (static_cast<void*>(data_ + i++)) T(static_cast<T>(x));
    }
  }

public:
  BasicArray(const BasicArray&) = delete;
  BasicArray& operator=(const BasicArray&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] T* data() const noexcept { return data_; }
  [[nodiscard]] T* begin() const noexcept { return data_; }
  [[nodiscard]] T* end() const noexcept { return data_ + size_; }
  /// Unlocked, unchecked element access (std::span-like).
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return data_[i]; }
  /// Unlocked element access; IndexError when out of range.
  [[nodiscard]] T& at(std::size_t i) const {
    check_index(i);
    return data_[i];
  }
  /// The elements as a std::span (unlocked).
  [[nodiscard]] std::span<T> span() const noexcept { return {data_, size_}; }
  /// Python's get_obj(): the raw elements.
  [[nodiscard]] std::span<T> get_obj() const noexcept { return span(); }

  /// Python's `a[i]` on a synchronised array: a copy, under the lock when Locked.
  [[nodiscard]] T get(std::size_t i) const {
    check_index(i);
    Guard g(guarded_by());
    return data_[i];
  }
  /// Python's `a[i] = v`, under the lock when Locked.
  void set(std::size_t i, const T& v) {
    check_index(i);
    Guard g(guarded_by());
    data_[i] = v;
  }
  /// Python's `a[:]`: a consistent snapshot (under the lock when Locked).
  [[nodiscard]] std::vector<T> to_vector() const {
    Guard g(guarded_by());
    return std::vector<T>(begin(), end());
  }
  /// The lock guarding this array (an RLock, as in Python).
  [[nodiscard]] BasicRLock<Backend>& get_lock() noexcept
    requires Locked
  {
    return lock_;
  }

private:
  struct Uninit {};
  struct NoLock {
    explicit NoLock(detail::RLockState*) noexcept {}
  };
  using LockMember = std::conditional_t<Locked, BasicRLock<Backend>, NoLock>;

  static constexpr std::size_t kDataOffset =
      (sizeof(detail::ArrayHeader) + alignof(T) - 1) / alignof(T) * alignof(T);

  using Guard = detail::RLockStateGuard<Backend>;
  [[nodiscard]] detail::RLockState* guarded_by() const noexcept {
    if constexpr (Locked)
      return lock_.st_;
    else
      return nullptr;
  }
  struct NoBorrowed {
    NoBorrowed() = default;
    explicit NoBorrowed(const BasicRLock<Backend>&) noexcept {}
    [[nodiscard]] detail::RLockState* state_or(detail::RLockState* own) const noexcept { return own; }
  };
  using Borrowed = std::conditional_t<Locked, detail::BorrowedRLock<Backend>, NoBorrowed>;
  static Borrowed borrow(const BasicRLock<Backend>* lock) {
    if (lock == nullptr) return Borrowed{};
    return Borrowed(*lock);
  }

  static std::size_t bytes_for(std::size_t n) {
    if (n > (SIZE_MAX - kDataOffset) / sizeof(T))
      throw ValueError("procpool: Array of " + std::to_string(n) + " elements is too large to address");
    return kDataOffset + n * sizeof(T);
  }

  /// The bytes of a new array, refused (ValueError) when they cannot fit in memory: the
  /// zero-filling would otherwise commit pages until the OOM killer ends the process.
  static std::size_t checked_bytes_for(std::size_t n) {
    const std::size_t bytes = bytes_for(n);
    detail::check_memory_fits(bytes, ("Array of " + std::to_string(n) + " elements").c_str());
    return bytes;
  }

  BasicArray(std::size_t n, Uninit, const BasicRLock<Backend>* shared_lock = nullptr)
      : block_(checked_bytes_for(n)),
        header_(::new (block_.data()) detail::ArrayHeader{}),
        data_(reinterpret_cast<T*>(static_cast<unsigned char*>(block_.data()) + kDataOffset)),
        size_(n),
        borrowed_(borrow(shared_lock)),
        lock_(borrowed_.state_or(&header_->lock)) {
    header_->size = n;
  }

  // Spawn hand-off (detail::SharedHandle): the block's segment, header and own lock included,
  // and the shared lock's handle when there is one.
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const {
    detail::encode_segment_handle(out, block_.handle());
    if constexpr (Locked) borrowed_.encode(out);
  }
  BasicArray(detail::AttachTag, std::string_view& in) : BasicArray(detail::decode_segment_handle(in), in) {}
  BasicArray(const detail::SegmentHandle& handle, std::string_view& in)
      : block_(handle),
        header_(std::launder(static_cast<detail::ArrayHeader*>(block_.data()))),
        data_(std::launder(reinterpret_cast<T*>(static_cast<unsigned char*>(block_.data()) + kDataOffset))),
        size_(static_cast<std::size_t>(header_->size)),
        borrowed_(decode_borrowed(in)),
        lock_(borrowed_.state_or(&header_->lock)) {
    if (bytes_for(size_) > handle.size) throw SerializationError("procpool: attached Array segment is too small");
  }
  static Borrowed decode_borrowed(std::string_view& in) {
    if constexpr (Locked)
      return detail::BorrowedRLock<Backend>::decode(in);
    else
      return {};
  }

  template <class R>
  static std::size_t range_size(R& items) {
    if constexpr (std::ranges::sized_range<R>)
      return static_cast<std::size_t>(std::ranges::size(items));
    else
      return static_cast<std::size_t>(std::ranges::distance(items));
  }

  void check_index(std::size_t i) const {
    if (i >= size_)
      throw IndexError("procpool: array index " + std::to_string(i) + " out of range (size " + std::to_string(size_) +
                       ")");
  }

  detail::Block<Backend::interprocess> block_;
  detail::ArrayHeader* header_;
  T* data_;
  std::size_t size_;
  Borrowed borrowed_;
  LockMember lock_;
};

/// Process backend: Python's multiprocessing.Array (locked) and RawArray.
template <class T>
using Array = Processes::Array<T>;
template <class T>
using RawArray = Processes::RawArray<T>;
namespace dummy {
template <class T>
using Array = Threads::Array<T>;
template <class T>
using RawArray = Threads::RawArray<T>;
} // namespace dummy

} // namespace procpool
