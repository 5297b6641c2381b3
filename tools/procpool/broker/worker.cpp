// `procpool worker`: claims jobs for its free slots only, runs each in JobSlots exactly as `procpool run`
// runs a line, and sends back its end. Threads, each with its own connection: the heartbeat (lease/5),
// the claimer (claim, else block in BLMOVE); the main thread runs the poll loop and sends the results,
// claiming for the slots those jobs freed in the same round trip (no thread hand-off between a job's end
// and the next start).
// The watchdog (forked by JobSlots before any thread) kills the jobs and releases the leases if this
// process dies.
#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/scripts.hpp"

#include "slots.hpp"

#include "os/proc.hpp"

#include <procpool/version.hpp>

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace procpool::cli::broker {
namespace {

using Clock = std::chrono::steady_clock;

/// The run's options that travel with each job (run:<R> wopts: "timeout grace shell max_output").
struct RunLimits {
  double timeout = 0;
  double grace = 1;
  bool shell = false;
  std::uint64_t max_output = 16ULL << 20;
};

RunLimits parse_limits(const std::string& text) {
  RunLimits limits;
  std::istringstream in(text);
  int shell = 0;
  in >> limits.timeout >> limits.grace >> shell >> limits.max_output;
  limits.shell = shell != 0;
  return limits;
}

struct Claimed {
  std::string jid, run;
  std::uint64_t seq = 0;
  std::string att;
  std::string cmd, env;
  RunLimits limits;
};

/// A job's result waiting to be sent (the broker was unreachable when it ended).
struct Result {
  std::vector<std::string> args;  // its 12 fields of finish's ARGV, the jid first
  std::uint64_t seq = 0;
};

/// One slot's job while it runs.
struct Running {
  Claimed job;
  std::string out, err;
  bool out_cut = false, err_cut = false;
  std::uint64_t cap = 0;
  bool drop = false;  // fenced or stopping: its end is not reported
};

std::string format_seconds(double seconds) { return fmt::format("{:.3f}", seconds); }

/// claim's reply: false for FENCED, else the jobs appended to `got`.
bool parse_claim(const redisReply* r, std::vector<Claimed>& got) {
  if (r->elements > 0 && reply_text(r->element[0]) == "FENCED") return false;
  for (std::size_t i = 1; i + 5 < r->elements; i += 6) {
    Claimed c;
    c.jid = reply_text(r->element[i]);
    c.run = c.jid.substr(0, c.jid.find(':'));
    c.seq = std::strtoull(reply_text(r->element[i + 1]).c_str(), nullptr, 10);
    c.att = reply_text(r->element[i + 2]);
    c.cmd = reply_text(r->element[i + 3]);
    c.env = reply_text(r->element[i + 4]);
    c.limits = parse_limits(reply_text(r->element[i + 5]));
    got.push_back(std::move(c));
  }
  return true;
}

class Worker {
 public:
  explicit Worker(const WorkerOptions& options) : opt_(options) {}
  int run();

 private:
  void register_worker();
  void heartbeat_loop();
  void control_loop();
  void claimer_loop();
  void wake() const;
  void start_claimed();
  void start_job(unsigned slot, Claimed job);
  void on_end(const JobEnd& end);
  void send(Result result);
  void flush_results();
  void handle_fenced();
  void handle_cancelled();
  void stop(int sig);
  bool throttled();
  void release_self();

  WorkerOptions opt_;
  BrokerUrl url_;
  std::string prefix_, wid_, host_;
  long long lease_ms_ = 10000;
  std::unique_ptr<Connection> main_;
  std::unique_ptr<JobSlots> slots_;
  std::vector<Running> running_;
  std::deque<Result> unsent_;
  Clock::time_point next_send_try_{};
  double send_backoff_ = 0.1;
  int signal_fd_ = -1;
  int event_fd_ = -1;
  bool stopping_ = false;      // SIGTERM/INT/HUP: kill, requeue, exit
  // Slots freed by ended jobs whose results wait in unsent_: flush_results claims for them in the same
  // round trip as their finish. Only without --max-jobs and host throttles (the claimer applies those).
  unsigned inline_free_ = 0;
  bool inline_claims_ = false;
  bool finishing_ = false;     // SIGUSR1, --max-jobs, --exit-when-idle: claim no more, let jobs end
  Clock::time_point idle_since_ = Clock::now();
  Clock::time_point next_start_allowed_{};
  Clock::time_point last_unreachable_note_{};

  // Shared with the threads, under mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Claimed> claimed_;
  unsigned want_ = 0;               // free slots the claimer may fill
  std::uint64_t claimed_total_ = 0; // for --max-jobs
  bool threads_stop_ = false;
  bool throttled_ = false;
  bool fenced_ = false;
  bool claim_stop_ = false;         // claim nothing more (stopping, finishing)
  bool resync_ = false;             // the claimer resyncs the leases before its next claim
  std::set<std::string> held_;      // jids claimed and not yet finished: what a resync keeps
  std::set<std::string> cancelled_, hard_cancelled_;
  std::atomic<long long> last_ok_ms_{0};
  std::atomic<unsigned> busy_{0};
  std::mutex claim_mu_;  // a resync never runs while the other thread's claim is on the wire
};

void Worker::wake() const {
  const std::uint64_t one = 1;
  (void)!::write(event_fd_, &one, sizeof one);
}

void Worker::register_worker() {
  try {
    const Reply r = main_->eval(kRegister, prefix_,
                                {std::to_string(kProtocol), wid_, host_, std::to_string(::getpid()),
                                 std::to_string(slots_ ? slots_->size() : opt_.jobs), std::to_string(lease_ms_),
                                 PROCPOOL_VERSION});
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < r->elements; ++i) cancelled_.insert(reply_text(r->element[i]));
  } catch (const ReplyError& e) {
    const std::string what = e.what();
    if (const auto at = what.find("PROTO "); at != std::string::npos)
      throw UsageError(fmt::format("queue '{}' speaks broker protocol {}; this procpool speaks {}", opt_.queue,
                                   what.substr(at + 6), kProtocol));
    if (const auto at = what.find("LEASE "); at != std::string::npos) {
      const double ms = std::strtod(what.substr(at + 6).c_str(), nullptr);
      throw UsageError(fmt::format("queue '{}' has workers with --lease {}s (the queue's workers share one lease); "
                                   "pass --lease {}s",
                                   opt_.queue, ms / 1000, ms / 1000));
    }
    throw;
  }
  last_ok_ms_ = monotonic_ms();
}

void Worker::heartbeat_loop() {
  Connection conn(url_, std::max(1.0, static_cast<double>(lease_ms_) / 1000));
  const auto period = std::chrono::milliseconds(lease_ms_ / 5);
  auto last_note = Clock::now() - std::chrono::hours(1);
  std::unique_lock lock(mu_);
  while (!threads_stop_) {
    lock.unlock();
    try {
      const long long since_ok = monotonic_ms() - last_ok_ms_.load();
      const Reply r = conn.eval(kHeartbeat, prefix_,
                                {"w", wid_, std::to_string(since_ok), std::to_string(lease_ms_), "0",
                                 std::to_string(busy_.load())});
      const std::string status = r->elements > 0 ? reply_text(r->element[0]) : "";
      lock.lock();
      if (status == "FENCED") {
        fenced_ = true;
      } else {
        last_ok_ms_ = monotonic_ms();
        std::set<std::string> now;
        for (std::size_t i = 2; i < r->elements; ++i) now.insert(reply_text(r->element[i]));
        const bool news = std::any_of(now.begin(), now.end(), [&](const std::string& run) { return !cancelled_.count(run); });
        // Runs cancelled by a message the heartbeat does not list yet stay (the set only grows until the run ends).
        for (const auto& run : cancelled_)
          if (hard_cancelled_.count(run)) now.insert(run);
        cancelled_ = std::move(now);
        if (news) wake();
      }
      if (fenced_) wake();
    } catch (const BrokerDown& e) {
      if (Clock::now() - last_note >= std::chrono::seconds(10)) {
        std::cerr << fmt::format("procpool worker: broker {} unreachable ({}); retrying, {} jobs running\n",
                                 url_.redacted(), e.what(), busy_.load());
        last_note = Clock::now();
      }
      lock.lock();
    } catch (const std::exception& e) {
      std::cerr << fmt::format("procpool worker: heartbeat: {}\n", e.what());
      lock.lock();
    }
    cv_.wait_for(lock, period, [&] { return threads_stop_; });
  }
}

/// The queue's control channel: `cancel R` and `kill R` reach the worker in one round trip. Pub/sub may
/// drop messages (while reconnecting): the heartbeat's cancelled set covers that within lease/5.
void Worker::control_loop() {
  Connection conn(url_, std::max(1.0, static_cast<double>(lease_ms_) / 1000));
  bool subscribed = false;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (threads_stop_) return;
    }
    try {
      if (!subscribed) {
        conn.call({"SUBSCRIBE", prefix_ + "control"});
        subscribed = true;
      }
      const Reply message = conn.next_pushed(200);
      if (!message || message->type != REDIS_REPLY_ARRAY || message->elements != 3) continue;
      if (reply_text(message->element[0]) != "message") continue;
      const std::string text = reply_text(message->element[2]);
      const auto space = text.find(' ');
      if (space == std::string::npos) continue;
      const std::string word = text.substr(0, space), run = text.substr(space + 1);
      std::lock_guard lock(mu_);
      cancelled_.insert(run);
      if (word == "kill") hard_cancelled_.insert(run);
      wake();
    } catch (const BrokerDown&) {
      subscribed = false;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    } catch (const std::exception&) {
      subscribed = false;
      conn.disconnect();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

void Worker::claimer_loop() {
  const double block = static_cast<double>(lease_ms_) / 5000;
  Connection conn(url_, std::max(1.0, static_cast<double>(lease_ms_) / 1000));
  double backoff = 0.1;
  bool resync = false;  // a reply may have been lost with the connection: leases we do not hold go back
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] {
      return threads_stop_ || (want_ > 0 && !throttled_ && !fenced_ && !claim_stop_ &&
                               (opt_.max_jobs == 0 || claimed_total_ < opt_.max_jobs));
    });
    if (threads_stop_) return;
    unsigned n = want_;
    if (opt_.max_jobs > 0) n = static_cast<unsigned>(std::min<std::uint64_t>(n, opt_.max_jobs - claimed_total_));
    lock.unlock();
    std::vector<Claimed> got;
    bool fenced = false;
    auto parse = [&](const Reply& r) {
      if (!parse_claim(r.get(), got)) fenced = true;
    };
    try {
      {
        std::lock_guard flag_lock(mu_);
        if (resync_) resync = true;  // the main thread's finish-and-claim lost its reply
        resync_ = false;
      }
      // Not while the main thread's claim is on the wire: its jids are not in held_ yet.
      std::unique_lock claim_lock(claim_mu_);
      if (resync) {
        std::vector<std::string> args{wid_};
        {
          std::lock_guard held_lock(mu_);
          args.insert(args.end(), held_.begin(), held_.end());
        }
        const Reply r = conn.eval(kResync, prefix_, args);
        resync = false;
        if (r->elements > 0 && reply_text(r->element[0]) == "FENCED") fenced = true;
      }
      if (!fenced) parse(conn.eval(kClaim, prefix_, {wid_, std::to_string(n)}));
      claim_lock.unlock();
      // Nothing ready: block until an RPUSH, only while the lease is fresh, so that the moved job lands
      // in a live lease.
      if (got.empty() && !fenced && monotonic_ms() - last_ok_ms_.load() < lease_ms_ / 2) {
        conn.set_timeout(block + 2);
        const Reply moved = conn.command({"BLMOVE", prefix_ + "ready", prefix_ + "inflight:" + wid_, "LEFT", "RIGHT",
                                          fmt::format("{:.3f}", block)});
        conn.set_timeout(std::max(1.0, static_cast<double>(lease_ms_) / 1000));
        if (moved->type == REDIS_REPLY_STRING)
          parse(conn.eval(kClaim, prefix_, {wid_, std::to_string(n), reply_text(moved.get())}));  // n with it
      } else if (got.empty() && !fenced) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      backoff = 0.1;
    } catch (const BrokerDown&) {
      // The heartbeat thread reports it; wait and try again.
      resync = true;
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
      backoff = std::min(backoff * 2, static_cast<double>(lease_ms_) / 5000);
    } catch (const std::exception& e) {
      std::cerr << fmt::format("procpool worker: claim: {}\n", e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    lock.lock();
    if (fenced) fenced_ = true;
    want_ -= std::min<unsigned>(want_, static_cast<unsigned>(got.size()));
    claimed_total_ += got.size();
    for (auto& c : got) {
      held_.insert(c.jid);
      claimed_.push_back(std::move(c));
    }
    if (!got.empty() || fenced) wake();
  }
}


bool Worker::throttled() {
  const auto now = Clock::now();
  if (now < next_start_allowed_) return true;
  if (opt_.memfree_bytes > 0)
    if (const auto available = os::read_meminfo().available; available && *available < opt_.memfree_bytes) return true;
  if (opt_.load_limit > 0 && os::runnable_tasks().value_or(0) - 1 >= opt_.load_limit) return true;
  return false;
}

void Worker::start_job(unsigned slot, Claimed job) {
  Running& r = running_[slot];
  r = Running{};
  r.cap = job.limits.max_output;
  if (opt_.max_output > 0) r.cap = std::min(r.cap, opt_.max_output);
  std::vector<std::string> env{fmt::format("PARALLEL_SEQ={}", job.seq), "PROCPOOL_RUN=" + job.run,
                               "PROCPOOL_ATTEMPT=" + job.att, "PROCPOOL_HOST=" + host_};
  for (std::size_t begin = 0; begin < job.env.size();) {  // NAME=VALUE entries, NUL-separated
    std::size_t end = job.env.find('\0', begin);
    if (end == std::string::npos) end = job.env.size();
    if (end > begin) env.push_back(job.env.substr(begin, end - begin));
    begin = end + 1;
  }
  r.job = std::move(job);
  JobLimits limits;
  if (r.job.limits.timeout > 0) limits.timeout = r.job.limits.timeout;
  limits.grace = r.job.limits.grace;
  limits.shell = r.job.limits.shell;
  slots_->start(slot, r.job.cmd, env, limits);
  busy_ = slots_->busy_count();
  if (opt_.delay_seconds > 0) next_start_allowed_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(opt_.delay_seconds));
}

void Worker::start_claimed() {
  for (;;) {
    Claimed job;
    {
      std::lock_guard lock(mu_);
      if (stopping_) claimed_.clear();  // still in the lease: release_self hands them back at exit
      if (claimed_.empty()) return;
      job = std::move(claimed_.front());
      claimed_.pop_front();
    }
    idle_since_ = Clock::now();
    if (opt_.noop) {  // sent with the others after this loop, in one round trip
      unsent_.push_back({{job.jid, job.att, "ok", "0", "0", format_seconds(0), format_seconds(0), host_, "0", "", "",
                          "0"},
                         job.seq});
      std::lock_guard lock(mu_);
      ++want_;
      cv_.notify_all();
      continue;
    }
    const auto slot = slots_->free_slot();
    if (!slot) {  // cannot happen: claims are for free slots; hand it back rather than lose it
      std::lock_guard lock(mu_);
      claimed_.push_front(std::move(job));
      return;
    }
    try {
      start_job(*slot, std::move(job));
    } catch (const std::system_error& e) {
      std::cerr << fmt::format("procpool worker: cannot start job {}: {}\n", running_[*slot].job.seq, e.what());
      send({{running_[*slot].job.jid, running_[*slot].job.att, "ok", "255", "0", format_seconds(0),
             format_seconds(0), host_, "0", "", fmt::format("procpool worker: cannot start the job: {}\n", e.what()), "0"},
            running_[*slot].job.seq});
      std::lock_guard lock(mu_);
      ++want_;
      cv_.notify_all();
    }
  }
}

void Worker::on_end(const JobEnd& end) {
  Running& r = running_[end.slot];
  busy_ = slots_->busy_count();
  idle_since_ = Clock::now();
  if (r.drop) {
    std::lock_guard lock(mu_);
    ++want_;
    cv_.notify_all();
    held_.erase(r.job.jid);
    return;
  }
  if (inline_claims_) {
    ++inline_free_;  // claimed along with this job's finish
  } else {
    std::lock_guard lock(mu_);
    ++want_;
    cv_.notify_all();
  }
  const int trunc = (r.out_cut ? 1 : 0) | (r.err_cut ? 2 : 0);
  send({{r.job.jid, r.job.att, end.reason == KillReason::Cancel ? "cancelled" : "ok", std::to_string(end.exitval),
         std::to_string(end.signal), format_seconds(end.start_epoch), format_seconds(end.runtime), host_,
         std::to_string(end.received), std::move(r.out), std::move(r.err), std::to_string(trunc)},
        r.job.seq});
}

void Worker::send(Result result) {
  unsent_.push_back(std::move(result));
  flush_results();
}

void Worker::flush_results() {
  if (unsent_.empty() || Clock::now() < next_send_try_) return;
  // Every waiting result in one round trip: a few finish calls (each up to 128 results or 4 MiB of
  // output), pipelined. A result refused as stale (0) ran elsewhere.
  constexpr std::size_t kPerCall = 128;
  constexpr std::size_t kBytesPerCall = 4 << 20;
  std::vector<std::vector<std::string>> calls;
  std::size_t bytes = 0;
  for (const auto& r : unsent_) {
    if (calls.empty() || (calls.back().size() - 1) / 12 >= kPerCall || bytes >= kBytesPerCall) {
      calls.push_back({wid_});
      bytes = 0;
    }
    calls.back().insert(calls.back().end(), r.args.begin(), r.args.end());
    bytes += r.args[9].size() + r.args[10].size();
  }
  std::vector<Connection::ScriptCall> pipeline;
  for (auto& args : calls) pipeline.emplace_back(&kFinish, std::move(args));
  unsigned claim_n = 0;
  {
    std::lock_guard lock(mu_);
    if (inline_free_ > 0 && (claim_stop_ || fenced_ || resync_)) {  // the claimer decides for these slots
      want_ += inline_free_;
      inline_free_ = 0;
      cv_.notify_all();
    }
    claim_n = inline_free_;
  }
  if (claim_n > 0) pipeline.push_back({&kClaim, {wid_, std::to_string(claim_n)}});
  std::unique_lock claim_lock(claim_mu_, std::defer_lock);
  if (claim_n > 0) claim_lock.lock();
  try {
    const std::vector<Reply> replies = main_->eval_pipelined(prefix_, pipeline);
    std::lock_guard lock(mu_);
    for (const auto& r : unsent_) held_.erase(r.args[0]);
    unsent_.clear();
    send_backoff_ = 0.1;
    if (claim_n > 0) {
      inline_free_ = 0;
      const redisReply* claimed = replies.back().get();
      std::vector<Claimed> got;
      if (claimed->type == REDIS_REPLY_ERROR) {
        std::cerr << fmt::format("procpool worker: claim: {}\n", claimed->str);
      } else if (!parse_claim(claimed, got)) {
        fenced_ = true;
        wake();
      }
      claimed_total_ += got.size();
      for (auto& c : got) {
        held_.insert(c.jid);
        claimed_.push_back(std::move(c));
      }
      // Slots the queue had no job for: the claimer waits for one (BLMOVE). Woken only then: each
      // notify also wakes the heartbeat thread.
      if (const unsigned left = claim_n - std::min<unsigned>(claim_n, static_cast<unsigned>(got.size())); left > 0) {
        want_ += left;
        cv_.notify_all();
      }
    }
  } catch (const BrokerDown&) {
    if (claim_n > 0) {  // the claim may have run: the claimer resyncs, then claims for these slots
      std::lock_guard lock(mu_);
      inline_free_ = 0;
      resync_ = true;
      want_ += claim_n;
      cv_.notify_all();
    }
    // The heartbeat thread reports the outage; results wait here (at most -j of them) and are sent again:
    // a finish that did run before the connection broke is refused as a repeat.
    next_send_try_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(send_backoff_));
    send_backoff_ = std::min(send_backoff_ * 2, static_cast<double>(lease_ms_) / 5000);
  }
}

void Worker::handle_fenced() {
  {
    std::lock_guard lock(mu_);
    if (!fenced_) return;
  }
  const unsigned running = slots_->busy_count();
  for (unsigned i = 0; i < slots_->size(); ++i)
    if (slots_->busy(i)) running_[i].drop = true;
  slots_->kill_all_now(KillReason::Cancel);
  unsent_.clear();  // would be refused as stale
  {
    std::lock_guard lock(mu_);
    claimed_.clear();  // the reaper or the claim that saw FENCED put them back in the queue
    held_.clear();
  }
  std::cerr << fmt::format("procpool worker: lease lost; killed {} running jobs, registering again\n", running);
  try {
    register_worker();
  } catch (const BrokerDown&) {
    return;  // still cut off: try again on the next round
  }
  std::lock_guard lock(mu_);
  fenced_ = false;
  inline_free_ = 0;
  want_ = slots_->size() - running;  // the killed jobs' ends give their slots back
  cv_.notify_all();
}

void Worker::handle_cancelled() {
  std::set<std::string> cancelled, hard;
  {
    std::lock_guard lock(mu_);
    if (cancelled_.empty()) return;
    cancelled = cancelled_;
    hard = hard_cancelled_;
  }
  for (unsigned i = 0; i < slots_->size(); ++i) {
    if (!slots_->busy(i) || !cancelled.count(running_[i].job.run)) continue;
    if (hard.count(running_[i].job.run)) slots_->kill_now(i, KillReason::Cancel);  // a second Ctrl-C: no grace
    else slots_->kill(i, KillReason::Cancel);
  }
}

void Worker::stop(int sig) {
  if (sig == SIGUSR1) {
    if (!finishing_) std::cerr << "procpool worker: SIGUSR1: claiming no more jobs, letting the running ones finish\n";
    finishing_ = true;
  } else if (!stopping_) {
    std::cerr << fmt::format("procpool worker: {}: stopping {} jobs, handing them back to the queue\n", strsignal(sig),
                             slots_->busy_count());
    stopping_ = true;
    for (unsigned i = 0; i < slots_->size(); ++i)
      if (slots_->busy(i)) running_[i].drop = true;
    slots_->kill_all(KillReason::Cancel);
  } else {
    slots_->kill_all_now(KillReason::Cancel);
  }
  std::lock_guard lock(mu_);
  claim_stop_ = true;
  cv_.notify_all();
}

void Worker::release_self() {
  for (int attempt = 0; attempt < 3; ++attempt) {
    try {
      main_->eval(kRelease, prefix_, {wid_, "0"});
      return;
    } catch (const BrokerDown&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  std::cerr << fmt::format("procpool worker: cannot reach {} to hand back the leases; they expire after --lease\n",
                           url_.redacted());
}

int Worker::run() {
  ::signal(SIGPIPE, SIG_IGN);
  url_ = checked_url(opt_.url, opt_.insecure);
  check_queue_name(opt_.queue);
  prefix_ = key_prefix(opt_.queue);
  host_ = opt_.host_name.empty() ? host_name() : opt_.host_name;
  lease_ms_ = static_cast<long long>(opt_.lease_seconds * 1000);
  std::random_device rd;
  wid_ = fmt::format("{}:{}:{:08x}", host_, ::getpid(), rd());
  if (opt_.workdir && ::chdir(opt_.workdir->c_str()) != 0)
    throw UsageError(fmt::format("--workdir '{}': {}", *opt_.workdir, std::strerror(errno)));

  main_ = std::make_unique<Connection>(url_, std::max(1.0, opt_.lease_seconds));
  check_server(*main_, opt_.queue);

  sigset_t mask;
  sigemptyset(&mask);
  for (const int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&mask, sig);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);  // before the threads: they inherit it
  signal_fd_ = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (signal_fd_ < 0 || event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "signalfd/eventfd");

  SlotsConfig config;
  config.slots = opt_.jobs;
  config.shell_always = opt_.shell_always;
  config.hidden_env = {"PARALLEL_", "PROCPOOL_"};  // the password among them
  // The watchdog outlives this process: if it dies, the jobs are killed and the leases handed back
  // (a crash each) within one round trip, not after the lease.
  config.after_watchdog_kills = [url = url_, prefix = prefix_, wid = wid_] {
    try {
      Connection conn(url, 2.0);
      conn.eval(kRelease, prefix, {wid, "1"});
    } catch (...) {
      // Unreachable: the lease expires and a heartbeat reaps the worker.
    }
  };
  slots_ = std::make_unique<JobSlots>(
      std::move(config),
      [this](unsigned slot, int which, std::string_view bytes) {
        Running& r = running_[slot];
        std::string& buffer = which == STDOUT_FILENO ? r.out : r.err;
        bool& cut = which == STDOUT_FILENO ? r.out_cut : r.err_cut;
        const std::size_t room = buffer.size() < r.cap ? r.cap - buffer.size() : 0;
        buffer.append(bytes.substr(0, room));
        if (bytes.size() > room) cut = true;
      },
      [this](const JobEnd& end) { on_end(end); });
  running_.resize(slots_->size());
  inline_claims_ = opt_.max_jobs == 0 && opt_.delay_seconds <= 0 && opt_.memfree_bytes == 0 && opt_.load_limit <= 0;
  register_worker();
  want_ = slots_->size();
  std::thread heartbeat([this] { heartbeat_loop(); });
  std::thread claimer([this] { claimer_loop(); });
  std::thread control([this] { control_loop(); });

  std::vector<pollfd> fds;
  for (;;) {
    handle_fenced();
    handle_cancelled();
    start_claimed();
    flush_results();
    start_claimed();  // what a retried finish claimed along
    const bool has_throttles = opt_.delay_seconds > 0 || opt_.memfree_bytes > 0 || opt_.load_limit > 0;
    bool claimed_empty = false;
    {
      std::lock_guard lock(mu_);
      if (has_throttles) {
        const bool t = throttled();
        if (t != throttled_) { throttled_ = t; cv_.notify_all(); }
      }
      if (opt_.max_jobs > 0 && claimed_total_ >= opt_.max_jobs) finishing_ = true;
      claimed_empty = claimed_.empty();
    }
    const auto now = Clock::now();
    const bool idle = slots_->busy_count() == 0 && claimed_empty && unsent_.empty();
    if (idle && (stopping_ || finishing_)) break;
    if (idle && opt_.exit_when_idle > 0 && now - idle_since_ >= std::chrono::duration<double>(opt_.exit_when_idle)) break;

    fds.clear();
    fds.push_back({signal_fd_, POLLIN, 0});
    fds.push_back({event_fd_, POLLIN, 0});
    slots_->add_poll_fds(fds);
    auto wake_at = slots_->next_deadline();
    auto consider = [&](Clock::time_point t) { if (!wake_at || t < *wake_at) wake_at = t; };
    if (!unsent_.empty()) consider(next_send_try_);
    if (has_throttles) consider(now + std::chrono::milliseconds(100));
    if (opt_.exit_when_idle > 0 && idle)
      consider(idle_since_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.exit_when_idle)));
    int timeout_ms = 1000;  // the cancelled set and fencing arrive by eventfd; this is a backstop
    if (wake_at)
      timeout_ms = static_cast<int>(std::clamp<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(*wake_at - now).count() + 1, 0, 1000));
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "poll");
    if (fds[1].revents & POLLIN) {
      std::uint64_t count;
      (void)!::read(event_fd_, &count, sizeof count);
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      bool child_exited = false;
      while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGCHLD) child_exited = true;
        else stop(static_cast<int>(info.ssi_signo));
      }
      if (child_exited) slots_->reap();
    }
    slots_->service();
  }
  {
    std::lock_guard lock(mu_);
    threads_stop_ = true;
    cv_.notify_all();
  }
  claimer.join();
  heartbeat.join();
  control.join();
  release_self();  // a job BLMOVE moved meanwhile, or the jobs a signal stopped, go back to the front
  slots_.reset();
  return 0;
}

} // namespace

int run_worker(const WorkerOptions& options) {
  Worker worker(options);
  return worker.run();
}

} // namespace procpool::cli::broker
