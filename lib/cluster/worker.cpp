// A cluster pool worker: `./app --procpool-worker URL [-j N]`. Tasks run in a local procpool::Pool of
// N worker processes (forked before any thread here), so a task that crashes its process costs one
// crash (requeued, or lost after max_crashes), not the worker. Threads, each with its own connection:
// the heartbeat (lease/5), the claimer (claims for free slots only, else blocks in BLMOVE); the main
// thread sends the outcomes (one finish script for all that are ready) and watches for signals.
#include "cluster/cluster_task.hpp"

#include "broker/scripts.hpp"
#include "broker/server.hpp"

#include "procpool/cluster.hpp"
#include "procpool/detail/pool_core.hpp"
#include "procpool/errors.hpp"
#include "procpool/process.hpp"
#include "procpool/version.hpp"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>

#include <unistd.h>

namespace procpool::cluster {
namespace {

using namespace procpool::broker;
using Clock = std::chrono::steady_clock;

std::atomic<int> g_stop_signal{0};
pid_t g_worker_pid = 0;

extern "C" void on_stop_signal(int sig) {
  // Inherited by the local pool's forked workers: there the signal keeps its default meaning.
  if (::getpid() != g_worker_pid) {
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_stop_signal.store(sig);
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// A task's end, waiting to be sent.
struct Outcome {
  enum class Kind { Finish, Lost, Refuse } kind = Kind::Finish;
  std::string jid, att;
  std::string exit = "0";
  std::string out, err;
  double start = 0, runtime = 0;
};

class Worker;

/// The local pool's record of a claimed task: its end becomes an Outcome.
class LocalTask final : public detail::PendingTask {
public:
  LocalTask(Worker& worker, std::string jid, std::string att)
      : worker_(worker), jid_(std::move(jid)), att_(std::move(att)), start_(wall_seconds()), started_(Clock::now()) {}
  void complete(std::string_view payload) override;
  void fail(std::exception_ptr error) override;

private:
  Outcome outcome(Outcome::Kind kind) const {
    Outcome o;
    o.kind = kind;
    o.jid = jid_;
    o.att = att_;
    o.start = start_;
    o.runtime = std::chrono::duration<double>(Clock::now() - started_).count();
    return o;
  }
  Worker& worker_;
  std::string jid_, att_;
  double start_;
  Clock::time_point started_;
};

class Worker {
public:
  Worker(const WorkerOptions& options, BrokerUrl url, std::string prefix, std::string host, int jobs)
      : opt_(options), url_(std::move(url)), prefix_(std::move(prefix)), host_(std::move(host)), jobs_(jobs) {
    std::random_device rd;
    wid_ = fmt::format("{}:{}:{:08x}", host_, ::getpid(), rd());
    lease_ms_ = opt_.lease.count();
    own_build_id_ = detail::loaded_build_id("");
  }
  int run();
  void done(Outcome outcome) {
    std::lock_guard lock(mu_);
    if (stopping_) return;  // the leases go back with release
    outcomes_.push_back(std::move(outcome));
    cv_.notify_all();
  }

private:
  struct Claimed {
    std::string jid, att, cmd;
  };
  void register_worker(Connection& conn);
  void heartbeat_loop();
  void claimer_loop();
  void start(Claimed claimed);
  void refuse(const Claimed& claimed, std::string why);
  void flush(Connection& conn, std::deque<Outcome>& outcomes);
  [[nodiscard]] long long timeout_ms() const { return std::max(1000LL, lease_ms_); }

  WorkerOptions opt_;
  BrokerUrl url_;
  std::string prefix_, host_, wid_, own_build_id_;
  int jobs_;
  long long lease_ms_;
  std::shared_ptr<detail::PoolCore> local_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Outcome> outcomes_;
  int running_ = 0;  // claimed, outcome not yet sent
  bool stopping_ = false;
  bool fenced_ = false;
  std::atomic<long long> last_ok_ms_{0};
};

void LocalTask::complete(std::string_view payload) {
  Outcome o = outcome(Outcome::Kind::Finish);
  o.out.assign(payload);
  worker_.done(std::move(o));
}

void LocalTask::fail(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const BrokenProcessPool&) {
    // The local pool was terminated: this worker is stopping and hands its leases back.
  } catch (const WorkerLostError&) {
    worker_.done(outcome(Outcome::Kind::Lost));
  } catch (const RemoteError& e) {
    Outcome o = outcome(Outcome::Kind::Finish);
    o.exit = "1";
    o.err = detail::encode_task_error(e.type_name(), e.message());
    worker_.done(std::move(o));
  } catch (const std::exception& e) {
    Outcome o = outcome(Outcome::Kind::Finish);
    o.exit = "1";
    o.err = detail::encode_task_error(e);
    worker_.done(std::move(o));
  }
}

void Worker::register_worker(Connection& conn) {
  try {
    conn.eval(kRegister, prefix_,
              {std::to_string(kProtocol), wid_, host_, std::to_string(::getpid()), std::to_string(jobs_),
               std::to_string(lease_ms_), PROCPOOL_VERSION});
  } catch (const ReplyError& e) {
    const std::string what = e.what();
    if (const auto at = what.find("LEASE "); at != std::string::npos) {
      const double ms = std::strtod(what.substr(at + 6).c_str(), nullptr);
      throw ValueError(fmt::format("procpool worker: queue '{}' has workers with --lease {}s (the queue's workers share one "
                                   "lease); pass --lease {}s",
                                   opt_.queue, ms / 1000, ms / 1000));
    }
    throw ValueError(fmt::format("procpool worker: queue '{}': {}", opt_.queue, what));
  }
  last_ok_ms_ = monotonic_ms();
}

void Worker::heartbeat_loop() {
  Connection conn(url_, static_cast<double>(timeout_ms()) / 1000);
  const auto period = std::chrono::milliseconds(lease_ms_ / 5);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const int busy = running_;
    lock.unlock();
    try {
      const Reply r = conn.eval(kHeartbeat, prefix_,
                                {"w", wid_, std::to_string(monotonic_ms() - last_ok_ms_.load()),
                                 std::to_string(lease_ms_), "0", std::to_string(busy)});
      if (r->elements > 0 && reply_text(r->element[0]) == "FENCED") {
        lock.lock();
        fenced_ = true;
        cv_.notify_all();
        lock.unlock();
      } else {
        last_ok_ms_ = monotonic_ms();
      }
    } catch (const std::exception&) {
      // Unreachable: the claims stop once the lease is half gone; retried next period.
    }
    lock.lock();
    cv_.wait_for(lock, period, [&] { return stopping_; });
  }
}

void Worker::claimer_loop() {
  Connection conn(url_, static_cast<double>(timeout_ms()) / 1000);
  const double block = std::min(1.0, static_cast<double>(lease_ms_) / 5000);
  double backoff = 0.05;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || (running_ < jobs_ && !fenced_); });
    if (stopping_) return;
    const int n = jobs_ - running_;
    lock.unlock();
    std::vector<Claimed> got;
    auto parse = [&](const Reply& r) {
      if (r->elements > 0 && reply_text(r->element[0]) == "FENCED") return;
      for (std::size_t i = 1; i + 5 < r->elements; i += 6)
        got.push_back({reply_text(r->element[i]), reply_text(r->element[i + 2]),
                       std::string(r->element[i + 3]->str, r->element[i + 3]->len)});
    };
    try {
      parse(conn.eval(kClaim, prefix_, {wid_, std::to_string(n)}));
      if (got.empty() && monotonic_ms() - last_ok_ms_.load() < lease_ms_ / 2) {
        conn.set_timeout(block + 2);
        const Reply moved = conn.command({"BLMOVE", prefix_ + "ready", prefix_ + "inflight:" + wid_, "LEFT", "RIGHT",
                                          fmt::format("{:.3f}", block)});
        conn.set_timeout(static_cast<double>(timeout_ms()) / 1000);
        if (moved->type == REDIS_REPLY_STRING) parse(conn.eval(kClaim, prefix_, {wid_, std::to_string(n), reply_text(moved.get())}));
      } else if (got.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      backoff = 0.05;
    } catch (const BrokerDown&) {
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
      backoff = std::min(backoff * 2, 1.0);
    } catch (const std::exception& e) {
      std::cerr << fmt::format("procpool worker: claim: {}\n", e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    lock.lock();
    running_ += static_cast<int>(got.size());
    lock.unlock();
    for (Claimed& c : got) start(std::move(c));
    lock.lock();
  }
}

void Worker::refuse(const Claimed& claimed, std::string why) {
  Outcome o;
  o.kind = Outcome::Kind::Refuse;
  o.jid = claimed.jid;
  o.att = claimed.att;
  o.err = std::move(why);
  done(std::move(o));
}

void Worker::start(Claimed claimed) {
  detail::ClusterTask task;
  try {
    task = codec::decode<detail::ClusterTask>(claimed.cmd);
  } catch (const std::exception& e) {
    return refuse(claimed, fmt::format("procpool: cluster worker on {} cannot read the task: {}", host_, e.what()));
  }
  if (task.invoker.object.empty() && !task.invoker.build_id.empty() && task.invoker.build_id != own_build_id_)
    return refuse(claimed, fmt::format("procpool: binary mismatch: submitter build-id {}, worker {} (host {})",
                                       task.invoker.build_id, own_build_id_.empty() ? "none" : own_build_id_, host_));
  const void* invoker = nullptr;
  const void* function = nullptr;
  try {
    invoker = detail::resolve_code_ref(task.invoker);
    if (task.has_function) function = detail::resolve_code_ref(task.function);
  } catch (const std::exception& e) {
    return refuse(claimed, fmt::format("{} (host {})", e.what(), host_));
  }
  if (!detail::cluster_invoker_allowed(invoker))
    return refuse(claimed, fmt::format("procpool: the task names code that is no pool task entry of this program (host {})", host_));
  try {
    local_->submit(invoker, function, task.payload, std::make_shared<LocalTask>(*this, claimed.jid, claimed.att));
  } catch (const std::exception& e) {
    Outcome o;
    o.jid = claimed.jid;
    o.att = claimed.att;
    o.exit = "1";
    o.err = detail::encode_task_error(e);
    done(std::move(o));
  }
}

void Worker::flush(Connection& conn, std::deque<Outcome>& outcomes) {
  std::vector<Connection::ScriptCall> calls;
  std::vector<std::string> finish{wid_};
  for (const Outcome& o : outcomes) {
    switch (o.kind) {
      case Outcome::Kind::Finish:
        for (std::string field : {o.jid, o.att, std::string("ok"), o.exit, std::string("0"), fmt::format("{:.3f}", o.start),
                                  fmt::format("{:.3f}", o.runtime), host_, std::to_string(o.out.size()), o.out, o.err,
                                  std::string("0")})
          finish.push_back(std::move(field));
        break;
      case Outcome::Kind::Lost:
        calls.push_back({&kTaskLost, {wid_, o.jid, o.att, host_, std::to_string(::getpid())}});
        break;
      case Outcome::Kind::Refuse:
        calls.push_back({&kRefuse, {wid_, o.jid, o.att, host_, o.err}});
        break;
    }
  }
  if (finish.size() > 1) calls.push_back({&kFinish, std::move(finish)});
  (void)conn.eval_pipelined(prefix_, calls);  // error replies: the job is gone or fenced; nothing to redo
}

int Worker::run() {
  // The local pool first: its workers are forked before this process has threads of its own.
  detail::PoolCoreConfig config;
  config.workers = jobs_;
  config.interprocess = true;
  config.start_method = StartMethod::Fork;
  local_ = std::make_shared<detail::PoolCore>(config);

  Connection conn(url_, static_cast<double>(timeout_ms()) / 1000);
  register_worker(conn);
  std::cerr << fmt::format("procpool worker: {} serving cluster pools of queue '{}' on {} with {} slots\n", wid_, opt_.queue,
                           url_.redacted(), jobs_);
  std::thread heartbeat([this] { heartbeat_loop(); });
  std::thread claimer([this] { claimer_loop(); });

  auto idle_since = Clock::now();
  std::deque<Outcome> sending;
  double backoff = 0.05;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return !outcomes_.empty() || fenced_; });
    if (g_stop_signal.load() != 0) break;
    if (fenced_) {
      // Our leases were handed out again (we were silent too long): what runs now ends stale.
      lock.unlock();
      try {
        register_worker(conn);
        std::cerr << fmt::format("procpool worker: {} was presumed dead; registered again\n", wid_);
        lock.lock();
        fenced_ = false;
        cv_.notify_all();
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        lock.lock();
      }
      continue;
    }
    if (!outcomes_.empty()) {
      for (Outcome& o : outcomes_) sending.push_back(std::move(o));
      outcomes_.clear();
      lock.unlock();
      try {
        flush(conn, sending);
        backoff = 0.05;
        lock.lock();
        running_ -= static_cast<int>(sending.size());
        sending.clear();
        cv_.notify_all();
      } catch (const BrokerDown&) {
        // Sent again when the broker is back (finish refuses a repeat: fencing).
        std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
        backoff = std::min(backoff * 2, 1.0);
        lock.lock();
        for (auto it = sending.rbegin(); it != sending.rend(); ++it) outcomes_.push_front(std::move(*it));
        sending.clear();
      }
    }
    if (running_ > 0) idle_since = Clock::now();
    if (opt_.exit_when_idle.count() > 0 && Clock::now() - idle_since >= opt_.exit_when_idle) break;
  }
  stopping_ = true;
  cv_.notify_all();
  lock.unlock();
  claimer.join();
  heartbeat.join();
  if (const int sig = g_stop_signal.load())
    std::cerr << fmt::format("procpool worker: {}: stopping, handing {} running tasks back to the queue\n", strsignal(sig),
                             running_);
  local_->shutdown();  // running tasks are killed; their leases go back below, without a crash
  for (int attempt = 0; attempt < 3; ++attempt) {
    try {
      conn.eval(kRelease, prefix_, {wid_, "0"});
      break;
    } catch (const BrokerDown&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return 0;
}

/// "10s", "500ms", "2m", "1.5" (seconds).
std::chrono::milliseconds parse_duration(const std::string& option, const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  const std::string unit = end != nullptr ? std::string(end) : std::string();
  double scale = 1000;
  if (unit == "ms") scale = 1;
  else if (unit == "m") scale = 60000;
  else if (unit == "h") scale = 3600000;
  else if (!unit.empty() && unit != "s") scale = -1;
  if (end == text.c_str() || scale < 0 || !(value >= 0))
    throw ValueError(fmt::format("procpool worker: {} '{}': expected a duration such as 10s, 500ms or 2m", option, text));
  return std::chrono::milliseconds(static_cast<long long>(value * scale));
}

} // namespace

WorkerOptions parse_worker_args(int argc, char** argv) {
  WorkerOptions options;
  if (argc < 3 || argv[1] == nullptr || std::string_view(argv[1]) != "--procpool-worker")
    throw ValueError("procpool worker: usage: PROGRAM --procpool-worker redis://HOST[:PORT][/DB] [-j N] [--queue NAME] "
                     "[--lease D] [--host-name NAME] [--exit-when-idle D] [--insecure-broker]");
  options.broker = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ValueError(fmt::format("procpool worker: {} needs a value", arg));
      return argv[++i];
    };
    if (arg == "-j" || arg == "--jobs") {
      const std::string text = value();
      char* end = nullptr;
      const long n = std::strtol(text.c_str(), &end, 10);
      if (end == text.c_str() || *end != '\0' || n < 1 || n > 4096)
        throw ValueError(fmt::format("procpool worker: -j '{}': expected 1 to 4096 slots", text));
      options.jobs = static_cast<int>(n);
    } else if (arg == "--queue") {
      options.queue = value();
    } else if (arg == "--lease") {
      options.lease = parse_duration(arg, value());
      if (options.lease < std::chrono::milliseconds(500) || options.lease > std::chrono::hours(1))
        throw ValueError("procpool worker: --lease must be 0.5s to 1h");
    } else if (arg == "--host-name") {
      options.host_name = value();
    } else if (arg == "--exit-when-idle") {
      options.exit_when_idle = parse_duration(arg, value());
    } else if (arg == "--insecure-broker") {
      options.insecure_broker = true;
    } else {
      throw ValueError(fmt::format("procpool worker: unknown option '{}'", arg));
    }
  }
  return options;
}

int worker_main(const WorkerOptions& options) {
  const int jobs = options.jobs > 0 ? options.jobs : cpu_count();
  BrokerUrl url;
  std::string prefix;
  std::string host = options.host_name.empty() ? host_name() : options.host_name;
  try {
    url = checked_url(options.broker, options.insecure_broker);
    check_queue_name(options.queue);
    prefix = pool_key_prefix(options.queue);
    Connection conn(url, 5.0);
    check_server(conn, options.queue, prefix);
  } catch (const ConfigError& e) {
    throw ValueError(fmt::format("procpool worker: {}", e.what()));
  } catch (const BrokerDown& e) {
    throw ValueError(fmt::format("procpool worker: cannot reach {}: {}", url.redacted(), e.what()));
  }
  ::signal(SIGPIPE, SIG_IGN);
  g_worker_pid = ::getpid();
  g_stop_signal = 0;
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, on_stop_signal);
  Worker worker(options, std::move(url), std::move(prefix), std::move(host), jobs);
  return worker.run();
}

} // namespace procpool::cluster

namespace procpool::detail {

int cluster_worker_entry(int argc, char** argv) {
  try {
    return cluster::worker_main(cluster::parse_worker_args(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 255;
  }
}

} // namespace procpool::detail
