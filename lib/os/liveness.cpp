#include "os/liveness.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace procpool::os {
namespace {

struct TaskStat {
  char state = '?';        // R, S, D, Z, X...
  long num_threads = 0;    // field 20
};

/// /proc/<id>/stat's state letter and thread count; false when the entry is gone (ENOENT sets
/// `gone`) or unreadable. /proc/<tid> works for any thread id, not only for leaders.
bool read_stat(pid_t id, TaskStat& out, bool& gone) noexcept {
  gone = false;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(id));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    gone = errno == ENOENT || errno == ESRCH;
    return false;
  }
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // comm may contain spaces and parentheses
  if (p == nullptr || p[1] == '\0' || p[2] == '\0') return false;
  out.state = p[2];
  // Skip fields 3..19 to reach num_threads (field 20).
  const char* q = p + 2;
  for (int field = 3; field <= 20 && q != nullptr; ++field) {
    q = std::strchr(q, ' ');
    if (q != nullptr) ++q;
  }
  out.num_threads = q != nullptr ? std::atol(q) : 0;
  return true;
}

bool dead_state(char state) noexcept { return state == 'Z' || state == 'X' || state == 'x'; }

} // namespace

int pidfd_open(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

bool process_ended(pid_t pid) noexcept {
  if (pid <= 0) return false;
  const int fd = pidfd_open(pid);
  if (fd >= 0) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, 0);  // readable once the whole thread group has exited
    ::close(fd);
    return r > 0;
  }
  if (errno == ESRCH) return true;  // fully gone (reaped)
  // No pidfd (old kernel, or a seccomp filter): /proc, where a zombie shows state Z. A leader
  // that exited early is Z too while its other threads run (num_threads > 1).
  TaskStat st;
  bool gone = false;
  if (!read_stat(pid, st, gone)) return gone;
  return dead_state(st.state) && st.num_threads <= 1;
}

bool thread_ended(pid_t tid) noexcept {
  if (tid <= 0) return false;
  // kill(tid, 0) finds any live task by pid or tid; ESRCH means fully gone (reaped).
  if (::kill(tid, 0) != 0 && errno == ESRCH) return true;
  TaskStat st;
  bool gone = false;
  if (!read_stat(tid, st, gone)) return gone;
  return dead_state(st.state);
}

} // namespace procpool::os
