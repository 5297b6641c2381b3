#pragma once
// Starting jobs: os::spawn (clone(CLONE_VM|CLONE_VFORK) + exec), each job leading its own process group, and a
// watchdog process that kills the running jobs' groups if procpool itself is killed (even SIGKILL).
#include <atomic>
#include <functional>
#include <string>
#include <vector>
#include <sys/resource.h>
#include <sys/types.h>

namespace procpool::cli {

/// Everything the child needs, prepared by the parent: the child may only make system calls.
struct SpawnRequest {
  const char* path = nullptr;                ///< program to exec, or nullptr to go straight to the shell
  char* const* argv = nullptr;               ///< argv for `path`
  char* const* shell_argv = nullptr;         ///< {"sh", "-c", line}: used when `path` is null or fails
  char* const* envp = nullptr;
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  bool new_group = true;                     ///< lead a new process group (not with --tty: it needs the terminal)
  std::atomic<pid_t>* group_slot = nullptr;  ///< the watchdog's slot: the child stores its pid there
  const struct rlimit* nofile = nullptr;     ///< RLIMIT_NOFILE to give the job (procpool raised its own)
  pid_t parent = 0;
  const int* nice = nullptr;                 ///< --nice: the job's niceness (setpriority before exec)
};

/// Starts a job; returns its pid (= its process group id). Throws std::system_error on failure.
pid_t spawn_job(const SpawnRequest& request);

/// Runs `command` with /bin/sh -c, no signal blocked, and waits for it: its exit status, or 128 + the
/// signal that ended it. `extra_env` ("NAME=value") is added to this process's environment for it,
/// replacing a variable of the same name; `null_stdin` gives it /dev/null instead of procpool's stdin.
/// Throws std::system_error when it cannot be started or waited for.
int run_shell_command(const std::string& command, const std::vector<std::string>& extra_env = {},
                      bool null_stdin = false);

/// A forked helper holding a shared table of running job process groups. When procpool's end of a
/// pipe closes (procpool exited or was killed) it SIGKILLs every group still in the table, then runs
/// `after_kills` (the broker worker hands its jobs back there). Fork it before any thread starts.
class Watchdog {
 public:
  explicit Watchdog(unsigned slots, std::function<void()> after_kills = {});
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  /// Slot `i` of the table (i < slots): 0 = free, otherwise a job's process group.
  std::atomic<pid_t>& slot(unsigned i) { return table_[i]; }
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  std::atomic<pid_t>* table_ = nullptr;
  unsigned slots_ = 0;
  int pipe_write_ = -1;
  pid_t pid_ = -1;
};

} // namespace procpool::cli
