// The out-of-line parts of the synchronisation primitives: id caches, owner liveness and
// the contended path of the robust mutex.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os/proc.hpp"
#include "procpool/detail/robust_mutex.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/log.hpp"

namespace procpool::detail {
namespace {

// Runs in the child of fork() (in its only thread): the cached ids belong to the parent.
void reset_id_caches_in_child() noexcept {
  g_cached_pid.store(0, std::memory_order_relaxed);
  t_cached_tid = 0;
}

// Registered at load time, before any thread can fork. Not a function-local static: a fork
// while another thread ran its guarded initialisation would copy the guard "in progress" into
// the child, whose first lock call would then wait for it forever (__cxa_guard_acquire).
// The flag covers a lock call from another object's static initialiser that runs first.
std::atomic<bool> g_atfork_registered{false};
void register_atfork_once() noexcept {
  if (g_atfork_registered.load(std::memory_order_acquire)) return;
  if (!g_atfork_registered.exchange(true, std::memory_order_acq_rel))
    ::pthread_atfork(nullptr, nullptr, &reset_id_caches_in_child);
}
[[gnu::constructor]] void register_atfork_at_load() noexcept { register_atfork_once(); }

// First slice of a blocked lock waiter before it checks the owner; slices double up to the
// maximum, which bounds how long a dead owner goes unnoticed.
constexpr auto kFirstSlice = std::chrono::milliseconds(2);
constexpr auto kMaxSlice = std::chrono::milliseconds(100);
constexpr std::uint32_t kMaxSpin = 100;

} // namespace

pid_t refresh_cached_pid() noexcept {
  register_atfork_once();
  const pid_t pid = ::getpid();
  g_cached_pid.store(pid, std::memory_order_relaxed);
  return pid;
}

pid_t refresh_cached_tid() noexcept {
  register_atfork_once();
  const auto tid = static_cast<pid_t>(::syscall(SYS_gettid));
  t_cached_tid = tid;
  return tid;
}

bool owner_alive(pid_t id, OwnerScope scope) noexcept {
  if (scope == OwnerScope::None || id <= 0) return true;
  if (scope == OwnerScope::Process && id == current_pid()) return true;
  if (scope == OwnerScope::Thread && id == current_tid()) return true;
  // kill(id, 0) finds any live task by pid or tid; ESRCH means fully gone (reaped).
  if (::kill(id, 0) != 0 && errno == ESRCH) return false;
  // A killed child stays a zombie until its parent reaps it, and the parent may well be the
  // waiter, so the state letter matters: Z/X is dead. A process whose main thread exited
  // early is also 'Z' but still has other threads (field 20, num_threads > 1).
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(id));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;  // no entry: gone; other errors: assume alive
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return true;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // comm may contain spaces and parentheses
  if (p == nullptr || p[1] == '\0' || p[2] == '\0') return true;
  const char state = p[2];
  if (state != 'Z' && state != 'X' && state != 'x') return true;
  if (scope == OwnerScope::Thread) return false;
  // Skip fields 3..19 to reach num_threads (field 20).
  const char* q = p + 2;
  for (int field = 3; field <= 20 && q != nullptr; ++field) {
    q = std::strchr(q, ' ');
    if (q != nullptr) ++q;
  }
  if (q == nullptr) return false;
  return std::atol(q) > 1;
}

void check_memory_fits(std::size_t bytes, const char* what) {
  const auto available = os::available_memory();
  if (!available || bytes <= *available) return;
  throw ValueError(std::string("procpool: ") + what + " of " + std::to_string(bytes) +
                   " bytes cannot fit: only " + std::to_string(*available) +
                   " bytes of memory (RAM plus swap, within this cgroup's limit) are available");
}

void log_owner_died(const char* what, pid_t dead_id) noexcept {
  try {
    logger().warn("{}: previous owner {} died holding it; recovered by {} (check the data it guards)", what,
                  static_cast<int>(dead_id), static_cast<int>(current_tid()));
  } catch (...) {
    // Logging must never turn a recovered lock into a failure.
  }
}

AcquireResult robust_lock_slow(RobustMutexState& st, std::uint32_t self, OwnerScope scope, bool shared,
                               bool blocking, const Deadline& deadline) noexcept {
  constexpr std::uint32_t W = RobustMutexState::kWaiters;
  constexpr std::uint32_t M = RobustMutexState::kIdMask;

  // Takes over a word still naming a dead owner; exactly one CAS wins.
  auto try_recover = [&](std::uint32_t observed) -> bool {
    const std::uint32_t dead = observed & M;
    if (dead == 0 || owner_alive(static_cast<pid_t>(dead), scope)) return false;
    if (!st.word.compare_exchange_strong(observed, self | W, std::memory_order_acquire, std::memory_order_relaxed))
      return false;
    st.dead_owner.store(dead, std::memory_order_relaxed);
    st.owner_died.store(1, std::memory_order_relaxed);
    log_owner_died("procpool lock", static_cast<pid_t>(dead));
    return true;
  };

  if (!blocking) {
    std::uint32_t w = st.word.load(std::memory_order_relaxed);
    if (w == 0 && st.word.compare_exchange_strong(w, self, std::memory_order_acquire, std::memory_order_relaxed))
      return AcquireResult::Acquired;
    if (scope != OwnerScope::None && w != 0 && try_recover(w)) return AcquireResult::AcquiredOwnerDied;
    return AcquireResult::Failed;
  }

  // Adaptive spin: most critical sections are shorter than a futex round trip.
  const std::uint32_t estimate = st.spin.load(std::memory_order_relaxed);
  const std::uint32_t max_spin = std::min(kMaxSpin, estimate * 2 + 10);
  for (std::uint32_t i = 0; i < max_spin; ++i) {
    std::uint32_t w = st.word.load(std::memory_order_relaxed);
    if (w == 0 &&
        st.word.compare_exchange_weak(w, self, std::memory_order_acquire, std::memory_order_relaxed)) {
      const auto next = static_cast<std::int64_t>(estimate) + (static_cast<std::int64_t>(i) - estimate) / 8;
      st.spin.store(static_cast<std::uint32_t>(std::max<std::int64_t>(next, 0)), std::memory_order_relaxed);
      return AcquireResult::Acquired;
    }
    cpu_relax();
  }
  st.spin.store(estimate + (max_spin - estimate) / 8, std::memory_order_relaxed);

  auto slice = std::chrono::duration_cast<Clock::duration>(kFirstSlice);
  for (;;) {
    std::uint32_t w = st.word.load(std::memory_order_relaxed);
    if (w == 0) {
      // Others may sleep: keep the waiters bit so our release wakes them.
      if (st.word.compare_exchange_weak(w, self | W, std::memory_order_acquire, std::memory_order_relaxed))
        return AcquireResult::Acquired;
      continue;
    }
    if ((w & W) == 0) {
      if (!st.word.compare_exchange_weak(w, w | W, std::memory_order_relaxed, std::memory_order_relaxed)) continue;
      w |= W;
    }
    const auto now = Clock::now();
    if (deadline && now >= *deadline) return AcquireResult::Failed;
    Deadline wake_at = deadline;
    if (scope != OwnerScope::None && (!wake_at || now + slice < *wake_at)) wake_at = now + slice;
    if (!futex::wait(st.word, w, shared, wake_at) && scope != OwnerScope::None) {
      // The slice ran out with the lock still held: is its owner still there?
      if (try_recover(st.word.load(std::memory_order_relaxed))) return AcquireResult::AcquiredOwnerDied;
      slice = std::min<Clock::duration>(slice * 2, kMaxSlice);
    }
  }
}

} // namespace procpool::detail
