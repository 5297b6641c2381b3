#pragma once
/// @file shared_memory.hpp
/// SharedMemory and ShareableList: Python's multiprocessing.shared_memory, on memfd segments.
///
/// A named segment has no file in /dev/shm: its name is an abstract Unix socket served by the
/// creating process, which hands the segment's descriptor to processes of the same user that
/// attach. The name therefore lives until unlink() or until its creator ends, however it ends
/// (SIGKILL included); the memory lives while any process maps it. Nothing is left behind.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "procpool/backend.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/errors.hpp"

namespace procpool {

/// A block of memory shared between processes (Python's SharedMemory). Three ways to get one:
///  - `SharedMemory(size)`: unnamed; reaches other processes as a Process argument (forked
///    children inherit it, spawned ones attach) like the other shared objects;
///  - `SharedMemory(name, true, size)`: created under `name` (empty: a fresh `psm_xxxxxxxx`
///    name, as Python), FileExistsError if the name is taken;
///  - `SharedMemory(name)` / `SharedMemory(name, false)`: attaches to an existing named one,
///    FileNotFoundError if there is none (never created, unlinked, or its creator ended).
/// A new segment is zero-filled. Pinned. The memory behind buf() and the views is plain memory,
/// unsynchronised (guard it with a Lock, as in Python). One object is used by one thread at a
/// time (close() unmaps it); the names are thread-safe and process-safe.
class SharedMemory : public detail::SharedHandle<SharedMemory, Processes> {
public:
  /// An unnamed segment of `size` bytes. ValueError when size is 0, as Python.
  explicit SharedMemory(std::size_t size);
  /// Python's SharedMemory(name, create, size). Names: 1 to 80 characters, no '/' nor NUL
  /// (ValueError); a leading '/' is ignored, as POSIX shared-memory names.
  explicit SharedMemory(std::string name, bool create = false, std::size_t size = 0);
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  /// close().
  ~SharedMemory();

  /// The name ("" for an unnamed segment).
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// The size in bytes (exact: what the creator asked for).
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// The memory; empty after close().
  [[nodiscard]] std::span<std::byte> buf() const noexcept {
    return {static_cast<std::byte*>(segment_.data()), segment_.data() != nullptr ? size_ : 0};
  }
  /// The memory as an array of T (size() / sizeof(T) of them), for trivially copyable T.
  template <class T>
  [[nodiscard]] std::span<T> as() const {
    static_assert(std::is_trivially_copyable_v<T> && !std::is_pointer_v<T>,
                  "procpool::SharedMemory::as<T>: T must be trivially copyable and not a pointer (heap pointers "
                  "mean nothing in another process)");
    static_assert(alignof(T) <= 4096, "procpool::SharedMemory::as<T>: over-aligned T");
    return {reinterpret_cast<T*>(segment_.data()), segment_.data() != nullptr ? size_ / sizeof(T) : 0};
  }

  /// Unmaps this process's view (Python's close()). The segment and its name stay.
  void close() noexcept;
  /// Removes the name (Python's unlink()): later attaches fail, existing mappings stay valid and
  /// the memory goes with the last of them. Any process of the user may unlink a name, as in
  /// Python; FileNotFoundError if the name is gone already; ValueError for an unnamed segment.
  void unlink();

private:
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const;
  SharedMemory(detail::AttachTag, std::string_view& in);

  std::string name_;
  std::size_t size_ = 0;
  detail::SharedSegment segment_;
};

namespace dummy {
/// Shared memory is one thing for threads and processes: the same type.
using SharedMemory = procpool::SharedMemory;
} // namespace dummy

/// Python's ShareableList: a fixed-length list of None, int, float, bool, str and bytes values in
/// one named SharedMemory, readable and writable by every process that attaches to it by name.
/// An item may be replaced by a value of any of those types whose bytes fit in the slot: a str or
/// bytes item keeps the room it had at creation (its length rounded up to 8 bytes, at least 8),
/// every other slot holds 8 bytes (ValueError past that, as Python). Not synchronised, as in
/// Python: a reader may see a string half-written by another process; guard writers with a Lock.
/// Pinned.
class ShareableList {
public:
  using Bytes = std::vector<std::byte>;
  using Item = std::variant<std::monostate, std::int64_t, double, bool, std::string, Bytes>;

  /// Creates a list holding `items` under `name` (empty: a fresh name, as Python).
  explicit ShareableList(const std::vector<Item>& items, std::string name = {});
  /// Attaches to the list named `name` (FileNotFoundError if there is none; ValueError if that
  /// segment does not hold a ShareableList).
  explicit ShareableList(std::string name);
  ShareableList(const ShareableList&) = delete;
  ShareableList& operator=(const ShareableList&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  /// Item `i`; IndexError past the end (negative indices count from the end, as Python).
  [[nodiscard]] Item get(std::ptrdiff_t i) const;
  [[nodiscard]] Item operator[](std::ptrdiff_t i) const { return get(i); }
  /// Replaces item `i`: IndexError past the end, ValueError if the value does not fit its slot.
  void set(std::ptrdiff_t i, const Item& value);
  /// How many items equal `value`.
  [[nodiscard]] std::size_t count(const Item& value) const;
  /// The first index of `value`; ValueError if it is not there.
  [[nodiscard]] std::size_t index(const Item& value) const;
  /// Every item, in order.
  [[nodiscard]] std::vector<Item> to_vector() const;
  /// The segment (its name() attaches the list elsewhere; unlink() it when done, as Python).
  [[nodiscard]] SharedMemory& shm() noexcept { return shm_; }

private:
  struct Slot;
  Slot* slots() const noexcept;
  std::size_t checked(std::ptrdiff_t i) const;

  SharedMemory shm_;
  std::size_t count_ = 0;
};

} // namespace procpool
