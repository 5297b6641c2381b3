#pragma once
/// @file threading/thread.hpp
/// procpool::threading::Thread, Python's threading.Thread: a target with arguments or a
/// subclass overriding run(); start/join(timeout)/is_alive, names "Thread-N", daemon flags,
/// and join-at-exit (non-daemon threads are joined when the program exits normally, daemon
/// threads are abandoned). Also current_thread(), main_thread(), enumerate(), active_count().
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "procpool/detail/os/futex.hpp"

namespace procpool::threading {

/// Options of a Thread, like Python's name= and daemon= keywords:
/// `Thread(ThreadOptions{.name = "worker", .daemon = true}, target, args...)`.
struct ThreadOptions {
  /// Empty: a fresh default name "Thread-N" (one process-wide counter, as Python).
  std::string name{};
  /// Unset: inherit the creating thread's daemon flag (the main thread is not a daemon).
  std::optional<bool> daemon{};
};

namespace detail {

struct ThreadState;  // defined in lib/threading.cpp

/// A target bound to its arguments; called once, on the new thread.
class Task {
public:
  virtual ~Task() = default;
  virtual void call() = 0;
};

template <class F, class... Args>
class BoundTask final : public Task {
public:
  template <class G, class... A>
  explicit BoundTask(G&& f, A&&... args) : f_(std::forward<G>(f)), args_(std::forward<A>(args)...) {}
  // Moves the stored copies in, as std::thread does: a parameter taking T& needs std::ref.
  void call() override { std::apply(std::move(f_), std::move(args_)); }

private:
  F f_;
  std::tuple<Args...> args_;
};

/// Decay-copies the target and arguments (std::thread's rules: std::ref passes a reference).
template <class F, class... Args>
std::unique_ptr<Task> make_task(F&& f, Args&&... args) {
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                "Thread target is not callable with these arguments (they are copied: "
                "wrap an argument in std::ref to pass a reference)");
  return std::make_unique<BoundTask<std::decay_t<F>, std::decay_t<Args>...>>(std::forward<F>(f),
                                                                            std::forward<Args>(args)...);
}


template <class F, class... Args>
concept Target = !std::same_as<std::remove_cvref_t<F>, ThreadOptions> &&
                 std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>;

} // namespace detail

class Thread;
class ThreadHandle;

namespace detail {
ThreadHandle make_handle(std::shared_ptr<ThreadState> state);
} // namespace detail

/// A copyable reference to a thread, started by procpool or not: what current_thread(),
/// main_thread() and enumerate() return, and what Thread::handle() gives. It keeps the
/// thread's bookkeeping alive, never the thread. Two handles compare equal when they refer to
/// the same thread. Every member is thread-safe.
class ThreadHandle {
public:
  /// The thread's name. Thread-safe.
  [[nodiscard]] std::string name() const;
  /// Renames the thread. Log lines (%k) follow the rename when the thread renames itself;
  /// a rename from another thread shows in name() but not in the thread's log lines. Thread-safe.
  void set_name(std::string name);
  /// pthread_self() of the thread (Python's ident); empty before start. Thread-safe.
  [[nodiscard]] std::optional<std::uint64_t> ident() const;
  /// The kernel thread id (gettid(), Python's native_id); empty before start. Thread-safe.
  [[nodiscard]] std::optional<pid_t> native_id() const;
  /// Whether the thread is a daemon (abandoned at exit instead of joined). Thread-safe.
  [[nodiscard]] bool daemon() const;
  /// True from the moment start() returns until the thread's function has returned and its
  /// thread_local objects (threading::local values included) are destroyed. Thread-safe.
  [[nodiscard]] bool is_alive() const;
  /// Waits until the thread finishes. Throws StateError when called on the current thread or
  /// before start(). Thread-safe: any number of threads may join the same thread.
  void join() const;
  /// Waits at most `timeout`; true when the thread has finished (Python returns None and
  /// leaves it to is_alive(); here the answer is returned). Same errors as join(). Thread-safe.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) const {
    return join_until_deadline(os::as_deadline(os::deadline_after(timeout)));
  }

  friend bool operator==(const ThreadHandle& a, const ThreadHandle& b) noexcept { return a.state_ == b.state_; }

private:
  friend class Thread;
  friend ThreadHandle detail::make_handle(std::shared_ptr<detail::ThreadState> state);
  explicit ThreadHandle(std::shared_ptr<detail::ThreadState> state) : state_(std::move(state)) {}
  bool join_until_deadline(const os::Deadline& deadline) const;

  std::shared_ptr<detail::ThreadState> state_;
};

/// Python's threading.Thread. Two styles, as in Python:
///  - a target: `Thread t(worker, 1, std::ref(out)); t.start();` (the target and arguments are
///    copied into the thread, as std::thread does);
///  - a subclass overriding run(), built with Thread() or Thread(ThreadOptions{...}).
/// A Thread constructed with a target may be destroyed while its thread runs: the thread
/// keeps going (detached) and stays visible in enumerate(); a non-daemon one is still joined
/// at exit. A subclass's thread runs a member function, so its object must outlive run():
/// ~Thread joins a still-running subclass thread, but by then the derived part is gone, so a
/// subclass with non-trivial members joins in its own destructor (or before).
/// An exception escaping the target or run() is printed to stderr as
/// "Exception in thread NAME:" plus its type and message; the process goes on.
/// Not copyable, not movable (pinned, like the other sync objects). Unless stated, members
/// may be called from any thread.
class Thread {
public:
  /// A thread whose run() is overridden by a subclass (or does nothing). Default name.
  Thread();
  /// As Thread(), with a name and/or daemon flag.
  explicit Thread(ThreadOptions options);

  /// A thread that calls `target(args...)` on copies of `args` (std::ref passes a reference).
  template <class F, class... Args>
    requires detail::Target<F, Args...>
  explicit Thread(F&& target, Args&&... args)
      : Thread(ThreadOptions{}, detail::make_task(std::forward<F>(target), std::forward<Args>(args)...)) {}

  /// As above, with a name and/or daemon flag.
  template <class F, class... Args>
    requires detail::Target<F, Args...>
  Thread(ThreadOptions options, F&& target, Args&&... args)
      : Thread(std::move(options), detail::make_task(std::forward<F>(target), std::forward<Args>(args)...)) {}

  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;
  Thread(Thread&&) = delete;
  Thread& operator=(Thread&&) = delete;

  /// See the class comment: detaches a running target thread, joins a running subclass one
  /// (except a daemon one once the program is exiting, which is abandoned as Python does).
  virtual ~Thread();

  /// Starts the thread and returns once it runs (is_alive() is then true, ident() set).
  /// Throws StateError when called twice. Thread-safe.
  void start();

  /// See ThreadHandle. All thread-safe.
  [[nodiscard]] std::string name() const { return handle().name(); }
  void set_name(std::string name) { handle().set_name(std::move(name)); }
  [[nodiscard]] std::optional<std::uint64_t> ident() const { return handle().ident(); }
  [[nodiscard]] std::optional<pid_t> native_id() const { return handle().native_id(); }
  [[nodiscard]] bool daemon() const { return handle().daemon(); }
  [[nodiscard]] bool is_alive() const { return handle().is_alive(); }
  void join() const { handle().join(); }
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) const {
    return handle().join(timeout);
  }

  /// Sets the daemon flag; throws StateError once started (as Python). Thread-safe.
  void set_daemon(bool daemonic);

  /// A copyable handle to this thread (compare it with current_thread()). Thread-safe.
  [[nodiscard]] ThreadHandle handle() const { return ThreadHandle(state_); }
  operator ThreadHandle() const { return handle(); }  // NOLINT: a Thread is usable as its handle

protected:
  /// The thread's body in a subclass; runs on the new thread. The base version does nothing:
  /// a Thread built with a target calls the target instead of run().
  virtual void run();

  /// For subclasses that bring their own target (Timer). A thread with a target calls it
  /// directly, never run(), so that its Thread object may be destroyed while it runs.
  Thread(ThreadOptions options, std::unique_ptr<detail::Task> target);

private:
  friend struct detail::ThreadState;
  std::shared_ptr<detail::ThreadState> state_;
};

/// The calling thread: a procpool Thread, the main thread ("MainThread"), or a thread started
/// some other way, which gets a daemon "Dummy-N" entry for the rest of its life. Thread-safe.
[[nodiscard]] ThreadHandle current_thread();
/// The thread that loaded procpool (normally the one running main()). Thread-safe.
[[nodiscard]] ThreadHandle main_thread();
/// Every alive thread procpool knows of: the main thread, started Threads not yet finished,
/// and Dummy threads, in start order. Thread-safe (a snapshot).
[[nodiscard]] std::vector<ThreadHandle> enumerate();
/// enumerate().size(). Thread-safe.
[[nodiscard]] std::size_t active_count();
/// pthread_self() of the calling thread (Python's threading.get_ident()). Thread-safe.
[[nodiscard]] std::uint64_t get_ident() noexcept;
/// gettid() of the calling thread (Python's threading.get_native_id()). Thread-safe.
[[nodiscard]] pid_t get_native_id() noexcept;

} // namespace procpool::threading
