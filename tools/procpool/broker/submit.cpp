// `procpool run --broker`: expands the batch exactly as locally, enqueues it with back-pressure, and turns the
// run's result stream into the local run's output, joblog, progress and exit status. One thread, one
// connection: enqueue, heartbeat, then XREAD (blocking briefly only when there is nothing to enqueue).
#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/scripts.hpp"

#include "input.hpp"
#include "joblog.hpp"
#include "output.hpp"
#include "progress.hpp"
#include "results.hpp"

#include "os/fd.hpp"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace procpool::cli::broker {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kEnqueueBatch = 100;
constexpr std::size_t kGatherBelow = 8;  // results per read below which the next read waits 1 ms
constexpr long long kAttachedMs = 6000;  // a run seen this recently still has its submitter

std::string sidecar_path(const std::string& joblog) { return joblog + ".procpool-run"; }

void fnv1a(std::uint64_t& hash, std::string_view bytes) {
  for (const unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
}

/// The run's `digest` over the input read so far: FNV-1a of each job's Seq and command, NUL-terminated.
void add_to_digest(std::uint64_t& digest, std::uint64_t seq, const std::string& command) {
  fnv1a(digest, std::to_string(seq));
  fnv1a(digest, std::string_view("\0", 1));
  fnv1a(digest, command);
  fnv1a(digest, std::string_view("\0", 1));
}

std::string size_text(std::uint64_t bytes) {
  if (bytes >= (1ULL << 20) && bytes % (1ULL << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes >= 1024 && bytes % 1024 == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} bytes", bytes);
}

/// A stream entry's fields by name.
std::map<std::string, std::string> fields_of(const redisReply* pairs) {
  std::map<std::string, std::string> f;
  for (std::size_t i = 0; i + 1 < pairs->elements; i += 2) f[reply_text(pairs->element[i])] = reply_text(pairs->element[i + 1]);
  return f;
}

class Submitter {
 public:
  explicit Submitter(const Options& options)
      : opt_(options),
        b_(*options.broker),
        progress_(options.progress, options.force_progress),
        writer_([this] { progress_.erase(); }),
        order_(options.output, options.keep_order, writer_) {}
  int run();

 private:
  struct Pending {
    JobOutput* output = nullptr;  // -k: opened at enqueue, in input order
    std::string prefix;
  };

  void setup();
  bool try_reattach();
  void create_run();
  void enqueue_some();
  void heartbeat(bool force);
  std::size_t read_results(int block_ms);
  void handle_entry(const std::map<std::string, std::string>& f);
  void check_halt(std::uint64_t seq, const std::string& cmd, int exitval, int signal, bool failed);
  void interrupt(int sig);
  void note_unreachable(const BrokerDown& e);
  bool check_signals();
  [[nodiscard]] std::optional<bool> complete();
  [[nodiscard]] int exit_status() const;
  [[nodiscard]] ProgressCounts counts() const { return {done_, failed_, running_, skipped_}; }
  Pending make_pending(const JobInput& input);

  const Options& opt_;
  const Options::Broker& b_;
  BrokerUrl url_;
  std::string prefix_, run_id_, run_key_;
  std::unique_ptr<Connection> conn_;
  Progress progress_;
  StdWriter writer_;
  OutputOrder order_;
  std::unique_ptr<JobSource> source_;
  std::optional<ResumeState> resume_;
  std::unique_ptr<JobLogWriter> joblog_;
  std::unique_ptr<ResultsDir> results_;
  std::unordered_map<std::uint64_t, Pending> pending_;
  std::vector<std::string> batch_;  // enqueue's ARGV being built (kept when the broker is unreachable)
  std::uint64_t batch_read_ = 0;
  std::string last_id_ = "0-0";
  std::uint64_t read_ = 0;  // input jobs read (resume-skipped included)
  std::uint64_t digest_ = 14695981039346656037ULL;
  std::uint64_t enq_ = 0, cancelled_ = 0, running_ = 0;
  std::uint64_t done_ = 0, failed_ = 0, succeeded_ = 0, skipped_ = 0;
  long long lease_ms_ = 10000;
  long long last_ok_ms_ = 0;
  Clock::time_point next_beat_{};
  std::optional<Clock::time_point> no_worker_since_;
  Clock::time_point last_no_worker_note_{};
  Clock::time_point last_unreachable_note_{};
  bool input_done_ = false;
  bool input_waiting_ = false;  // the input (a pipe) has nothing to read now
  bool stopping_ = false;       // enqueue nothing more
  bool interrupted_ = false;
  std::optional<Clock::time_point> interrupt_deadline_;
  bool results_failed_ = false;
  bool no_worker_exit_ = false;
  int halt_status_ = -1;
  int signal_fd_ = -1;
};

Submitter::Pending Submitter::make_pending(const JobInput& input) {
  Pending p;
  if (opt_.tagstring)  // a tag is never given the arguments a template without replacement strings gets
    p.prefix = CommandTemplate(*opt_.tagstring, "{}", opt_.plus, /*append_args=*/false).expand(input.args, input.seq, 0, false) + "\t";
  else if (opt_.tag) p.prefix = JobSource::tag_for(input) + "\t";
  if (opt_.keep_order) p.output = order_.open(p.prefix);
  return p;
}

void Submitter::setup() {
  ::signal(SIGPIPE, SIG_IGN);
  url_ = checked_url(b_.url, b_.insecure);
  check_queue_name(b_.queue);
  prefix_ = key_prefix(b_.queue);
  source_ = make_job_source(opt_);
  if (opt_.joblog) joblog_ = std::make_unique<JobLogWriter>(*opt_.joblog, opt_.resume || opt_.resume_failed);
  if (opt_.resume || opt_.resume_failed) resume_ = ResumeState::load(joblog_->fd(), *opt_.joblog);
  if (opt_.results_dir) results_ = std::make_unique<ResultsDir>(*opt_.results_dir);
  conn_ = std::make_unique<Connection>(url_, 5.0);
  check_server(*conn_, b_.queue);
  if (const Reply lease = conn_->command({"HGET", prefix_ + "conf", "lease_ms"}); lease->type == REDIS_REPLY_STRING)
    lease_ms_ = std::max(500LL, reply_integer(lease.get()));

  sigset_t mask;
  sigemptyset(&mask);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&mask, sig);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  if (!((opt_.resume || opt_.resume_failed) && try_reattach())) create_run();
  if (opt_.joblog) {
    // What --resume needs to find this run again; never the password.
    std::ofstream side(sidecar_path(*opt_.joblog), std::ios::trunc);
    side << url_.without_credentials() << "\n" << b_.queue << "\n" << run_id_ << "\n";
  }
  if (progress_.active()) progress_.set_total(source_->count_total());
}

/// --resume after a submitter died: the sidecar names the run; if it is still active, unattended, and
/// the input's first `read` jobs are the ones it was given, carry on with it.
bool Submitter::try_reattach() {
  std::ifstream side(sidecar_path(*opt_.joblog));
  std::string url, queue, run;
  if (!std::getline(side, url) || !std::getline(side, queue) || !std::getline(side, run)) return false;
  if (queue != b_.queue || url != url_.without_credentials()) return false;
  const Reply h = conn_->call({"HMGET", prefix_ + "run:" + run, "state", "seen", "read", "digest", "submitter"});
  if (h->elements != 5 || reply_text(h->element[0]) != "active") return false;
  const Reply t = conn_->call({"TIME"});
  const long long now = reply_integer(t->element[0]) * 1000 + reply_integer(t->element[1]) / 1000;
  if (now - reply_integer(h->element[1]) < kAttachedMs)
    throw UsageError(fmt::format("run {} is still attached to {}", run, reply_text(h->element[4])));
  const auto want_read = static_cast<std::uint64_t>(reply_integer(h->element[2]));
  const std::string want_digest = reply_text(h->element[3]);
  // Read the first `read` jobs again: the ones not in the joblog are the run's (queued, running, or
  // with a result waiting in the stream).
  std::uint64_t digest = 14695981039346656037ULL;
  std::vector<std::pair<std::uint64_t, JobInput>> mine;
  JobInput input;
  std::uint64_t n = 0;
  while (n < want_read) {
    const auto r = source_->next(input);
    if (r == JobSource::Result::End) break;
    if (r == JobSource::Result::WouldBlock) {
      pollfd pfd{source_->wait_fd(), POLLIN, 0};
      ::poll(&pfd, 1, -1);
      continue;
    }
    ++n;
    const std::string cmd = source_->command_for(input, 1);
    add_to_digest(digest, input.seq, cmd);
    if (resume_ && resume_->skip(input.seq, false)) { ++skipped_; continue; }
    mine.emplace_back(input.seq, input);
  }
  if (n != want_read || std::to_string(digest) != want_digest) {
    // Not the same input: a new run with what the joblog lacks.
    source_ = make_job_source(opt_);
    skipped_ = 0;
    return false;
  }
  run_id_ = run;
  run_key_ = prefix_ + "run:" + run;
  read_ = n;
  digest_ = digest;
  for (auto& [seq, job] : mine) pending_.emplace(seq, make_pending(job));
  const Reply counters = conn_->call({"HMGET", run_key_, "enq", "cancelled"});
  enq_ = static_cast<std::uint64_t>(reply_integer(counters->element[0]));
  cancelled_ = static_cast<std::uint64_t>(reply_integer(counters->element[1]));
  conn_->call({"HSET", run_key_, "submitter", fmt::format("{}:{}", host_name(), ::getpid())});
  std::cerr << fmt::format("procpool: reattached to run {} ({} jobs of it not in the joblog)\n", run_id_, mine.size());
  return true;
}

void Submitter::create_run() {
  std::random_device rd;
  run_id_ = fmt::format("{:08x}{:08x}", rd(), rd());
  run_key_ = prefix_ + "run:" + run_id_;
  std::string env;
  for (const auto& name : b_.env) {
    if (const char* value = std::getenv(name.c_str())) {
      env += name + "=" + value;
      env += '\0';
    }
  }
  const double timeout = opt_.timeout.seconds;
  conn_->eval(kCreateRun, prefix_,
              {run_id_, "submitter", fmt::format("{}:{}", host_name(), ::getpid()), "tries", std::to_string(opt_.tries),
               "max_crashes", std::to_string(b_.max_crashes), "env", env, "wopts",
               fmt::format("{} {} {} {}", timeout, opt_.kill_grace_seconds, opt_.shell_always ? 1 : 0, b_.max_output)});
}

void Submitter::enqueue_some() {
  while (!stopping_ && (!input_done_ || !batch_.empty())) {
    if (batch_.empty()) {
      if (enq_ - std::min(enq_, done_ + cancelled_) >= b_.max_queued) return;  // back-pressure
      const std::uint64_t room = b_.max_queued - (enq_ - std::min(enq_, done_ + cancelled_));
      JobInput input;
      std::size_t jobs = 0;
      while (jobs < std::min<std::uint64_t>(kEnqueueBatch, room)) {
        const auto r = source_->next(input);
        if (r == JobSource::Result::End) { input_done_ = true; break; }
        if (r == JobSource::Result::WouldBlock) { input_waiting_ = true; break; }
        input_waiting_ = false;
        ++read_;
        const std::string cmd = source_->command_for(input, 1);
        add_to_digest(digest_, input.seq, cmd);
        if (resume_ && resume_->skip(input.seq, opt_.resume_failed)) { ++skipped_; continue; }
        if (batch_.empty()) batch_ = {run_id_, "", ""};
        batch_.push_back(std::to_string(input.seq));
        batch_.push_back(cmd);
        pending_.emplace(input.seq, make_pending(input));
        ++jobs;
      }
      if (batch_.empty()) {
        if (read_ > batch_read_) {  // only skipped jobs: still record what was read, for a later reattach
          batch_ = {run_id_, "", ""};
        } else {
          return;
        }
      }
      batch_[1] = std::to_string(read_);
      batch_[2] = std::to_string(digest_);
      batch_read_ = read_;
    }
    try {
      const Reply r = conn_->eval(kEnqueue, prefix_, batch_);
      (void)r;
      enq_ += (batch_.size() - 3) / 2;
      batch_.clear();
    } catch (const ReplyError& e) {
      const std::string what = e.what();
      if (what.find("RUN ") == std::string::npos) throw;
      // Cancelled or drained meanwhile (--halt, another submitter's cancel): enqueue nothing more.
      for (std::size_t i = 3; i < batch_.size(); i += 2) {
        const auto seq = std::strtoull(batch_[i].c_str(), nullptr, 10);
        if (auto p = pending_.find(seq); p != pending_.end()) {
          if (p->second.output != nullptr) order_.discard(*p->second.output);
          pending_.erase(p);
        }
      }
      batch_.clear();
      stopping_ = true;
      return;
    }
    if (input_done_ || enq_ - std::min(enq_, done_ + cancelled_) >= b_.max_queued) return;
  }
}

void Submitter::heartbeat(bool force) {
  const auto now = Clock::now();
  if (!force && now < next_beat_) return;
  next_beat_ = now + std::chrono::milliseconds(std::min(2000LL, lease_ms_ / 5));
  const long long since_ok = last_ok_ms_ == 0 ? 0 : monotonic_ms() - last_ok_ms_;
  const Reply r = conn_->eval(kHeartbeat, prefix_,
                              {"r", run_id_, std::to_string(since_ok), std::to_string(lease_ms_),
                               std::to_string(static_cast<long long>(b_.run_ttl * 1000)), "0"});
  if (r->elements > 0 && reply_text(r->element[0]) == "GONE")
    throw UsageError(fmt::format("run {} vanished from the broker (Redis restarted without persistence?); --resume runs "
                                 "the jobs not in the joblog",
                                 run_id_));
  last_ok_ms_ = monotonic_ms();
  const long long workers = r->elements > 1 ? reply_integer(r->element[1]) : 0;
  const Reply c = conn_->call({"HMGET", run_key_, "cancelled", "running"});
  cancelled_ = static_cast<std::uint64_t>(reply_integer(c->element[0]));
  running_ = static_cast<std::uint64_t>(reply_integer(c->element[1]));
  if (workers > 0) {
    no_worker_since_.reset();
    return;
  }
  if (!no_worker_since_) no_worker_since_ = now;
  const std::string hint = fmt::format("procpool: no worker serves queue '{}'; start one: procpool worker --broker {}{}\n",
                                       b_.queue, url_.without_credentials(),
                                       b_.queue == "default" ? "" : " --queue " + b_.queue);
  const auto waited = std::chrono::duration<double>(now - *no_worker_since_).count();
  if (b_.no_worker_timeout > 0 && waited >= b_.no_worker_timeout) {
    progress_.erase();
    std::cerr << hint;
    std::cerr << fmt::format("procpool: no worker for {:g}s (--no-worker-timeout): cancelling the run\n", waited);
    no_worker_exit_ = true;
    return;
  }
  if (waited >= std::min(5.0, b_.no_worker_timeout > 0 ? b_.no_worker_timeout : 5.0) &&
      now - last_no_worker_note_ >= std::chrono::seconds(30)) {
    progress_.erase();
    std::cerr << hint;
    last_no_worker_note_ = now;
  }
}

/// XREAD from the run's log; returns how many results came.
std::size_t Submitter::read_results(int block_ms) {
  std::vector<std::string> args{"XREAD", "COUNT", "256"};
  if (block_ms > 0) {
    args.push_back("BLOCK");
    args.push_back(std::to_string(block_ms));
  }
  args.insert(args.end(), {"STREAMS", run_key_ + ":log", last_id_});
  const Reply r = conn_->call(args);
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return 0;
  const redisReply* entries = r->element[0]->element[1];
  for (std::size_t i = 0; i < entries->elements; ++i) {
    const redisReply* entry = entries->element[i];
    last_id_ = reply_text(entry->element[0]);
    handle_entry(fields_of(entry->element[1]));
  }
  // Trim what is handled (MINID keeps ids >= it): the stream holds only results not yet logged.
  const auto dash = last_id_.find('-');
  const std::string next = last_id_.substr(0, dash) + "-" + std::to_string(std::stoull(last_id_.substr(dash + 1)) + 1);
  conn_->call({"XTRIM", run_key_ + ":log", "MINID", next});
  return entries->elements;
}

void Submitter::handle_entry(const std::map<std::string, std::string>& f) {
  auto get = [&](const char* name) -> const std::string& {
    static const std::string empty;
    const auto it = f.find(name);
    return it == f.end() ? empty : it->second;
  };
  const auto seq = std::strtoull(get("seq").c_str(), nullptr, 10);
  auto p = pending_.find(seq);
  if (resume_ && resume_->skip(seq, false) && p == pending_.end()) return;  // logged before a reattach
  Pending pending = p != pending_.end() ? p->second : Pending{};
  if (p != pending_.end()) pending_.erase(p);
  const std::string& cmd = get("cmd");
  const std::string& host = get("host");
  const int exitval = std::atoi(get("exit").c_str());
  const int signal = std::atoi(get("sig").c_str());
  const bool failed = exitval != 0 || signal != 0;
  const int trunc = std::atoi(get("trunc").c_str());
  const int lost = std::atoi(get("lost").c_str());

  JobOutput* out = pending.output != nullptr ? pending.output : order_.open(pending.prefix);
  if (opt_.verbose) order_.data(*out, STDOUT_FILENO, cmd + "\n");
  order_.data(*out, STDOUT_FILENO, get("out"));
  order_.data(*out, STDERR_FILENO, get("err"));
  std::string results_error;
  if (results_) {
    try {
      const auto files = results_->create(seq, cmd);
      if (const int err = os::write_all(files.out, get("out")); err != 0) results_error = std::strerror(err);
      if (const int err = os::write_all(files.err, get("err")); err != 0) results_error = std::strerror(err);
      ::close(files.out);
      ::close(files.err);
    } catch (const ResultsError& e) {
      results_error = e.what();
    }
  }
  if (!results_error.empty()) {
    order_.finish(*out);
    std::cerr << fmt::format("procpool: job {}: --results: {}: starting no more jobs\n", seq, results_error);
    results_failed_ = true;
    stopping_ = true;
    return;
  }
  ++done_;
  if (failed) ++failed_;
  else ++succeeded_;
  if (joblog_) {
    JobLogEntry e{seq, std::strtod(get("start").c_str(), nullptr), std::strtod(get("rt").c_str(), nullptr), 0,
                  std::strtoull(get("rcv").c_str(), nullptr, 10), exitval, signal, cmd, host};
    joblog_->write(e);
  }
  progress_.erase();
  if (lost > 0)
    std::cerr << fmt::format("procpool: job {} lost: its worker died {} times (last on {}, --max-crashes {}): {}\n", seq,
                             lost, host, b_.max_crashes, cmd);
  else if (exitval == -1)
    std::cerr << fmt::format("procpool: job {} timed out and was killed: {}\n", seq, cmd);
  if (trunc & 1)
    std::cerr << fmt::format("procpool: job {} (host {}): stdout truncated at {} (--max-output)\n", seq, host,
                             size_text(b_.max_output));
  if (trunc & 2)
    std::cerr << fmt::format("procpool: job {} (host {}): stderr truncated at {} (--max-output)\n", seq, host,
                             size_text(b_.max_output));
  order_.finish(*out);
  check_halt(seq, cmd, exitval, signal, failed);
}

void Submitter::check_halt(std::uint64_t seq, const std::string& cmd, int exitval, int signal, bool failed) {
  if (halt_status_ >= 0) return;
  const auto status = halt_status(opt_.halt, {done_, failed_, succeeded_, {}}, exitval, signal, failed);
  if (!status) return;
  halt_status_ = *status;
  stopping_ = true;
  const bool now = opt_.halt.when == HaltPolicy::When::Now;
  std::cerr << fmt::format("procpool: --halt: job {} {} ({}), {}\n", seq, failed ? "failed" : "succeeded", cmd,
                           now ? "killing the running jobs" : "waiting for the running jobs");
  conn_->eval(kCancel, prefix_, {run_id_, now ? "cancelled" : "draining", "0"});
  if (now) interrupt_deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                    std::chrono::duration<double>(opt_.kill_grace_seconds + 2));
}

void Submitter::interrupt(int sig) {
  const bool first = !interrupted_;
  if (first) {
    progress_.erase();
    std::cerr << fmt::format("procpool: {}: starting no more jobs, stopping the {} running\n", strsignal(sig), running_);
    interrupted_ = true;
    stopping_ = true;
    interrupt_deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(opt_.kill_grace_seconds + 2));
  }
  try {
    conn_->eval(kCancel, prefix_, {run_id_, "cancelled", first ? "0" : "1"});
  } catch (const BrokerDown& e) {
    note_unreachable(e);
  }
}

void Submitter::note_unreachable(const BrokerDown& e) {
  if (Clock::now() - last_unreachable_note_ < std::chrono::seconds(10)) return;
  progress_.erase();
  std::cerr << fmt::format("procpool: broker {} unreachable ({}); retrying, {} jobs running\n", url_.redacted(), e.what(),
                           running_);
  last_unreachable_note_ = Clock::now();
}

bool Submitter::check_signals() {
  signalfd_siginfo info{};
  bool any = false;
  while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    interrupt(static_cast<int>(info.ssi_signo));
    any = true;
  }
  return any;
}

/// Whether every enqueued job has a handled result or was dropped (nullopt: cannot tell now).
std::optional<bool> Submitter::complete() {
  if (!batch_.empty() || (!input_done_ && !stopping_)) return false;
  // Counters first, then the stream: a result counted here is in the stream by the time of the read.
  const Reply c = conn_->call({"HMGET", run_key_, "enq", "done", "cancelled", "running"});
  if (c->element[0]->type == REDIS_REPLY_NIL)
    throw UsageError(fmt::format("run {} vanished from the broker (Redis restarted without persistence?); --resume "
                                 "runs the jobs not in the joblog",
                                 run_id_));
  const auto enq = static_cast<std::uint64_t>(reply_integer(c->element[0]));
  const auto done = static_cast<std::uint64_t>(reply_integer(c->element[1]));
  cancelled_ = static_cast<std::uint64_t>(reply_integer(c->element[2]));
  running_ = static_cast<std::uint64_t>(reply_integer(c->element[3]));
  if (enq != done + cancelled_) return false;
  return read_results(0) == 0;
}

int Submitter::exit_status() const {
  if (interrupted_ || results_failed_ || no_worker_exit_) return 255;
  if (halt_status_ >= 0) return halt_status_;
  return halt_final_status(opt_.halt, {done_, failed_, succeeded_, {}});
}

int Submitter::run() {
  setup();
  double backoff = 0.1;
  for (;;) {
    try {
      check_signals();
      if (writer_.broken() && !interrupted_) {
        std::cerr << "procpool: stdout is closed: stopping\n";
        interrupt(SIGPIPE);
      }
      heartbeat(false);
      if (no_worker_exit_) {
        conn_->eval(kCancel, prefix_, {run_id_, "cancelled", "0"});
        break;
      }
      if (interrupt_deadline_ && Clock::now() >= *interrupt_deadline_) break;
      enqueue_some();
      if (const auto finished = complete(); finished && *finished) break;
      const bool more_input = !stopping_ && !input_done_ && enq_ - std::min(enq_, done_ + cancelled_) < b_.max_queued;
      progress_.update(counts());
      // Block on the results only as long as nothing else needs doing: input to enqueue (a pipe that
      // waits is polled every 20 ms), or the heartbeat.
      const std::size_t got = read_results(more_input ? (input_waiting_ ? 20 : 1) : 200);
      // Results trickling in one or two at a time (short jobs): let a few more gather before the next
      // read, so that one XREAD and XTRIM carry several (Redis' and this process' CPU, shared with the
      // workers on a small host). Costs at most 1 ms of output latency; signals still wake it.
      if (got > 0 && got < kGatherBelow) {
        pollfd pfd{signal_fd_, POLLIN, 0};
        ::poll(&pfd, 1, 1);
      }
      backoff = 0.1;
    } catch (const BrokerDown& e) {
      note_unreachable(e);
      // Wait, but answer Ctrl-C meanwhile.
      pollfd pfd{signal_fd_, POLLIN, 0};
      ::poll(&pfd, 1, static_cast<int>(backoff * 1000));
      backoff = std::min(backoff * 2, 2.0);
      if (interrupt_deadline_ && Clock::now() >= *interrupt_deadline_) break;
    }
  }
  for (auto& [seq, pending] : pending_)  // cancelled, or not run: printed nothing, and --resume runs them
    if (pending.output != nullptr) order_.discard(*pending.output);
  pending_.clear();
  order_.flush_all();
  progress_.finish(counts());
  if (!interrupted_ && !no_worker_exit_) {
    try {
      conn_->eval(kEndRun, prefix_, {run_id_, "3600000"});
      if (opt_.joblog) ::unlink(sidecar_path(*opt_.joblog).c_str());
    } catch (const std::exception&) {
      // The run's keys expire with --run-ttl anyway.
    }
  }
  return exit_status();
}

} // namespace

int submit_run(const Options& options) {
  Submitter submitter(options);
  return submitter.run();
}

} // namespace procpool::cli::broker
