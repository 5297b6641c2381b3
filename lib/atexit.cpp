#include "procpool/atexit.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

#include <pthread.h>
#include <unistd.h>

#include "load_time.hpp"
#include "procpool/errors.hpp"

namespace procpool {
namespace detail {
namespace {

struct Handler {
  pid_t owner;  // the process that registered it: a forked child inherits the list, not the handlers
  std::function<void()> fn;
};

struct Handlers {
  std::mutex mutex;
  std::vector<Handler> list;
  pid_t hooked_pid = 0;  // the process whose std::atexit hook is installed
};

// Never destroyed: used while exiting. Built at load, not a guarded function-local static
// (a forked child runs these handlers: see load_time.hpp).
constinit LoadTimeObject<Handlers> g_handlers;
Handlers& handlers() { return g_handlers.get(); }

// The list's mutex is held across fork() so that a child never inherits it locked by a thread
// that does not exist there (a child that registers a handler would wait forever).
void lock_for_fork() noexcept { g_handlers.get().mutex.lock(); }
void unlock_after_fork() noexcept { g_handlers.get().mutex.unlock(); }
[[gnu::constructor]] void build_handlers_at_load() noexcept {
  (void)g_handlers.get();
  ::pthread_atfork(&lock_for_fork, &unlock_after_fork, &unlock_after_fork);
}

void run_from_exit_hook() { run_atexit_handlers(); }

} // namespace

void run_atexit_handlers() noexcept {
  Handlers& h = handlers();
  const pid_t me = ::getpid();
  for (;;) {
    std::function<void()> fn;
    {
      // try_lock: a fork may have copied the mutex locked by a thread that does not exist here.
      std::unique_lock lock(h.mutex, std::try_to_lock);
      if (!lock.owns_lock()) return;
      while (!h.list.empty() && h.list.back().owner != me) h.list.pop_back();
      if (h.list.empty()) return;
      fn = std::move(h.list.back().fn);
      h.list.pop_back();
    }
    try {
      fn();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "procpool: exception ignored in atexit handler: %s: %s\n", exception_type_name(e).c_str(),
                   e.what());
    } catch (...) {
      std::fprintf(stderr, "procpool: exception ignored in atexit handler: unknown exception\n");
    }
  }
}

} // namespace detail

void atexit_register(std::function<void()> handler) {
  detail::Handlers& h = detail::handlers();
  const pid_t me = ::getpid();
  std::lock_guard lock(h.mutex);
  // Handlers inherited through fork belong to the parent: this process never runs them.
  std::erase_if(h.list, [&](const detail::Handler& x) { return x.owner != me; });
  h.list.push_back(detail::Handler{me, std::move(handler)});
  if (h.hooked_pid != me) {
    // A fresh image (main program, spawn, forkserver child) runs them from exit(); a forked
    // child inherits the parent's hook registration, which is harmless: it only runs the
    // handlers of the calling process.
    std::atexit(detail::run_from_exit_hook);
    h.hooked_pid = me;
  }
}

} // namespace procpool
