#pragma once
/// @file process.hpp
/// procpool::Process, Python's multiprocessing.Process, and the process-level functions
/// current_process(), parent_process(), active_children(), cpu_count().
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "procpool/detail/arg_transfer.hpp"
#include "procpool/detail/os/deadline.hpp"
#include "procpool/errors.hpp"
#include "procpool/start_method.hpp"

namespace procpool {

/// Options of a Process, as Python's keyword arguments.
struct ProcessOptions {
  std::string name{};                       ///< empty: "Process-N" (or "Process-1:N" in a child)
  std::optional<bool> daemon{};             ///< empty: inherit the creating process's daemon flag
  std::optional<StartMethod> start_method{};  ///< empty: the global default at start()
};

/// What is known of a process: the current one, the parent, or a live child.
struct ProcessInfo {
  std::string name;
  pid_t pid = 0;
  bool daemon = false;
};

namespace detail {
struct ChildRecord;
}

/// A child process running a target, or a subclass's run().
///
/// Thread-safety: start(), close() and the setters must not race with other calls on the same
/// object; join(), is_alive(), exitcode(), terminate() and kill() may be called from several
/// threads at once. Non-copyable, non-movable: the object is the child's handle.
class Process {
public:
  /// For subclasses that override run().
  Process() : Process(ProcessOptions{}) {}
  explicit Process(ProcessOptions options);

  /// Runs `target(args...)` in the child. Arguments are copied (shared objects such as Lock or
  /// Queue are passed by reference). Fork accepts any callable; spawn and forkserver need a
  /// function or captureless lambda and Sendable arguments (checked at start()).
  template <class F, class... Args>
    requires std::invocable<std::decay_t<F>&, decltype(detail::as_target_arg(std::declval<detail::StoredArg<Args>&>()))...>
  explicit Process(F&& target, Args&&... args) : Process(ProcessOptions{}, std::forward<F>(target), std::forward<Args>(args)...) {}

  template <class F, class... Args>
    requires std::invocable<std::decay_t<F>&, decltype(detail::as_target_arg(std::declval<detail::StoredArg<Args>&>()))...>
  Process(ProcessOptions options, F&& target, Args&&... args) : Process(std::move(options)) {
    using Fn = std::decay_t<F>;
    auto stored = std::make_shared<std::tuple<detail::StoredArg<Args>...>>(std::forward<Args>(args)...);
    auto fn = std::make_shared<Fn>(std::forward<F>(target));
    portable_ = std::make_unique<detail::PortableTarget>();
    // Arguments are encoded at start(), for a spawn or forkserver child only (see encode_args).
    if (!detail::make_portable_target(*portable_, *fn, *stored, /*lazy_args=*/true)) portable_.reset();
    target_ = [fn, stored] {
      std::apply([&](auto&... a) { std::invoke(*fn, detail::as_target_arg(a)...); }, *stored);
    };
  }

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  /// A process still running when its object is destroyed keeps running: it is reaped later
  /// (active_children(), the next start(), or at exit), so it never stays a zombie.
  virtual ~Process();

  /// The child's work: calls the target. Override in a subclass (fork start method only).
  virtual void run();

  /// Starts the child. Throws StateError if already started, ProcessError if it cannot start
  /// (e.g. spawn with a capturing lambda, or without procpool::init()).
  void start();

  /// Waits for the child to end. Throws StateError if not started.
  void join();
  /// Waits at most `timeout`; returns true when the child has ended. A timeout too long to
  /// represent (`std::chrono::hours::max()`) waits forever; a negative one only polls.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(os::deadline_after(timeout));
  }
  /// Waits until `deadline`; `time_point::max()` waits forever. True when the child has ended.
  bool join_until(std::chrono::steady_clock::time_point deadline);

  /// Whether the child has started and not yet ended.
  [[nodiscard]] bool is_alive();
  /// SIGTERM to the child (no effect if it has ended).
  void terminate();
  /// SIGKILL to the child (no effect if it has ended).
  void kill();
  /// The child's pid once started.
  [[nodiscard]] std::optional<pid_t> pid() const noexcept;
  /// Python's sentinel: a file descriptor that becomes readable when the child ends (for
  /// poll/select over several processes). Valid while the object is neither closed nor destroyed.
  /// Before start(): ValueError, as Python.
  [[nodiscard]] int sentinel() const;
  /// Python's ident: the pid.
  [[nodiscard]] std::optional<pid_t> ident() const noexcept { return pid(); }
  /// Exit status once ended: the exit code, or -N after death by signal N; empty while running.
  [[nodiscard]] std::optional<int> exitcode();
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  [[nodiscard]] bool daemon() const noexcept { return daemon_; }
  /// Throws StateError after start(), as Python does.
  void set_daemon(bool daemon);
  /// The start method this object will use / used.
  [[nodiscard]] StartMethod start_method() const;
  /// Releases the handle's resources. Throws ValueError if the child is still running.
  void close();

private:
  std::shared_ptr<detail::ChildRecord> record_checked(const char* what) const;

  std::string name_;
  std::string identity_;  // position in the process tree: "1", "1:2"
  bool daemon_ = false;
  std::optional<StartMethod> start_method_;
  std::function<void()> target_;
  std::unique_ptr<detail::PortableTarget> portable_;
  std::shared_ptr<detail::ChildRecord> record_;
  bool closed_ = false;
};

/// The calling process: "MainProcess" in the program, the Process's name in a child.
[[nodiscard]] ProcessInfo current_process();
/// The parent of a child process; empty in the main process.
[[nodiscard]] std::optional<ProcessInfo> parent_process();
/// The live children of the calling process; reaps those that have ended. Thread-safe.
[[nodiscard]] std::vector<ProcessInfo> active_children();
/// Number of CPUs usable by this process (its affinity mask).
[[nodiscard]] int cpu_count();

} // namespace procpool
