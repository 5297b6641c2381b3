#include "slots.hpp"

#include "options.hpp"

#include <procpool/detail/os/deadline.hpp>

#include "os/fd.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <system_error>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace procpool::cli {
namespace {

using Seconds = std::chrono::duration<double>;

constexpr std::size_t kReadChunk = 64 * 1024;
// Linux limits one exec argument to 128 KiB (MAX_ARG_STRLEN); longer commands go to sh as a script.
constexpr std::size_t kMaxInlineCommand = 100 * 1024;

// Descriptors one running job may hold: its two pipes' read ends, two spill files (output over
// 256 KiB), a memfd for a command too long for sh -c, and two --results files. --ungroup needs fewer.
constexpr unsigned kDescriptorsPerJob = 7;
// Held only for a moment: a spawn's two pipe write ends, a /proc read, a spill file being made.
constexpr unsigned kDescriptorsInPassing = 16;

/// `from + seconds`, saturated: a duration beyond the clock's range (`--timeout 1e12`) is "never",
/// time_point::max(), not an overflow into the past.
JobSlots::Clock::time_point after(JobSlots::Clock::time_point from, double seconds) {
  return procpool::os::deadline_after(Seconds(seconds), from);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

/// Descriptors open in this process right now.
unsigned open_descriptor_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  unsigned count = 0;
  while (const dirent* e = ::readdir(dir))
    if (e->d_name[0] != '.') ++count;
  ::closedir(dir);
  return count > 0 ? count - 1 : 0;  // not the directory's own descriptor
}

double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

} // namespace

JobSlots::JobSlots(SlotsConfig config, OutputSink on_output, EndSink on_end)
    : config_(std::move(config)),
      on_output_(std::move(on_output)),
      on_end_(std::move(on_end)),
      planner_(config_.shell_always),
      read_buffer_(kReadChunk) {
  job_stdin_ = ::open(config_.tty ? "/dev/tty" : "/dev/null", O_RDONLY | O_CLOEXEC);
  if (job_stdin_ < 0)
    throw UsageError(fmt::format("cannot open {}: {}", config_.tty ? "/dev/tty" : "/dev/null", std::strerror(errno)));
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view var(*e);
    const bool hidden = std::any_of(config_.hidden_env.begin(), config_.hidden_env.end(),
                                    [&](const std::string& prefix) { return var.rfind(prefix, 0) == 0; });
    if (!hidden) base_env_.emplace_back(var);
  }
  parallel_pid_env_ = fmt::format("PARALLEL_PID={}", ::getpid());
  slots_.resize(slots_within_descriptor_limit(config_.slots));
  watchdog_ = std::make_unique<Watchdog>(size(), config_.after_watchdog_kills);
}

JobSlots::~JobSlots() {
  for (auto& slot : slots_) {
    close_fd(slot.out_fd);
    close_fd(slot.err_fd);
    close_fd(slot.script_fd);
  }
  close_fd(job_stdin_);
}

/// Raises procpool's soft RLIMIT_NOFILE to the hard limit (the jobs get the original back) and caps
/// the slots to what the descriptors allow, with a warning, as GNU parallel does: one pipe2 failing
/// with EMFILE mid-run would otherwise end the whole run.
unsigned JobSlots::slots_within_descriptor_limit(unsigned wanted) {
  if (::getrlimit(RLIMIT_NOFILE, &job_nofile_) != 0 || job_nofile_.rlim_cur == RLIM_INFINITY) return wanted;
  rlim_t limit = job_nofile_.rlim_cur;
  if (job_nofile_.rlim_max != RLIM_INFINITY && job_nofile_.rlim_max > limit) {
    rlimit raised = job_nofile_;
    raised.rlim_cur = raised.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      limit = raised.rlim_cur;
      restore_nofile_ = true;
    }
  }
  const rlim_t needed_now = open_descriptor_count() + kDescriptorsInPassing;
  const rlim_t room =
      limit > needed_now ? (limit - needed_now) / (kDescriptorsPerJob + config_.extra_descriptors_per_job) : 0;
  const auto allowed = static_cast<unsigned>(std::clamp<rlim_t>(room, 1, wanted));
  if (allowed < wanted)
    std::cerr << fmt::format(
        "procpool: warning: only enough file descriptors to run {} jobs at once (ulimit -n is {}): running {} "
        "at a time instead of {}; raise the hard limit to run more\n",
        allowed, limit, allowed, wanted);
  return allowed;
}

std::optional<unsigned> JobSlots::free_slot() const {
  for (unsigned i = 0; i < size(); ++i)
    if (!busy(i)) return i;
  return std::nullopt;
}

void JobSlots::signal_job(const Slot& slot, int sig) const {
  // --tty jobs have no group of their own: only their process.
  ::kill(config_.tty ? slot.pid : -slot.pid, sig);
}

void JobSlots::start(unsigned index, const std::string& command, const std::vector<std::string>& extra_env,
                     const JobLimits& limits) {
  Slot& slot = slots_[index];
  const bool long_command = command.size() > kMaxInlineCommand;
  const ExecPlan plan = long_command || limits.shell ? ExecPlan{} : planner_.plan(command);
  std::vector<char*> argv;
  for (const auto& word : plan.argv) argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);
  std::string line = command;
  char sh[] = "sh";
  char dash_c[] = "-c";
  char* shell_argv[] = {sh, dash_c, line.data(), nullptr};
  std::string script_path;
  if (long_command) {
    // sh reads the command from a memfd that procpool holds open until the job ends; the job
    // itself inherits no extra descriptor.
    slot.script_fd = ::memfd_create("procpool-command", MFD_CLOEXEC);
    if (slot.script_fd < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");
    if (const int err = os::write_all(slot.script_fd, command + "\n"); err != 0)
      throw std::system_error(err, std::generic_category(), "write memfd");
    script_path = fmt::format("/proc/{}/fd/{}", ::getpid(), slot.script_fd);
    shell_argv[1] = script_path.data();
    shell_argv[2] = nullptr;
  }
  const std::string slot_env = fmt::format("PARALLEL_JOBSLOT={}", index + 1);
  std::vector<char*> envp;
  envp.reserve(base_env_.size() + extra_env.size() + 3);
  for (auto& var : base_env_) envp.push_back(var.data());
  for (const auto& var : extra_env) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(const_cast<char*>(slot_env.c_str()));
  envp.push_back(parallel_pid_env_.data());
  envp.push_back(nullptr);

  SpawnRequest request;
  request.path = plan.direct ? plan.path.c_str() : nullptr;
  request.argv = argv.data();
  request.shell_argv = shell_argv;
  request.envp = envp.data();
  request.stdin_fd = limits.stdin_fd >= 0 ? limits.stdin_fd : job_stdin_;
  // --tty jobs stay in procpool's (foreground) process group, or reading the terminal would stop them.
  request.new_group = !config_.tty;
  request.group_slot = config_.tty ? nullptr : &watchdog_->slot(index);
  request.parent = ::getpid();
  request.nofile = restore_nofile_ ? &job_nofile_ : nullptr;
  request.nice = config_.nice ? &*config_.nice : nullptr;

  int child_out = STDOUT_FILENO, child_err = STDERR_FILENO;
  if (config_.capture) {
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
      ::close(out_pipe[0]);
      ::close(out_pipe[1]);
      throw std::system_error(errno, std::generic_category(), "pipe2");
    }
    // Only our ends are non-blocking: a job that exits leaves what it wrote; a daemonised
    // grandchild holding the pipe must not hang us.
    (void)os::set_nonblocking(out_pipe[0]);
    (void)os::set_nonblocking(err_pipe[0]);
    slot.out_fd = out_pipe[0];
    slot.err_fd = err_pipe[0];
    child_out = out_pipe[1];
    child_err = err_pipe[1];
  }
  request.stdout_fd = child_out;
  request.stderr_fd = child_err;

  slot.start_epoch = epoch_now();
  slot.started = Clock::now();
  slot.pid = spawn_job(request);
  if (config_.capture) {
    ::close(child_out);
    ::close(child_err);
  }
  slot.received = 0;
  slot.kill_reason = KillReason::None;
  slot.kill_sent = false;
  slot.timeout = limits.timeout;
  slot.grace = limits.grace.value_or(config_.grace_seconds);
  ++busy_;
}

void JobSlots::read_output(unsigned index, int& fd, int which, bool until_empty) {
  Slot& slot = slots_[index];
  while (fd >= 0) {
    const ssize_t n = ::read(fd, read_buffer_.data(), read_buffer_.size());
    if (n > 0) {
      if (which == STDOUT_FILENO) slot.received += static_cast<std::uint64_t>(n);
      on_output_(index, which, std::string_view(read_buffer_.data(), static_cast<std::size_t>(n)));
      if (!until_empty) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    close_fd(fd);  // EOF: the job (and anything it started) closed its end
  }
}

void JobSlots::kill(unsigned index, KillReason reason) {
  Slot& slot = slots_[index];
  if (!busy(index) || slot.kill_reason != KillReason::None) return;
  slot.kill_reason = reason;
  if (config_.term_seq.empty()) {
    signal_job(slot, SIGTERM);
    slot.kill_deadline = after(Clock::now(), slot.grace);
    return;
  }
  slot.kill_step = 0;
  slot.kill_deadline = Clock::now();
  next_kill_step(slot);
}

void JobSlots::next_kill_step(Slot& slot) {
  // --termseq: the next step's signal, then its wait; after the last one, SIGKILL.
  if (slot.kill_step == config_.term_seq.size()) {
    signal_job(slot, SIGKILL);
    slot.kill_sent = true;
    return;
  }
  const TermStep& step = config_.term_seq[slot.kill_step++];
  signal_job(slot, step.signal);
  slot.kill_deadline = after(slot.kill_deadline, step.seconds);
}

void JobSlots::kill_now(unsigned index, KillReason reason) {
  Slot& slot = slots_[index];
  if (!busy(index)) return;
  if (slot.kill_reason == KillReason::None) slot.kill_reason = reason;
  signal_job(slot, SIGKILL);
  slot.kill_sent = true;
}

void JobSlots::kill_all(KillReason reason) {
  for (unsigned i = 0; i < size(); ++i) kill(i, reason);
}

void JobSlots::kill_all_now(KillReason reason) {
  for (unsigned i = 0; i < size(); ++i) kill_now(i, reason);
}

void JobSlots::check_timeouts(Clock::time_point now) {
  for (unsigned i = 0; i < size(); ++i) {
    Slot& slot = slots_[i];
    if (!busy(i)) continue;
    const auto limit = slot.timeout ? slot.timeout : timeout_;
    if (slot.kill_reason == KillReason::None && limit && now >= after(slot.started, *limit))
      kill(i, KillReason::Timeout);
    if (config_.term_seq.empty()) {
      if (slot.kill_reason != KillReason::None && !slot.kill_sent && now >= slot.kill_deadline) {
        signal_job(slot, SIGKILL);
        slot.kill_sent = true;
      }
      continue;
    }
    while (slot.kill_reason != KillReason::None && !slot.kill_sent && now >= slot.kill_deadline) next_kill_step(slot);
  }
}

std::optional<JobSlots::Clock::time_point> JobSlots::next_deadline() const {
  std::optional<Clock::time_point> wake;
  auto consider = [&](Clock::time_point t) { if (!wake || t < *wake) wake = t; };
  for (unsigned i = 0; i < size(); ++i) {
    const Slot& slot = slots_[i];
    if (!busy(i)) continue;
    const auto limit = slot.timeout ? slot.timeout : timeout_;
    if (slot.kill_reason == KillReason::None && limit) consider(after(slot.started, *limit));
    if (slot.kill_reason != KillReason::None && !slot.kill_sent) consider(slot.kill_deadline);
  }
  return wake;
}

void JobSlots::add_poll_fds(std::vector<pollfd>& fds) const {
  for (const auto& slot : slots_) {
    if (slot.out_fd >= 0) fds.push_back({slot.out_fd, POLLIN, 0});
    if (slot.err_fd >= 0) fds.push_back({slot.err_fd, POLLIN, 0});
  }
}

void JobSlots::service() {
  for (unsigned i = 0; i < size(); ++i) {
    Slot& slot = slots_[i];
    if (!busy(i)) continue;
    // One read per ready pipe per round keeps the loop fair between jobs.
    if (slot.out_fd >= 0) read_output(i, slot.out_fd, STDOUT_FILENO, false);
    if (slot.err_fd >= 0) read_output(i, slot.err_fd, STDERR_FILENO, false);
  }
  check_timeouts(Clock::now());
}

void JobSlots::finish(unsigned index, int status) {
  Slot& slot = slots_[index];
  const auto now = Clock::now();
  read_output(index, slot.out_fd, STDOUT_FILENO, true);
  read_output(index, slot.err_fd, STDERR_FILENO, true);
  close_fd(slot.out_fd);
  close_fd(slot.err_fd);
  close_fd(slot.script_fd);
  // Whatever of a killed job's group is still alive (a grandchild ignoring TERM) goes now.
  if (slot.kill_reason != KillReason::None) signal_job(slot, SIGKILL);
  watchdog_->slot(index).store(0, std::memory_order_release);

  JobEnd end;
  end.slot = index;
  end.runtime = Seconds(now - slot.started).count();
  end.start_epoch = slot.start_epoch;
  end.received = slot.received;
  end.reason = slot.kill_reason;
  if (WIFEXITED(status)) end.exitval = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) end.signal = WTERMSIG(status);
  // GNU parallel logs a job killed for --timeout or --limit as -1 / its signal.
  if (slot.kill_reason == KillReason::Timeout || slot.kill_reason == KillReason::Limit) {
    end.exitval = -1;
    if (end.signal == 0) end.signal = SIGTERM;
  }
  slot.pid = -1;
  --busy_;
  on_end_(end);
}

void JobSlots::reap() {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (unsigned i = 0; i < size(); ++i) {
      if (busy(i) && slots_[i].pid == pid) {
        finish(i, status);
        break;
      }
    }
  }
}

} // namespace procpool::cli
