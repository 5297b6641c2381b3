// Queue, JoinableQueue and SimpleQueue on both backends: Python semantics, blocking and
// timeouts, maxsize, close, many producers and consumers, large items, cereal types.
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include <procpool/procpool.hpp>

#include "queue_support.hpp"
#include "run_program.hpp"

using namespace std::chrono_literals;
using procpool::BasicJoinableQueue;
using procpool::BasicQueue;
using procpool::BasicSimpleQueue;
using procpool::Processes;
using procpool::Threads;

namespace {

struct Item {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint64_t check;  // a function of (producer, seq): a torn item would not match
};
constexpr std::uint64_t check_of(std::uint32_t producer, std::uint32_t seq) {
  return (std::uint64_t{producer} << 40) ^ (std::uint64_t{seq} * 0x9E3779B97F4A7C15ULL);
}
constexpr std::uint32_t kStop = 0xFFFFFFFFu;

struct Point {
  int x = 0;
  std::string label;
  std::vector<double> values;
  template <class A>
  void serialize(A& ar) { ar(x, label, values); }
  bool operator==(const Point&) const = default;
};

// What a consumer reports to the parent, per producer.
struct Tally {
  std::uint32_t consumer;
  std::uint32_t producer;
  std::uint64_t count;
  std::uint64_t sum;
  std::uint32_t errors;  // out-of-order or torn items seen
};

} // namespace

TEST_CASE_TEMPLATE("Queue.Api.PythonSemantics", B, Processes, Threads) {
  BasicQueue<std::string, B> q(3);
  CHECK(q.maxsize() == 3);
  CHECK(q.empty());
  CHECK_FALSE(q.full());
  q.put("message1");
  q.put("message2");
  q.put("message3");
  CHECK(q.qsize() == 3);
  CHECK(q.full());
  CHECK_THROWS_AS(q.put_nowait("message4"), procpool::Full);
  CHECK_THROWS_AS(q.put("message4", false), procpool::Full);
  CHECK_FALSE(q.try_put("message4"));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(q.put("message4", true, 100ms), procpool::Full);
  CHECK(qtest::ms_since(t0) >= 100ms);
  CHECK(q.get_nowait() == "message1");
  CHECK(q.get() == "message2");
  CHECK(q.get(true, 1s) == "message3");
  CHECK(q.empty());
  CHECK_THROWS_AS(q.get_nowait(), procpool::Empty);
  CHECK_FALSE(q.try_get().has_value());
  const auto t1 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(q.get(true, 100ms), procpool::Empty);
  CHECK(qtest::ms_since(t1) >= 100ms);
  CHECK_THROWS_AS(q.get(true, -1s), procpool::ValueError);
  q.put_nowait("again");
  CHECK(q.try_get() == std::optional<std::string>("again"));
}

TEST_CASE_TEMPLATE("Queue.Api.UnboundedIsLimitedOnlyByBytes", B, Processes, Threads) {
  BasicQueue<std::uint64_t, B> q(0, procpool::QueueOptions{.capacity_bytes = 4096});
  int n = 0;
  while (q.try_put(static_cast<std::uint64_t>(n))) ++n;
  CHECK(n == 4096 / 16);  // 8-byte header + 8-byte item
  CHECK_FALSE(q.full());  // full() is about maxsize, as Python
  try {
    q.put_nowait(1);
    FAIL("expected Full");
  } catch (const procpool::Full& e) {
    CHECK(std::string(e.what()).find("capacity_bytes") != std::string::npos);
  }
  for (int i = 0; i < n; ++i) REQUIRE(q.get_nowait() == static_cast<std::uint64_t>(i));
}

TEST_CASE_TEMPLATE("Queue.Api.CloseIsLocalToTheObject", B, Processes, Threads) {
  BasicQueue<int, B> q;
  q.put(1);
  q.close();
  CHECK_THROWS_AS(q.put(2), procpool::ValueError);
  CHECK_THROWS_AS(q.get(), procpool::ValueError);
  CHECK(q.qsize() == 1);  // the item stays for other processes
}

TEST_CASE_TEMPLATE("Queue.Api.EmptyOnAClosedQueueRaises", B, Processes, Threads) {
  // CPython's Queue.empty() and SimpleQueue.empty() raise once the queue is closed.
  BasicQueue<int, B> q;
  CHECK(q.empty());
  q.close();
  CHECK_THROWS_AS((void)q.empty(), procpool::ValueError);
  BasicSimpleQueue<int, B> s;
  CHECK(s.empty());
  s.close();
  CHECK_THROWS_AS((void)s.empty(), procpool::ValueError);
}

TEST_CASE_TEMPLATE("Queue.Api.HugeTimeoutsWaitInsteadOfExpiring", B, Processes, Threads) {
  // hours::max() and the like saturate to "forever" instead of overflowing into the past.
  BasicJoinableQueue<int, B> q(1);
  q.put(1, true, std::chrono::hours::max());
  CHECK(q.get(true, std::chrono::hours::max()) == 1);
  q.task_done();
  CHECK(q.join(std::chrono::hours::max()));
  CHECK(q.join(std::chrono::duration<double>(1e300)));
}

TEST_CASE_TEMPLATE("Queue.Api.ItemsLargerThanTheRingGoThrough", B, Processes, Threads) {
  // Processes: out of band (queue_large_test.cpp); threads: the string itself is moved.
  BasicQueue<std::string, B> q(0, procpool::QueueOptions{.capacity_bytes = 64 * 1024});
  q.put("small");
  q.put(std::string(100 * 1024, 'x'));
  CHECK(q.qsize() == 2);
  CHECK(q.get() == "small");
  CHECK(q.get() == std::string(100 * 1024, 'x'));
}

TEST_CASE_TEMPLATE("Queue.Blocking.GetWaitsForAPut", B, Processes, Threads) {
  BasicQueue<int, B> q;
  qtest::Workers<B> w;
  w.spawn([&q] {
    std::this_thread::sleep_for(100ms);
    q.put(42);
    return 0;
  });
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(q.get() == 42);
  CHECK(qtest::ms_since(t0) >= 50ms);
  CHECK(qtest::all_zero(w.join()));
}

TEST_CASE_TEMPLATE("Queue.Blocking.PutWaitsForAGet", B, Processes, Threads) {
  BasicQueue<int, B> q(1);
  BasicQueue<int, B> done;
  q.put(1);
  qtest::Workers<B> w;
  w.spawn([&q, &done] {
    q.put(2);  // blocks until the parent takes 1
    done.put(1);
    return 0;
  });
  std::this_thread::sleep_for(100ms);
  CHECK(done.empty());  // still blocked
  CHECK(q.get() == 1);
  CHECK(done.get(true, 10s) == 1);
  CHECK(q.get() == 2);
  CHECK(qtest::all_zero(w.join()));
}

TEST_CASE_TEMPLATE("Queue.Blocking.TimedGetSucceedsWhenAnItemComesInTime", B, Processes, Threads) {
  BasicQueue<int, B> q;
  qtest::Workers<B> w;
  w.spawn([&q] {
    std::this_thread::sleep_for(50ms);
    q.put(7);
    return 0;
  });
  CHECK(q.get(true, 20s) == 7);
  CHECK(qtest::all_zero(w.join()));
}

TEST_CASE_TEMPLATE("Queue.Mpmc.FourProducersFourConsumersNoLossNoDuplicates", B, Processes, Threads) {
  constexpr std::uint32_t kProducers = 4, kConsumers = 4, kPerProducer = 100'000;
  BasicQueue<Item, B> q(0, procpool::QueueOptions{.capacity_bytes = 64 * 1024});  // small: wraps often, fills up
  BasicQueue<Tally, B> tallies;
  qtest::Workers<B> producers, consumers;
  for (std::uint32_t p = 0; p < kProducers; ++p)
    producers.spawn([&q, p] {
      for (std::uint32_t s = 0; s < kPerProducer; ++s) q.put(Item{p, s, check_of(p, s)});
      return 0;
    });
  for (std::uint32_t c = 0; c < kConsumers; ++c)
    consumers.spawn([&q, &tallies, c] {
      std::array<Tally, kProducers> t{};
      std::array<std::int64_t, kProducers> last{};
      last.fill(-1);
      for (;;) {
        const Item it = q.get();
        if (it.producer == kStop) break;
        if (it.producer >= kProducers) return 3;
        Tally& mine = t[it.producer];
        // FIFO per producer: one consumer sees each producer's items in increasing order.
        if (it.check != check_of(it.producer, it.seq) || static_cast<std::int64_t>(it.seq) <= last[it.producer])
          ++mine.errors;
        last[it.producer] = it.seq;
        ++mine.count;
        mine.sum += it.seq;
      }
      for (std::uint32_t p = 0; p < kProducers; ++p) {
        t[p].consumer = c;
        t[p].producer = p;
        tallies.put(t[p]);
      }
      return 0;
    });
  CHECK(qtest::all_zero(producers.join()));
  std::array<std::uint64_t, kProducers> count{}, sum{};
  std::uint32_t errors = 0;
  // Every item is in before the stop items, so each consumer stops after the last real one.
  for (std::uint32_t c = 0; c < kConsumers; ++c) q.put(Item{kStop, 0, 0});
  CHECK(qtest::all_zero(consumers.join()));
  for (std::uint32_t i = 0; i < kProducers * kConsumers; ++i) {
    const Tally t = tallies.get(true, 10s);
    count[t.producer] += t.count;
    sum[t.producer] += t.sum;
    errors += t.errors;
  }
  CHECK(errors == 0);
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    CAPTURE(p);
    CHECK(count[p] == kPerProducer);
    CHECK(sum[p] == std::uint64_t{kPerProducer} * (kPerProducer - 1) / 2);
  }
  CHECK(q.empty());
}

TEST_CASE_TEMPLATE("Queue.Items.OneMebibyteStrings", B, Processes, Threads) {
  constexpr int kItems = 24;
  constexpr std::size_t kSize = std::size_t{1} << 20;
  BasicQueue<std::string, B> q;  // default ring (4 MiB): a few items in flight at once
  qtest::Workers<B> w;
  w.spawn([&q] {
    for (int i = 0; i < kItems; ++i) {
      std::string s(kSize, static_cast<char>('a' + i % 26));
      s.front() = s.back() = static_cast<char>('0' + i % 10);
      q.put(s);
    }
    return 0;
  });
  for (int i = 0; i < kItems; ++i) {
    const std::string s = q.get(true, 30s);
    REQUIRE(s.size() == kSize);
    CHECK(s.front() == static_cast<char>('0' + i % 10));
    CHECK(s.back() == static_cast<char>('0' + i % 10));
    CHECK(s.find_first_not_of(static_cast<char>('a' + i % 26), 1) == kSize - 1);
  }
  CHECK(qtest::all_zero(w.join()));
}

TEST_CASE_TEMPLATE("Queue.Items.CerealAndStandardTypes", B, Processes, Threads) {
  using Tuple = std::tuple<int, std::optional<int>, std::string>;
  BasicQueue<Point, B> points;
  BasicQueue<std::map<std::string, std::vector<int>>, B> maps;
  BasicQueue<Tuple, B> tuples;
  qtest::Workers<B> w;
  w.spawn([&] {
    points.put(Point{3, "three", {1.5, 2.5}});
    maps.put({{"a", {1, 2}}, {"b", {}}});
    tuples.put(Tuple{42, std::nullopt, "hello"});
    return 0;
  });
  CHECK(points.get(true, 10s) == Point{3, "three", {1.5, 2.5}});
  CHECK(maps.get(true, 10s) == std::map<std::string, std::vector<int>>{{"a", {1, 2}}, {"b", {}}});
  CHECK(tuples.get(true, 10s) == Tuple{42, std::nullopt, "hello"});
  CHECK(qtest::all_zero(w.join()));
}

TEST_CASE_TEMPLATE("Queue.Joinable.JoinWaitsForTaskDone", B, Processes, Threads) {
  BasicJoinableQueue<int, B> q;
  BasicQueue<int, B> results;
  constexpr int kTasks = 200;
  qtest::Workers<B> w;
  for (int k = 0; k < 2; ++k)
    w.spawn([&q, &results] {
      for (;;) {
        const int v = q.get();
        if (v < 0) {
          q.task_done();
          return 0;
        }
        results.put(v * 2);
        q.task_done();
      }
    });
  for (int i = 0; i < kTasks; ++i) q.put(i);
  q.join();
  // Every task is done, so every result is in.
  CHECK(results.qsize() == kTasks);
  long sum = 0;
  while (auto r = results.try_get()) sum += *r;
  CHECK(sum == 2L * kTasks * (kTasks - 1) / 2);
  q.put(-1);
  q.put(-1);
  CHECK(q.join(20s));
  CHECK(qtest::all_zero(w.join()));
  CHECK_THROWS_AS(q.task_done(), procpool::ValueError);  // more task_done() than puts
}

TEST_CASE_TEMPLATE("Queue.Joinable.FailedPutIsNotCounted", B, Processes, Threads) {
  BasicJoinableQueue<int, B> q(1);
  q.put(1);
  CHECK_THROWS_AS(q.put_nowait(2), procpool::Full);
  CHECK_FALSE(q.join(20ms));
  CHECK(q.get() == 1);
  q.task_done();
  CHECK(q.join(1s));  // the refused put left no task behind
}

TEST_CASE_TEMPLATE("Queue.Simple.PutGetEmptyClose", B, Processes, Threads) {
  BasicSimpleQueue<std::string, B> q;
  CHECK(q.empty());
  qtest::Workers<B> w;
  w.spawn([&q] {
    q.put("one");
    q.put("two");
    return 0;
  });
  CHECK(q.get() == "one");
  CHECK(q.get() == "two");
  CHECK(q.empty());
  CHECK(qtest::all_zero(w.join()));
  q.close();
  // The queue core names the class its errors come from.
  CHECK_THROWS_WITH_AS(q.put("three"),
                       "procpool: SimpleQueue.put after close(): this queue object is closed", procpool::ValueError);
  CHECK_THROWS_WITH_AS((void)q.get(), "procpool: SimpleQueue.get after close(): this queue object is closed",
                       procpool::ValueError);
  BasicQueue<int, B> plain;
  plain.close();
  CHECK_THROWS_WITH_AS(plain.put(1), "procpool: Queue.put after close(): this queue object is closed",
                       procpool::ValueError);
}

namespace {
// The one-word backend swap: a worker written once over a bundle (procpool/backend.hpp).
template <class mp>
void bundle_worker(typename mp::Lock& lock, typename mp::template Value<int>& counter,
                   typename mp::template JoinableQueue<int>& tasks, typename mp::template SimpleQueue<int>& done,
                   typename mp::template Connection<int>& end) {
  for (int i = 0; i < 100; ++i) {
    std::lock_guard g(lock);
    counter.get_obj() += 1;  // unlocked access, guarded by `lock`
  }
  tasks.put(1);
  done.put(7);
  end.send(end.recv() * 2);
}
} // namespace

// Whether the namespace names are the bundles' and only process objects travel as handles.
static_assert(std::is_same_v<procpool::Lock, Processes::Lock>);
static_assert(std::is_same_v<procpool::dummy::Queue<int>, Threads::Queue<int>>);
static_assert(std::is_same_v<procpool::threading::Condition, Threads::Condition>);
static_assert(std::is_same_v<procpool::dummy::Pool, Threads::Pool>);
static_assert(std::is_same_v<Threads::Process, procpool::threading::Thread>);
static_assert(procpool::detail::SharedHandleType<procpool::SimpleQueue<int>>);
static_assert(procpool::detail::SharedHandleType<procpool::Connection<int>>);
static_assert(!procpool::detail::SharedHandleType<procpool::dummy::Lock>);
static_assert(!procpool::detail::SharedHandleType<procpool::dummy::JoinableQueue<int>>);

TEST_CASE_TEMPLATE("Queue.Backend.OneTemplateOverBothBundles", B, Processes, Threads) {
  typename B::Lock lock;
  typename B::template Value<int> counter(0);
  typename B::template JoinableQueue<int> tasks;
  typename B::template SimpleQueue<int> done;
  auto [mine, theirs] = B::template Pipe<int>();
  std::vector<std::unique_ptr<typename B::Process>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(std::make_unique<typename B::Process>(&bundle_worker<B>, std::ref(lock), std::ref(counter),
                                                            std::ref(tasks), std::ref(done), std::ref(theirs)));
    workers.back()->start();
  }
  mine.send(10);
  mine.send(20);
  REQUIRE(mine.poll(30s));
  const int a = mine.recv();
  REQUIRE(mine.poll(30s));
  const int b = mine.recv();
  CHECK(a + b == 60);
  for (int i = 0; i < 2; ++i) {
    CHECK(tasks.get(true, 30s) == 1);
    tasks.task_done();
    CHECK(done.get() == 7);
  }
  CHECK(tasks.join(5s));
  for (auto& w : workers) {
    w->join();
    if constexpr (B::interprocess) CHECK(w->exitcode() == 0);
  }
  CHECK(counter.value() == 200);
}

TEST_CASE("Queue.Api.NoShmLeftovers") { CHECK(testing::procpool_shm_entries().empty()); }
