// Process-backend specifics: queues passed to fork/spawn/forkserver children, and producers or
// consumers SIGKILLed mid-stream (the queue stays usable; only whole items are ever seen).
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <memory>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <procpool/procpool.hpp>

#include "queue_support.hpp"
#include "run_program.hpp"

using namespace std::chrono_literals;
using procpool::Process;
using procpool::ProcessOptions;
using procpool::StartMethod;

namespace {

ProcessOptions with(StartMethod m) { return ProcessOptions{.name = {}, .daemon = std::nullopt, .start_method = m}; }

// Spawn targets must be plain functions.
void sum_until_negative(procpool::Queue<int>& in, procpool::JoinableQueue<std::string>& out) {
  long sum = 0;
  for (int v = in.get(); v >= 0; v = in.get()) sum += v;
  out.put("sum=" + std::to_string(sum));
}
void echo_simple(procpool::SimpleQueue<std::string>& in, procpool::SimpleQueue<std::string>& out) {
  out.put(in.get() + " back");
}

// An item that proves it is whole: "<stream>:<seq>:" followed by a fill derived from both.
std::string make_item(std::uint32_t stream, std::uint32_t seq) {
  std::string s = std::to_string(stream) + ":" + std::to_string(seq) + ":";
  const std::size_t len = 1000 + (seq * 7919u) % 30000u;
  const char fill = static_cast<char>('A' + (stream * 31 + seq) % 26);
  s.resize(len, fill);
  return s;
}
struct Parsed {
  std::uint32_t stream = 0;
  std::uint32_t seq = 0;
  bool whole = false;
};
Parsed parse_item(const std::string& s) {
  Parsed p;
  const auto a = s.find(':');
  const auto b = s.find(':', a + 1);
  if (a == std::string::npos || b == std::string::npos) return p;
  p.stream = static_cast<std::uint32_t>(std::stoul(s.substr(0, a)));
  p.seq = static_cast<std::uint32_t>(std::stoul(s.substr(a + 1, b - a - 1)));
  p.whole = s == make_item(p.stream, p.seq);
  return p;
}

[[noreturn]] void produce_forever(procpool::Queue<std::string>& q, std::uint32_t stream) {
  for (std::uint32_t seq = 0;; ++seq) q.put(make_item(stream, seq));
}

} // namespace

TEST_CASE("Queue.Spawn.ChildrenGetQueuesAsArguments") {
  for (const StartMethod m : {StartMethod::Fork, StartMethod::Spawn, StartMethod::Forkserver}) {
    CAPTURE(static_cast<int>(m));
    procpool::Queue<int> in;
    procpool::JoinableQueue<std::string> out;
    Process p(with(m), &sum_until_negative, in, std::ref(out));
    p.start();
    for (int i = 1; i <= 100; ++i) in.put(i);
    in.put(-1);
    CHECK(out.get(true, 30s) == "sum=5050");
    out.task_done();
    CHECK(out.join(5s));
    p.join();
    CHECK(p.exitcode() == 0);

    procpool::SimpleQueue<std::string> a, b;
    Process e(with(m), &echo_simple, a, b);
    e.start();
    a.put("ping");
    CHECK(b.get() == "ping back");
    e.join();
    CHECK(e.exitcode() == 0);
  }
}

TEST_CASE("Queue.Crash.ProducerKilledMidStreamLeavesOnlyWholeItems") {
  procpool::Queue<std::string> q(0, procpool::QueueOptions{.capacity_bytes = 256 * 1024});
  std::mt19937 rng(12345);
  std::uint64_t received = 0;
  for (std::uint32_t round = 0; round < 40; ++round) {
    CAPTURE(round);
    Process p(with(StartMethod::Fork), [&q, round] { produce_forever(q, round); });
    p.start();
    // Consume while the producer writes, then kill it at a random moment (often mid-copy:
    // items are up to 31 KB and the producer copies under the lock).
    std::atomic<bool> stop{false};
    std::vector<std::string> got;
    std::thread consumer([&] {
      while (!stop.load()) {
        if (auto s = q.try_get()) got.push_back(std::move(*s));
      }
    });
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 20000));
    p.kill();
    p.join();
    stop.store(true);
    consumer.join();
    CHECK(p.exitcode() == -SIGKILL);
    // Drain: whatever was published is whole; nothing after it.
    while (auto s = q.try_get()) got.push_back(std::move(*s));
    std::uint32_t expect = 0;
    for (const std::string& s : got) {
      const Parsed it = parse_item(s);
      REQUIRE(it.whole);
      REQUIRE(it.stream == round);
      REQUIRE(it.seq == expect);  // FIFO, no gap, no duplicate
      ++expect;
    }
    received += got.size();
  }
  CHECK(received > 40);
  // Still usable, by producers and consumers alike.
  q.put("after");
  CHECK(q.get(true, 10s) == "after");
  CHECK(q.empty());
}

namespace {
// A large trivially copyable item: copied into the ring by one memcpy under the producer lock,
// so a random kill often lands mid-copy.
struct Big {
  std::uint32_t stream;
  std::uint32_t seq;
  std::array<std::uint64_t, 8191> words;
};
void fill_big(Big& b, std::uint32_t stream, std::uint32_t seq) {
  b.stream = stream;
  b.seq = seq;
  for (std::size_t i = 0; i < b.words.size(); ++i) b.words[i] = (std::uint64_t{seq} << 32) ^ (i * 0x9E3779B97F4A7C15ULL);
}
bool big_whole(const Big& b) {
  for (std::size_t i = 0; i < b.words.size(); ++i)
    if (b.words[i] != ((std::uint64_t{b.seq} << 32) ^ (i * 0x9E3779B97F4A7C15ULL))) return false;
  return true;
}
} // namespace

TEST_CASE("Queue.Crash.ProducerKilledMidCopyOfLargeItems") {
  procpool::Queue<Big> q(0, procpool::QueueOptions{.capacity_bytes = 1 << 20});
  std::mt19937 rng(777);
  auto item = std::make_unique<Big>();
  for (std::uint32_t round = 0; round < 30; ++round) {
    CAPTURE(round);
    Process p(with(StartMethod::Fork), [&q, round] {
      auto b = std::make_unique<Big>();
      for (std::uint32_t seq = 0;; ++seq) {
        fill_big(*b, round, seq);
        q.put(*b);
      }
    });
    p.start();
    std::atomic<bool> stop{false};
    std::uint32_t expect = 0;
    bool ok = true;
    const auto check = [&](const Big& b) { ok = ok && b.stream == round && b.seq == expect++ && big_whole(b); };
    std::thread consumer([&] {
      while (!stop.load()) {
        if (auto b = q.try_get()) check(*b);
      }
    });
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 10000));
    p.kill();
    p.join();
    stop.store(true);
    consumer.join();
    while (auto b = q.try_get()) check(*b);
    REQUIRE(ok);
  }
  fill_big(*item, 99, 0);
  q.put(*item);
  const Big back = q.get(true, 10s);
  CHECK((back.stream == 99 && back.seq == 0 && big_whole(back)));
}

TEST_CASE("Queue.Crash.SurvivingProducerIsUnaffected") {
  procpool::Queue<std::string> q(0, procpool::QueueOptions{.capacity_bytes = 128 * 1024});
  constexpr std::uint32_t kItems = 3000;
  Process victim(with(StartMethod::Fork), [&q] { produce_forever(q, 1); });
  Process survivor(with(StartMethod::Fork), [&q] {
    for (std::uint32_t seq = 0; seq < kItems; ++seq) q.put(make_item(2, seq));
    ::_exit(0);
  });
  victim.start();
  survivor.start();
  std::uint32_t next_victim = 0, next_survivor = 0;
  bool killed = false;
  while (next_survivor < kItems) {
    const std::string s = q.get(true, 30s);
    const Parsed it = parse_item(s);
    REQUIRE(it.whole);
    if (it.stream == 1) {
      REQUIRE(it.seq == next_victim);
      ++next_victim;
    } else {
      REQUIRE(it.stream == 2);
      REQUIRE(it.seq == next_survivor);
      ++next_survivor;
    }
    if (!killed && next_survivor == kItems / 3) {
      victim.kill();
      killed = true;
    }
  }
  victim.join();
  survivor.join();
  CHECK(survivor.exitcode() == 0);
  while (auto s = q.try_get()) {
    const Parsed it = parse_item(*s);
    REQUIRE(it.whole);
    REQUIRE(it.stream == 1);
    REQUIRE(it.seq == next_victim);
    ++next_victim;
  }
}

TEST_CASE("Queue.Crash.ConsumerKilledMidStreamLosesOnlyWhatItTook") {
  procpool::Queue<std::string> q(0, procpool::QueueOptions{.capacity_bytes = 256 * 1024});
  constexpr std::uint32_t kItems = 400;
  procpool::Queue<std::uint32_t> taken;  // what the doomed consumer reports it took
  Process doomed(with(StartMethod::Fork), [&q, &taken] {
    for (;;) {
      const Parsed it = parse_item(q.get());
      if (!it.whole) ::_exit(3);
      taken.put(it.seq);
      std::this_thread::sleep_for(100us);  // slow, so that it dies long before the end
    }
  });
  doomed.start();
  std::thread producer([&q] {
    for (std::uint32_t seq = 0; seq < kItems; ++seq) q.put(make_item(5, seq));
  });
  std::this_thread::sleep_for(5ms);
  doomed.kill();
  doomed.join();
  CHECK(doomed.exitcode() == -SIGKILL);
  // The parent takes the rest (the producer may still be writing): every item is whole and
  // in order; items before the first one the parent sees went to the dead consumer (at most
  // one of them unreported: the one it died with).
  std::vector<std::uint32_t> mine;
  while (mine.empty() || mine.back() != kItems - 1) {
    const Parsed it = parse_item(q.get(true, 30s));
    REQUIRE(it.whole);
    mine.push_back(it.seq);
  }
  producer.join();
  CHECK(q.empty());
  std::vector<std::uint32_t> theirs;
  while (auto t = taken.try_get()) theirs.push_back(*t);
  for (std::size_t i = 1; i < mine.size(); ++i) REQUIRE(mine[i] == mine[i - 1] + 1);
  CHECK(theirs.size() + 1 >= mine.front());
  CHECK(theirs.size() <= mine.front());
  q.put("after");
  CHECK(q.get(true, 10s) == "after");
}

TEST_CASE_TEMPLATE("Queue.Crash.JoinReturnsAfterBlockedProducerIsKilled", B, procpool::Processes) {
  // A producer blocked in put() on a full JoinableQueue has not put anything: killing it must
  // leave the unfinished-task count as it was, so join() returns once the rest is done.
  procpool::BasicJoinableQueue<int, B> q(1);
  procpool::Event blocking;
  q.put(1);
  qtest::Workers<B> w;
  w.spawn([&q, &blocking] {
    blocking.set();
    q.put(2);  // blocks: the queue is full
    return 3;
  });
  REQUIRE(blocking.wait(std::chrono::seconds(20)));
  std::this_thread::sleep_for(50ms);  // let it block (if not yet, it is killed before putting)
  w.processes().front()->kill();
  const auto codes = w.join();
  CHECK(codes.front() == -SIGKILL);
  if (q.qsize() == 1) {  // the item the producer could not put is not there
    CHECK(q.get() == 1);
    q.task_done();
  }
  CHECK(q.join(20s));
}

TEST_CASE("Queue.Crash.NoShmLeftovers") { CHECK(testing::procpool_shm_entries().empty()); }
