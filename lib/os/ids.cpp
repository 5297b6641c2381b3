// The id caches' refresh and their one fork hook (see procpool/detail/os/ids.hpp).
#include "procpool/detail/os/ids.hpp"

#include <atomic>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace procpool::os {
namespace {

// Runs in the child of fork() (in its only thread): the cached ids belong to the parent.
void reset_in_child() noexcept {
  ids_detail::g_cached_pid.store(0, std::memory_order_relaxed);
  ids_detail::t_cached_tid = 0;
}

// Registered at load time, before any thread can fork. Not a function-local static: a fork
// while another thread ran its guarded initialisation would copy the guard "in progress" into
// the child, whose first lock call would then wait for it forever (__cxa_guard_acquire).
// The flag covers a first use from another object's static initialiser that runs first.
std::atomic<bool> g_atfork_registered{false};
void register_atfork_once() noexcept {
  if (g_atfork_registered.load(std::memory_order_acquire)) return;
  if (!g_atfork_registered.exchange(true, std::memory_order_acq_rel))
    ::pthread_atfork(nullptr, nullptr, &reset_in_child);
}
[[gnu::constructor]] void register_atfork_at_load() noexcept { register_atfork_once(); }

} // namespace

namespace ids_detail {

pid_t refresh_pid() noexcept {
  register_atfork_once();
  const pid_t pid = ::getpid();
  g_cached_pid.store(pid, std::memory_order_relaxed);
  return pid;
}

pid_t refresh_tid() noexcept {
  register_atfork_once();
  const auto tid = static_cast<pid_t>(::syscall(SYS_gettid));
  t_cached_tid = tid;
  return tid;
}

} // namespace ids_detail
} // namespace procpool::os
