// The cluster Pool when things die: a worker SIGKILLed mid-task (rerun elsewhere, one result), a task
// that kills its process (requeued, then WorkerLostError naming host and pid), a worker of another build
// (refuses, the task goes to a matching worker or fails naming both build-ids), the owner SIGKILLed (its
// queued tasks are dropped, the workers move on), Redis restarted from its AOF (nothing lost).
#include "cluster_helpers.hpp"

#include "sanitizers.hpp"

#include <procpool/procpool.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>

using namespace clustertest;
namespace cluster = procpool::cluster;

namespace {

/// Appends "worker-pid task-pid" to `path` (the worker is the task process's parent), sleeps, returns
/// the worker's pid.
int mark_and_sleep(std::string path, int ms) {
  {
    std::ofstream out(path, std::ios::app);
    out << ::getppid() << ' ' << ::getpid() << '\n';
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return static_cast<int>(::getppid());
}

int kill_own_process(int) {
  ::raise(SIGKILL);
  return 0;
}

int twice(int x) { return 2 * x; }

std::vector<std::pair<pid_t, pid_t>> marks(const std::string& path) {
  std::vector<std::pair<pid_t, pid_t>> out;
  std::ifstream in(path);
  pid_t worker = 0, task = 0;
  while (in >> worker >> task) out.emplace_back(worker, task);
  return out;
}

// The owner is a forked child that starts threads: TSan cannot follow thread creation in a forked child of a
// multithreaded process, and GCC 12's ASan allocator is not fork-safe.
#define SKIP_FORKED_OWNER_UNDER_SANITIZERS()                                                     \
  if (testing::kThreadSanitizer || testing::kAddressSanitizer) {                                 \
    MESSAGE("SKIP under sanitizers: the owner is a forked child of a multithreaded test process"); \
    return;                                                                                      \
  }

/// Forks an owner: a cluster pool on `queue` that submits 20 tasks of `task_ms` (each marks `log`), then
/// runs `then` (which must not return: it dies or _exits). Returns the owner's pid.
template <class Then>
pid_t fork_owner(const RedisServer& redis, const std::string& queue, const std::string& log, int task_ms,
                 std::chrono::milliseconds owner_timeout, Then then) {
  const pid_t owner = ::fork();
  REQUIRE(owner >= 0);
  if (owner == 0) {
    auto options = options_for(redis, queue);
    options.owner_timeout = owner_timeout;
    cluster::Pool pool(options);
    std::vector<procpool::AsyncResult<int>> results;
    for (int i = 0; i < 20; ++i) results.push_back(pool.apply_async(mark_and_sleep, log, task_ms));
    then(results);
    ::_exit(0);
  }
  return owner;
}

std::string other_build() {
  const char* path = std::getenv("PROCPOOL_CLUSTER_OTHER_BUILD");
  REQUIRE_MESSAGE(path != nullptr, "PROCPOOL_CLUSTER_OTHER_BUILD is not set (run through meson test)");
  return path;
}

} // namespace

TEST_CASE("Pool.ClusterFailure.WorkerKilledMidTask.RerunElsewhereOneResult") {
  TempDir dir;
  RedisServer redis;
  auto w1 = start_worker(dir, redis.url(), "kill", 1, "w1.out", "1s");
  auto w2 = start_worker(dir, redis.url(), "kill", 1, "w2.out", "1s");
  wait_for_workers(redis, "kill", 2);
  cluster::Pool pool(options_for(redis, "kill"));
  const std::string log = dir / "marks";
  auto result = pool.apply_async(mark_and_sleep, log, 2000);
  REQUIRE(eventually([&] { return marks(log).size() == 1; }));
  const auto [victim, victim_task] = marks(log).front();
  REQUIRE((victim == w1->pid || victim == w2->pid));
  ::kill(victim, SIGKILL);
  const int ran_on = result.get(20s);
  CHECK(ran_on != victim);
  CHECK((ran_on == w1->pid || ran_on == w2->pid));
  const auto all = marks(log);
  CHECK(all.size() == 2);  // at least once: it ran again, and its result came once (get returned one value)
  // The killed worker's task process died with it (PDEATHSIG): no orphan keeps running.
  CHECK(eventually([&] { return !process_alive(victim_task); }, 5000ms));
  CHECK(pool.apply(twice, 21) == 42);  // the pool goes on with the survivor
}

TEST_CASE("Pool.ClusterFailure.TaskKillsItsProcess.WorkerLostErrorNamesHostAndPid") {
  TempDir dir;
  RedisServer redis;
  auto w = start_worker(dir, redis.url(), "crash", 1, "w.out", "10s", {"--host-name", "hostB"});
  wait_for_workers(redis, "crash", 1);
  auto options = options_for(redis, "crash");
  options.max_crashes = 2;
  cluster::Pool pool(options);
  try {
    (void)pool.apply(kill_own_process, 1);
    FAIL("no error");
  } catch (const procpool::WorkerLostError& e) {
    const std::string what = e.what();
    CHECK(what.find("cluster worker on hostB (pid " + std::to_string(w->pid) + ")") != std::string::npos);
    CHECK(what.find("lost 2 times") != std::string::npos);
  }
  CHECK(pool.apply(twice, 4) == 8);  // the worker replaced its process and goes on
  CHECK(process_alive(w->pid));
}

TEST_CASE("Pool.ClusterFailure.OtherBuild.RefusesNamingBothBuildIds") {
  TempDir dir;
  RedisServer redis;
  auto stranger = start_worker(dir, redis.url(), "mix", 1, "other.out", "10s", {"--host-name", "hostX"}, other_build());
  wait_for_workers(redis, "mix", 1);
  {
    cluster::Pool pool(options_for(redis, "mix"));
    try {
      (void)pool.apply(twice, 1);
      FAIL("no error");
    } catch (const procpool::ProcessError& e) {
      const std::string what = e.what();
      INFO(what);
      CHECK(what.find("binary mismatch: submitter build-id ") != std::string::npos);
      CHECK(what.find(procpool::detail::loaded_build_id("")) != std::string::npos);
      CHECK(what.find("(host hostX)") != std::string::npos);
    }
  }
  // With a matching worker alive too, every task goes to it: none fails.
  auto match = start_worker(dir, redis.url(), "mix", 1, "match.out");
  wait_for_workers(redis, "mix", 2);
  cluster::Pool pool(options_for(redis, "mix"));
  std::vector<int> items(40);
  for (int i = 0; i < 40; ++i) items[static_cast<std::size_t>(i)] = i;
  const std::vector<int> out = pool.map(twice, items, 1);
  for (int i = 0; i < 40; ++i) CHECK(out[static_cast<std::size_t>(i)] == 2 * i);
  CHECK(process_alive(stranger->pid));
}

TEST_CASE("Pool.ClusterFailure.OwnerKilled.QueuedTasksDroppedWorkersMoveOn") {
  SKIP_FORKED_OWNER_UNDER_SANITIZERS();
  TempDir dir;
  RedisServer redis;
  auto w = start_worker(dir, redis.url(), "owner", 1, "w.out");
  wait_for_workers(redis, "owner", 1);
  const std::string log = dir / "marks";
  const pid_t owner = fork_owner(redis, "owner", log, 250, std::chrono::seconds(1), [](auto&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    ::raise(SIGKILL);  // no destructor, no cancel: the owner just vanishes
  });
  int status = 0;
  REQUIRE(::waitpid(owner, &status, 0) == owner);
  REQUIRE(WIFSIGNALED(status));
  // Within the owner timeout (1 s) plus a task, the queue is empty and the worker idle again.
  CHECK(eventually([&] { return redis.cmd("LLEN pp:{owner}:pool:ready") == ":0"; }, 8000ms));
  const auto ran = marks(log).size();
  CHECK(ran < 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  CHECK(marks(log).size() <= ran + 1);  // nothing of the dead owner's starts any more
  cluster::Pool pool(options_for(redis, "owner"));
  CHECK(pool.apply(twice, 5) == 10);  // the worker moved on
}

TEST_CASE("Pool.ClusterFailure.RedisRestart.AofKeepsEveryTask") {
  TempDir dir;
  RedisServer redis({"--appendonly", "yes", "--appendfsync", "always"});
  auto w = start_worker(dir, redis.url(), "aof", 2, "w.out", "2s");
  wait_for_workers(redis, "aof", 1);
  cluster::Pool pool(options_for(redis, "aof"));
  std::vector<procpool::AsyncResult<int>> results;
  const std::string log = dir / "marks";
  for (int i = 0; i < 16; ++i) results.push_back(pool.apply_async(mark_and_sleep, log, 100));
  REQUIRE(eventually([&] { return marks(log).size() >= 2; }));
  redis.kill9();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  redis.start();
  for (auto& r : results) CHECK(r.get(30s) == w->pid);
  CHECK(marks(log).size() >= 16);  // each at least once
  CHECK(pool.apply(twice, 3) == 6);
}

TEST_CASE("Pool.ClusterFailure.Options.ClearErrors") {
  cluster::ClusterOptions bad;
  bad.broker = "http://nowhere";
  CHECK_THROWS_WITH_AS(cluster::Pool{bad}, doctest::Contains("is not a redis:// or redis+unix:// URL"), procpool::ValueError);
  bad.broker = "redis://10.1.2.3/0";  // beyond loopback, no password
  CHECK_THROWS_AS(cluster::Pool{bad}, procpool::ValueError);
  bad.broker = "redis://127.0.0.1:1/0";  // nobody listens
  CHECK_THROWS_WITH_AS(cluster::Pool{bad}, doctest::Contains("cannot start"), procpool::ProcessError);
  bad.queue = "bad}queue";
  bad.broker = "redis://127.0.0.1:1/0";
  CHECK_THROWS_AS(cluster::Pool{bad}, procpool::ValueError);

  std::vector<std::string> args{"prog", "--procpool-worker", "redis://127.0.0.1/0", "-j", "0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  CHECK_THROWS_WITH_AS(cluster::parse_worker_args(static_cast<int>(argv.size()), argv.data()),
                       doctest::Contains("-j '0'"), procpool::ValueError);
  args = {"prog", "--procpool-worker", "redis://127.0.0.1/0", "--frobnicate"};
  argv.clear();
  for (auto& a : args) argv.push_back(a.data());
  CHECK_THROWS_WITH_AS(cluster::parse_worker_args(static_cast<int>(argv.size()), argv.data()),
                       doctest::Contains("unknown option '--frobnicate'"), procpool::ValueError);
  args = {"prog", "--procpool-worker", "redis://127.0.0.1/0", "-j", "3", "--queue", "q1", "--lease", "2s"};
  argv.clear();
  for (auto& a : args) argv.push_back(a.data());
  const auto parsed = cluster::parse_worker_args(static_cast<int>(argv.size()), argv.data());
  CHECK(parsed.jobs == 3);
  CHECK(parsed.queue == "q1");
  CHECK(parsed.lease == std::chrono::seconds(2));
}

TEST_CASE("Pool.ClusterFailure.OwnerInterrupted.CancelsItsTasksAtOnce") {
  SKIP_FORKED_OWNER_UNDER_SANITIZERS();
  TempDir dir;
  RedisServer redis;
  auto w = start_worker(dir, redis.url(), "ctrlc", 1, "w.out");
  wait_for_workers(redis, "ctrlc", 1);
  const std::string log = dir / "marks";
  // owner_timeout: the default 30 s; the owner waits for its last task, interrupted long before.
  const pid_t owner = fork_owner(redis, "ctrlc", log, 300, std::chrono::seconds(30),
                                 [](auto& results) { (void)results.back().get(60s); });
  REQUIRE(eventually([&] { return marks(log).size() >= 1; }));
  ::kill(owner, SIGINT);  // Ctrl-C
  int status = 0;
  REQUIRE(::waitpid(owner, &status, 0) == owner);
  CHECK(WIFSIGNALED(status));  // it still dies of the signal
  CHECK(WTERMSIG(status) == SIGINT);
  // Cancelled in Redis by the owner on its way out: the queue is empty well before the 30 s owner timeout.
  CHECK(eventually([&] { return redis.cmd("LLEN pp:{ctrlc}:pool:ready") == ":0"; }, 3000ms));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  CHECK(marks(log).size() <= 3);  // the running one (and at most one claimed meanwhile) finished; nothing more ran
}

TEST_CASE("Pool.ClusterFailure.Status.ShowsPoolWorkersAndRuns") {
  TempDir dir;
  RedisServer redis;
  auto w = start_worker(dir, redis.url(), "st", 1, "w.out", "10s", {"--host-name", "hostS"});
  wait_for_workers(redis, "st", 1);
  cluster::Pool pool(options_for(redis, "st"));
  auto slow = pool.apply_async(mark_and_sleep, dir / "marks", 1500);
  REQUIRE(eventually([&] { return marks(dir / "marks").size() == 1; }));
  const auto text = sh(dir, "$P status --broker " + redis.url() + " --queue st");
  CHECK(text.exit_code == 0);
  INFO(text.out);
  CHECK(text.out.find("cluster pools of queue 'st': 0 ready") != std::string::npos);
  CHECK(text.out.find("hostS pid " + std::to_string(w->pid) + ": ") != std::string::npos);  // busy: as of its last heartbeat
  CHECK(text.out.find("/1 busy") != std::string::npos);
  CHECK(text.out.find(":1 running ") != std::string::npos);  // its current task
  CHECK(text.out.find(" active: done 0 failed 0 running 1 queued 0") != std::string::npos);
  const auto json = sh(dir, "$P status --broker " + redis.url() + " --queue st --json");
  CHECK(json.exit_code == 0);
  CHECK(json.out.find("\"pool\":{") != std::string::npos);
  CHECK(json.out.find("\"host\":\"hostS\"") != std::string::npos);
  CHECK(slow.get(10s) == w->pid);
}

namespace {
std::string host_after(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}
} // namespace

TEST_CASE("Pool.ClusterFailure.Netns.ThreeHostsOneLost") {
  // Workers as separate hosts: their own network and UTS namespaces (a unix socket reaches Redis: a file).
  TempDir dir;
  if (::geteuid() != 0 || sh(dir, "unshare -n -u true").exit_code != 0) {
    MESSAGE("SKIP: needs root for network namespaces (unshare -n -u)");
    return;
  }
  RedisServer redis;
  std::vector<std::unique_ptr<BackgroundProgram>> hosts;
  for (const std::string name : {"nsA", "nsB", "nsC"})
    hosts.push_back(std::make_unique<BackgroundProgram>(
        dir,
        std::vector<std::string>{"unshare", "-n", "-u", "sh", "-c",
                                 "hostname " + name + " && exec '" + self_exe() + "' --procpool-worker '" +
                                     redis.unix_url() + "' -j 1 --queue hosts --lease 1s"},
        name));
  wait_for_workers(redis, "hosts", 3);
  auto options = options_for(redis, "hosts", 3);
  options.broker = redis.unix_url();
  cluster::Pool pool(options);
  const std::vector<int> delays(30, 50);
  const auto seen = pool.map(host_after, delays, 1);
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == std::set<std::string>{"nsA", "nsB", "nsC"});
  // One host dies mid-map: every task still delivers exactly one result, from the two left.
  auto later = pool.map_async(host_after, std::vector<int>(30, 100), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(hosts[1]->pid, SIGKILL);
  const auto after = later.get(30s);
  CHECK(after.size() == 30);
  CHECK(std::count(after.begin(), after.end(), "nsA") + std::count(after.begin(), after.end(), "nsC") >= 26);
}

TEST_CASE("Pool.ClusterFailure.WorkerStopped.HandsTasksBackWithoutACrash") {
  TempDir dir;
  RedisServer redis;
  auto a = start_worker(dir, redis.url(), "stop", 1, "a.out");
  wait_for_workers(redis, "stop", 1);
  auto options = options_for(redis, "stop");
  options.max_crashes = 1;  // a crash would fail the task at once: a stop must not count as one
  cluster::Pool pool(options);
  const std::string log = dir / "marks";
  auto result = pool.apply_async(mark_and_sleep, log, 1500);
  REQUIRE(eventually([&] { return marks(log).size() == 1; }));
  auto b = start_worker(dir, redis.url(), "stop", 1, "b.out");
  wait_for_workers(redis, "stop", 2);
  ::kill(a->pid, SIGTERM);
  CHECK(a->wait(10s) == 0);  // stops its task, hands it back, exits 0
  CHECK(result.get(20s) == b->pid);
  CHECK(marks(log).size() == 2);
  CHECK(read_file(dir / "a.out.err").find("handing 1 running tasks back to the queue") != std::string::npos);
}

TEST_CASE("Pool.ClusterFailure.BackPressure.MaxQueuedBoundsRedis") {
  TempDir dir;
  RedisServer redis;
  auto options = options_for(redis, "bp");
  options.max_queued = 5;
  cluster::Pool pool(options);  // no worker yet: everything waits
  std::vector<int> items(2000);
  for (int i = 0; i < 2000; ++i) items[static_cast<std::size_t>(i)] = i;
  auto all = pool.map_async(twice, items, 1);  // 2,000 tasks
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(redis.cmd("LLEN pp:{bp}:pool:ready") == ":5");  // the rest waits in the owner
  auto w = start_worker(dir, redis.url(), "bp", 2, "w.out");
  const auto out = all.get(60s);
  REQUIRE(out.size() == 2000);
  CHECK(out[1999] == 3998);
  CHECK(redis.cmd("LLEN pp:{bp}:pool:ready") == ":0");
}
