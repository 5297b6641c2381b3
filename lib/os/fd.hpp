#pragma once
/// @file os/fd.hpp
/// File descriptors: an owning handle, whole reads and writes, descriptor flags.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace procpool::os {

/// Owns one descriptor and closes it on destruction; -1 when empty. Move-only. Not thread-safe
/// (one owner at a time); the descriptor itself may be used from any thread.
class UniqueFd {
public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Gives the descriptor up without closing it.
  [[nodiscard]] int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  /// Closes the held descriptor (if any) and holds `fd` instead.
  void reset(int fd = -1) noexcept;

private:
  int fd_ = -1;
};

/// What write_all does when a non-blocking descriptor is full (EAGAIN).
enum class WhenFull {
  Wait,  ///< poll() until it drains, then go on
  Stop,  ///< give up and report EAGAIN: for output that is not worth blocking for
};

/// Writes all of `data`, resuming after EINTR and short writes. Returns 0, or the errno of the
/// write that failed (EPIPE: the reader is gone). Async-signal-safe; thread-safe as write(2) is.
[[nodiscard]] int write_all(int fd, const void* data, std::size_t size, WhenFull when_full = WhenFull::Wait) noexcept;
[[nodiscard]] inline int write_all(int fd, std::string_view data, WhenFull when_full = WhenFull::Wait) noexcept {
  return write_all(fd, data.data(), data.size(), when_full);
}
/// write_all at a file offset (pwrite): the descriptor's own offset does not move.
[[nodiscard]] int pwrite_all(int fd, std::string_view data, std::uint64_t offset) noexcept;

/// Reads exactly `size` bytes, resuming after EINTR and short reads. True when all arrived;
/// false at end of file (errno 0) or on an error (errno set). Async-signal-safe.
[[nodiscard]] bool read_exact(int fd, void* data, std::size_t size) noexcept;

/// Everything from offset 0 to the end of `fd` (pread: the descriptor's offset does not move).
/// Stops at the first error. Thread-safe.
[[nodiscard]] std::string read_all_from_start(int fd);

/// The whole content of a small file (`/proc/...`, `/sys/...`); nullopt when it cannot be
/// opened or read. Thread-safe.
[[nodiscard]] std::optional<std::string> read_file(const char* path);
[[nodiscard]] inline std::optional<std::string> read_file(const std::string& path) { return read_file(path.c_str()); }

/// Sets or clears FD_CLOEXEC. Returns 0 or errno. Async-signal-safe.
[[nodiscard]] int set_cloexec(int fd, bool on) noexcept;
/// Sets O_NONBLOCK on the open file description (shared with every dup of it). Returns 0 or errno.
[[nodiscard]] int set_nonblocking(int fd) noexcept;

/// Closes every descriptor from 3 up except `keep` (-1: none), for a forked helper that must hold
/// nothing of its parent's open (pipes, files) but the one it waits on. close_range(2), or one by
/// one up to RLIMIT_NOFILE on kernels before 5.9. Async-signal-safe. (os::spawn's child does the
/// same with raw system calls: a CLONE_VM child must call nothing instrumented.)
void close_descriptors_except(int keep) noexcept;

/// Sends `size` bytes over the unix stream socket `sock` with descriptor `fd` attached
/// (SCM_RIGHTS, on the first byte). Returns 0 or errno (EPIPE when the peer is gone: no SIGPIPE).
/// Thread-safe as far as the socket is (one sender at a time).
[[nodiscard]] int send_with_fd(int sock, const void* data, std::size_t size, int fd) noexcept;
/// Receives exactly `size` bytes from `sock` and the descriptor sent with them, close-on-exec.
/// Returns the descriptor, or -1 with errno set: 0 at end of stream (the peer closed), EPROTO
/// when the bytes came without a descriptor. Thread-safe as far as the socket is.
[[nodiscard]] int recv_with_fd(int sock, void* data, std::size_t size) noexcept;

} // namespace procpool::os
