#include "os/fd.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace procpool::os {

void UniqueFd::reset(int fd) noexcept {
  // close() is not retried after EINTR: on Linux the descriptor is gone either way.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

int write_all(int fd, const void* data, std::size_t size, WhenFull when_full) noexcept {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n >= 0) {
      p += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN && when_full == WhenFull::Wait) {
      // An inherited non-blocking descriptor (a shared terminal or pipe): wait until it drains.
      pollfd pfd{fd, POLLOUT, 0};
      ::poll(&pfd, 1, -1);
      continue;
    }
    return errno;
  }
  return 0;
}

int pwrite_all(int fd, std::string_view data, std::uint64_t offset) noexcept {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return 0;
}

bool read_exact(int fd, void* data, std::size_t size) noexcept {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {
      errno = 0;
      return false;
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

std::string read_all_from_start(int fd) {
  std::string out;
  char buf[65536];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    offset += n;
  }
  return out;
}

std::optional<std::string> read_file(const char* path) {
  const UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

int set_cloexec(int fd, bool on) noexcept {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return errno;
  const int wanted = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (wanted != flags && ::fcntl(fd, F_SETFD, wanted) != 0) return errno;
  return 0;
}

int set_nonblocking(int fd) noexcept {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return errno;
  if ((flags & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return errno;
  return 0;
}

namespace {
void close_range_or_loop(unsigned first, unsigned last) noexcept {
  if (first > last) return;
  if (::syscall(SYS_close_range, first, last, 0) == 0) return;
  rlimit limit{};
  const unsigned top = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                           ? static_cast<unsigned>(limit.rlim_cur)
                           : 65536U;
  for (unsigned fd = first; fd <= last && fd < top; ++fd) ::close(static_cast<int>(fd));
}
} // namespace

void close_descriptors_except(int keep) noexcept {
  if (keep < 3) {
    close_range_or_loop(3, ~0U);
    return;
  }
  close_range_or_loop(3, static_cast<unsigned>(keep) - 1);
  close_range_or_loop(static_cast<unsigned>(keep) + 1, ~0U);
}

namespace {
/// One msghdr carrying `size` bytes and room for one descriptor (SCM_RIGHTS).
struct FdMessage {
  iovec iov;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  FdMessage(void* data, std::size_t size) noexcept : iov{data, size} {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;
};
} // namespace

int send_with_fd(int sock, const void* data, std::size_t size, int fd) noexcept {
  if (size == 0) return EINVAL;  // the descriptor rides on a byte
  FdMessage m(const_cast<void*>(data), size);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&m.msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  ssize_t sent;
  do {
    sent = ::sendmsg(sock, &m.msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return errno;
  const auto done = static_cast<std::size_t>(sent);
  return done == size ? 0 : write_all(sock, static_cast<const char*>(data) + done, size - done);
}

int recv_with_fd(int sock, void* data, std::size_t size) noexcept {
  if (size == 0) {
    errno = EINVAL;
    return -1;
  }
  FdMessage m(data, size);
  ssize_t got;
  do {
    got = ::recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (got < 0 && errno == EINTR);
  if (got <= 0) {
    if (got == 0) errno = 0;
    return -1;
  }
  int fd = -1;
  const cmsghdr* cmsg = CMSG_FIRSTHDR(&m.msg);
  if (cmsg != nullptr && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
    std::memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  const auto done = static_cast<std::size_t>(got);
  if (fd < 0 || (done < size && !read_exact(sock, static_cast<char*>(data) + done, size - done))) {
    const int saved = fd < 0 ? EPROTO : (errno != 0 ? errno : EPROTO);
    if (fd >= 0) ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

} // namespace procpool::os
