// What goes wrong on many machines, on one: a worker SIGKILLed (alone, or with its watchdog: a host
// death), a worker paused past its lease, a job that kills its worker every time, Redis killed and
// restarted with AOF. Every Seq is logged once; nothing is left running.
#include "broker_helpers.hpp"

using namespace brokertest;

namespace {

std::vector<std::string> worker_args(const std::string& url, const std::string& jobs, const std::string& host) {
  return {"worker", "--broker", url, "-j", jobs, "--lease", "1s", "--exit-when-idle", "5s", "--host-name", host};
}

double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// The batch: N jobs of `seconds`, each printing its Seq and attempt.
void write_sleep_batch(const TempDir& dir, int n, const std::string& seconds) {
  std::string batch;
  for (int i = 0; i < n; ++i) batch += "sleep " + seconds + "; echo $PARALLEL_SEQ $PROCPOOL_ATTEMPT\n";
  write_file(dir / "b.txt", batch);
}

/// The child of `parent` named procpool-watch.
pid_t watchdog_of(pid_t parent) {
  pid_t found = -1;
  for_each_process([&](const ProcStat& p) {
    if (p.ppid == parent && p.comm == "procpool-watch") found = p.pid;
  });
  return found;
}

/// The jobs rerun after the kill (attempt 2 in the run's output): `expected` of them, each started at most
/// `within` seconds after `killed_at`, on `host` when given.
void check_reruns(const TempDir& dir, double killed_at, double within, int expected, const std::string& host = "") {
  int reruns = 0;
  const auto rows = joblog_rows(dir / "j.log");
  for (const auto& line : lines_of(read_file(dir / "run"))) {
    if (line.substr(line.find(' ') + 1) != "2") continue;
    ++reruns;
    for (const auto& row : rows)
      if (row[0] == line.substr(0, line.find(' '))) {
        if (!host.empty()) CHECK(row[1] == host);
        CHECK(std::stod(row[2]) - killed_at <= within);
      }
  }
  CHECK(reruns == expected);
}

void check_each_seq_once(const std::string& joblog, int n) {
  const auto counts = seq_counts(joblog);
  CHECK(counts.size() == static_cast<std::size_t>(n));
  for (const auto& [seq, count] : counts) CHECK_MESSAGE(count == 1, "Seq " << seq);
}

} // namespace

TEST_CASE("Broker.Failure.WorkerKilled") {
  RedisServer redis;
  TempDir dir;
  write_sleep_batch(dir, 24, "0.2");
  Background a(dir, worker_args(redis.url(), "2", "hostA"), "a");
  Background b(dir, worker_args(redis.url(), "2", "hostB"), "b");
  Background run(dir, {"run", "--broker", redis.url(), "--joblog", "j.log", "b.txt"}, "run");
  std::vector<pid_t> groups;
  REQUIRE(eventually([&] { groups = groups_led_by_children_of(a.pid); return groups.size() == 2; }, 5000ms));
  const double killed_at = epoch_now();
  ::kill(a.pid, SIGKILL);
  a.wait();
  CHECK(run.wait(30s) == 0);
  check_each_seq_once(dir / "j.log", 24);
  for (const pid_t g : groups) CHECK_MESSAGE(!group_alive(g), "job group " << g << " outlived its worker");
  // The jobs that were running on A ran again, on B, within a second.
  check_reruns(dir, killed_at, 1.0, 2, "hostB");
}

TEST_CASE("Broker.Failure.HostDeath") {
  RedisServer redis;
  TempDir dir;
  write_sleep_batch(dir, 16, "0.2");
  Background a(dir, worker_args(redis.url(), "2", "hostA"), "a");
  Background b(dir, worker_args(redis.url(), "2", "hostB"), "b");
  Background run(dir, {"run", "--broker", redis.url(), "--joblog", "j.log", "b.txt"}, "run");
  REQUIRE(eventually([&] { return groups_led_by_children_of(a.pid).size() == 2; }, 5000ms));
  const pid_t watchdog = watchdog_of(a.pid);
  REQUIRE(watchdog > 0);
  // The watchdog first: nobody hands the leases back; only the lease's expiry tells.
  ::kill(watchdog, SIGKILL);
  const double killed_at = epoch_now();
  ::kill(a.pid, SIGKILL);
  a.wait();
  CHECK(run.wait(30s) == 0);
  check_each_seq_once(dir / "j.log", 16);
  check_reruns(dir, killed_at, 1.5, 2);
}

TEST_CASE("Broker.Failure.PausedPastLease") {
  RedisServer redis;
  TempDir dir;
  write_sleep_batch(dir, 16, "0.5");
  Background a(dir, worker_args(redis.url(), "2", "hostA"), "a");
  Background b(dir, worker_args(redis.url(), "2", "hostB"), "b");
  Background run(dir, {"run", "--broker", redis.url(), "--joblog", "j.log", "b.txt"}, "run");
  REQUIRE(eventually([&] { return groups_led_by_children_of(a.pid).size() == 2; }, 5000ms));
  ::kill(a.pid, SIGSTOP);
  std::this_thread::sleep_for(3s);
  ::kill(a.pid, SIGCONT);
  CHECK(run.wait(30s) == 0);
  check_each_seq_once(dir / "j.log", 16);
  CHECK(std::stol(redis.cmd("HGET pp:{default}:stats stale").substr(1)) >= 1);
  CHECK(eventually([&] { return read_file(dir / "a.err").find("procpool worker: lease lost; killed ") != std::string::npos; }, 3000ms));
  CHECK(eventually([&] { return redis.cmd("ZCARD pp:{default}:workers") == ":2"; }, 3000ms));  // A registered again
}

TEST_CASE("Broker.Failure.JobKillsItsWorker") {
  RedisServer redis;
  TempDir dir;
  write_file(dir / "b.txt", "kill -9 $PARALLEL_PID\ntrue\ntrue\n");
  std::vector<std::unique_ptr<Background>> workers;
  for (int i = 0; i < 6; ++i)
    workers.push_back(std::make_unique<Background>(dir, worker_args(redis.url(), "1", "h" + std::to_string(i)),
                                                   "w" + std::to_string(i)));
  const auto r = sh(dir, "$P run --broker " + redis.url() + " --joblog j.log b.txt; echo rc=$?");
  CHECK(r.out == "rc=1\n");
  CHECK(r.err.find("procpool: job 1 lost: its worker died 5 times (last on h") != std::string::npos);
  CHECK(r.err.find(", --max-crashes 5): kill -9 $PARALLEL_PID\n") != std::string::npos);
  const auto rows = joblog_rows(dir / "j.log");
  REQUIRE(rows.size() == 3);
  for (const auto& row : rows)
    if (row[0] == "1") CHECK(row[6] == "-1");
}

TEST_CASE("Broker.Failure.RedisRestartWithAof") {
  RedisServer redis({"--appendonly", "yes", "--appendfsync", "always"});
  TempDir dir;
  write_sleep_batch(dir, 16, "0.3");
  Background a(dir, worker_args(redis.url(), "2", "hostA"), "a");
  Background b(dir, worker_args(redis.url(), "2", "hostB"), "b");
  Background run(dir, {"run", "--broker", redis.url(), "--joblog", "j.log", "b.txt"}, "run");
  REQUIRE(eventually([&] { return seq_counts(dir / "j.log").size() >= 2; }, 5000ms));
  redis.kill9();
  std::this_thread::sleep_for(1500ms);
  redis.start();
  CHECK(run.wait(40s) == 0);  // nothing killed, nothing failed, no hang
  check_each_seq_once(dir / "j.log", 16);
  // Both sides said so while it was down.
  CHECK(read_file(dir / "run.err").find("procpool: broker " + redis.url() + " unreachable (") != std::string::npos);
  CHECK((read_file(dir / "a.err") + read_file(dir / "b.err")).find("procpool worker: broker " + redis.url() + " unreachable (") !=
        std::string::npos);
}

TEST_CASE("Broker.Failure.RedisRestartWithoutPersistence") {
  RedisServer redis;
  TempDir dir;
  write_sleep_batch(dir, 8, "1");
  Background a(dir, worker_args(redis.url(), "2", "hostA"), "a");
  Background run(dir, {"run", "--broker", redis.url(), "--joblog", "j.log", "b.txt"}, "run");
  std::vector<pid_t> groups;
  REQUIRE(eventually([&] { groups = groups_led_by_children_of(a.pid); return groups.size() == 2; }, 5000ms));
  redis.kill9();
  redis.start();  // empty: the run, the queue and the leases are gone
  CHECK(run.wait(20s) == 255);
  CHECK(read_file(dir / "run.err").find(" vanished from the broker (Redis restarted without persistence?); --resume runs "
                                        "the jobs not in the joblog\n") != std::string::npos);
  // The worker is fenced: it kills its jobs and registers again.
  CHECK(eventually([&] { return read_file(dir / "a.err").find("procpool worker: lease lost; killed 2 running jobs, "
                                                              "registering again\n") != std::string::npos; }, 5000ms));
  for (const pid_t g : groups) CHECK(eventually([&] { return !group_alive(g); }, 2000ms));
  CHECK(eventually([&] { return redis.cmd("ZCARD pp:{default}:workers") == ":1"; }, 3000ms));
}

TEST_CASE("Broker.Failure.WorkerTerminated") {
  RedisServer redis;
  TempDir dir;
  write_sleep_batch(dir, 12, "0.5");
  Background a(dir, worker_args(redis.url(), "2", "hostA"), "a");
  Background b(dir, worker_args(redis.url(), "2", "hostB"), "b");
  Background run(dir, {"run", "--broker", redis.url(), "--joblog", "j.log", "--max-crashes", "1", "b.txt"}, "run");
  std::vector<pid_t> groups;
  REQUIRE(eventually([&] { groups = groups_led_by_children_of(a.pid); return groups.size() == 2; }, 5000ms));
  // SIGTERM: A kills its jobs, hands them back without a crash (--max-crashes 1 would log them lost), exits 0.
  ::kill(a.pid, SIGTERM);
  CHECK(a.wait(10s) == 0);
  for (const pid_t g : groups) CHECK(eventually([&] { return !group_alive(g); }, 2000ms));
  CHECK(read_file(dir / "a.err").find("procpool worker: Terminated: stopping 2 jobs, handing them back to the queue\n") !=
        std::string::npos);
  CHECK(run.wait(30s) == 0);
  check_each_seq_once(dir / "j.log", 12);
  CHECK(redis.cmd("ZCARD pp:{default}:workers") == ":1");
}
