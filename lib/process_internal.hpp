#pragma once
// Internals shared by the sources of lib/process/ (not installed): the child registry
// (child_registry.cpp), the launcher thread (launcher.cpp), the start methods and init()
// (start_methods.cpp), the forkserver (forkserver.cpp), the launch checks (launch_check.cpp)
// and the Process API with the child's life (process.cpp).
#include <functional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "process/children.hpp"
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
  int start_method = 0;  ///< StartMethod the child was started with: its get_start_method()
  int log_level = 6;     ///< the parent's spdlog level (6 = off), inherited like Python's logger
  std::vector<LoadedObject> objects;  ///< the parent's objects: the child refuses other builds
  PortableTarget target;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, daemon, identity, parent_pid, parent_name, start_method, log_level, objects, target);
  }
};

// ---------------------------------------------------------------------------------------------
// Start methods (start_methods.cpp).

/// Forks the child on the stable thread; the child runs `body` and never returns. Sets
/// record.pid and record.wait_fd.
void start_fork_child(ChildRecord& record, const ChildPayload& payload, pid_t parent, const std::function<void()>& body);
/// Starts a fresh image running `payload_bytes` (an encoded ChildPayload) by spawn. Sets
/// record.pid, record.wait_fd and record.payload_fd.
void start_spawn_child(ChildRecord& record, const std::string& payload_bytes, pid_t parent);
/// Has the forkserver fork a child running `payload_bytes`. Sets record.pid and record.wait_fd.
void start_forkserver_child(ChildRecord& record, const std::string& payload_bytes);
/// The calling process's default start method ($PROCPOOL_START_METHOD until set). Throws
/// ValueError for a bad variable.
int default_start_method();

// ---------------------------------------------------------------------------------------------

/// The memfd name of a spawn payload, and how /proc/<pid>/fd/<fd> shows it.
inline constexpr const char* kSpawnPayloadName = "procpool-spawn";
inline constexpr const char* kSpawnPayloadLink = "/memfd:procpool-spawn";

/// Launch checks for a process asked to act as a procpool child (launch_check.cpp). Each
/// returns false / -1 and sets `why` when the request did not come from procpool in the parent.
/// Not setuid/setgid, `claimed_parent` is getppid(), and the parent runs the same executable.
bool verify_launcher(pid_t claimed_parent, std::string& why);
/// Opens the parent's payload memfd through /proc/<parent>/fd/<fd> once it is a sealed,
/// close-on-exec procpool spawn payload; returns the descriptor.
int open_spawn_payload(pid_t parent, int fd, std::string& why);
/// `fd` is a unix socket whose peer was created by `parent` under our uid.
bool verify_forkserver_socket(int fd, pid_t parent, std::string& why);

/// Sets the calling process's default start method (a fresh child names its own).
void set_default_start_method_in_child(int method);

/// In a new child: ties it to its parent's life (SIGKILL when the parent dies; exits at once if
/// the parent is already gone), forgets the parent's children, names it, rebuilds the logger.
void become_child(const ChildPayload& who, pid_t expected_parent);

/// Runs `body` as the child's work, reports an escaping exception as Python does, joins the
/// child's threads, runs its procpool::atexit_register handlers, joins its own children,
/// flushes stdio and ends with 0, or 1 after an exception: exit() in a fresh image (its own
/// std::atexit handlers run), _exit() in a forked child (the parent's must not run twice).
[[noreturn]] void run_child_body(const std::function<void()>& body, bool fresh_image = false);

/// Runs a fresh image's payload: become_child + resolve the target + run_child_body.
[[noreturn]] void run_portable_child(const ChildPayload& payload, pid_t expected_parent);

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
