// The cluster pool's owner side: a run on the broker (the CLI's run, kind `pool`, under the queue's
// pool prefix), two threads with a connection each: the sender enqueues tasks (at most max_queued in
// Redis; the rest waits here) and heartbeats the run, the receiver reads the run's result stream
// (XREAD BLOCK) and completes the tasks. Results and errors are the local pool's encodings.
#include "cluster/cluster_task.hpp"

#include "broker/scripts.hpp"
#include "broker/server.hpp"

#include "procpool/cluster.hpp"
#include "procpool/errors.hpp"
#include "procpool/log.hpp"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include <csignal>

#include <fcntl.h>
#include <unistd.h>

namespace procpool::detail {
namespace {

using namespace procpool::broker;

constexpr std::size_t kEnqueueBatch = 100;  // tasks per enqueue script run
constexpr std::size_t kChunkBytes = 64 * 1024;

std::string random_run_id() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

/// Broker settings errors are the pool's ValueError; an unreachable broker its ProcessError.
template <class F>
auto translate_broker_errors(const char* what, F&& f) {
  try {
    return f();
  } catch (const ConfigError& e) {
    throw ValueError(fmt::format("procpool::cluster::Pool: {}", e.what()));
  } catch (const BrokerDown& e) {
    throw ProcessError(fmt::format("procpool::cluster::Pool: {}: {}", what, e.what()));
  } catch (const ReplyError& e) {
    throw ProcessError(fmt::format("procpool::cluster::Pool: {}: {}", what, e.what()));
  }
}

class ClusterEngine;

/// Ctrl-C (or SIGTERM, SIGHUP) of the owner cancels its pools' tasks everywhere at once, then the
/// process dies of the signal as it would have: installed with the first cluster pool, only where the
/// signal has its default action (a program's own handler is left alone; then the runs expire after
/// owner_timeout). Forked children keep the default action (the handler re-raises there).
class InterruptWatch {
public:
  /// This process's watch (a forked child that makes a cluster pool gets its own).
  static InterruptWatch& instance() {
    static std::mutex mu;
    static InterruptWatch* watch = nullptr;  // never destroyed: the handler may run until exit
    std::lock_guard lock(mu);
    if (watch == nullptr || watch->owner_ != ::getpid()) watch = new InterruptWatch;
    return *watch;
  }
  void add(ClusterEngine* engine);
  void remove(ClusterEngine* engine);

private:
  InterruptWatch();
  static void on_signal(int sig);
  void watch_loop();

  std::mutex mu_;
  std::vector<ClusterEngine*> engines_;
  static inline int write_fd_ = -1;
  static inline pid_t pid_ = 0;
  int read_fd_ = -1;
  pid_t owner_ = ::getpid();
};

class ClusterEngine final : public PoolEngine {
public:
  explicit ClusterEngine(const cluster::ClusterOptions& options);
  ~ClusterEngine() override {
    InterruptWatch::instance().remove(this);
    if (owned_here()) shutdown();
  }

  // Results are completed by the receiver thread; a waiter has nothing to drive.
  bool drive_until(bool (*ready)(const void*), const void* context, const os::Deadline& /*deadline*/) override {
    return ready(context);
  }
  void shutdown() noexcept override;
  void submit(const void* invoker, const void* function, std::span<const std::string_view> pieces,
              std::shared_ptr<PendingTask> task, std::uint64_t stream = 0) override;
  std::uint64_t open_stream(std::weak_ptr<PoolStream> stream) override;
  void close_stream(std::uint64_t id) noexcept override;
  bool accepts(std::uint64_t stream) override;
  void close() override;
  void terminate() override;
  void join() override;
  [[nodiscard]] int workers() const noexcept override { return workers_; }
  [[nodiscard]] bool has_initializer() const noexcept override { return false; }
  [[nodiscard]] std::size_t chunk_byte_budget() const noexcept override { return kChunkBytes; }
  [[nodiscard]] std::vector<int> worker_pids() const override;
  [[nodiscard]] bool running() const noexcept override { return state_.load() == State::Run; }
  [[nodiscard]] bool terminated() const noexcept override { return state_.load() == State::Terminate; }
  /// The owner is interrupted: its queued tasks are dropped, running ones stopped (one round trip).
  void cancel_on_interrupt() noexcept;

private:
  enum class State { Run, Close, Terminate };
  struct Outgoing {
    std::uint64_t seq;
    std::string cmd;
  };

  void sender_loop();
  void receiver_loop();
  void heartbeat(Connection& conn);
  void handle_result(std::uint64_t seq, const std::map<std::string, std::string>& fields);
  void fail_all(const std::string& why);
  void stop_threads();
  CodeRef code_ref(const void* address);
  [[nodiscard]] bool accepts_locked(std::uint64_t stream) const;

  cluster::ClusterOptions options_;
  BrokerUrl url_;
  std::string prefix_, run_id_, log_key_;
  long long lease_ms_ = 10000;
  int workers_ = 1;
  std::atomic<State> state_{State::Run};

  mutable std::mutex mu_;
  std::condition_variable cv_;           // the sender's: outgoing tasks, room, stop
  std::condition_variable done_cv_;      // join(): every task has its result
  std::deque<Outgoing> outbox_;          // submitted, not yet in Redis
  std::unordered_map<std::uint64_t, std::shared_ptr<PendingTask>> pending_;  // submitted, no result yet
  std::size_t queued_ = 0;               // in Redis (enqueued, no result yet)
  std::uint64_t next_seq_ = 1;
  bool stop_ = false;
  std::unordered_map<std::uint64_t, std::weak_ptr<PoolStream>> streams_;
  std::uint64_t next_stream_id_ = 1;
  bool joined_ = false;
  bool run_ended_ = false;  // join() after close() ended the run in Redis
  long long last_ok_ms_ = 0;

  std::mutex code_mu_;
  std::unordered_map<const void*, CodeRef> code_cache_;

  std::thread sender_, receiver_;
};

ClusterEngine::ClusterEngine(const cluster::ClusterOptions& options) : options_(options) {
  if (options_.max_crashes < 1) throw ValueError("procpool::cluster::Pool: max_crashes must be at least 1");
  if (options_.max_queued < 1) throw ValueError("procpool::cluster::Pool: max_queued must be at least 1");
  if (options_.processes && *options_.processes < 1)
    throw ValueError("procpool::cluster::Pool: Number of processes must be at least 1");
  if (options_.owner_timeout < std::chrono::seconds(1))
    throw ValueError("procpool::cluster::Pool: owner_timeout must be at least 1 s");
  translate_broker_errors("cannot start", [&] {
    url_ = checked_url(options_.broker, options_.insecure_broker);
    check_queue_name(options_.queue);
    prefix_ = pool_key_prefix(options_.queue);
    Connection conn(url_, 5.0);
    conn.connect();  // unreachable: ProcessError (check_server would call it a setting)
    check_server(conn, options_.queue, prefix_);
    const Reply lease = conn.call({"HGET", prefix_ + "conf", "lease_ms"});
    if (lease->type == REDIS_REPLY_STRING) lease_ms_ = std::max(500LL, reply_integer(lease.get()));
    const Reply live = conn.eval(kLiveWorkers, prefix_, {});
    const long long slots = live->elements > 0 ? reply_integer(live->element[0]) : 0;
    workers_ = options_.processes.value_or(static_cast<int>(std::clamp<long long>(slots, 1, 1 << 20)));
    run_id_ = random_run_id();
    log_key_ = prefix_ + "run:" + run_id_ + ":log";
    conn.eval(kCreateRun, prefix_,
              {run_id_, "kind", "pool", "tries", "1", "max_crashes", std::to_string(options_.max_crashes), "submitter",
               fmt::format("{}:{}", host_name(), ::getpid()), "env", "", "wopts", ""});
    // The run expires unless heartbeats keep it: a dead owner's tasks are dropped by the claims.
    conn.call({"PEXPIRE", prefix_ + "run:" + run_id_, std::to_string(options_.owner_timeout.count())});
    return 0;
  });
  last_ok_ms_ = monotonic_ms();
  sender_ = std::thread([this] { sender_loop(); });
  receiver_ = std::thread([this] { receiver_loop(); });
  InterruptWatch::instance().add(this);
}

void ClusterEngine::cancel_on_interrupt() noexcept {
  try {
    Connection conn(url_, 1.0);
    conn.eval(kCancel, prefix_, {run_id_, "cancelled", "1"});
  } catch (...) {
    // Unreachable: the run expires after owner_timeout instead.
  }
}

InterruptWatch::InterruptWatch() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  pid_ = ::getpid();
  std::thread([this] { watch_loop(); }).detach();
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) != 0) continue;
    if (old.sa_handler != SIG_DFL && old.sa_handler != &InterruptWatch::on_signal) continue;
    struct sigaction act {};
    act.sa_handler = &InterruptWatch::on_signal;
    sigemptyset(&act.sa_mask);
    ::sigaction(sig, &act, nullptr);
  }
}

void InterruptWatch::on_signal(int sig) {
  if (::getpid() != pid_) {  // a forked child: the default action, as before the pool existed
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  const unsigned char byte = static_cast<unsigned char>(sig);
  (void)!::write(write_fd_, &byte, 1);
}

void InterruptWatch::watch_loop() {
  unsigned char byte = 0;
  while (::read(read_fd_, &byte, 1) != 1) {
    if (errno != EINTR) return;
  }
  {
    std::lock_guard lock(mu_);
    for (ClusterEngine* engine : engines_) engine->cancel_on_interrupt();
  }
  ::signal(byte, SIG_DFL);
  ::raise(byte);
}

void InterruptWatch::add(ClusterEngine* engine) {
  std::lock_guard lock(mu_);
  engines_.push_back(engine);
}

void InterruptWatch::remove(ClusterEngine* engine) {
  std::lock_guard lock(mu_);
  std::erase(engines_, engine);
}

CodeRef ClusterEngine::code_ref(const void* address) {
  std::lock_guard lock(code_mu_);
  auto it = code_cache_.find(address);
  if (it == code_cache_.end()) it = code_cache_.emplace(address, code_ref_of(address)).first;
  return it->second;
}

void ClusterEngine::submit(const void* invoker, const void* function, std::span<const std::string_view> pieces,
                           std::shared_ptr<PendingTask> task, std::uint64_t stream) {
  check_owner();
  ClusterTask wire;
  wire.invoker = code_ref(invoker);
  if (function != nullptr) {
    wire.function = code_ref(function);
    wire.has_function = true;
  }
  std::size_t size = 0;
  for (const std::string_view piece : pieces) size += piece.size();
  wire.payload.reserve(size);
  for (const std::string_view piece : pieces) wire.payload += piece;
  std::string cmd = codec::encode(wire);
  std::lock_guard lock(mu_);
  if (!accepts_locked(stream))
    throw ValueError("procpool: Pool not running: no task can be submitted after close() or terminate()");
  const std::uint64_t seq = next_seq_++;
  pending_.emplace(seq, std::move(task));
  outbox_.push_back({seq, std::move(cmd)});
  cv_.notify_all();
}

bool ClusterEngine::accepts_locked(std::uint64_t stream) const {
  const State state = state_.load();
  return state == State::Run || (state == State::Close && stream != 0 && streams_.contains(stream));
}

bool ClusterEngine::accepts(std::uint64_t stream) {
  std::lock_guard lock(mu_);
  return accepts_locked(stream);
}

std::uint64_t ClusterEngine::open_stream(std::weak_ptr<PoolStream> stream) {
  check_owner();
  std::lock_guard lock(mu_);
  if (state_.load() != State::Run)
    throw ValueError("procpool: Pool not running: imap needs a pool before close() or terminate()");
  const std::uint64_t id = next_stream_id_++;
  streams_.emplace(id, std::move(stream));
  return id;
}

void ClusterEngine::close_stream(std::uint64_t id) noexcept {
  if (!owned_here()) return;
  std::lock_guard lock(mu_);
  streams_.erase(id);
  done_cv_.notify_all();
}

void ClusterEngine::close() {
  check_owner();
  State expected = State::Run;
  state_.compare_exchange_strong(expected, State::Close);
}

void ClusterEngine::terminate() {
  check_owner();
  {
    std::lock_guard lock(mu_);
    if (state_.exchange(State::Terminate) == State::Terminate) return;
    outbox_.clear();
    if (run_ended_) return;  // closed and joined: nothing is left to cancel (the destructor's terminate)
  }
  // Queued tasks are dropped by the claims, running ones when they end ('kill': their workers stop them).
  try {
    Connection conn(url_, 2.0);
    conn.eval(kCancel, prefix_, {run_id_, "cancelled", "1"});
    conn.eval(kEndRun, prefix_, {run_id_, "60000"});
  } catch (const std::exception& e) {
    logger().warn("procpool::cluster::Pool: cannot cancel run {} on {}: {} (its tasks are dropped once it expires)",
                  run_id_, url_.redacted(), e.what());
  }
  fail_all("procpool: the pool was terminated before this task finished");
  stop_threads();
}

void ClusterEngine::join() {
  check_owner();
  if (state_.load() == State::Run) throw ValueError("procpool: join() needs close() or terminate() first, as Python's Pool");
  {
    std::lock_guard lock(mu_);
    if (joined_) return;
    joined_ = true;
  }
  // As the local pool: open streams submit the rest of their input now.
  std::vector<std::shared_ptr<PoolStream>> open;
  {
    std::lock_guard lock(mu_);
    if (state_.load() == State::Close)
      for (const auto& [id, weak] : streams_)
        if (auto stream = weak.lock()) open.push_back(std::move(stream));
  }
  for (const auto& stream : open) stream->drain();
  open.clear();
  {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return state_.load() == State::Terminate || (pending_.empty() && streams_.empty()); });
  }
  if (state_.load() != State::Terminate) {
    try {
      Connection conn(url_, 2.0);
      conn.eval(kEndRun, prefix_, {run_id_, "60000"});
    } catch (const std::exception& e) {
      logger().warn("procpool::cluster::Pool: cannot end run {}: {} (it expires)", run_id_, e.what());
    }
    std::lock_guard lock(mu_);
    run_ended_ = true;
  }
  stop_threads();
}

void ClusterEngine::shutdown() noexcept {
  try {
    terminate();
    join();
  } catch (const std::exception& e) {
    logger().error("procpool: error while shutting a cluster pool down: {}", e.what());
  }
}

void ClusterEngine::stop_threads() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
    done_cv_.notify_all();
  }
  if (sender_.joinable() && sender_.get_id() != std::this_thread::get_id()) sender_.join();
  if (receiver_.joinable() && receiver_.get_id() != std::this_thread::get_id()) receiver_.join();
}

void ClusterEngine::fail_all(const std::string& why) {
  std::unordered_map<std::uint64_t, std::shared_ptr<PendingTask>> orphans;
  {
    std::lock_guard lock(mu_);
    orphans.swap(pending_);
    outbox_.clear();
    done_cv_.notify_all();
  }
  for (auto& [seq, task] : orphans) {
    try {
      task->fail(std::make_exception_ptr(BrokenProcessPool(why)));
    } catch (const std::exception& e) {
      logger().error("procpool: a pool error callback threw: {}", e.what());
    }
  }
}

std::vector<int> ClusterEngine::worker_pids() const {
  check_owner();
  return translate_broker_errors("cannot list the workers", [&] {
    Connection conn(url_, 2.0);
    const Reply r = conn.eval(kLiveWorkers, prefix_, {});
    std::vector<int> pids;
    for (std::size_t i = 1; i < r->elements; ++i) pids.push_back(static_cast<int>(reply_integer(r->element[i])));
    return pids;
  });
}

void ClusterEngine::heartbeat(Connection& conn) {
  const long long since_ok = monotonic_ms() - last_ok_ms_;
  const Reply r = conn.eval(kHeartbeat, prefix_,
                            {"r", run_id_, std::to_string(since_ok), std::to_string(lease_ms_),
                             std::to_string(options_.owner_timeout.count()), "0"});
  const std::string status = r->elements > 0 ? reply_text(r->element[0]) : "";
  if (status == "GONE")
    fail_all(fmt::format("procpool: the broker {} lost this pool's run (restarted without persistence?); the task cannot "
                         "finish",
                         url_.redacted()));
  else last_ok_ms_ = monotonic_ms();
}

void ClusterEngine::sender_loop() {
  const auto period = std::chrono::milliseconds(
      std::min<long long>({2000, lease_ms_ / 5, static_cast<long long>(options_.owner_timeout.count()) / 3}));
  Connection conn(url_, std::max(1.0, static_cast<double>(lease_ms_) / 1000));
  auto next_beat = std::chrono::steady_clock::now();
  double backoff = 0.05;
  auto last_note = std::chrono::steady_clock::now() - std::chrono::hours(1);
  std::vector<Outgoing> batch;
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_until(lock, next_beat, [&] { return stop_ || (!outbox_.empty() && queued_ < options_.max_queued); });
    if (stop_) break;
    while (!outbox_.empty() && batch.size() < kEnqueueBatch && queued_ + batch.size() < options_.max_queued) {
      batch.push_back(std::move(outbox_.front()));
      outbox_.pop_front();
    }
    queued_ += batch.size();
    lock.unlock();
    try {
      if (!batch.empty()) {
        std::vector<std::string> args{run_id_, std::to_string(batch.back().seq), "0"};
        args.reserve(3 + 2 * batch.size());
        for (const Outgoing& o : batch) {  // copied: a batch whose reply is lost is sent again
          args.push_back(std::to_string(o.seq));
          args.push_back(o.cmd);
        }
        conn.eval(kEnqueue, prefix_, args);
        batch.clear();
      }
      if (std::chrono::steady_clock::now() >= next_beat) {
        heartbeat(conn);
        next_beat = std::chrono::steady_clock::now() + period;
      }
      backoff = 0.05;
      lock.lock();
    } catch (const BrokerDown& e) {
      // Resent as is: enqueue skips a batch the run already has (its reply was lost).
      if (std::chrono::steady_clock::now() - last_note > std::chrono::seconds(10)) {
        logger().warn("procpool::cluster::Pool: broker {} unreachable ({}); retrying", url_.redacted(), e.what());
        last_note = std::chrono::steady_clock::now();
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
      backoff = std::min(backoff * 2, 1.0);
      lock.lock();
      queued_ -= batch.size();
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) outbox_.push_front(std::move(*it));
      batch.clear();
      next_beat = std::min(next_beat, std::chrono::steady_clock::now() + period);
    } catch (const ReplyError& e) {
      lock.lock();
      queued_ -= batch.size();
      batch.clear();
      lock.unlock();
      fail_all(fmt::format("procpool: the broker refused this pool's tasks: {}", e.what()));
      lock.lock();
    }
  }
}

void ClusterEngine::receiver_loop() {
  Connection conn(url_, 3.0);
  std::string last = "0-0";
  double backoff = 0.05;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    try {
      const Reply r = conn.command({"XREAD", "COUNT", "256", "BLOCK", "200", "STREAMS", log_key_, last});
      if (r->type == REDIS_REPLY_ERROR) throw ReplyError(reply_text(r.get()));
      backoff = 0.05;
      if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) continue;
      const redisReply* stream = r->element[0];
      if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) continue;
      const redisReply* entries = stream->element[1];
      std::vector<std::string> xdel{"XDEL", log_key_};
      for (std::size_t i = 0; i < entries->elements; ++i) {
        const redisReply* entry = entries->element[i];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2) continue;
        last = reply_text(entry->element[0]);
        xdel.push_back(last);
        std::map<std::string, std::string> fields;
        const redisReply* kv = entry->element[1];
        for (std::size_t k = 0; k + 1 < kv->elements; k += 2)
          fields.emplace(reply_text(kv->element[k]), std::string(kv->element[k + 1]->str, kv->element[k + 1]->len));
        const auto seq = fields.find("seq");
        if (seq != fields.end()) handle_result(std::strtoull(seq->second.c_str(), nullptr, 10), fields);
      }
      if (xdel.size() > 2) (void)conn.command(xdel);  // delivered: the stream stays small
    } catch (const BrokerDown&) {
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
      backoff = std::min(backoff * 2, 1.0);
    } catch (const std::exception& e) {
      logger().error("procpool::cluster::Pool: reading results: {}", e.what());
      conn.disconnect();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

void ClusterEngine::handle_result(std::uint64_t seq, const std::map<std::string, std::string>& fields) {
  auto field = [&](const char* name) -> std::string {
    const auto it = fields.find(name);
    return it == fields.end() ? std::string() : it->second;
  };
  std::shared_ptr<PendingTask> task;
  {
    std::lock_guard lock(mu_);
    const auto it = pending_.find(seq);
    if (it == pending_.end()) return;  // failed by terminate() meanwhile
    task = std::move(it->second);
    pending_.erase(it);
    if (queued_ > 0) --queued_;
    cv_.notify_all();
    done_cv_.notify_all();
  }
  const std::string exit_code = field("exit");
  try {
    if (exit_code == "0") {
      task->complete(field("out"));
    } else if (field("lost") != "0" && !field("lost").empty()) {
      task->fail(std::make_exception_ptr(WorkerLostError(
          fmt::format("procpool: cluster worker on {} (pid {}) lost {} times while running this task", field("host"),
                      field("pid").empty() ? "unknown" : field("pid"), field("lost")))));
    } else if (exit_code == "1") {
      task->fail(std::make_exception_ptr(decode_task_error(field("err"))));
    } else {
      const std::string err = field("err");
      task->fail(std::make_exception_ptr(
          ProcessError(err.empty() ? fmt::format("procpool: cluster task ended with status {} on {}", exit_code, field("host"))
                                   : err)));
    }
  } catch (const std::exception& e) {
    logger().error("procpool::cluster::Pool: completing a task: {}", e.what());
  }
}

} // namespace
} // namespace procpool::detail

namespace procpool::cluster {

Pool::Pool(const ClusterOptions& options) : BasicPool(std::make_shared<detail::ClusterEngine>(options)) {}

} // namespace procpool::cluster
