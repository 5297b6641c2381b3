#include "procpool/detail/shm.hpp"

#include <cerrno>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os/fd.hpp"
#include "procpool/errors.hpp"

namespace procpool::detail {

int open_creator_fd(pid_t creator_pid, int fd, std::uint64_t dev, std::uint64_t ino, const char* what,
                    int open_flags) {
  const std::string path = "/proc/" + std::to_string(creator_pid) + "/fd/" + std::to_string(fd);
  const int opened = ::open(path.c_str(), open_flags | O_CLOEXEC | O_NOCTTY);
  if (opened < 0) {
    const int err = errno;
    throw ProcessError("procpool: cannot attach to " + std::string(what) + " " + path + ": " + std::strerror(err) +
                       " (its creator must keep it alive until the child has started)");
  }
  struct stat st {};
  if (::fstat(opened, &st) != 0 || static_cast<std::uint64_t>(st.st_dev) != dev ||
      static_cast<std::uint64_t>(st.st_ino) != ino) {
    ::close(opened);
    // The creator closed the object and the number now names another file: writing there
    // would corrupt it.
    throw ProcessError("procpool: cannot attach to " + std::string(what) + ": " + path +
                       " no longer holds it (its creator dropped it before the child attached; keep the object "
                       "alive until the child has started)");
  }
  return opened;
}

SharedSegment SharedSegment::create(std::size_t size, const char* name, bool populate) {
  if (size == 0) size = 1;
  SharedSegment seg;
  seg.fd_ = ::memfd_create(name, MFD_CLOEXEC);
  if (seg.fd_ < 0) throw_errno("procpool: memfd_create failed", errno);
  if (::ftruncate(seg.fd_, static_cast<off_t>(size)) != 0) throw_errno("procpool: ftruncate of shared segment failed", errno);
  struct stat st {};
  if (::fstat(seg.fd_, &st) != 0) throw_errno("procpool: fstat of shared segment failed", errno);
  seg.dev_ = static_cast<std::uint64_t>(st.st_dev);
  seg.ino_ = static_cast<std::uint64_t>(st.st_ino);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), seg.fd_, 0);
  if (p == MAP_FAILED)
    throw_errno("procpool: mmap of " + std::to_string(size) + "-byte shared segment failed", errno);
  seg.data_ = p;
  seg.size_ = size;
  return seg;
}

SharedSegment SharedSegment::create_written(std::span<const std::string_view> pieces, const char* name) {
  std::size_t size = 0;
  for (const std::string_view piece : pieces) size += piece.size();
  const int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) throw_errno("procpool: memfd_create failed", errno);
  if (::ftruncate(fd, static_cast<off_t>(size == 0 ? 1 : size)) != 0) {
    const int err = errno;
    ::close(fd);
    throw_errno("procpool: ftruncate of shared segment failed", err);
  }
  std::uint64_t offset = 0;
  for (const std::string_view piece : pieces) {
    if (const int err = os::pwrite_all(fd, piece, offset); err != 0) {
      ::close(fd);
      throw_errno("procpool: cannot write a " + std::to_string(size) + "-byte shared segment", err);
    }
    offset += piece.size();
  }
  return adopt(fd);
}

SharedSegment SharedSegment::attach(const SegmentHandle& handle, bool populate) {
  SharedSegment seg;
  seg.fd_ = open_creator_fd(handle.creator_pid, handle.fd, handle.dev, handle.ino, "shared segment");
  seg.dev_ = handle.dev;
  seg.ino_ = handle.ino;
  struct stat st {};
  if (::fstat(seg.fd_, &st) != 0 || static_cast<std::uint64_t>(st.st_size) < handle.size)
    throw ProcessError("procpool: the attached shared segment is smaller than its handle says");
  void* p = ::mmap(nullptr, handle.size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), seg.fd_, 0);
  if (p == MAP_FAILED) throw_errno("procpool: mmap of an attached shared segment failed", errno);
  seg.data_ = p;
  seg.size_ = handle.size;
  return seg;
}

SharedSegment SharedSegment::adopt(int fd) {
  SharedSegment seg;
  seg.fd_ = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("procpool: fstat of a received shared segment failed", errno);
  seg.dev_ = static_cast<std::uint64_t>(st.st_dev);
  seg.ino_ = static_cast<std::uint64_t>(st.st_ino);
  const auto size = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, size == 0 ? 1 : size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_errno("procpool: mmap of a received shared segment failed", errno);
  seg.data_ = p;
  seg.size_ = size == 0 ? 1 : size;
  return seg;
}

SharedSegment::~SharedSegment() {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
}

SegmentHandle SharedSegment::handle() const noexcept { return {::getpid(), fd_, size_, dev_, ino_}; }

void SharedSegment::overwrite(std::span<const std::string_view> pieces) {
  std::size_t size = 0;
  for (const std::string_view piece : pieces) size += piece.size();
  if (size == 0) size = 1;
  if (size != size_) {
    // A larger spare's tail is freed, a smaller one grows; the mapping keeps its pages.
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) throw_errno("procpool: cannot resize a shared segment", errno);
    void* p = ::mremap(data_, size_, size, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) throw_errno("procpool: cannot remap a resized shared segment", errno);
    data_ = p;
    size_ = size;
  }
  auto* dst = static_cast<char*>(data_);
  for (const std::string_view piece : pieces) {
    if (!piece.empty()) std::memcpy(dst, piece.data(), piece.size());
    dst += piece.size();
  }
}

SpareSegments::~SpareSegments() { clear(); }

void SpareSegments::clear() noexcept {
  std::vector<SharedSegment> spares;
  {
    std::lock_guard lock(mutex_);
    spares.swap(spares_);
    bytes_ = 0;
  }
}

SharedSegment SpareSegments::write(std::span<const std::string_view> pieces, const char* name) {
  std::size_t size = 0;
  for (const std::string_view piece : pieces) size += piece.size();
  SharedSegment segment;
  {
    std::lock_guard lock(mutex_);
    if (!spares_.empty()) {
      // Best fit: the smallest that holds it (shrinking frees only its excess), else the largest.
      auto best = spares_.begin();
      for (auto it = spares_.begin(); it != spares_.end(); ++it) {
        const bool fits = it->size() >= size;
        const bool best_fits = best->size() >= size;
        if ((fits && (!best_fits || it->size() < best->size())) || (!fits && !best_fits && it->size() > best->size()))
          best = it;
      }
      bytes_ -= best->size();
      segment = std::move(*best);
      spares_.erase(best);
    }
  }
  if (segment.data() == nullptr) return SharedSegment::create_written(pieces, name);
  segment.overwrite(pieces);
  return segment;
}

void SpareSegments::keep(SharedSegment&& segment) noexcept {
  if (segment.data() == nullptr) return;
  SharedSegment kept(std::move(segment));
  std::lock_guard lock(mutex_);
  if (spares_.size() < kMaxSpares && bytes_ + kept.size() <= max_bytes_) {
    bytes_ += kept.size();
    spares_.push_back(std::move(kept));
  }
}

} // namespace procpool::detail
