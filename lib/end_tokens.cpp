#include "procpool/detail/end_tokens.hpp"
#include "procpool/detail/shm.hpp"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procpool/codec.hpp"
#include "procpool/detail/ring.hpp"
#include "procpool/errors.hpp"

namespace procpool::detail {

namespace {

bool hung_up(int fd) noexcept {
  if (fd < 0) return true;
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  return r > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int dup_cloexec(int fd) {
  const int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) throw_errno("procpool: cannot duplicate a Connection descriptor for a child", errno);
  return d;
}

// ---------------------------------------------------------------------------------------
// Hand-offs in flight: this process's duplicates, kept until the child acknowledges.

struct Pending {
  int ack = -1;      ///< read side of the acknowledgement pipe
  int ack_w = -1;    ///< its write side, which the child opens
  int fds[3] = {-1, -1, -1};
  std::vector<std::shared_ptr<Ring>> rings;
  void close_all() noexcept {
    close_fd(ack);
    close_fd(ack_w);
    for (int& fd : fds) close_fd(fd);
    rings.clear();
  }
};

struct Sweeper {
  std::mutex mutex;
  std::vector<Pending> pending;
  bool running = false;
};

// Built at load time and never destroyed: the sweeper thread may outlive static destructors,
// and no function-local static may be half-built when another thread forks.
Sweeper* const g_sweeper = new Sweeper();

void sweep_loop() {
  Sweeper& s = *g_sweeper;
  std::vector<pollfd> fds;
  for (;;) {
    {
      std::lock_guard lock(s.mutex);
      if (s.pending.empty()) {
        s.running = false;
        return;
      }
      fds.clear();
      for (const Pending& p : s.pending) fds.push_back(pollfd{p.ack, POLLIN, 0});
    }
    // New hand-offs join at the next round (they need no prompt attention: this only decides
    // when the parent's duplicates close).
    const int r = ::poll(fds.data(), fds.size(), 100);
    if (r <= 0) continue;
    std::lock_guard lock(s.mutex);
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      for (auto it = s.pending.begin(); it != s.pending.end(); ++it) {
        if (it->ack != p.fd) continue;
        it->close_all();
        s.pending.erase(it);
        break;
      }
    }
  }
}

void add_pending(Pending p) {
  Sweeper& s = *g_sweeper;
  std::lock_guard lock(s.mutex);
  s.pending.push_back(std::move(p));
  if (!s.running) {
    std::thread(&sweep_loop).detach();
    s.running = true;
  }
}

// A forked child has no sweeper thread, and the duplicates are its parent's business: the
// child must not hold them (it would keep the ends open for as long as it lives). A forked
// child needs no hand-off: it inherits the ends themselves.
void fork_prepare() noexcept { g_sweeper->mutex.lock(); }
void fork_parent() noexcept { g_sweeper->mutex.unlock(); }
void fork_child() noexcept {
  Sweeper& s = *g_sweeper;
  for (Pending& p : s.pending) p.close_all();
  s.pending.clear();
  s.running = false;
  s.mutex.unlock();
}
[[gnu::constructor]] void register_sweeper_atfork() noexcept { ::pthread_atfork(fork_prepare, fork_parent, fork_child); }

// ---------------------------------------------------------------------------------------
// The hand-off record.

struct FdRef {
  std::int32_t fd;
  std::uint64_t dev;
  std::uint64_t ino;
};
struct HandoffRecord {
  std::int32_t pid;
  FdRef token, self_watch, peer_watch, ack;
};

FdRef describe(int fd) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) throw_errno("procpool: fstat of a Connection descriptor failed", errno);
  return FdRef{fd, static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

/// Opens the parent's descriptor `ref` through /proc, checking it is the same pipe.
int open_parent_fd(std::int32_t pid, const FdRef& ref, int flags) {
  return open_creator_fd(pid, ref.fd, ref.dev, ref.ino, "a Connection end's pipe", flags);
}

/// A read side opened through /proc is a FIFO open, and some kernels report hang-up to such a
/// reader only after a writer opened since (fifo w_counter): open and close one at once.
void arm_hangup(int read_fd) noexcept {
  const std::string path = "/proc/self/fd/" + std::to_string(read_fd);
  const int w = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (w >= 0) ::close(w);
}

} // namespace

std::pair<EndTokens, EndTokens> EndTokens::create_pair() {
  int a[2], b[2];
  if (::pipe2(a, O_CLOEXEC) != 0) throw_errno("procpool: pipe2 for a Connection end failed", errno);
  if (::pipe2(b, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(a[0]);
    ::close(a[1]);
    throw_errno("procpool: pipe2 for a Connection end failed", err);
  }
  int a_peer = -1, b_peer = -1;
  try {
    a_peer = dup_cloexec(b[0]);
    b_peer = dup_cloexec(a[0]);
  } catch (...) {
    for (int fd : {a[0], a[1], b[0], b[1], a_peer}) if (fd >= 0) ::close(fd);
    throw;
  }
  return {EndTokens(a[1], a[0], a_peer), EndTokens(b[1], b[0], b_peer)};
}

bool EndTokens::peer_gone() const noexcept { return hung_up(peer_watch_); }

bool EndTokens::release() noexcept {
  if (token_ < 0) return false;
  close_fd(token_);
  const bool last = hung_up(self_watch_);
  close_fd(self_watch_);
  close_fd(peer_watch_);
  return last;
}

void EndTokens::encode_handoff(std::string& out, std::vector<std::shared_ptr<Ring>> rings) const {
  if (token_ < 0) throw StateError("procpool: cannot pass a closed Connection to a child");
  Pending p;
  try {
    int ack[2];
    if (::pipe2(ack, O_CLOEXEC) != 0) throw_errno("procpool: pipe2 for a Connection hand-off failed", errno);
    p.ack = ack[0];
    p.ack_w = ack[1];
    p.fds[0] = dup_cloexec(token_);
    p.fds[1] = dup_cloexec(self_watch_);
    p.fds[2] = dup_cloexec(peer_watch_);
    const HandoffRecord rec{static_cast<std::int32_t>(::getpid()), describe(p.fds[0]), describe(p.fds[1]),
                            describe(p.fds[2]), describe(p.ack_w)};
    codec::encode_to(out, rec);
  } catch (...) {
    p.close_all();
    throw;
  }
  p.rings = std::move(rings);
  add_pending(std::move(p));
}

EndTokens EndTokens::attach_handoff(std::string_view& in) {
  const auto rec = codec::decode_from<HandoffRecord>(in);
  EndTokens t;
  // O_RDWR: a FIFO open for writing alone would fail once no reader is left; being a reader
  // of our own token changes nothing (nobody ever writes to it).
  t.token_ = open_parent_fd(rec.pid, rec.token, O_RDWR);
  t.self_watch_ = open_parent_fd(rec.pid, rec.self_watch, O_RDONLY | O_NONBLOCK);
  t.peer_watch_ = open_parent_fd(rec.pid, rec.peer_watch, O_RDONLY | O_NONBLOCK);
  arm_hangup(t.self_watch_);
  arm_hangup(t.peer_watch_);
  const int ack = open_parent_fd(rec.pid, rec.ack, O_WRONLY | O_NONBLOCK);
  const char byte = 1;
  const ssize_t n = ::write(ack, &byte, 1);
  ::close(ack);
  if (n != 1) throw_errno("procpool: cannot acknowledge a Connection hand-off", errno);
  return t;
}

} // namespace procpool::detail
