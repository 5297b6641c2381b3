#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <numeric>
#include <ranges>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <procpool/procpool.hpp>

#include "run_program.hpp"

using namespace std::chrono_literals;

namespace {

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
std::string shout(std::string s) { return s + "!"; }
int fail_on_five(int x) {
  if (x == 5) throw std::invalid_argument("five is not allowed");
  return x;
}
int worker_pid() { return static_cast<int>(::getpid()); }
int slow_identity(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(x));
  return x;
}
int die_on(int x) {
  if (x == 3) ::kill(::getpid(), SIGKILL);
  return x;
}
int sleep_forever(int) {
  std::this_thread::sleep_for(60s);
  return 0;
}

// Initializer state, per worker: a process worker has its own copy, a thread worker its own
// thread_local. Each must have run the initializer exactly once.
thread_local int g_initialised = 0;
void init_worker(int value) { g_initialised += value; }
int read_initialised(int) { return g_initialised; }

} // namespace

#define BOTH_POOLS procpool::Pool, procpool::dummy::Pool

TEST_CASE_TEMPLATE("Pool.Map.ResultsInOrder", P, BOTH_POOLS) {
  P pool(2);
  std::vector<int> in(1000);
  std::iota(in.begin(), in.end(), 0);
  const auto out = pool.map(&square, in);
  REQUIRE(out.size() == in.size());
  for (std::size_t i = 0; i < in.size(); ++i) CHECK(out[i] == in[i] * in[i]);
  CHECK(pool.map(&square, std::views::iota(0, 10)) == std::vector<int>{0, 1, 4, 9, 16, 25, 36, 49, 64, 81});
}

TEST_CASE_TEMPLATE("Pool.Map.ChunksizeEdges", P, BOTH_POOLS) {
  P pool(2);
  CHECK(pool.map(&square, std::vector<int>{}).empty());
  CHECK(pool.map(&square, std::vector<int>{7}) == std::vector<int>{49});
  CHECK(pool.map(&square, std::vector<int>{1, 2, 3}, 100) == std::vector<int>{1, 4, 9});
  CHECK(pool.map(&square, std::vector<int>{1, 2, 3}, 1) == std::vector<int>{1, 4, 9});
  CHECK(procpool::detail::default_chunksize(10, 2) == 2);
  CHECK(procpool::detail::default_chunksize(8, 2) == 1);
  CHECK(procpool::detail::default_chunksize(0, 2) == 1);
}

TEST_CASE_TEMPLATE("Pool.Map.NonTrivialTypes", P, BOTH_POOLS) {
  P pool(2);
  const auto out = pool.map(&shout, std::vector<std::string>{"a", "bb", std::string(100000, 'c')});
  REQUIRE(out.size() == 3);
  CHECK(out[0] == "a!");
  CHECK(out[1] == "bb!");
  CHECK(out[2].size() == 100001);
  const auto lam = pool.map([](std::string s) { return s.size(); }, std::vector<std::string>{"xy", "z"});
  CHECK(lam == std::vector<std::size_t>{2, 1});
}

TEST_CASE_TEMPLATE("Pool.Starmap.Tuples", P, BOTH_POOLS) {
  P pool(2);
  const std::vector<std::tuple<int, int>> in{{1, 2}, {3, 4}, {5, 6}};
  CHECK(pool.starmap(&add, in) == std::vector<int>{3, 7, 11});
  auto r = pool.starmap_async(&add, in, 1);
  CHECK(r.get() == std::vector<int>{3, 7, 11});
}

TEST_CASE_TEMPLATE("Pool.Imap.OrderedAndUnordered", P, BOTH_POOLS) {
  P pool(2);
  std::vector<int> ordered;
  for (int r : pool.imap(&square, std::views::iota(0, 50))) ordered.push_back(r);
  REQUIRE(ordered.size() == 50);
  for (int i = 0; i < 50; ++i) CHECK(ordered[static_cast<std::size_t>(i)] == i * i);
  std::multiset<int> unordered;
  for (int r : pool.imap_unordered(&square, std::views::iota(0, 50), 3)) unordered.insert(r);
  std::multiset<int> expected;
  for (int i = 0; i < 50; ++i) expected.insert(i * i);
  CHECK(unordered == expected);
}

TEST_CASE_TEMPLATE("Pool.Imap.EndlessInputBoundedLookahead", P, BOTH_POOLS) {
  P pool(2);
  auto results = pool.imap(&square, std::views::iota(0));  // endless
  long long sum = 0;
  for (int i = 0; i < 1000; ++i) sum += *results.next();
  CHECK(sum == 332833500LL);
}

TEST_CASE_TEMPLATE("Pool.Apply.ValueAndExceptions", P, BOTH_POOLS) {
  P pool(2);
  CHECK(pool.apply(&square, 20) == 400);
  auto r = pool.apply_async(&square, 20);
  CHECK(r.get(1s) == 400);
  CHECK(r.ready());
  CHECK(r.successful());
  auto bad = pool.apply_async(&fail_on_five, 5);
  bad.wait();
  CHECK_FALSE(bad.successful());
  try {
    (void)bad.get();
    FAIL("get() should rethrow");
  } catch (const procpool::RemoteError& e) {
    CHECK(e.type_name() == "std::invalid_argument");
    CHECK(e.message() == "five is not allowed");
  }
  // The pool stays usable after a task's exception.
  CHECK(pool.apply(&square, 3) == 9);
}

TEST_CASE_TEMPLATE("Pool.Apply.TimeoutAndNotReady", P, BOTH_POOLS) {
  P pool(2);
  auto slow = pool.apply_async(&slow_identity, 400);
  CHECK_THROWS_AS((void)slow.successful(), procpool::ValueError);
  CHECK_THROWS_AS((void)slow.get(50ms), procpool::TimeoutError);
  CHECK(slow.get(20s) == 400);
}

TEST_CASE_TEMPLATE("Pool.Apply.Callbacks", P, BOTH_POOLS) {
  P pool(2);
  std::atomic<int> got{0};
  std::atomic<int> errors{0};
  auto r = pool.apply_async(procpool::Callbacks<int>{[&](const int& v) { got = v; }, nullptr}, &square, 9);
  (void)r.get();
  for (int i = 0; i < 200 && got == 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK(got == 81);
  auto e = pool.apply_async(procpool::Callbacks<int>{nullptr, [&](const std::exception& ex) {
                              if (std::string(ex.what()).find("five") != std::string::npos) ++errors;
                            }},
                            &fail_on_five, 5);
  e.wait();
  for (int i = 0; i < 200 && errors == 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK(errors == 1);
}

TEST_CASE_TEMPLATE("Pool.Map.ErrorAfterTheRest", P, BOTH_POOLS) {
  P pool(2);
  std::vector<int> in(20);
  std::iota(in.begin(), in.end(), 0);
  auto r = pool.map_async(&fail_on_five, in, 2);
  CHECK_THROWS_AS((void)r.get(), procpool::RemoteError);
  CHECK(pool.map(&square, std::vector<int>{2}) == std::vector<int>{4});
}

TEST_CASE_TEMPLATE("Pool.Lifecycle.CloseJoinRules", P, BOTH_POOLS) {
  P pool(2);
  CHECK_THROWS_AS(pool.join(), procpool::ValueError);
  auto r = pool.apply_async(&slow_identity, 100);
  pool.close();
  CHECK_THROWS_AS((void)pool.apply_async(&square, 1), procpool::ValueError);
  pool.join();
  CHECK(r.get() == 100);  // queued work finishes after close()
}

TEST_CASE_TEMPLATE("Pool.Initializer.OncePerWorker", P, BOTH_POOLS) {
  P pool(procpool::PoolOptions{.processes = 2}, &init_worker, 5);
  const auto values = pool.map(&read_initialised, std::vector<int>(20, 0), 1);
  for (int v : values) CHECK(v == 5);
}

TEST_CASE_TEMPLATE("Pool.MaxTasksPerChild.ReplacesWithoutLoss", P, BOTH_POOLS) {
  P pool(procpool::PoolOptions{.processes = 2, .maxtasksperchild = 3});
  std::vector<int> in(40);
  std::iota(in.begin(), in.end(), 0);
  std::set<int> pids;
  for (int i = 0; i < 12; ++i) pids.insert(pool.apply(&worker_pid));
  const auto out = pool.map(&square, in, 1);
  for (std::size_t i = 0; i < in.size(); ++i) CHECK(out[i] == in[i] * in[i]);
  if constexpr (std::is_same_v<P, procpool::Pool>) CHECK(pids.size() >= 4);  // 12 tasks, 3 per worker
}

TEST_CASE("Pool.WorkerLost.KilledWorkerFailsOnlyItsTask") {
  procpool::Pool pool(2);
  const auto t0 = std::chrono::steady_clock::now();
  auto lost = pool.apply_async(&die_on, 3);
  try {
    (void)lost.get(10s);
    FAIL("the lost task must fail");
  } catch (const procpool::WorkerLostError& e) {
    CHECK(std::string(e.what()).find("signal 9") != std::string::npos);
    CHECK(std::string(e.what()).find("pid") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  // The pool replaced the worker: everything else completes.
  std::vector<int> in(100);
  std::iota(in.begin(), in.end(), 10);
  const auto out = pool.map(&square, in);
  for (std::size_t i = 0; i < in.size(); ++i) CHECK(out[i] == in[i] * in[i]);
  CHECK(pool.worker_pids().size() == 2);
}

TEST_CASE("Pool.WorkerLost.MapThrowsAfterTheRest") {
  procpool::Pool pool(2);
  auto r = pool.map_async(&die_on, std::views::iota(0, 10), 1);
  CHECK_THROWS_AS((void)r.get(20s), procpool::WorkerLostError);
  CHECK(pool.apply(&square, 4) == 16);
}

TEST_CASE("Pool.Terminate.RunningTasksNoZombies") {
  std::vector<int> pids;
  {
    procpool::Pool pool(2);
    auto a = pool.apply_async(&sleep_forever, 0);
    auto b = pool.apply_async(&sleep_forever, 0);
    std::this_thread::sleep_for(100ms);
    pids = pool.worker_pids();
    const auto t0 = std::chrono::steady_clock::now();
    pool.terminate();
    pool.join();
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK_THROWS_AS((void)a.get(1s), procpool::BrokenProcessPool);
  }
  for (int pid : pids) CHECK(::kill(pid, 0) != 0);  // gone, and reaped
  CHECK(testing::zombie_children(::getpid()).empty());
}

TEST_CASE("Pool.StartMethods.SpawnAndForkserver") {
  for (auto method : {procpool::StartMethod::Spawn, procpool::StartMethod::Forkserver}) {
    CAPTURE(procpool::to_string(method));
    procpool::Pool pool(procpool::PoolOptions{.processes = 2, .start_method = method}, &init_worker, 5);
    CHECK(pool.map(&square, std::views::iota(0, 100)).back() == 99 * 99);
    CHECK(pool.apply(&read_initialised, 0) == 5);
    CHECK(pool.apply(&shout, std::string("hi")) == "hi!");
    CHECK(pool.map([](int x) { return x + 1; }, std::vector<int>{1, 2}) == std::vector<int>{2, 3});
  }
}

TEST_CASE("Pool.Apply.MoreThanOnePid") {
  procpool::Pool pool(2);
  std::set<int> pids;
  std::vector<procpool::AsyncResult<int>> results;
  for (int i = 0; i < 20; ++i) results.push_back(pool.apply_async(&slow_identity, 20));
  for (auto& r : results) (void)r.get();
  for (int i = 0; i < 6; ++i) results[static_cast<std::size_t>(i)] = pool.apply_async(&worker_pid);
  for (int i = 0; i < 6; ++i) pids.insert(results[static_cast<std::size_t>(i)].get());
  CHECK(pids.size() >= 1);
  CHECK(pids.count(static_cast<int>(::getpid())) == 0);
}
