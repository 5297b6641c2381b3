// The submitter's side: SIGKILLed then --resume (reattach to the live run), Ctrl-C (the run cancelled on
// every worker, --resume runs exactly the rest).
#include "broker_helpers.hpp"

using namespace brokertest;

namespace {

std::vector<std::string> worker_args(const std::string& url, const std::string& host) {
  return {"worker", "--broker", url, "-j", "2", "--lease", "1s", "--exit-when-idle", "20s", "--host-name", host};
}

/// Each job appends its Seq to ran.txt when it completes: a job run twice shows twice.
void write_batch(const TempDir& dir, int n, const std::string& seconds) {
  std::string batch;
  for (int i = 0; i < n; ++i) batch += "sleep " + seconds + "; echo $PARALLEL_SEQ >> ran.txt\n";
  write_file(dir / "b.txt", batch);
}

std::map<long, int> ran_counts(const TempDir& dir) {
  std::map<long, int> counts;
  for (const auto& line : lines_of(read_file(dir / "ran.txt"))) ++counts[std::stol(line)];
  return counts;
}

} // namespace

TEST_CASE("Broker.Submitter.KilledThenResumeReattaches") {
  RedisServer redis;
  TempDir dir;
  write_batch(dir, 20, "0.3");
  Background a(dir, worker_args(redis.url(), "hostA"), "a");
  Background b(dir, worker_args(redis.url(), "hostB"), "b");
  {
    Background run(dir, {"run", "--broker", redis.url(), "--joblog", "j.log", "b.txt"}, "run1");
    REQUIRE(eventually([&] { return seq_counts(dir / "j.log").size() >= 4; }, 10000ms));
    ::kill(run.pid, SIGKILL);
    run.wait();
  }
  // The sidecar names the run, without a password.
  CHECK(read_file(dir / "j.log.procpool-run").find(redis.url()) == 0);
  // Too early: the run was seen less than 6 s ago.
  const auto early = sh(dir, "$P run --broker " + redis.url() + " --joblog j.log --resume b.txt");
  CHECK(early.exit_code == 255);
  CHECK(early.err.find(" is still attached to ") != std::string::npos);
  std::this_thread::sleep_for(6s);
  const auto r = sh(dir, "$P run --broker " + redis.url() + " --joblog j.log --resume b.txt; echo rc=$?");
  CHECK(r.out == "rc=0\n");
  CHECK(r.err.find("procpool: reattached to run ") != std::string::npos);
  const auto logged = seq_counts(dir / "j.log");
  CHECK(logged.size() == 20);
  for (const auto& [seq, count] : logged) CHECK_MESSAGE(count == 1, "Seq " << seq << " logged " << count << " times");
  const auto ran = ran_counts(dir);
  CHECK(ran.size() == 20);
  for (const auto& [seq, count] : ran) CHECK_MESSAGE(count == 1, "Seq " << seq << " ran " << count << " times");
}

TEST_CASE("Broker.Submitter.InterruptThenResume") {
  RedisServer redis;
  TempDir dir;
  write_batch(dir, 12, "1.5");
  Background a(dir, worker_args(redis.url(), "hostA"), "a");
  Background b(dir, worker_args(redis.url(), "hostB"), "b");
  Background run(dir, {"run", "--broker", redis.url(), "--joblog", "j.log", "b.txt"}, "run");
  REQUIRE(eventually([&] { return groups_led_by_children_of(a.pid).size() == 2 && groups_led_by_children_of(b.pid).size() == 2; },
                     5000ms));
  const auto groups_a = groups_led_by_children_of(a.pid);
  const auto groups_b = groups_led_by_children_of(b.pid);
  const auto start = std::chrono::steady_clock::now();
  ::kill(run.pid, SIGINT);
  CHECK(run.wait(10s) == 255);
  CHECK(std::chrono::steady_clock::now() - start <= 4s);  // grace 1 s + 2 s
  CHECK(read_file(dir / "run.err").find("procpool: Interrupt: starting no more jobs, stopping the ") != std::string::npos);
  // The workers killed the run's jobs.
  for (const auto& groups : {groups_a, groups_b})
    for (const pid_t g : groups) CHECK(eventually([&] { return !group_alive(g); }, 3000ms));
  CHECK(seq_counts(dir / "j.log").empty());
  CHECK(ran_counts(dir).empty());
  // --resume: a new run with exactly the jobs the joblog lacks (all of them here).
  const auto r = sh(dir, "$P run --broker " + redis.url() + " --joblog j.log --resume b.txt; echo rc=$?");
  CHECK(r.out == "rc=0\n");
  const auto ran = ran_counts(dir);
  CHECK(ran.size() == 12);
  for (const auto& [seq, count] : ran) CHECK(count == 1);
}
