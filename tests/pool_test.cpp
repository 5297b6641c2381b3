#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <numeric>
#include <optional>
#include <ranges>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <procpool/detail/shm.hpp>
#include <procpool/procpool.hpp>

#include "run_program.hpp"
#include "sanitizers.hpp"
#include "start_methods.hpp"

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

// Ways for a worker to die mid-task, selected by the argument.
int die_by(int how) {
  switch (how) {
    case 0: ::kill(::getpid(), SIGKILL); break;
    case 1: std::abort();
    case 2: ::_exit(3);
    case 3: {
      volatile int* volatile nowhere = nullptr;
      *nowhere = 1;  // a real segfault (a sanitizer build may report it and abort instead)
      break;
    }
    default: break;
  }
  return how;
}

// A result twice the size of its argument: doubled values, then as many ones.
std::vector<double> doubled(std::vector<double> v) {
  const std::size_t n = v.size();
  for (double& x : v) x *= 2;
  v.resize(2 * n, 1.0);
  return v;
}
std::size_t die_with(std::vector<double> v) {
  ::kill(::getpid(), SIGKILL);
  return v.size();
}

/// This process's open descriptors and its mappings of pool items.
std::size_t open_fds() {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                                std::filesystem::directory_iterator()));
}
bool maps_pool_items() {
  const std::string text = testing::read_text_file("/proc/self/maps");
  return text.find("procpool-pool-item") != std::string::npos || text.find("procpool-pool-result") != std::string::npos;
}
/// How many mappings of this process, or descriptors of process `pid`, name `what`.
std::size_t mappings_of(const std::string& what) {
  std::istringstream in(testing::read_text_file("/proc/self/maps"));
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(what) != std::string::npos ? 1 : 0;
  return n;
}
std::size_t descriptors_of(int pid, const std::string& what) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    n += std::filesystem::read_symlink(entry.path(), link_ec).string().find(what) != std::string::npos ? 1 : 0;
  }
  return n;
}

void check_doubled(const std::vector<double>& in, const std::vector<double>& out) {
  REQUIRE(out.size() == 2 * in.size());
  bool all = true;
  for (std::size_t i = 0; i < in.size(); ++i) all = all && out[i] == 2 * in[i] && out[in.size() + i] == 1.0;
  CHECK(all);
}

int fail_at_ends(int x) {
  if (x == 3 || x == 98) throw std::invalid_argument("item " + std::to_string(x));
  return x;
}

// How many worker threads are inside tracked_slow right now (thread backend only).
std::atomic<int> g_inside_tracked{0};
int tracked_slow(int x) {
  g_inside_tracked.fetch_add(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  g_inside_tracked.fetch_sub(1);
  return x;
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

TEST_CASE_TEMPLATE("Pool.Map.ChunksLargerThanTheRingAreCut", P, BOTH_POOLS) {
  // A 64 KiB ring takes chunks of at most 16 KiB: Python's default chunksize (and an explicit
  // one) asks for more, and the pool cuts them smaller instead of refusing.
  P pool(procpool::PoolOptions{.processes = 2, .ring_bytes = 64 * 1024});
  std::vector<int> in(40000);
  std::iota(in.begin(), in.end(), 0);
  const auto out = pool.map(&square, in);  // default chunksize: 5000 ints = 20 KB
  REQUIRE(out.size() == in.size());
  bool all = true;
  for (std::size_t i = 0; i < in.size(); ++i) all = all && out[i] == in[i] * in[i];
  CHECK(all);
  long long sum = 0;
  for (int r : pool.imap_unordered(&square, std::views::iota(0, 30000), 30000)) sum += r;
  CHECK(sum == 8999550005000LL);
  const std::vector<std::string> words(200, std::string(1000, 'w'));  // 200 KB encoded
  const auto shouted = pool.map(&shout, words, 100);
  REQUIRE(shouted.size() == words.size());
  CHECK(shouted.front() == words.front() + "!");
  CHECK(shouted.back() == words.back() + "!");
  // One item bigger than the ring cannot be cut: it travels out of band (process backend), or
  // is read where it is (thread backend).
  const std::vector<std::string> huge{std::string(100 * 1024, 'x')};
  const auto loud = pool.map(&shout, huge);
  REQUIRE(loud.size() == 1);
  CHECK(loud[0].size() == huge[0].size() + 1);
  CHECK(pool.apply(&shout, huge[0]) == loud[0]);
  CHECK(pool.apply(&square, 3) == 9);
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

TEST_CASE_TEMPLATE("Pool.Imap.OrderHoldsWhenLaterChunksFinishFirst", P, BOTH_POOLS) {
  P pool(2);
  // The first item sleeps longest: with two workers, the later ones finish before it.
  const std::vector<int> delays{300, 1, 2, 3, 4, 5, 6, 7};
  std::vector<int> ordered;
  for (int r : pool.imap(&slow_identity, delays)) ordered.push_back(r);
  CHECK(ordered == delays);
  std::vector<int> completion;
  for (int r : pool.imap_unordered(&slow_identity, delays)) completion.push_back(r);
  REQUIRE(completion.size() == delays.size());
  CHECK(completion.back() == 300);  // the slow one comes back last, not first
  CHECK(std::multiset<int>(completion.begin(), completion.end()) == std::multiset<int>(delays.begin(), delays.end()));
}

TEST_CASE_TEMPLATE("Pool.Imap.ErrorMidStreamThenContinues", P, BOTH_POOLS) {
  P pool(2);
  auto ordered = pool.imap(&fail_on_five, std::views::iota(0, 10));
  for (int i = 0; i < 5; ++i) CHECK(ordered.next() == std::optional<int>(i));
  try {
    (void)ordered.next();
    FAIL("imap should have thrown the task's error at item 5");
  } catch (const procpool::RemoteError& e) {
    CHECK(e.message() == "five is not allowed");
  }
  for (int i = 6; i < 10; ++i) CHECK(ordered.next() == std::optional<int>(i));
  CHECK_FALSE(ordered.next().has_value());

  auto unordered = pool.imap_unordered(&fail_on_five, std::views::iota(0, 10));
  std::multiset<int> seen;
  int errors = 0;
  for (;;) {
    try {
      const auto r = unordered.next();
      if (!r) break;
      seen.insert(*r);
    } catch (const procpool::RemoteError&) {
      ++errors;
    }
  }
  CHECK(errors == 1);
  CHECK(seen == std::multiset<int>{0, 1, 2, 3, 4, 6, 7, 8, 9});
}

TEST_CASE_TEMPLATE("Pool.Imap.NextTimeout", P, BOTH_POOLS) {
  P pool(1);
  auto results = pool.imap(&slow_identity, std::vector<int>{300});
  CHECK_THROWS_AS((void)results.next(20ms), procpool::TimeoutError);
  CHECK(results.next(10s) == std::optional<int>(300));
  CHECK_FALSE(results.next(10s).has_value());
}

TEST_CASE_TEMPLATE("Pool.Imap.ManyMoreItemsThanLookahead", P, BOTH_POOLS) {
  P pool(2);
  // 20000 single-item chunks: the look-ahead (256) is refilled many times, in batches.
  long long sum = 0;
  std::size_t count = 0;
  for (int r : pool.imap_unordered(&square, std::views::iota(0, 20000))) {
    sum += r;
    ++count;
  }
  CHECK(count == 20000);
  CHECK(sum == 2666466670000LL);
  std::vector<int> ordered;
  for (int r : pool.imap(&square, std::views::iota(0, 20000), 7)) ordered.push_back(r);
  REQUIRE(ordered.size() == 20000);
  bool in_order = true;
  for (int i = 0; i < 20000; ++i) in_order = in_order && ordered[static_cast<std::size_t>(i)] == i * i;
  CHECK(in_order);
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

// A waiter handles the pool's results while it waits; another thread's get() on a quick task must
// not wait for that waiter's slow task (it is completed by the waiter, or by the handler thread).
TEST_CASE_TEMPLATE("Pool.Apply.QuickResultWhileAnotherThreadWaitsOnASlowOne", P, BOTH_POOLS) {
  P pool(2);
  std::atomic<int> slow{0};
  std::thread waiter([&] { slow = pool.apply_async(&slow_identity, 3000).get(); });
  std::this_thread::sleep_for(100ms);  // the waiter is handling results by now
  for (int i = 0; i < 20; ++i) CHECK(pool.apply_async(&square, i).get(2s) == i * i);
  std::vector<procpool::AsyncResult<int>> quick;
  for (int i = 0; i < 50; ++i) quick.push_back(pool.apply_async(&square, i));
  for (int i = 0; i < 50; ++i) CHECK(quick[static_cast<std::size_t>(i)].get(2s) == i * i);
  CHECK(slow.load() == 0);  // still running: the quick ones did not wait for it
  waiter.join();
  CHECK(slow.load() == 3000);
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

TEST_CASE("Pool.WorkerLost.EveryWayToDie") {
  procpool::Pool pool(2);
  struct Case {
    int how;
    const char* expected;  // in the error's message
  };
  for (const Case c : {Case{0, "killed by signal 9 (SIGKILL)"}, Case{1, "killed by signal 6 (SIGABRT)"},
                       Case{2, "exited with code 3"}, Case{3, ""}}) {
    CAPTURE(c.how);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      (void)pool.apply_async(&die_by, c.how).get(20s);
      FAIL("the task of a dying worker must fail");
    } catch (const procpool::WorkerLostError& e) {
      const std::string what = e.what();
      CAPTURE(what);
      CHECK(what.find(c.expected) != std::string::npos);
      CHECK(what.find("(pid ") != std::string::npos);
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // promise: within a second; slack for sanitizers
    CHECK(pool.apply(&square, 7) == 49);                 // replaced: the pool goes on
  }
  CHECK(pool.worker_pids().size() == 2);
}

namespace {
// Starts a pool, reports its workers' pids through `fd`, then waits for a task that never ends.
void pool_owner(int fd) {
  procpool::Pool pool(procpool::PoolOptions{.processes = 2, .start_method = procpool::StartMethod::Fork});
  const auto pids = pool.worker_pids();
  for (int pid : pids) (void)::write(fd, &pid, sizeof pid);
  (void)pool.apply(&sleep_forever, 0);
}
} // namespace

TEST_CASE("Pool.ParentDeath.WorkersExitWithinASecond" * doctest::skip(testing::kThreadSanitizer)) {
  // Orphaned workers are re-parented to us, so we can see them die and reap them.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  procpool::Process owner(procpool::ProcessOptions{.start_method = procpool::StartMethod::Fork}, &pool_owner, fds[1]);
  owner.start();
  ::close(fds[1]);  // an owner that dies before reporting gives end-of-file, not a hang
  int workers[2] = {0, 0};
  std::size_t got = 0;  // the owner writes one pid at a time
  while (got < sizeof workers) {
    const ssize_t n = ::read(fds[0], reinterpret_cast<char*>(workers) + got, sizeof workers - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  REQUIRE(got == sizeof workers);
  ::close(fds[0]);
  for (int pid : workers) REQUIRE(::kill(pid, 0) == 0);
  owner.kill();  // SIGKILL: no destructor, no terminate()
  CHECK(owner.join(5s));
  const auto t0 = std::chrono::steady_clock::now();
  auto all_gone = [&] {
    const auto zombies = testing::zombie_children(::getpid());
    for (int pid : workers)
      if (::kill(pid, 0) == 0 && std::find(zombies.begin(), zombies.end(), pid) == zombies.end()) return false;
    return true;
  };
  while (!all_gone() && std::chrono::steady_clock::now() - t0 < 5s) std::this_thread::sleep_for(10ms);
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(all_gone());
  MESSAGE("workers gone after " << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count() << " ms");
  CHECK(waited < 1500ms);  // promise: within a second (slack for a loaded machine)
  for (int pid : workers) (void)::waitpid(pid, nullptr, 0);  // reap the re-parented workers
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  CHECK(testing::zombie_children(::getpid()).empty());
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

TEST_CASE("Pool.Terminate.ThreadMapReturnsOnlyOnceNoWorkerReadsItsItems") {
  // The thread backend's map() reads the caller's items in place; terminate() fails its chunks
  // while worker threads still run two of them. map() must throw only once they are done, or
  // the caller could free the items under them.
  procpool::dummy::Pool pool(2);
  std::vector<int> in(100, 1);
  std::thread stopper([&] {
    std::this_thread::sleep_for(60ms);
    pool.terminate();
  });
  CHECK_THROWS_AS((void)pool.map(&tracked_slow, in, 1), procpool::BrokenProcessPool);
  CHECK(g_inside_tracked.load() == 0);
  stopper.join();
  pool.join();
  CHECK(g_inside_tracked.load() == 0);
}

TEST_CASE_TEMPLATE("Pool.Map.FirstFailedChunkWinsWhoeverRanIt", P, BOTH_POOLS) {
  // On the thread backend map()'s caller runs chunks from the end while the workers start at
  // the front: the error reported is still the first failed chunk's, in input order.
  P pool(2);
  std::vector<int> in(100);
  std::iota(in.begin(), in.end(), 0);
  for (int round = 0; round < 20; ++round) {
    try {
      (void)pool.map(&fail_at_ends, in, 10);
      FAIL("map should have thrown");
    } catch (const procpool::RemoteError& e) {  // whoever ran it: the same error type
      CHECK(e.message() == "item 3");
      CHECK(e.type_name() == "std::invalid_argument");
    }
  }
  CHECK(pool.map(&square, in, 7).back() == 99 * 99);
}

TEST_CASE_TEMPLATE("Pool.MapAsync.ItemsMayGoAwayAtOnce", P, BOTH_POOLS) {
  // map_async returns before the chunks run: the pool keeps what it needs of the items.
  P pool(2);
  auto result = [&] {
    std::vector<std::string> words(1000, std::string(50, 'w'));
    std::vector<int> numbers(40000);  // squares fit an int
    std::iota(numbers.begin(), numbers.end(), 0);
    auto squares = pool.map_async(&square, numbers, 1000);
    auto shouts = pool.map_async(&shout, words, 10);
    return std::make_pair(std::move(squares), std::move(shouts));
  }();
  const auto squares = result.first.get(20s);
  REQUIRE(squares.size() == 40000);
  bool all = true;
  for (int i = 0; i < 40000; ++i) all = all && squares[static_cast<std::size_t>(i)] == i * i;
  CHECK(all);
  const auto shouts = result.second.get(20s);
  REQUIRE(shouts.size() == 1000);
  CHECK(std::all_of(shouts.begin(), shouts.end(), [](const std::string& s) { return s == std::string(50, 'w') + "!"; }));
}

TEST_CASE_TEMPLATE("Pool.BigItems.ArgumentsAndResultsOfAnySize", P, BOTH_POOLS) {
  // Past a quarter of the 8 MiB rings, arguments and results travel out of band.
  P pool(2);
  std::vector<double> big(std::size_t{20} << 17);  // 20 MiB
  std::iota(big.begin(), big.end(), 0.5);
  check_doubled(big, pool.apply_async(&doubled, big).get(60s));
  std::vector<std::vector<double>> items(5, std::vector<double>(std::size_t{3} << 17, 1.5));  // 3 MiB each
  items[2][7] = 9;
  const auto outs = pool.map(&doubled, items, 1);
  REQUIRE(outs.size() == items.size());
  for (std::size_t i = 0; i < items.size(); ++i) check_doubled(items[i], outs[i]);
  std::size_t total = 0;
  for (const auto& out : pool.imap_unordered(&doubled, items)) total += out.size();
  CHECK(total == 2 * 5 * (std::size_t{3} << 17));
  // Small rings: the threshold follows the ring size.
  P small(procpool::PoolOptions{.processes = 2, .ring_bytes = 64 * 1024});
  const std::vector<double> mid(40000, 2.0);  // 320 KB: five rings
  check_doubled(mid, small.apply(&doubled, mid));
}

TEST_CASE_TEMPLATE("Pool.BigItems.NothingLeftBehind", M, ALL_START_METHODS) {
  {  // the forkserver, once started, keeps its socket: count from there
    procpool::Pool warm_up(procpool::PoolOptions{.processes = 1, .start_method = M::method});
    CHECK(warm_up.apply(&square, 3) == 9);
  }
  const std::size_t fds_before = open_fds();
  {
    procpool::Pool pool(procpool::PoolOptions{.processes = 2, .start_method = M::method});
    const std::vector<double> big(std::size_t{4} << 17, 3.0);  // 4 MiB
    for (int i = 0; i < 6; ++i) check_doubled(big, pool.apply(&doubled, big));
    // Results are unmapped once decoded; the last argument's segment stays mapped as a spare
    // for the next large argument (one, since each was the same size).
    CHECK(mappings_of("procpool-pool-result") == 0);
    CHECK(mappings_of("procpool-pool-item") <= 1);
    // A worker that dies holding a big argument: its task fails, the segment goes with it.
    CHECK_THROWS_AS((void)pool.apply_async(&die_with, big).get(60s), procpool::WorkerLostError);
    CHECK(mappings_of("procpool-pool-result") == 0);
    CHECK(mappings_of("procpool-pool-item") == 0);  // the dead worker's argument is freed, not kept
    check_doubled(big, pool.apply(&doubled, big));
  }
  CHECK(open_fds() == fds_before);
  CHECK(!maps_pool_items());
}

TEST_CASE("Pool.BigItems.SegmentsAreReusedResizedAndFreed") {
  // Sizes that grow and shrink: a spare segment is resized to each item, and every byte read is
  // the item's own (a stale tail or a short copy would not double back to it).
  const int worker = [] {
    procpool::Pool pool(1);
    for (const std::size_t mib : {16, 2, 24, 24, 4, 16, 1}) {
      CAPTURE(mib);
      std::vector<double> v(mib << 17);
      std::iota(v.begin(), v.end(), static_cast<double>(mib));
      check_doubled(v, pool.apply_async(&doubled, v).get(60s));
    }
    CHECK(mappings_of("procpool-pool-result") == 0);
    CHECK(mappings_of("procpool-pool-item") <= procpool::detail::SpareSegments::kMaxSpares);
    const int pid = pool.worker_pids().at(0);
    // An idle worker frees its spare result segments after a second.
    CHECK(descriptors_of(pid, "procpool-pool-result") >= 1);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (descriptors_of(pid, "procpool-pool-result") != 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    CHECK(descriptors_of(pid, "procpool-pool-result") == 0);
    check_doubled(std::vector<double>(3 << 17, 1.0), pool.apply(&doubled, std::vector<double>(3 << 17, 1.0)));
    return pid;
  }();
  CHECK(worker > 0);
  CHECK(!maps_pool_items());  // the pool's spares go with it
}

namespace {
std::unique_ptr<std::vector<double>> take_and_double(std::unique_ptr<std::vector<double>> v) {
  if (!v) throw std::invalid_argument("no vector");
  for (auto& x : *v) x *= 2;
  return v;
}
std::uintptr_t address_of_elements(std::vector<double> v) { return reinterpret_cast<std::uintptr_t>(v.data()); }
} // namespace

TEST_CASE("Pool.Dummy.ApplyMovesValuesWithoutCopying") {
  // As multiprocessing.dummy passes references: move-only arguments and results, and a moved
  // vector reaches the task with the caller's own buffer (no copy, no codec).
  procpool::dummy::Pool pool(2);
  auto v = std::make_unique<std::vector<double>>(std::size_t{1} << 20, 1.5);
  const double* elements = v->data();
  auto back = pool.apply_async(&take_and_double, std::move(v)).get();
  REQUIRE(back != nullptr);
  CHECK(back->data() == elements);
  CHECK(back->at(12345) == 3.0);
  std::vector<double> big(std::size_t{4} << 20, 2.0);  // 32 MiB
  const auto address = reinterpret_cast<std::uintptr_t>(big.data());
  CHECK(pool.apply(&address_of_elements, std::move(big)) == address);
  // A copied argument is the task's own: the caller's stays as it was.
  std::vector<double> kept(10, 1.0);
  CHECK(pool.apply(&doubled, kept).size() == 20);
  CHECK(kept == std::vector<double>(10, 1.0));
  // A task's exception is a RemoteError, as before.
  CHECK_THROWS_AS((void)pool.apply_async(&take_and_double, std::unique_ptr<std::vector<double>>{}).get(), procpool::RemoteError);
}

TEST_CASE_TEMPLATE("Pool.Apply.GetOnATemporaryMovesOnlyAnUnsharedResult", P, BOTH_POOLS) {
  P pool(1);
  const std::vector<double> big(std::size_t{1} << 20, 1.5);
  auto result = pool.apply_async(&doubled, big);
  const auto shared = result;
  check_doubled(big, std::move(result).get(60s));  // shared with `shared`: copied out
  check_doubled(big, shared.get());
  check_doubled(big, pool.apply_async(&doubled, big).get());  // nobody else holds it: moved out
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
