#pragma once
/// @file detail/shm.hpp
/// Shared memory that never leaks: every segment is a memfd (no /dev/shm name), mapped
/// MAP_SHARED. Forked children inherit the mapping; a spawned child attaches through the
/// creator's /proc/<pid>/fd/<fd>. The memory is gone when the last mapping and fd close.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <memory>
#include <mutex>
#include <vector>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <sys/types.h>

namespace procpool::detail {

/// What a spawned child needs to attach to a segment created by another process. The device
/// and inode identify the memfd itself: the fd number alone may name another file by the time
/// the child looks (the creator closed the segment and reused the number).
struct SegmentHandle {
  pid_t creator_pid = 0;
  int fd = -1;
  std::size_t size = 0;
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
};

/// Opens the creator's fd `fd` through /proc/<creator_pid>/fd/<fd> with `open_flags` (plus
/// close-on-exec) and checks that it is still the file identified by `dev`/`ino`. Throws
/// ProcessError naming `what` when the creator is gone or the descriptor now holds something else.
/// The one way every shared object (segment, ring, Connection end) reaches a spawned child.
int open_creator_fd(pid_t creator_pid, int fd, std::uint64_t dev, std::uint64_t ino, const char* what,
                    int open_flags = O_RDWR | O_NONBLOCK);

/// A memfd-backed MAP_SHARED mapping. Move-only; unmaps (and closes its fd) on destruction.
/// Not thread-safe to move or destroy concurrently with use; the memory itself is shared.
class SharedSegment {
public:
  SharedSegment() = default;
  /// Creates a zero-filled segment of `size` bytes. `name` appears in /proc/<pid>/maps only.
  /// `populate`: map every page now, in one system call, instead of one fault at a time (for a
  /// segment that is about to be written or read whole: a large out-of-band item).
  static SharedSegment create(std::size_t size, const char* name = "procpool", bool populate = false);
  /// Creates a segment holding `pieces` back to back, written with pwrite: the kernel allocates
  /// each page and copies into it without zeroing it first (a mapping is zeroed, then copied:
  /// 1.8x slower for 256 MiB here). For a large out-of-band item written once by its sender.
  static SharedSegment create_written(std::span<const std::string_view> pieces, const char* name);
  /// Maps the segment described by `handle` (created by another, live process).
  static SharedSegment attach(const SegmentHandle& handle, bool populate = false);
  /// Maps the whole memfd `fd`, which the segment then owns (closed on failure too).
  static SharedSegment adopt(int fd);
  /// Resizes the segment (file and mapping) to hold `pieces` back to back and copies them in
  /// through the mapping: for a spare whose pages, and this process's mapping of them, exist
  /// already (SpareSegments), a plain memcpy. Throws ProcessError.
  void overwrite(std::span<const std::string_view> pieces);

  SharedSegment(SharedSegment&& other) noexcept { swap(other); }
  SharedSegment& operator=(SharedSegment&& other) noexcept {
    SharedSegment tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;
  ~SharedSegment();

  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// A handle valid while this process keeps the segment open.
  [[nodiscard]] SegmentHandle handle() const noexcept;

private:
  void swap(SharedSegment& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(fd_, other.fd_);
    std::swap(dev_, other.dev_);
    std::swap(ino_, other.ino_);
  }
  void* data_ = nullptr;
  std::size_t size_ = 0;
  int fd_ = -1;
  std::uint64_t dev_ = 0;
  std::uint64_t ino_ = 0;
};

/// This process's finished out-of-band items (a Pool's arguments and results), kept mapped for
/// reuse: writing a 256 MiB item into a spare's existing, mapped pages is a memcpy, where a
/// fresh memfd costs an allocation of every page and its unmap a free of every page (~6x).
/// Bounded by `max_bytes` and kMaxSpares. Thread-safe. A segment must be kept only once no
/// other process can still read it (its reader said so), since the next item rewrites it.
class SpareSegments {
public:
  static constexpr std::size_t kMaxSpares = 8;
  explicit SpareSegments(std::size_t max_bytes) noexcept : max_bytes_(max_bytes) {}
  SpareSegments(const SpareSegments&) = delete;
  SpareSegments& operator=(const SpareSegments&) = delete;
  ~SpareSegments();
  /// A segment holding `pieces` back to back: the smallest spare that holds them (else the
  /// largest, grown) rewritten, or a fresh one (SharedSegment::create_written).
  [[nodiscard]] SharedSegment write(std::span<const std::string_view> pieces, const char* name);
  /// Keeps `segment`'s memfd for a later write() if the bound allows, else frees it.
  void keep(SharedSegment&& segment) noexcept;
  /// Frees every spare.
  void clear() noexcept;
  [[nodiscard]] bool empty() noexcept {
    std::lock_guard lock(mutex_);
    return spares_.empty();
  }

private:
  std::mutex mutex_;
  std::vector<SharedSegment> spares_;
  std::size_t bytes_ = 0;
  std::size_t max_bytes_;
};

/// The process backend's storage: a T built in place in its own shared segment (pinned: it
/// never moves). T must be trivially destructible: a forked child that exits must not run a
/// destructor on state its parent still uses.
template <class T>
class SharedObject {
  static_assert(std::is_trivially_destructible_v<T>,
                "state kept in shared memory must be trivially destructible");

public:
  template <class... Args>
    requires(!(sizeof...(Args) == 1 && (std::is_same_v<std::remove_cvref_t<Args>, SegmentHandle> && ...)))
  explicit SharedObject(Args&&... args)
      : segment_(SharedSegment::create(sizeof(T), "procpool-object")),
        object_(new (segment_.data()) T(std::forward<Args>(args)...)) {}
  /// Attaches to an object created by another process (spawn).
  explicit SharedObject(const SegmentHandle& handle)
      : segment_(SharedSegment::attach(handle)), object_(std::launder(static_cast<T*>(segment_.data()))) {}

  SharedObject(const SharedObject&) = delete;
  SharedObject& operator=(const SharedObject&) = delete;

  [[nodiscard]] T* get() const noexcept { return object_; }
  T* operator->() const noexcept { return object_; }
  T& operator*() const noexcept { return *object_; }
  [[nodiscard]] SegmentHandle handle() const noexcept { return segment_.handle(); }

private:
  SharedSegment segment_;
  T* object_;
};

/// The thread backend's storage: the same T on the heap.
template <class T>
class LocalObject {
public:
  template <class... Args>
  explicit LocalObject(Args&&... args) : object_(std::make_unique<T>(std::forward<Args>(args)...)) {}
  [[nodiscard]] T* get() const noexcept { return object_.get(); }
  T* operator->() const noexcept { return object_.get(); }
  T& operator*() const noexcept { return *object_; }

private:
  std::unique_ptr<T> object_;
};

} // namespace procpool::detail
