#include "runner.hpp"

#include "command.hpp"
#include "input.hpp"
#include "joblog.hpp"
#include "output.hpp"
#include "progress.hpp"
#include "results.hpp"
#include "spawn.hpp"

#include <procpool/detail/os/deadline.hpp>

#include "os/fd.hpp"
#include "os/proc.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace procpool::cli {
namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

constexpr auto kThrottleRecheck = std::chrono::milliseconds(100);
constexpr std::size_t kReadChunk = 64 * 1024;
// Linux limits one exec argument to 128 KiB (MAX_ARG_STRLEN); longer commands go to sh as a script.
constexpr std::size_t kMaxInlineCommand = 100 * 1024;

/// `from + seconds`, saturated: a duration beyond the clock's range (`--timeout 1e12`) is "never",
/// time_point::max(), not an overflow into the past.
Clock::time_point after(Clock::time_point from, double seconds) {
  return procpool::os::deadline_after(Seconds(seconds), from);
}

/// Median of the successful jobs' runtimes, for --timeout N%. Exact for the first samples, then a
/// uniform reservoir so that memory stays bounded on a million-line batch.
class RuntimeMedian {
 public:
  void add(double seconds) {
    ++seen_;
    if (samples_.size() < kMaxSamples) samples_.push_back(seconds);
    else if (const auto i = std::uniform_int_distribution<std::uint64_t>(0, seen_ - 1)(rng_); i < kMaxSamples)
      samples_[i] = seconds;
    std::vector<double> copy = samples_;
    std::nth_element(copy.begin(), copy.begin() + static_cast<std::ptrdiff_t>(copy.size() / 2), copy.end());
    median_ = copy[copy.size() / 2];
  }
  /// Needs a few samples before it means anything.
  [[nodiscard]] std::optional<double> median() const {
    if (seen_ < 3) return std::nullopt;
    return median_;
  }

 private:
  static constexpr std::size_t kMaxSamples = 4096;
  std::vector<double> samples_;
  std::uint64_t seen_ = 0;
  double median_ = 0;
  std::mt19937_64 rng_{12345};
};

enum class KillReason { None, Timeout, Halt, Interrupt };

/// One job across all its tries.
struct Job {
  JobInput input;
  std::string command;
  unsigned tries_done = 0;
  JobOutput* output = nullptr;  // owned by OutputOrder
};

/// A running try of a job.
struct Slot {
  std::unique_ptr<Job> job;
  pid_t pid = -1;
  int out_fd = -1, err_fd = -1;          // our ends of the pipes
  int results_out = -1, results_err = -1; // --results files: what the pipes bring is also written there
  std::string results_error;              // the first failed --results write, reported when the job ends
  int script_fd = -1;                     // a memfd holding a command too long for sh -c
  Clock::time_point started;
  double start_epoch = 0;
  std::uint64_t received = 0;
  KillReason kill_reason = KillReason::None;
  Clock::time_point kill_deadline;  // SIGKILL after SIGTERM when this passes
  bool kill_sent = false;
  [[nodiscard]] bool busy() const { return job != nullptr; }
};

/// Signals the job's whole process group, or only its process for --tty jobs (no group of their own).
void signal_job(pid_t pid, bool own_group, int sig) { ::kill(own_group ? -pid : pid, sig); }

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

// Descriptors one running job may hold: its two pipes' read ends, two spill files (output over
// 256 KiB), a memfd for a command too long for sh -c, and two --results files. --ungroup needs fewer.
constexpr unsigned kDescriptorsPerJob = 7;
// Held only for a moment: a spawn's two pipe write ends, a /proc read, a spill file being made.
constexpr unsigned kDescriptorsInPassing = 16;

double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Runner {
 public:
  explicit Runner(const Options& options)
      : opt_(options),
        planner_(options.shell_always),
        progress_(options.progress, options.force_progress),
        writer_([this] { progress_.erase(); }),
        order_(options.output, options.keep_order, writer_) {}

  int run();

 private:
  void setup();
  unsigned slots_within_descriptor_limit();
  void stop_for_results(const std::string& message);
  int dry_run();
  void start_jobs();
  bool throttled(Clock::time_point now);
  std::unique_ptr<Job> next_job();
  void start(std::unique_ptr<Job> job, unsigned slot_index);
  void poll_once();
  void read_output(Slot& slot, int& fd, int which, bool until_empty);
  void save_result(Slot& slot, int which, std::string_view bytes);
  void reap();
  void finish(Slot& slot, int status);
  void check_halt(const Slot& slot, int exitval, int signal, bool failed);
  void kill_job(Slot& slot, KillReason reason);
  void interrupt(int sig);
  void check_timeouts(Clock::time_point now);
  [[nodiscard]] std::optional<double> timeout_seconds() const;
  [[nodiscard]] unsigned busy_count() const;
  [[nodiscard]] ProgressCounts counts() const;
  [[nodiscard]] int exit_status() const;

  const Options& opt_;
  CommandPlanner planner_;
  Progress progress_;
  StdWriter writer_;
  OutputOrder order_;
  std::unique_ptr<JobSource> source_;
  std::optional<ResumeState> resume_;
  std::unique_ptr<JobLogWriter> joblog_;
  std::unique_ptr<ResultsDir> results_;
  rlimit job_nofile_{};          // RLIMIT_NOFILE as procpool got it: what the jobs get
  bool restore_nofile_ = false;  // procpool raised its own soft limit
  std::unique_ptr<Watchdog> watchdog_;
  std::vector<Slot> slots_;
  std::deque<std::unique_ptr<Job>> retry_queue_;
  int signal_fd_ = -1;
  int job_stdin_ = -1;
  std::vector<char*> base_env_;
  std::string parallel_pid_env_;

  bool input_done_ = false;
  bool input_waiting_ = false;  // the source would block: poll its fd
  bool stopping_ = false;       // start nothing new
  bool interrupted_ = false;
  bool results_failed_ = false;  // a --results file could not be made: exit 255
  int halt_status_ = -1;        // set when --halt triggered
  Clock::time_point next_start_allowed_{};
  std::optional<Clock::time_point> throttle_until_;
  std::uint64_t done_ = 0, failed_ = 0, succeeded_ = 0, skipped_ = 0;
  RuntimeMedian median_;
  std::vector<char> read_buffer_ = std::vector<char>(kReadChunk);
  std::vector<pollfd> poll_fds_;
};

void Runner::setup() {
  ::signal(SIGPIPE, SIG_IGN);  // a closed stdout, or a joblog pipe's reader gone, shows up as EPIPE
  source_ = make_job_source(opt_);
  if (opt_.dry_run) return;
  if (opt_.joblog) joblog_ = std::make_unique<JobLogWriter>(*opt_.joblog, opt_.resume || opt_.resume_failed);
  if (opt_.resume || opt_.resume_failed) resume_ = ResumeState::load(joblog_->fd(), *opt_.joblog);
  if (opt_.results_dir) results_ = std::make_unique<ResultsDir>(*opt_.results_dir);
  if (opt_.memfree_bytes > 0) {
    // MemAvailable never exceeds MemTotal: say once that the run will wait, rather than hang silently.
    if (const auto total = os::read_meminfo().total; total && opt_.memfree_bytes > *total)
      std::cerr << fmt::format(
          "procpool: warning: --memfree asks for {:.1f} GiB free, more than this machine's {:.1f} GiB of "
          "memory: no job will start\n",
          static_cast<double>(opt_.memfree_bytes) / (1 << 30), static_cast<double>(*total) / (1 << 30));
  }
  job_stdin_ = ::open(opt_.tty ? "/dev/tty" : "/dev/null", O_RDONLY | O_CLOEXEC);
  if (job_stdin_ < 0)
    throw UsageError(fmt::format("cannot open {}: {}", opt_.tty ? "/dev/tty" : "/dev/null", std::strerror(errno)));

  // Signals arrive through a signalfd in the poll loop, never as handlers.
  sigset_t mask;
  sigemptyset(&mask);
  for (const int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&mask, sig);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) throw std::system_error(errno, std::generic_category(), "signalfd");

  const unsigned slot_count = slots_within_descriptor_limit();
  slots_.resize(slot_count);
  watchdog_ = std::make_unique<Watchdog>(slot_count);

  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view var(*e);
    if (var.rfind("PARALLEL_SEQ=", 0) == 0 || var.rfind("PARALLEL_JOBSLOT=", 0) == 0 ||
        var.rfind("PARALLEL_PID=", 0) == 0)
      continue;
    base_env_.push_back(*e);
  }
  parallel_pid_env_ = fmt::format("PARALLEL_PID={}", ::getpid());

  if (progress_.active()) progress_.set_total(source_->count_total());
}

/// Raises procpool's soft RLIMIT_NOFILE to the hard limit (the jobs get the original back) and caps
/// the slots to what the descriptors allow, with a warning, as GNU parallel does: one pipe2 failing
/// with EMFILE mid-run would otherwise end the whole run. Called once everything else is open.
unsigned Runner::slots_within_descriptor_limit() {
  if (::getrlimit(RLIMIT_NOFILE, &job_nofile_) != 0 || job_nofile_.rlim_cur == RLIM_INFINITY) return opt_.jobs;
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
  const rlim_t room = limit > needed_now ? (limit - needed_now) / kDescriptorsPerJob : 0;
  const auto allowed = static_cast<unsigned>(std::clamp<rlim_t>(room, 1, opt_.jobs));
  if (allowed < opt_.jobs)
    std::cerr << fmt::format(
        "procpool: warning: only enough file descriptors to run {} jobs at once (ulimit -n is {}): running {} "
        "at a time instead of {}; raise the hard limit to run more\n",
        allowed, limit, allowed, opt_.jobs);
  return allowed;
}

void Runner::stop_for_results(const std::string& message) {
  std::cerr << fmt::format("procpool: {}: starting no more jobs\n", message);
  results_failed_ = true;
  stopping_ = true;
}

int Runner::dry_run() {
  JobInput input;
  std::string out;
  for (;;) {
    const auto r = source_->next(input);
    if (r == JobSource::Result::End) break;
    if (r == JobSource::Result::WouldBlock) {
      pollfd pfd{source_->wait_fd(), POLLIN, 0};
      ::poll(&pfd, 1, -1);
      continue;
    }
    out = source_->command_for(input, 1);
    out += '\n';
    bool line_start = true;
    writer_.write(STDOUT_FILENO, out, {}, line_start);
    if (writer_.broken()) return 255;
  }
  return 0;
}

unsigned Runner::busy_count() const {
  return static_cast<unsigned>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.busy(); }));
}

ProgressCounts Runner::counts() const { return {done_, failed_, busy_count(), skipped_}; }

bool Runner::throttled(Clock::time_point now) {
  if (now < next_start_allowed_) return true;
  if (throttle_until_ && now < *throttle_until_) return true;
  throttle_until_.reset();
  if (opt_.memfree_bytes > 0) {
    if (const auto available = os::read_meminfo().available; available && *available < opt_.memfree_bytes) {
      throttle_until_ = now + kThrottleRecheck;
      return true;
    }
  }
  if (opt_.load_limit > 0) {
    // Runnable right now, procpool itself among them.
    const double runnable = os::runnable_tasks().value_or(0) - 1;
    if (runnable >= opt_.load_limit) { throttle_until_ = now + kThrottleRecheck; return true; }
  }
  return false;
}

std::unique_ptr<Job> Runner::next_job() {
  if (!retry_queue_.empty()) {
    auto job = std::move(retry_queue_.front());
    retry_queue_.pop_front();
    return job;
  }
  input_waiting_ = false;
  if (input_done_) return nullptr;
  auto job = std::make_unique<Job>();
  for (;;) {
    const auto r = source_->next(job->input);
    if (r == JobSource::Result::End) { input_done_ = true; return nullptr; }
    if (r == JobSource::Result::WouldBlock) { input_waiting_ = true; return nullptr; }
    if (resume_ && resume_->skip(job->input.seq, opt_.resume_failed)) { ++skipped_; continue; }
    return job;
  }
}

void Runner::start_jobs() {
  while (!stopping_) {
    const auto free_slot = std::find_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.busy(); });
    if (free_slot == slots_.end()) return;
    if ((opt_.delay_seconds > 0 || opt_.memfree_bytes > 0 || opt_.load_limit > 0) && throttled(Clock::now())) return;
    auto job = next_job();
    if (!job) return;
    start(std::move(job), static_cast<unsigned>(free_slot - slots_.begin()));
  }
}

void Runner::start(std::unique_ptr<Job> job, unsigned slot_index) {
  Slot& slot = slots_[slot_index];
  const unsigned slot_number = slot_index + 1;
  job->command = source_->command_for(job->input, slot_number);
  // --results first: a job whose files cannot be made (a planted symlink, a full disk) does not run.
  ResultsDir::JobFiles result_files;
  if (results_) {
    try {
      result_files = results_->create(job->input.seq, job->command);
    } catch (const ResultsError& e) {
      if (job->output != nullptr) order_.discard(*job->output);  // a retry: its earlier tries printed nothing
      stop_for_results(e.what());
      return;
    }
  }
  if (job->output == nullptr) {
    std::string prefix;
    if (opt_.tagstring) prefix = CommandTemplate(*opt_.tagstring).expand(job->input.args, job->input.seq, slot_number, false) + "\t";
    else if (opt_.tag) prefix = JobSource::tag_for(job->input) + "\t";
    job->output = order_.open(std::move(prefix));
  }
  ++job->tries_done;

  const bool long_command = job->command.size() > kMaxInlineCommand;
  const ExecPlan plan = long_command ? ExecPlan{} : planner_.plan(job->command);
  std::vector<char*> argv;
  for (const auto& word : plan.argv) argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);
  char sh[] = "sh";
  char dash_c[] = "-c";
  char* shell_argv[] = {sh, dash_c, job->command.data(), nullptr};
  std::string script_path;
  if (long_command) {
    // sh reads the command from a memfd that procpool holds open until the job ends; the job
    // itself inherits no extra descriptor.
    slot.script_fd = ::memfd_create("procpool-command", MFD_CLOEXEC);
    if (slot.script_fd < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");
    if (const int err = os::write_all(slot.script_fd, job->command + "\n"); err != 0)
      throw std::system_error(err, std::generic_category(), "write memfd");
    script_path = fmt::format("/proc/{}/fd/{}", ::getpid(), slot.script_fd);
    shell_argv[1] = script_path.data();
    shell_argv[2] = nullptr;
  }
  const std::string seq_env = fmt::format("PARALLEL_SEQ={}", job->input.seq);
  const std::string slot_env = fmt::format("PARALLEL_JOBSLOT={}", slot_number);
  std::vector<char*> envp = base_env_;
  envp.push_back(const_cast<char*>(seq_env.c_str()));
  envp.push_back(const_cast<char*>(slot_env.c_str()));
  envp.push_back(parallel_pid_env_.data());
  envp.push_back(nullptr);

  SpawnRequest request;
  request.path = plan.direct ? plan.path.c_str() : nullptr;
  request.argv = argv.data();
  request.shell_argv = shell_argv;
  request.envp = envp.data();
  request.stdin_fd = job_stdin_;
  // --tty jobs stay in procpool's (foreground) process group, or reading the terminal would stop them.
  request.new_group = !opt_.tty;
  request.group_slot = opt_.tty ? nullptr : &watchdog_->slot(slot_index);
  request.parent = ::getpid();
  request.nofile = restore_nofile_ ? &job_nofile_ : nullptr;

  int child_out = -1, child_err = -1;
  if (opt_.verbose) {
    const std::string line = job->command + "\n";
    if (opt_.output == OutputMode::Ungroup) {
      bool line_start = true;
      writer_.write(STDOUT_FILENO, line, {}, line_start);
    } else {
      order_.data(*job->output, STDOUT_FILENO, line);
    }
  }
  if (results_) {
    slot.results_out = result_files.out;
    slot.results_err = result_files.err;
    slot.results_error.clear();
  }
  // --results goes through the pipes too: procpool writes the files, so it sees a full disk.
  if (opt_.output == OutputMode::Ungroup && !results_) {
    child_out = STDOUT_FILENO;
    child_err = STDERR_FILENO;
  } else {
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
  if (slot.out_fd >= 0) {
    ::close(child_out);
    ::close(child_err);
  }
  slot.received = 0;
  slot.kill_reason = KillReason::None;
  slot.kill_sent = false;
  slot.job = std::move(job);
  if (opt_.delay_seconds > 0) next_start_allowed_ = after(slot.started, opt_.delay_seconds);
}

void Runner::read_output(Slot& slot, int& fd, int which, bool until_empty) {
  while (fd >= 0) {
    const ssize_t n = ::read(fd, read_buffer_.data(), read_buffer_.size());
    if (n > 0) {
      const std::string_view bytes(read_buffer_.data(), static_cast<std::size_t>(n));
      if (which == STDOUT_FILENO) slot.received += static_cast<std::uint64_t>(n);
      if (results_) save_result(slot, which, bytes);
      if (opt_.output == OutputMode::Ungroup) {  // only with --results: otherwise the job has our stdout
        bool line_start = true;
        writer_.write(which, bytes, {}, line_start);
      } else {
        order_.data(*slot.job->output, which, bytes);
      }
      if (!until_empty) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    close_fd(fd);  // EOF: the job (and anything it started) closed its end
  }
}

void Runner::save_result(Slot& slot, int which, std::string_view bytes) {
  int& fd = which == STDOUT_FILENO ? slot.results_out : slot.results_err;
  if (fd < 0 || bytes.empty()) return;
  if (const int err = os::write_all(fd, bytes); err != 0) {
    if (slot.results_error.empty())
      slot.results_error = fmt::format(
          "--results: cannot write '{}': {}",
          results_->file_path(slot.job->input.seq, which == STDOUT_FILENO ? "stdout" : "stderr"), std::strerror(err));
    close_fd(fd);  // the rest of this stream is not saved; the job runs on
  }
}

std::optional<double> Runner::timeout_seconds() const {
  if (opt_.timeout.seconds > 0) return opt_.timeout.seconds;
  if (opt_.timeout.percent > 0) {
    if (const auto median = median_.median()) return *median * opt_.timeout.percent / 100.0;
  }
  return std::nullopt;
}

void Runner::kill_job(Slot& slot, KillReason reason) {
  if (slot.kill_reason != KillReason::None) return;
  slot.kill_reason = reason;
  signal_job(slot.pid, !opt_.tty, SIGTERM);
  slot.kill_deadline = after(Clock::now(), opt_.kill_grace_seconds);
}

void Runner::interrupt(int sig) {
  if (!interrupted_) {
    std::cerr << fmt::format("procpool: {}: starting no more jobs, stopping the {} running\n", strsignal(sig),
                             busy_count());
    interrupted_ = true;
    stopping_ = true;
    for (auto& slot : slots_)
      if (slot.busy()) kill_job(slot, KillReason::Interrupt);
    return;
  }
  for (auto& slot : slots_)  // a second signal: no more grace
    if (slot.busy()) {
      if (slot.kill_reason == KillReason::None) slot.kill_reason = KillReason::Interrupt;
      signal_job(slot.pid, !opt_.tty, SIGKILL);
      slot.kill_sent = true;
    }
}

void Runner::check_timeouts(Clock::time_point now) {
  const auto limit = timeout_seconds();
  for (auto& slot : slots_) {
    if (!slot.busy()) continue;
    if (slot.kill_reason == KillReason::None && limit && now >= after(slot.started, *limit))
      kill_job(slot, KillReason::Timeout);
    if (slot.kill_reason != KillReason::None && !slot.kill_sent && now >= slot.kill_deadline) {
      signal_job(slot.pid, !opt_.tty, SIGKILL);
      slot.kill_sent = true;
    }
  }
}

void Runner::check_halt(const Slot& slot, int exitval, int signal, bool failed) {
  if (opt_.halt.when == HaltPolicy::When::Never || halt_status_ >= 0) return;
  if (failed == opt_.halt.on_success) return;  // this result does not count towards the condition
  const double count = static_cast<double>(opt_.halt.on_success ? succeeded_ : failed_);
  const bool triggered = opt_.halt.percent ? done_ >= 3 && count * 100.0 / static_cast<double>(done_) >= opt_.halt.threshold
                                           : count >= opt_.halt.threshold;
  if (!triggered) return;
  halt_status_ = opt_.halt.on_success ? 0 : (exitval > 0 ? exitval : (signal > 0 ? std::min(128 + signal, 255) : 1));
  stopping_ = true;
  std::cerr << fmt::format("procpool: --halt: job {} {} ({}), {}\n", slot.job->input.seq,
                           failed ? "failed" : "succeeded", slot.job->command,
                           opt_.halt.when == HaltPolicy::When::Now ? "killing the running jobs"
                                                                   : "waiting for the running jobs");
  if (opt_.halt.when == HaltPolicy::When::Now)
    for (auto& other : slots_)
      if (other.busy() && &other != &slot) kill_job(other, KillReason::Halt);
}

void Runner::finish(Slot& slot, int status) {
  const auto now = Clock::now();
  read_output(slot, slot.out_fd, STDOUT_FILENO, true);
  read_output(slot, slot.err_fd, STDERR_FILENO, true);
  close_fd(slot.out_fd);
  close_fd(slot.err_fd);
  close_fd(slot.script_fd);
  // Whatever of a killed job's group is still alive (a grandchild ignoring TERM) goes now.
  if (slot.kill_reason != KillReason::None) signal_job(slot.pid, !opt_.tty, SIGKILL);
  watchdog_->slot(static_cast<unsigned>(&slot - slots_.data())).store(0, std::memory_order_release);

  std::unique_ptr<Job> job = std::move(slot.job);
  const double runtime = Seconds(now - slot.started).count();
  int exitval = 0, signal = 0;
  if (WIFEXITED(status)) exitval = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) signal = WTERMSIG(status);
  if (slot.kill_reason == KillReason::Timeout) {  // GNU parallel logs a timed-out job as -1 / its signal
    exitval = -1;
    if (signal == 0) signal = SIGTERM;
  }
  const bool failed = exitval != 0 || signal != 0;
  close_fd(slot.results_out);
  close_fd(slot.results_err);

  if (slot.kill_reason == KillReason::Interrupt || slot.kill_reason == KillReason::Halt) {
    // Not finished: not logged, so --resume runs it again.
    order_.discard(*job->output);
    return;
  }
  if (!slot.results_error.empty()) {
    // Its output is printed, but with its results incomplete it is not logged: --resume runs it again.
    order_.finish(*job->output);
    stop_for_results(fmt::format("job {}: {}", job->input.seq, slot.results_error));
    return;
  }
  if (failed && !stopping_ && (opt_.tries == 0 || job->tries_done < opt_.tries)) {
    order_.reset(*job->output);
    retry_queue_.push_front(std::move(job));
    return;
  }
  ++done_;
  if (failed) ++failed_;
  else {
    ++succeeded_;
    if (opt_.timeout.percent > 0) median_.add(runtime);
  }
  if (joblog_)
    joblog_->write({job->input.seq, slot.start_epoch, runtime, 0, slot.received, exitval, signal, job->command});
  if (slot.kill_reason == KillReason::Timeout)
    std::cerr << fmt::format("procpool: job {} timed out and was killed: {}\n", job->input.seq, job->command);
  order_.finish(*job->output);
  slot.job = std::move(job);  // check_halt reports it; freed below
  check_halt(slot, exitval, signal, failed);
  slot.job.reset();
}

void Runner::reap() {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (auto& slot : slots_) {
      if (slot.busy() && slot.pid == pid) {
        finish(slot, status);
        break;
      }
    }
  }
}

void Runner::poll_once() {
  std::vector<pollfd>& fds = poll_fds_;  // reused: no allocation per round
  fds.clear();
  fds.push_back({signal_fd_, POLLIN, 0});
  if (input_waiting_ && !stopping_ && source_->wait_fd() >= 0) fds.push_back({source_->wait_fd(), POLLIN, 0});
  for (auto& slot : slots_) {
    if (slot.out_fd >= 0) fds.push_back({slot.out_fd, POLLIN, 0});
    if (slot.err_fd >= 0) fds.push_back({slot.err_fd, POLLIN, 0});
  }
  // Sleep until the nearest deadline: a timeout, a SIGKILL after grace, --delay, a throttle re-check.
  const auto now = Clock::now();
  std::optional<Clock::time_point> wake;
  auto consider = [&](Clock::time_point t) { if (!wake || t < *wake) wake = t; };
  const auto limit = timeout_seconds();
  for (const auto& slot : slots_) {
    if (!slot.busy()) continue;
    if (slot.kill_reason == KillReason::None && limit) consider(after(slot.started, *limit));
    if (slot.kill_reason != KillReason::None && !slot.kill_sent) consider(slot.kill_deadline);
  }
  const bool want_start = !stopping_ && busy_count() < slots_.size() && (!input_done_ || !retry_queue_.empty());
  if (want_start && next_start_allowed_ > now) consider(next_start_allowed_);
  if (want_start && throttle_until_) consider(*throttle_until_);
  if (progress_.active()) consider(now + std::chrono::milliseconds(200));
  int timeout_ms = -1;
  if (wake) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*wake - now).count() + 1;
    timeout_ms = static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
  }
  const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
  if (ready < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");

  if (fds[0].revents & POLLIN) {
    signalfd_siginfo info{};
    bool child_exited = false;
    while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      if (info.ssi_signo == SIGCHLD) child_exited = true;
      else interrupt(static_cast<int>(info.ssi_signo));
    }
    if (child_exited) reap();
  }
  for (auto& slot : slots_) {
    if (!slot.busy()) continue;
    // One read per ready pipe per round keeps the loop fair between jobs.
    if (slot.out_fd >= 0) read_output(slot, slot.out_fd, STDOUT_FILENO, false);
    if (slot.err_fd >= 0) read_output(slot, slot.err_fd, STDERR_FILENO, false);
  }
  check_timeouts(Clock::now());
}

int Runner::exit_status() const {
  if (interrupted_ || results_failed_) return 255;
  if (halt_status_ >= 0) return halt_status_;
  return static_cast<int>(std::min<std::uint64_t>(failed_, 101));
}

int Runner::run() {
  setup();
  if (opt_.dry_run) return dry_run();
  for (;;) {
    if (writer_.broken() && !interrupted_) {
      std::cerr << "procpool: stdout is closed: stopping\n";
      interrupt(SIGPIPE);
    }
    start_jobs();
    if (busy_count() == 0 && (stopping_ || (input_done_ && retry_queue_.empty()))) break;
    progress_.update(counts());
    poll_once();
  }
  order_.flush_all();
  progress_.finish(counts());
  watchdog_.reset();
  return exit_status();
}

} // namespace

int run_jobs(const Options& options) {
  Runner runner(options);
  return runner.run();
}

} // namespace procpool::cli
