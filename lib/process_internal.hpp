#pragma once
// Internals shared by process.cpp and forkserver.cpp (not installed).
#include <functional>
#include <string>

#include <sys/types.h>

#include "procpool/detail/arg_transfer.hpp"

namespace procpool::threading::detail {
/// Joins the non-daemon threads of the calling process (threading._shutdown).
void join_threads_before_process_exit();
} // namespace procpool::threading::detail

namespace procpool::detail {

/// Who a child is, and what it runs when it is a fresh image (spawn / forkserver).
struct ChildPayload {
  std::string name;
  bool daemon = false;
  std::string identity;  ///< "1", "1:2", ...: the child's position in the process tree
  pid_t parent_pid = 0;
  std::string parent_name;
  PortableTarget target;

  template <class Archive>
  void serialize(Archive& ar) { ar(name, daemon, identity, parent_pid, parent_name, target); }
};

/// In a new child: ties it to its parent's life (SIGKILL when the parent dies; exits at once if
/// the parent is already gone), forgets the parent's children, names it, rebuilds the logger.
void become_child(const ChildPayload& who, pid_t expected_parent);

/// Runs `body` as the child's work, reports an escaping exception as Python does, joins the
/// child's own children, flushes stdio and _exit()s with 0, or 1 after an exception.
[[noreturn]] void run_child_body(const std::function<void()>& body);

/// Runs a fresh image's payload: become_child + resolve the target + run_child_body.
[[noreturn]] void run_portable_child(const ChildPayload& payload, pid_t expected_parent);

/// Runs `fn` on a thread that lives as long as the process (the main thread when called from
/// it): PR_SET_PDEATHSIG fires when the *thread* that forked a child exits, so children must
/// never be forked from a short-lived thread.
void run_on_stable_thread(const std::function<void()>& fn);

/// Forkserver client: starts the server on first use; returns the child's pid and a socket
/// that delivers its raw wait status when it ends.
pid_t forkserver_launch(const std::string& payload, int& status_fd);
/// In a forked child: forget the parent's forkserver connection.
void forkserver_forget_after_fork();
/// In the forkserver image (from init()): serve until the parent closes the socket.
[[noreturn]] void forkserver_main(int control_fd, pid_t expected_parent);

/// The argv[0] recorded by init().
const std::string& program_argv0();

} // namespace procpool::detail
