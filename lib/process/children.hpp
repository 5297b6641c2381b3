#pragma once
// The children this process started and the thread that starts them (child_registry.cpp,
// launcher.cpp); light on purpose (standard headers only): see process_internal.hpp for the rest.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace procpool::detail {

/// Child records (child_registry.cpp): one per started child, kept in a registry until reaped.

struct ChildRecord {
  pid_t pid = 0;
  std::string name;
  bool daemon = false;
  bool via_forkserver = false;
  int wait_fd = -1;  ///< pidfd of our own child, or the forkserver's status socket
  /// A spawned child reads its payload from this memfd through /proc/<our pid>/fd, so it stays
  /// open until the child has ended (the child may start reading late).
  int payload_fd = -1;
  std::mutex mutex;
  std::optional<int> exitcode;

  ChildRecord() = default;
  ChildRecord(const ChildRecord&) = delete;
  ChildRecord& operator=(const ChildRecord&) = delete;
  ~ChildRecord();

  /// Collects the exit status if the child has ended. Caller holds `mutex`.
  void try_reap_locked();
  /// Waits until the child ends or `deadline` passes (nullopt or time_point::max(): never); true
  /// when it has ended. Thread-safe.
  bool wait_until(const std::optional<std::chrono::steady_clock::time_point>& deadline);
  /// Signals the child unless it has ended (its pid may be someone else's by then). Thread-safe.
  void send_signal(int sig);

private:
  void release_payload_locked();
};

/// Drops the records of children that have ended; returns the rest. Thread-safe.
std::vector<std::shared_ptr<ChildRecord>> reap_finished();
/// Adds a started child (and, the first time, the exit handler that joins them). Thread-safe.
void register_child(const std::shared_ptr<ChildRecord>& record);
/// Python's multiprocessing exit function: terminate daemon children, join the others.
void join_children_at_exit() noexcept;
/// Logs that a child was reaped outside procpool (defined in process.cpp, with the other log
/// calls: each TU that formats a log message pays seconds of compile time).
void warn_reaped_elsewhere(const std::string& name, pid_t pid);
/// In a new child: forget the parent's children (their registry's mutex may be held by a
/// thread that does not exist here).
void registry_forget_after_fork();

/// In a new child: forget the parent's launcher thread (launcher.cpp).
void launcher_forget_after_fork();

/// Runs `fn` on a thread that lives as long as the process (the main thread when called from
/// it): PR_SET_PDEATHSIG fires when the *thread* that forked a child exits, so children must
/// never be forked from a short-lived thread.
void run_on_stable_thread(const std::function<void()>& fn);

} // namespace procpool::detail
