#include "procpool/detail/shm.hpp"

#include <cerrno>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "procpool/errors.hpp"

namespace procpool::detail {

SharedSegment SharedSegment::create(std::size_t size, const char* name) {
  if (size == 0) size = 1;
  SharedSegment seg;
  seg.fd_ = ::memfd_create(name, MFD_CLOEXEC);
  if (seg.fd_ < 0) throw_errno("procpool: memfd_create failed", errno);
  if (::ftruncate(seg.fd_, static_cast<off_t>(size)) != 0) throw_errno("procpool: ftruncate of shared segment failed", errno);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, seg.fd_, 0);
  if (p == MAP_FAILED)
    throw_errno("procpool: mmap of " + std::to_string(size) + "-byte shared segment failed", errno);
  seg.data_ = p;
  seg.size_ = size;
  return seg;
}

SharedSegment SharedSegment::attach(const SegmentHandle& handle) {
  const std::string path = "/proc/" + std::to_string(handle.creator_pid) + "/fd/" + std::to_string(handle.fd);
  SharedSegment seg;
  seg.fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (seg.fd_ < 0)
    throw_errno("procpool: cannot attach to shared segment " + path +
                    " (its creator must stay alive until the child has started)",
                errno);
  void* p = ::mmap(nullptr, handle.size, PROT_READ | PROT_WRITE, MAP_SHARED, seg.fd_, 0);
  if (p == MAP_FAILED) throw_errno("procpool: mmap of attached segment " + path + " failed", errno);
  seg.data_ = p;
  seg.size_ = handle.size;
  return seg;
}

SharedSegment::~SharedSegment() {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
}

SegmentHandle SharedSegment::handle() const noexcept { return {::getpid(), fd_, size_}; }

} // namespace procpool::detail
