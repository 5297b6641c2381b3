#pragma once
// The job slots: one job runner for both job sources (the local `procpool run` and `procpool worker`).
// Starts a command in a free slot (its own process group, /dev/null stdin, direct exec or sh -c, PDEATHSIG,
// the watchdog's table), reads its pipes, applies the kill sequence (TERM, KILL after the grace) and the
// fixed timeout, reaps it and reports how it ended. The caller decides what a job is and what its end means.
#include "command.hpp"
#include "options.hpp"
#include "spawn.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <poll.h>
#include <sys/resource.h>
#include <sys/types.h>

namespace procpool::cli {

/// Why procpool stopped a job (None: it ended by itself).
enum class KillReason { None, Timeout, Halt, Interrupt, Cancel, Limit };  ///< Limit: --limit's exit 2

struct SlotsConfig {
  unsigned slots = 1;          ///< wanted; capped by the descriptor limit, with a warning
  bool shell_always = false;   ///< never exec directly
  bool tty = false;            ///< jobs read /dev/tty and stay in procpool's process group
  bool capture = true;         ///< pipes to procpool; false: jobs write to procpool's stdout/stderr
  double grace_seconds = 1.0;  ///< TERM to KILL
  /// --termseq: the signals and waits that kill a job, then KILL; empty: TERM, KILL after the grace.
  std::vector<TermStep> term_seq;
  std::optional<int> nice;     ///< --nice N: the jobs' niceness
  /// Variables of procpool's environment the jobs do not get (a prefix ending in '=' names one
  /// variable, any other prefix a family).
  std::vector<std::string> hidden_env;
  /// Descriptors procpool holds per running job beyond the slots' own (--pipe: the feed's pipe).
  unsigned extra_descriptors_per_job = 0;
  /// Run by the watchdog process after it killed the jobs of a dead procpool (the worker's release).
  std::function<void()> after_watchdog_kills;
};

/// How a job ended, reported once per start.
struct JobEnd {
  unsigned slot = 0;
  int exitval = 0;            ///< -1 after a --timeout kill, as GNU parallel logs it
  int signal = 0;
  double runtime = 0;         ///< seconds
  double start_epoch = 0;     ///< seconds since the epoch
  std::uint64_t received = 0; ///< stdout bytes
  KillReason reason = KillReason::None;
  [[nodiscard]] bool failed() const { return exitval != 0 || signal != 0; }
};

/// Per-job settings that override the slots' own (a broker run's --timeout, --grace, --shell).
struct JobLimits {
  std::optional<double> timeout;
  std::optional<double> grace;
  bool shell = false;  ///< through /bin/sh -c even when it could be exec'd directly
  int stdin_fd = -1;   ///< the job's stdin instead of /dev/null (--pipe: its chunk's pipe); the caller keeps it
};

class JobSlots {
 public:
  using Clock = std::chrono::steady_clock;
  /// Bytes from a job's stdout (fd 1) or stderr (fd 2).
  using OutputSink = std::function<void(unsigned slot, int which, std::string_view bytes)>;
  /// Called with the slot already free.
  using EndSink = std::function<void(const JobEnd&)>;

  /// Raises procpool's RLIMIT_NOFILE and forks the watchdog: construct it once everything else
  /// procpool keeps open is open, and before any thread starts.
  JobSlots(SlotsConfig config, OutputSink on_output, EndSink on_end);
  ~JobSlots();
  JobSlots(const JobSlots&) = delete;
  JobSlots& operator=(const JobSlots&) = delete;

  [[nodiscard]] unsigned size() const { return static_cast<unsigned>(slots_.size()); }
  [[nodiscard]] bool busy(unsigned slot) const { return slots_[slot].pid > 0; }
  [[nodiscard]] unsigned busy_count() const { return busy_; }
  [[nodiscard]] std::optional<unsigned> free_slot() const;
  [[nodiscard]] pid_t pid(unsigned slot) const { return slots_[slot].pid; }
  [[nodiscard]] Clock::time_point started(unsigned slot) const { return slots_[slot].started; }

  /// Starts `command` in free `slot` (numbered slot + 1 for the job: PARALLEL_JOBSLOT) with procpool's
  /// environment minus the hidden variables, plus PARALLEL_JOBSLOT, PARALLEL_PID and `extra_env`.
  /// Throws std::system_error when it cannot.
  void start(unsigned slot, const std::string& command, const std::vector<std::string>& extra_env,
             const JobLimits& limits = {});

  /// TERM now, KILL after the grace. A job already being killed keeps its first reason.
  void kill(unsigned slot, KillReason reason);
  /// KILL now (a second Ctrl-C, a fenced worker).
  void kill_now(unsigned slot, KillReason reason);
  void kill_all(KillReason reason);
  void kill_all_now(KillReason reason);

  /// The fixed or current --timeout; nullopt: none.
  void set_timeout(std::optional<double> seconds) { timeout_ = seconds; }

  /// The pipes to poll, appended to `fds`.
  void add_poll_fds(std::vector<pollfd>& fds) const;
  /// One read per open pipe (fair between jobs), then the timeouts and kill deadlines.
  void service();
  /// Reaps every exited job (after SIGCHLD) and reports each end.
  void reap();
  /// The nearest timeout or KILL-after-grace deadline.
  [[nodiscard]] std::optional<Clock::time_point> next_deadline() const;

 private:
  struct Slot {
    pid_t pid = -1;
    int out_fd = -1, err_fd = -1;
    int script_fd = -1;  // a memfd holding a command too long for sh -c
    Clock::time_point started;
    double start_epoch = 0;
    std::uint64_t received = 0;
    KillReason kill_reason = KillReason::None;
    Clock::time_point kill_deadline;
    std::size_t kill_step = 0;  // the next --termseq step
    bool kill_sent = false;
    std::optional<double> timeout;  // the job's own, else timeout_
    double grace = 1.0;
  };
  unsigned slots_within_descriptor_limit(unsigned wanted);
  void read_output(unsigned index, int& fd, int which, bool until_empty);
  void finish(unsigned index, int status);
  void check_timeouts(Clock::time_point now);
  void next_kill_step(Slot& slot);
  void signal_job(const Slot& slot, int sig) const;

  SlotsConfig config_;
  OutputSink on_output_;
  EndSink on_end_;
  CommandPlanner planner_;
  std::vector<Slot> slots_;
  unsigned busy_ = 0;
  std::unique_ptr<Watchdog> watchdog_;
  rlimit job_nofile_{};
  bool restore_nofile_ = false;
  int job_stdin_ = -1;
  std::vector<std::string> base_env_;
  std::string parallel_pid_env_;
  std::optional<double> timeout_;
  std::vector<char> read_buffer_;
};

} // namespace procpool::cli
