#include "runner.hpp"

#include "input.hpp"
#include "joblog.hpp"
#include "limit.hpp"
#include "output.hpp"
#include "pipe_input.hpp"
#include "progress.hpp"
#include "results.hpp"
#include "slots.hpp"

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

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace procpool::cli {
namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

constexpr auto kThrottleRecheck = std::chrono::milliseconds(100);
constexpr auto kLimitRecheck = std::chrono::milliseconds(100);  // --limit while no job can start

/// `from + seconds`, saturated: a duration beyond the clock's range is "never".
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

/// One job across all its tries.
struct Job {
  JobInput input;
  std::string command;
  unsigned tries_done = 0;
  JobOutput* output = nullptr;  // owned by OutputOrder
};

/// What the runner keeps for a slot's running try; JobSlots runs it.
struct SlotJob {
  std::unique_ptr<Job> job;
  int results_out = -1, results_err = -1; // --results files: what the pipes bring is also written there
  std::string results_out_path, results_err_path;  // their names, for messages
  std::string results_error;              // the first failed --results write, reported when the job ends
  std::string table_out, table_err;       // --results x.csv/.tsv/.json: the whole output, for the job's row
};

/// What GNU parallel does when its stdout's reader is gone: die of SIGPIPE (exit status 141 in a
/// shell), after the running jobs were stopped.
[[noreturn]] void die_of_sigpipe() {
  ::signal(SIGPIPE, SIG_DFL);
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ::sigprocmask(SIG_UNBLOCK, &pipe_only, nullptr);
  ::raise(SIGPIPE);
  ::_exit(255);  // not reached
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

class Runner {
 public:
  explicit Runner(const Options& options)
      : opt_(options),
        progress_(options.progress, options.force_progress),
        writer_([this] { progress_.erase(); }),
        order_(options.output, options.keep_order, writer_) {}

  int run();

 private:
  void setup();
  void stop_for_results(const std::string& message);
  int dry_run();
  /// --tag / --tagstring: the prefix of each of the job's lines ("TAG\t"), or empty.
  std::string prefix_for(const JobInput& input, unsigned slot_number) const;
  void start_jobs();
  bool throttled(Clock::time_point now);
  /// --limit: asks the command; exit 2 kills the youngest running job.
  LimitVerdict check_limit(Clock::time_point now);
  std::unique_ptr<Job> next_job();
  void start(std::unique_ptr<Job> job, unsigned slot_index);
  void log_skipped(Job& job);
  void poll_once();
  void on_output(unsigned slot, int which, std::string_view bytes);
  void save_result(SlotJob& slot, int which, std::string_view bytes);
  void finish(const JobEnd& end);
  void check_halt(const Job& job, unsigned slot, int exitval, int signal, bool failed);
  void interrupt(int sig);
  void hang_up();
  void stop_for_closed_stdout();
  /// GNU parallel's --results saves the output instead of printing it, except a table's with -u or
  /// --line-buffer.
  [[nodiscard]] bool prints_output() const {
    return !gnu_results_ || (gnu_results_->table() && opt_.output != OutputMode::Group);
  }
  [[nodiscard]] std::optional<double> timeout_seconds() const;
  [[nodiscard]] ProgressCounts counts() const;
  [[nodiscard]] int exit_status() const;

  const Options& opt_;
  Progress progress_;
  StdWriter writer_;
  OutputOrder order_;
  std::unique_ptr<JobSource> source_;
  std::optional<ResumeState> resume_;
  std::unique_ptr<JobLogWriter> joblog_;
  std::unique_ptr<ResultsDir> results_;        // --results-layout seq: the output is printed as well
  std::unique_ptr<GnuResults> gnu_results_;   // GNU parallel's --results: the output is not printed
  std::unique_ptr<JobSlots> slots_;
  std::unique_ptr<JobLimit> limit_;
  Clock::time_point next_limit_check_{};
  std::unique_ptr<ChunkFeeds> feeds_;  // --pipe, --pipepart: each running job's stdin
  std::vector<SlotJob> slot_jobs_;
  std::deque<std::unique_ptr<Job>> retry_queue_;
  int signal_fd_ = -1;

  bool input_done_ = false;
  bool input_waiting_ = false;  // the source would block: poll its fd
  bool stopping_ = false;       // start nothing new
  bool interrupted_ = false;
  bool stdout_closed_ = false;  // the reader of stdout went away: stop, then die of SIGPIPE
  bool results_failed_ = false;  // a --results file could not be made: exit 255
  bool input_stopped_ = false;   // -x: an argument too long for -s: exit 255
  int halt_status_ = -1;        // set when --halt triggered
  std::optional<std::uint64_t> halt_total_;  // --halt N%: GNU parallel judges over all the jobs
  Clock::time_point next_start_allowed_{};
  std::optional<Clock::time_point> throttle_until_;
  std::uint64_t done_ = 0, failed_ = 0, succeeded_ = 0, skipped_ = 0;
  RuntimeMedian median_;
  std::vector<pollfd> poll_fds_;
};

void Runner::setup() {
  ::signal(SIGPIPE, SIG_IGN);  // a closed stdout, or a joblog pipe's reader gone, shows up as EPIPE
  if (opt_.tmpdir) {  // GNU parallel's --tmpdir: procpool's spill files, and the jobs' TMPDIR
    if (::access(opt_.tmpdir->c_str(), W_OK | X_OK) != 0)
      throw UsageError(fmt::format("--tmpdir: '{}' is not a writable directory: {}", *opt_.tmpdir, std::strerror(errno)));
    ::setenv("TMPDIR", opt_.tmpdir->c_str(), 1);
  }
  source_ = make_job_source(opt_);
  if (opt_.dry_run) return;
  const bool append = opt_.resume || opt_.resume_failed || opt_.retry_failed;
  if (opt_.joblog) joblog_ = std::make_unique<JobLogWriter>(*opt_.joblog, append);
  if (append && joblog_) resume_ = ResumeState::load(joblog_->fd(), *opt_.joblog);
  if (opt_.retry_failed) {  // the jobs come from the joblog itself
    source_ = make_retry_source(resume_->failed_commands());
    resume_.reset();
  }
  if (opt_.results_dir && opt_.results_layout == ResultsLayout::Seq)
    results_ = std::make_unique<ResultsDir>(*opt_.results_dir);
  else if (opt_.results_dir)
    gnu_results_ = std::make_unique<GnuResults>(*opt_.results_dir, source_->with_named_columns(*opt_.results_dir),
                                                opt_.replace_token, opt_.plus);
  if (opt_.limit) limit_ = std::make_unique<JobLimit>(*opt_.limit);
  if (opt_.memfree_bytes > 0) {
    // MemAvailable never exceeds MemTotal: say once that the run will wait, rather than hang silently.
    if (const auto total = os::read_meminfo().total; total && opt_.memfree_bytes > *total)
      std::cerr << fmt::format(
          "procpool: warning: --memfree asks for {:.1f} GiB free, more than this machine's {:.1f} GiB of "
          "memory: no job will start\n",
          static_cast<double>(opt_.memfree_bytes) / (1 << 30), static_cast<double>(*total) / (1 << 30));
  }

  // Signals arrive through a signalfd in the poll loop, never as handlers.
  sigset_t mask;
  sigemptyset(&mask);
  for (const int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&mask, sig);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) throw std::system_error(errno, std::generic_category(), "signalfd");

  SlotsConfig config;
  config.slots = opt_.jobs;
  config.shell_always = opt_.shell_always;
  config.tty = opt_.tty;
  // --results goes through the pipes too: procpool writes the files, so it sees a full disk.
  config.capture = !(opt_.output == OutputMode::Ungroup && !results_ && !gnu_results_);
  config.grace_seconds = opt_.kill_grace_seconds;
  config.term_seq = opt_.term_seq;
  config.nice = opt_.nice;
  config.hidden_env = {"PARALLEL_SEQ=", "PARALLEL_JOBSLOT=", "PARALLEL_PID="};
  if (opt_.pipe != PipeMode::None) config.extra_descriptors_per_job = 1;
  // Last: the slots are capped by the descriptors still free once everything else is open.
  slots_ = std::make_unique<JobSlots>(
      std::move(config), [this](unsigned slot, int which, std::string_view bytes) { on_output(slot, which, bytes); },
      [this](const JobEnd& end) { finish(end); });
  slot_jobs_.resize(slots_->size());
  if (opt_.pipe != PipeMode::None) feeds_ = std::make_unique<ChunkFeeds>(slots_->size());

  if (progress_.active()) progress_.set_total(source_->count_total());
  if (opt_.halt.percent) halt_total_ = source_->count_total();
}

void Runner::stop_for_results(const std::string& message) {
  std::cerr << fmt::format("procpool: {}: starting no more jobs\n", message);
  results_failed_ = true;
  stopping_ = true;
}

std::string Runner::prefix_for(const JobInput& input, unsigned slot_number) const {
  if (opt_.tagstring) {
    CommandTemplate tag(*opt_.tagstring, "{}", opt_.plus, false);
    // --plus's {##} {0#} (every job was read first: the count is at hand) and {0%}
    tag.set_totals(tag.needs_total() ? source_->count_total().value_or(0) : 0, opt_.jobs);
    return tag.expand(input.args, input.seq, slot_number, false) + "\t";
  }
  if (opt_.tag) return JobSource::tag_for(input) + "\t";
  return {};
}

int Runner::dry_run() {
  JobInput input;
  std::string out;
  while (source_->next_waiting(input) == JobSource::Result::Job) {
    out = source_->command_for(input, 1);
    out += '\n';
    bool line_start = true;
    // GNU parallel tags and colours the dry-run lines as it would the output.
    writer_.write(STDOUT_FILENO, out, prefix_for(input, 1), line_start,
                  opt_.color ? colour_for_seq(input.seq) : std::string());
    if (writer_.broken()) die_of_sigpipe();
  }
  return 0;
}

ProgressCounts Runner::counts() const { return {done_, failed_, slots_->busy_count(), skipped_}; }

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
  // GNU parallel asks --limit before each job start.
  if (limit_ && check_limit(now) != LimitVerdict::Start) { throttle_until_ = now + kThrottleRecheck; return true; }
  return false;
}

LimitVerdict Runner::check_limit(Clock::time_point now) {
  next_limit_check_ = now + kLimitRecheck;
  const LimitVerdict verdict = limit_->check();
  if (verdict != LimitVerdict::KillYoungest) return verdict;
  // The youngest is the running job with the highest sequence number, as GNU parallel picks it.
  std::optional<unsigned> youngest;
  for (unsigned i = 0; i < slots_->size(); ++i)
    if (slot_jobs_[i].job && (!youngest || slot_jobs_[i].job->input.seq > slot_jobs_[*youngest].job->input.seq))
      youngest = i;
  if (youngest) slots_->kill(*youngest, KillReason::Limit);
  return verdict;
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
    JobSource::Result r;
    try {
      r = source_->next(job->input);
    } catch (const InputStop& e) {  // GNU parallel lets the running jobs finish, then exits 255
      std::cerr << fmt::format("procpool: {}\n", e.what());
      input_done_ = true;
      input_stopped_ = true;
      return nullptr;
    }
    if (r == JobSource::Result::End) { input_done_ = true; return nullptr; }
    if (r == JobSource::Result::WouldBlock) { input_waiting_ = true; return nullptr; }
    if (resume_ && resume_->skip(job->input.seq, opt_.resume_failed)) { ++skipped_; continue; }
    // GNU parallel's --resume --results: a job whose output files exist has run.
    if (opt_.resume && gnu_results_ && gnu_results_->already_done(job->input, source_->column_names())) {
      ++skipped_;
      continue;
    }
    return job;
  }
}

void Runner::start_jobs() {
  while (!stopping_) {
    const auto free_slot = slots_->free_slot();
    if (!free_slot || (input_done_ && retry_queue_.empty())) return;
    if ((opt_.delay_seconds > 0 || opt_.memfree_bytes > 0 || opt_.load_limit > 0 || limit_) && throttled(Clock::now()))
      return;
    auto job = next_job();
    if (!job) return;
    if (job->input.skip) {
      log_skipped(*job);
      continue;
    }
    start(std::move(job), *free_slot);
  }
}

// --plus's {choose_k} {uniq}: as GNU parallel, a skipped job does not run but is logged with Exitval
// -2 and counts as failed (in the exit status too).
void Runner::log_skipped(Job& job) {
  job.command = source_->command_for(job.input, 1);
  ++done_;
  ++failed_;
  order_.finish(*order_.open({}));  // its turn in -k's order, with no output
  if (joblog_) {
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    joblog_->write({job.input.seq, now, 0, 0, 0, -2, 0, job.command, {}});
  }
}

void Runner::start(std::unique_ptr<Job> job, unsigned slot_index) {
  SlotJob& slot = slot_jobs_[slot_index];
  const unsigned slot_number = slot_index + 1;
  job->command = source_->command_for(job->input, slot_number);
  // --results first: a job whose files cannot be made (a planted symlink, a full disk) does not run.
  GnuResults::JobFiles result_files;
  try {
    if (results_) {
      const auto files = results_->create(job->input.seq, job->command);
      result_files = {files.out, files.err, results_->file_path(job->input.seq, "stdout"),
                      results_->file_path(job->input.seq, "stderr")};
    } else if (gnu_results_ && !gnu_results_->table()) {
      result_files = gnu_results_->create(job->input, source_->column_names(), slot_number);
    }
  } catch (const ResultsError& e) {
    if (job->output != nullptr) order_.discard(*job->output);  // a retry: its earlier tries printed nothing
    stop_for_results(e.what());
    return;
  }
  if (job->output == nullptr)
    job->output = order_.open(prefix_for(job->input, slot_number),
                              opt_.color ? colour_for_seq(job->input.seq) : std::string());
  ++job->tries_done;
  slot.results_out = result_files.out;
  slot.results_err = result_files.err;
  slot.results_out_path = std::move(result_files.out_path);
  slot.results_err_path = std::move(result_files.err_path);
  slot.results_error.clear();
  slot.table_out.clear();
  slot.table_err.clear();
  // GNU parallel's --line-buffer --results prints the name of each job's stdout file.
  if (gnu_results_ && !gnu_results_->table() && opt_.output == OutputMode::LineBuffer)
    order_.data(*job->output, STDOUT_FILENO, slot.results_out_path + "\n");

  if (opt_.verbose_stderr) {  // GNU parallel's -t: on stderr, as the job starts
    bool line_start = true;
    writer_.write(STDERR_FILENO, job->command + "\n", {}, line_start);
  }
  if (opt_.verbose) {
    const std::string line = job->command + "\n";
    if (gnu_results_ && !prints_output()) {  // part of the job's saved output, as GNU parallel's
      save_result(slot, STDOUT_FILENO, line);
    } else if (opt_.output == OutputMode::Ungroup) {
      bool line_start = true;
      writer_.write(STDOUT_FILENO, line, {}, line_start);
    } else {
      order_.data(*job->output, STDOUT_FILENO, line);
    }
  }
  slot.job = std::move(job);
  JobLimits limits;
  os::UniqueFd job_stdin;
  if (slot.job->input.chunk) {
    job_stdin.reset(feeds_->open(slot_index, slot.job->input.chunk));
    limits.stdin_fd = job_stdin.get();
  }
  slots_->start(slot_index, source_->wrap_command(slot.job->input, slot.job->command),
                {fmt::format("PARALLEL_SEQ={}", slot.job->input.seq)}, limits);
  if (opt_.delay_seconds > 0) next_start_allowed_ = after(slots_->started(slot_index), opt_.delay_seconds);
}

void Runner::on_output(unsigned slot_index, int which, std::string_view bytes) {
  SlotJob& slot = slot_jobs_[slot_index];
  // GNU parallel's -u writes a table's output straight through, not into the table.
  if (results_ || (gnu_results_ && !(gnu_results_->table() && opt_.output == OutputMode::Ungroup)))
    save_result(slot, which, bytes);
  if (!prints_output()) return;
  if (opt_.output == OutputMode::Ungroup) {  // only with --results: otherwise the job has our stdout
    bool line_start = true;
    writer_.write(which, bytes, {}, line_start);
  } else {
    order_.data(*slot.job->output, which, bytes);
  }
}

void Runner::save_result(SlotJob& slot, int which, std::string_view bytes) {
  if (gnu_results_ && gnu_results_->table()) {  // GNU parallel keeps a table row's output in memory too
    (which == STDOUT_FILENO ? slot.table_out : slot.table_err).append(bytes);
    return;
  }
  int& fd = which == STDOUT_FILENO ? slot.results_out : slot.results_err;
  if (fd < 0 || bytes.empty()) return;
  if (const int err = os::write_all(fd, bytes); err != 0) {
    if (slot.results_error.empty())
      slot.results_error = fmt::format("--results: cannot write '{}': {}",
                                       which == STDOUT_FILENO ? slot.results_out_path : slot.results_err_path,
                                       std::strerror(err));
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

void Runner::interrupt(int sig) {
  if (!interrupted_) {
    std::cerr << fmt::format("procpool: {}: starting no more jobs, stopping the {} running\n", strsignal(sig),
                             slots_->busy_count());
    interrupted_ = true;
    stopping_ = true;
    slots_->kill_all(KillReason::Interrupt);
    return;
  }
  slots_->kill_all_now(KillReason::Interrupt);  // a second signal: no more grace
}

void Runner::hang_up() {
  // GNU parallel's SIGHUP: start no more jobs, let the running ones finish; a later SIGTERM or
  // SIGINT stops them.
  if (stopping_) return;
  std::cerr << fmt::format("procpool: SIGHUP received: starting no more jobs, waiting for the {} running "
                           "(send SIGTERM to stop them now)\n",
                           slots_->busy_count());
  stopping_ = true;
}

void Runner::stop_for_closed_stdout() {
  // Silently, as GNU parallel: `procpool run ... | head` is an ordinary way to stop a run.
  stdout_closed_ = true;
  interrupted_ = true;
  stopping_ = true;
  slots_->kill_all(KillReason::Interrupt);
}

void Runner::check_halt(const Job& job, unsigned slot, int exitval, int signal, bool failed) {
  if (halt_status_ >= 0) return;
  const auto status = halt_status(opt_.halt, {done_, failed_, succeeded_, halt_total_}, exitval, signal, failed);
  if (!status) return;
  halt_status_ = *status;
  stopping_ = true;
  std::cerr << fmt::format("procpool: --halt: job {} {} ({}), {}\n", job.input.seq,
                           failed ? "failed" : "succeeded", job.command,
                           opt_.halt.when == HaltPolicy::When::Now ? "killing the running jobs"
                                                                   : "waiting for the running jobs");
  if (opt_.halt.when == HaltPolicy::When::Now)
    for (unsigned other = 0; other < slots_->size(); ++other)
      if (other != slot) slots_->kill(other, KillReason::Halt);
}

void Runner::finish(const JobEnd& end) {
  SlotJob& slot = slot_jobs_[end.slot];
  std::unique_ptr<Job> job = std::move(slot.job);
  if (feeds_) feeds_->close(end.slot);
  close_fd(slot.results_out);
  close_fd(slot.results_err);

  if (end.reason == KillReason::Interrupt || end.reason == KillReason::Halt) {
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
  const bool failed = end.failed();
  if (failed && !stopping_ && (opt_.tries == 0 || job->tries_done < opt_.tries)) {
    order_.reset(*job->output);
    retry_queue_.push_front(std::move(job));
    return;
  }
  ++done_;
  if (failed) ++failed_;
  else {
    ++succeeded_;
    if (opt_.timeout.percent > 0) median_.add(end.runtime);
  }
  if (end.reason == KillReason::Timeout)
    std::cerr << fmt::format("procpool: job {} timed out and was killed: {}\n", job->input.seq, job->command);
  // GNU parallel's --color-failed: grouped output only; a job that died of a signal has exit status 0 there.
  if (opt_.color_failed && opt_.output == OutputMode::Group) {
    job->output->whole_lines = true;
    if (end.exitval != 0) job->output->colour = failed_colour();
  }
  // The output first, then the joblog line, as GNU parallel (visible with --joblog -).
  order_.finish(*job->output);
  // A table's Receive is what it holds (-v's line included, nothing with -u), as GNU parallel's.
  const bool table = gnu_results_ && gnu_results_->table();
  const JobLogEntry entry{job->input.seq, end.start_epoch, end.runtime,
                          job->input.chunk ? job->input.chunk->sent() : 0, table ? slot.table_out.size() : end.received,
                          end.exitval, end.signal, job->command, {}};
  if (joblog_) joblog_->write(entry);
  if (table) {
    try {
      gnu_results_->write_row(entry, job->input.args, source_->column_names(), slot.table_out, slot.table_err);
    } catch (const ResultsError& e) {
      stop_for_results(e.what());
    }
    slot.table_out.clear();
    slot.table_err.clear();
  }
  check_halt(*job, end.slot, end.exitval, end.signal, failed);
}

void Runner::poll_once() {
  std::vector<pollfd>& fds = poll_fds_;  // reused: no allocation per round
  fds.clear();
  fds.push_back({signal_fd_, POLLIN, 0});
  if (input_waiting_ && !stopping_ && source_->wait_fd() >= 0) fds.push_back({source_->wait_fd(), POLLIN, 0});
  slots_->add_poll_fds(fds);
  if (feeds_) feeds_->add_poll_fds(fds);
  // Sleep until the nearest deadline: a timeout, a SIGKILL after grace, --delay, a throttle re-check.
  const auto now = Clock::now();
  slots_->set_timeout(timeout_seconds());
  std::optional<Clock::time_point> wake = slots_->next_deadline();
  auto consider = [&](Clock::time_point t) { if (!wake || t < *wake) wake = t; };
  const bool want_start =
      !stopping_ && slots_->busy_count() < slots_->size() && (!input_done_ || !retry_queue_.empty());
  if (want_start && next_start_allowed_ > now) consider(next_start_allowed_);
  if (want_start && throttle_until_) consider(*throttle_until_);
  if (input_waiting_ && !stopping_)
    if (const auto t = source_->wake_time()) consider(*t);  // --block-timeout
  if (progress_.active()) consider(now + std::chrono::milliseconds(200));
  if (limit_ && !stopping_ && slots_->busy_count() > 0) consider(next_limit_check_);
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
      else if (info.ssi_signo == SIGHUP && !interrupted_) hang_up();
      else interrupt(static_cast<int>(info.ssi_signo));
    }
    if (child_exited) slots_->reap();
  }
  if (feeds_) feeds_->pump();
  slots_->service();
}

int Runner::exit_status() const {
  if (interrupted_ || results_failed_ || input_stopped_) return 255;
  if (halt_status_ >= 0) return halt_status_;
  return halt_final_status(opt_.halt, {done_, failed_, succeeded_, halt_total_});
}

int Runner::run() {
  setup();
  if (opt_.dry_run) return dry_run();
  for (;;) {
    if (writer_.broken() && !stdout_closed_) stop_for_closed_stdout();
    start_jobs();
    // GNU parallel keeps asking --limit while jobs run, to kill the youngest on exit 2.
    if (limit_ && !stopping_ && slots_->busy_count() > 0 && Clock::now() >= next_limit_check_)
      check_limit(Clock::now());
    if (slots_->busy_count() == 0 && (stopping_ || (input_done_ && retry_queue_.empty()))) break;
    progress_.update(counts());
    poll_once();
  }
  order_.flush_all();
  progress_.finish(counts());
  slots_.reset();
  if (stdout_closed_) die_of_sigpipe();
  return exit_status();
}

} // namespace

int run_jobs(const Options& options) {
  Runner runner(options);
  return runner.run();
}

} // namespace procpool::cli
