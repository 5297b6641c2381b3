// procpool::threading: Thread, Timer, the registry behind enumerate(), join-at-exit.
#include "procpool/threading/thread.hpp"
#include "procpool/threading/timer.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <typeinfo>

#include <cxxabi.h>
#include <pthread.h>
#include <unistd.h>

#include "procpool/detail/os/deadline.hpp"
#include "procpool/detail/os/futex.hpp"
#include "procpool/detail/os/ids.hpp"
#include "procpool/errors.hpp"
#include "procpool/log.hpp"
#include "load_time.hpp"
#include "os/demangle.hpp"

namespace procpool::threading {
namespace detail {

namespace {
// A state's life, in a futex word: joiners and start() wait on its changes.
constexpr std::uint32_t kNew = 0;       // constructed, not started
constexpr std::uint32_t kStarting = 1;  // start() called, the thread not yet running
constexpr std::uint32_t kAlive = 2;     // running (is_alive)
constexpr std::uint32_t kFinished = 3;  // done, thread_locals destroyed
} // namespace

struct ThreadState : std::enable_shared_from_this<ThreadState> {
  std::atomic<std::uint32_t> status{kNew};
  std::atomic<std::uint64_t> ident{0};
  std::atomic<pid_t> native_id{0};
  std::atomic<bool> daemon{false};
  mutable std::mutex name_mutex;
  std::string name;             // guarded by name_mutex
  std::unique_ptr<Task> target; // moved out by the thread itself; null in a subclass
  bool has_target = false;      // fixed at construction
  Thread* owner = nullptr;      // a subclass: whose run() the thread calls

  std::string get_name() const {
    std::lock_guard lock(name_mutex);
    return name;
  }
  void call_run() { owner->run(); }  // ThreadState is Thread's friend: run() is protected
  void set_status(std::uint32_t s) noexcept {
    status.store(s, std::memory_order_release);
    os::futex::wake(status, false);
  }
};

bool join_until(const std::shared_ptr<ThreadState>& st, const os::Deadline& deadline);

ThreadHandle make_handle(std::shared_ptr<ThreadState> state) { return ThreadHandle(std::move(state)); }

namespace {


// Leaked on purpose: daemon threads may still finish (and unregister) while static
// destructors run at exit.
struct Registry {
  std::mutex mutex;
  std::vector<std::shared_ptr<ThreadState>> alive;  // start order, as Python's enumerate()
  std::shared_ptr<ThreadState> main;
};
// Not a guarded function-local static (load_time.hpp): the atfork handlers and a forked
// child use it. Built at load by main_registered below.
constinit ::procpool::detail::LoadTimeObject<Registry> g_registry;
Registry& registry() { return g_registry.get(); }

std::atomic<std::uint64_t> name_counter{0};  // Python's _counter: Thread-N and Dummy-N share it
std::atomic<bool> exiting{false};            // set by the at-exit join
thread_local ThreadState* tl_current = nullptr;  // raw: valid while the thread's guard lives

std::string new_name(const char* prefix) {
  return prefix + std::to_string(name_counter.fetch_add(1, std::memory_order_relaxed) + 1);
}

void add_alive(const std::shared_ptr<ThreadState>& st) {
  std::lock_guard lock(registry().mutex);
  registry().alive.push_back(st);
}
void remove_alive(const ThreadState* st) {
  std::lock_guard lock(registry().mutex);
  auto& v = registry().alive;
  v.erase(std::remove_if(v.begin(), v.end(), [st](const auto& p) { return p.get() == st; }), v.end());
}

// Destroyed at thread exit after every thread_local created later (threading::local values
// included), so is_alive() turns false, and joiners wake, only once the thread is truly done.
// Also unregisters Dummy threads (foreign threads that called current_thread()).
struct ExitGuard {
  std::shared_ptr<ThreadState> state;
  ~ExitGuard() {
    if (!state) return;
    remove_alive(state.get());
    tl_current = nullptr;
    state->set_status(kFinished);
  }
};

void adopt_current(const std::shared_ptr<ThreadState>& st) {
  st->ident.store(get_ident(), std::memory_order_relaxed);
  st->native_id.store(os::current_tid(), std::memory_order_relaxed);
  tl_current = st.get();
}

std::shared_ptr<ThreadState> make_main_state() {
  auto st = std::make_shared<ThreadState>();
  st->name = "MainThread";
  st->status.store(kAlive, std::memory_order_relaxed);
  return st;
}

// The main thread is registered when the library loads (normally on the main thread).
const bool main_registered = [] {
  auto st = make_main_state();
  if (os::is_main_thread()) adopt_current(st);
  std::lock_guard lock(registry().mutex);
  registry().main = st;
  registry().alive.insert(registry().alive.begin(), st);
  return true;
}();

// In a forked child only the forking thread exists: the others are finished there (a
// join-at-exit in the child must not wait for them), and the forking thread is the main one.
void fork_prepare() { registry().mutex.lock(); }
void fork_parent() { registry().mutex.unlock(); }
void fork_child() {
  Registry& r = registry();
  r.mutex.unlock();
  std::lock_guard lock(r.mutex);
  std::shared_ptr<ThreadState> current;
  for (const auto& st : r.alive) {
    if (st.get() == tl_current) current = st;
    else st->status.store(kFinished, std::memory_order_relaxed);
  }
  r.alive.clear();
  if (current) {
    current->native_id.store(os::current_tid(), std::memory_order_relaxed);
  } else {
    current = make_main_state();
    adopt_current(current);
  }
  r.main = current;
  r.alive.push_back(current);
}
const bool atfork_registered = [] {
  ::pthread_atfork(fork_prepare, fork_parent, fork_child);
  return true;
}();

// Python's threading._shutdown: wait for every non-daemon thread, including ones started
// meanwhile; daemon threads are left to die with the process.
void join_non_daemon_threads() {
  exiting.store(true, std::memory_order_relaxed);
  for (;;) {
    std::vector<std::shared_ptr<ThreadState>> pending;
    {
      std::lock_guard lock(registry().mutex);
      for (const auto& st : registry().alive)
        if (st != registry().main && st.get() != tl_current && !st->daemon.load(std::memory_order_relaxed))
          pending.push_back(st);
    }
    if (pending.empty()) break;
    for (const auto& st : pending) (void)join_until(st, std::nullopt);
  }
  if (tl_current == registry().main.get()) {
    remove_alive(tl_current);
    registry().main->set_status(kFinished);
  }
}

// std::call_once is glibc's pthread_once, which a forked child reruns when the fork came in
// the middle of it: the child may then register the at-exit join twice, which is harmless
// (the second call finds nothing left to join).
std::once_flag atexit_once;

// Python's default excepthook prints "Exception in thread NAME:" and the traceback to stderr.
void report_exception(const ThreadState& st) noexcept {
  try {
    std::string text = "Exception in thread " + st.get_name() + ":\n";
    try {
      throw;
    } catch (const std::exception& e) {
      text += os::demangle(typeid(e).name()) + ": " + e.what() + "\n";
    } catch (...) {
      const std::type_info* type = abi::__cxa_current_exception_type();
      text += (type != nullptr ? os::demangle(type->name()) : std::string("unknown exception")) + "\n";
    }
    std::fwrite(text.data(), 1, text.size(), stderr);  // one write: no interleaving
    std::fflush(stderr);
  } catch (...) {
    std::fputs("Exception in thread (unprintable)\n", stderr);
  }
}

void thread_entry(std::shared_ptr<ThreadState> st) {
  // First thread_local of this thread, hence destroyed last: see ExitGuard. Its guard is per
  // thread, so a fork by another thread cannot leave it half-done in the child.
  thread_local ExitGuard guard;
  guard.state = st;
  adopt_current(st);
  add_alive(st);
  const std::string name = st->get_name();
  procpool::detail::thread_name_slot() = name;  // log lines (%k) carry the thread's name
  st->set_status(kAlive);
  try {
    if (st->has_target) {
      auto target = std::move(st->target);  // destroyed on this thread, as Python drops args
      target->call();
    } else if (st->owner != nullptr) {
      st->call_run();
    }
  } catch (...) {
    report_exception(*st);
  }
}

bool current_is_daemon() {
  if (tl_current != nullptr) return tl_current->daemon.load(std::memory_order_relaxed);
  return !os::is_main_thread();  // a foreign thread is a daemon "Dummy"; main is not
}

std::shared_ptr<ThreadState> new_state(ThreadOptions options, std::unique_ptr<Task> target) {
  auto st = std::make_shared<ThreadState>();
  st->name = options.name.empty() ? new_name("Thread-") : std::move(options.name);
  st->daemon.store(options.daemon.value_or(current_is_daemon()), std::memory_order_relaxed);
  st->has_target = target != nullptr;
  st->target = std::move(target);
  return st;
}


std::shared_ptr<ThreadState> current_state() {
  // tl_current is owned by the thread's guard (or the registry, for the main thread).
  if (tl_current != nullptr) return tl_current->shared_from_this();
  if (os::is_main_thread()) {  // the main thread, before it was adopted
    std::shared_ptr<ThreadState> main;
    {
      std::lock_guard lock(registry().mutex);
      main = registry().main;
    }
    adopt_current(main);
    return main;
  }
  // A thread procpool did not start: unregistered when it exits. A per-thread guard: a fork by
  // another thread cannot leave it half-done in the child.
  thread_local ExitGuard dummy;
  auto st = std::make_shared<ThreadState>();
  st->name = new_name("Dummy-");
  st->daemon.store(true, std::memory_order_relaxed);
  st->status.store(kAlive, std::memory_order_relaxed);
  adopt_current(st);
  dummy.state = st;
  procpool::detail::thread_name_slot() = st->name;
  add_alive(st);
  return st;
}

} // namespace

// Python joins a child process's non-daemon threads before the process exits
// (threading._shutdown in BaseProcess._bootstrap); procpool's children _exit() instead of
// returning from main, so process.cpp calls this first.
void join_threads_before_process_exit() { join_non_daemon_threads(); }

bool join_until(const std::shared_ptr<ThreadState>& st, const os::Deadline& deadline) {
  for (;;) {
    const std::uint32_t s = st->status.load(std::memory_order_acquire);
    if (s == kFinished) return true;
    if (!os::futex::wait(st->status, s, false, deadline))
      return st->status.load(std::memory_order_acquire) == kFinished;
  }
}

// ---- TimerState ----

bool TimerState::wait_interval() {
  // Saturating: an interval of hours::max() has no deadline, and only cancel() ends it.
  const os::Deadline deadline = os::as_deadline(os::deadline_after(interval_));
  while (cancelled_.load(std::memory_order_acquire) == 0) {
    if (!os::futex::wait(cancelled_, 0, false, deadline)) return cancelled_.load(std::memory_order_acquire) == 0;
  }
  return false;
}

void TimerState::cancel() {
  cancelled_.store(1, std::memory_order_release);
  os::futex::wake(cancelled_, false);
}

} // namespace detail

// ---- ThreadHandle ----

std::string ThreadHandle::name() const { return state_->get_name(); }

void ThreadHandle::set_name(std::string name) {
  {
    std::lock_guard lock(state_->name_mutex);
    state_->name = name;
  }
  // Only the thread itself may touch its log slot (a plain thread_local string).
  if (state_.get() == detail::tl_current) procpool::detail::thread_name_slot() = std::move(name);
}

std::optional<std::uint64_t> ThreadHandle::ident() const {
  if (state_->status.load(std::memory_order_acquire) < detail::kAlive) return std::nullopt;
  return state_->ident.load(std::memory_order_relaxed);
}

std::optional<pid_t> ThreadHandle::native_id() const {
  if (state_->status.load(std::memory_order_acquire) < detail::kAlive) return std::nullopt;
  return state_->native_id.load(std::memory_order_relaxed);
}

bool ThreadHandle::daemon() const { return state_->daemon.load(std::memory_order_relaxed); }

bool ThreadHandle::is_alive() const { return state_->status.load(std::memory_order_acquire) == detail::kAlive; }

void ThreadHandle::join() const { (void)join_until_deadline(std::nullopt); }

bool ThreadHandle::join_until_deadline(const os::Deadline& deadline) const {
  if (state_->status.load(std::memory_order_acquire) == detail::kNew)
    throw StateError("cannot join thread " + name() + " before it is started: call start() first");
  if (state_ == detail::current_state())
    throw StateError("cannot join the current thread (" + name() + "): it would wait for itself forever");
  return detail::join_until(state_, deadline);
}

// ---- Thread ----

Thread::Thread() : Thread(ThreadOptions{}) {}

Thread::Thread(ThreadOptions options) : state_(detail::new_state(std::move(options), nullptr)) {
  state_->owner = this;
}

Thread::Thread(ThreadOptions options, std::unique_ptr<detail::Task> target)
    : state_(detail::new_state(std::move(options), std::move(target))) {
  if (!state_->has_target) state_->owner = this;
}

Thread::~Thread() {
  if (state_->has_target) return;  // the thread owns what it needs: let it run on, detached
  const std::uint32_t s = state_->status.load(std::memory_order_acquire);
  if (s == detail::kNew || s == detail::kFinished) return;
  if (state_.get() == detail::tl_current) return;  // destroyed from its own run(): cannot wait
  if (detail::exiting.load(std::memory_order_relaxed) && daemon()) return;  // abandoned, as Python
  // run() is a member of this object: it must not outlive it.
  (void)detail::join_until(state_, std::nullopt);
}

void Thread::run() {}

void Thread::start() {
  std::uint32_t expected = detail::kNew;
  if (!state_->status.compare_exchange_strong(expected, detail::kStarting, std::memory_order_acq_rel))
    throw StateError("thread " + name() + " can only be started once: create a new Thread to run it again");
  std::call_once(detail::atexit_once, [] { std::atexit(detail::join_non_daemon_threads); });
  try {
    std::thread(detail::thread_entry, state_).detach();  // joins go through the state instead
  } catch (...) {
    state_->set_status(detail::kNew);
    throw;
  }
  // As Python's start(): return only once the thread runs, so is_alive() and ident() hold.
  const os::Deadline no_deadline;  // named: a temporary trips GCC 12's -Wmaybe-uninitialized
  while (state_->status.load(std::memory_order_acquire) == detail::kStarting)
    os::futex::wait(state_->status, detail::kStarting, false, no_deadline);
}

void Thread::set_daemon(bool daemonic) {
  if (state_->status.load(std::memory_order_acquire) != detail::kNew)
    throw StateError("cannot set the daemon flag of thread " + name() + " after start()");
  state_->daemon.store(daemonic, std::memory_order_relaxed);
}

// ---- module functions ----

ThreadHandle current_thread() { return detail::make_handle(detail::current_state()); }

ThreadHandle main_thread() {
  std::lock_guard lock(detail::registry().mutex);
  return detail::make_handle(detail::registry().main);
}

std::vector<ThreadHandle> enumerate() {
  std::vector<ThreadHandle> out;
  std::lock_guard lock(detail::registry().mutex);
  out.reserve(detail::registry().alive.size());
  for (const auto& st : detail::registry().alive) out.push_back(detail::make_handle(st));
  return out;
}

std::size_t active_count() {
  std::lock_guard lock(detail::registry().mutex);
  return detail::registry().alive.size();
}

std::uint64_t get_ident() noexcept { return static_cast<std::uint64_t>(::pthread_self()); }

pid_t get_native_id() noexcept { return os::current_tid(); }

} // namespace procpool::threading
