// The children this process started: one record each, kept until reaped, and joined (daemons
// terminated) when the process exits, as Python's multiprocessing does.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <new>

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "load_time.hpp"
#include "os/fd.hpp"
#include "process/children.hpp"
#include "procpool/detail/os/deadline.hpp"
#include "procpool/errors.hpp"

namespace procpool::detail {
namespace {

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

struct Registry {
  std::mutex mutex;
  std::vector<std::shared_ptr<ChildRecord>> children;
  pid_t owner = ::getpid();
  bool exit_handler_installed = false;
};

// Never destroyed: the exit handler uses it. Built at load (below), not a guarded
// function-local static: see load_time.hpp.
constinit LoadTimeObject<Registry> g_registry;
Registry& registry() { return g_registry.get(); }

[[gnu::constructor]] void build_registry_at_load() noexcept { (void)g_registry.get(); }

} // namespace

ChildRecord::~ChildRecord() {
  if (wait_fd >= 0) ::close(wait_fd);
  if (payload_fd >= 0) ::close(payload_fd);
}

void ChildRecord::release_payload_locked() {
  if (payload_fd >= 0) ::close(payload_fd);
  payload_fd = -1;
}

void ChildRecord::try_reap_locked() {
  if (exitcode) return;
  if (via_forkserver) {
    pollfd p{wait_fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return;
    int status = 0;
    // No status means the forkserver itself died, which kills its children (PDEATHSIG).
    exitcode = os::read_exact(wait_fd, &status, sizeof status) ? decode_wait_status(status) : -SIGKILL;
    return;
  }
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) {
    exitcode = decode_wait_status(status);
    release_payload_locked();
  } else if (r < 0 && errno == ECHILD) {
    // Someone else reaped it (SIGCHLD ignored, or a waitpid(-1) elsewhere): status unknown.
    warn_reaped_elsewhere(name, pid);
    exitcode = 255;
    release_payload_locked();
  }
}

bool ChildRecord::wait_until(const std::optional<std::chrono::steady_clock::time_point>& deadline) {
  const bool forever = !deadline || os::is_never(*deadline);
  const auto until = forever ? std::chrono::steady_clock::time_point::max() : *deadline;
  for (;;) {
    {
      std::lock_guard lock(mutex);
      try_reap_locked();
      if (exitcode) return true;
    }
    int timeout_ms = -1;
    if (!forever) {
      // Compared first: `until - now` overflows for a deadline far in the past (time_point::min()).
      const auto now = std::chrono::steady_clock::now();
      if (until <= now) return false;
      const auto left = until - now;
      // poll() takes an int: wait at most a day at a time, then look again.
      const auto capped = std::min<std::chrono::steady_clock::duration>(left, std::chrono::hours(24));
      timeout_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(capped).count());
    }
    pollfd p{wait_fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, timeout_ms);
    if (rc < 0 && errno != EINTR) throw_errno("procpool: waiting for process " + name + " failed", errno);
  }
}

void ChildRecord::send_signal(int sig) {
  std::lock_guard lock(mutex);
  try_reap_locked();
  if (exitcode) return;  // ended: the pid may belong to someone else now
  if (!via_forkserver) {
    if (::syscall(SYS_pidfd_send_signal, wait_fd, sig, nullptr, 0) == 0) return;
  }
  ::kill(pid, sig);
}

std::vector<std::shared_ptr<ChildRecord>> reap_finished() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::shared_ptr<ChildRecord>> live;
  std::erase_if(r.children, [&](const std::shared_ptr<ChildRecord>& c) {
    std::lock_guard child_lock(c->mutex);
    c->try_reap_locked();
    if (!c->exitcode) live.push_back(c);
    return c->exitcode.has_value();
  });
  return live;
}

void join_children_at_exit() noexcept {
  try {
    if (registry().owner != ::getpid()) return;
    auto live = reap_finished();
    for (auto& c : live) {
      if (!c->daemon) continue;
      c->send_signal(SIGTERM);
      if (!c->wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(1))) {
        c->send_signal(SIGKILL);
        c->wait_until(std::nullopt);
      }
    }
    for (auto& c : live) c->wait_until(std::nullopt);
    reap_finished();
  } catch (...) {
    // Nothing sensible to do while exiting.
  }
}

void register_child(const std::shared_ptr<ChildRecord>& record) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (!r.exit_handler_installed) {
    std::atexit(join_children_at_exit);
    r.exit_handler_installed = true;
  }
  r.children.push_back(record);
}

void registry_forget_after_fork() {
  new (&registry()) Registry();  // the old one's mutex may be held by a vanished thread
}

} // namespace procpool::detail
