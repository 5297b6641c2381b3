// The ring under Queue/Pipe/Pool: record framing across the wrap, size limits, deadlines,
// close, and crash recovery (a producer or consumer killed while holding its lock).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <procpool/detail/ring.hpp>
#include <procpool/procpool.hpp>

#include "queue_support.hpp"
#include "run_program.hpp"

using namespace std::chrono_literals;
using procpool::detail::kRingNoWait;
using procpool::detail::Ring;
using procpool::detail::RingOptions;
using procpool::detail::RingStatus;
using procpool::Processes;
using procpool::Threads;

namespace {

std::string pattern(std::size_t n, std::uint32_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((seed * 131 + i * 7) & 0xff);
  return s;
}

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span<const char>(s.data(), s.size())); }

} // namespace

TEST_CASE_TEMPLATE("Queue.Ring.VariableRecordsAcrossTheWrap", B, Processes, Threads) {
  Ring ring(RingOptions{.capacity_bytes = 4096, .max_records = 0}, B::interprocess);
  CHECK(ring.capacity() == 4096);
  std::mt19937 rng(7);
  std::vector<std::string> in_flight;
  std::size_t next_seed = 0, checked = 0;
  std::string out;
  // Many laps of the 4 KiB ring with records of 0..1000 bytes, mixing pushes and pops so that
  // records straddle the end of the data area in every position.
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 2 == 0) {
      const std::string rec = pattern(rng() % 1001, static_cast<std::uint32_t>(next_seed));
      if (ring.try_push(bytes(rec)) == RingStatus::Ok) {
        in_flight.push_back(rec);
        ++next_seed;
      } else {
        REQUIRE(!in_flight.empty());  // only a non-empty ring may refuse
      }
    } else if (ring.try_pop(out) == RingStatus::Ok) {
      REQUIRE(!in_flight.empty());
      REQUIRE(out == in_flight.front());
      in_flight.erase(in_flight.begin());
      ++checked;
    } else {
      REQUIRE(in_flight.empty());
    }
    REQUIRE(ring.size() == in_flight.size());
  }
  CHECK(checked > 5000);
}

TEST_CASE_TEMPLATE("Queue.Ring.RecordsCycleThroughTheWarmZone", B, Processes, Threads) {
  Ring ring(RingOptions{.capacity_bytes = std::size_t{4} << 20, .max_records = 0}, B::interprocess);
  REQUIRE(ring.warm_bytes() == std::size_t{512} << 10);
  std::mt19937 rng(11);
  std::string out;
  std::uint32_t seed = 0;
  // 14 laps' worth of 40-64 KiB records, three in flight at a time: without the early lap
  // they would touch all 4 MiB; with it they stay near the warm zone.
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> sent;
    for (int i = 0; i < 3; ++i) {
      sent.push_back(pattern(40'000 + rng() % 25'000, seed++));
      REQUIRE(ring.try_push(bytes(sent.back())) == RingStatus::Ok);
    }
    for (const std::string& expected : sent) {
      REQUIRE(ring.try_pop(out) == RingStatus::Ok);
      REQUIRE(out == expected);
    }
  }
  CHECK(ring.size() == 0);
  CHECK(ring.committed_bytes() <= (std::uint64_t{1} << 20));
  // A record larger than the warm zone still has the whole ring.
  const std::string big = pattern(std::size_t{3} << 20, 99);
  REQUIRE(ring.try_push(bytes(big)) == RingStatus::Ok);
  REQUIRE(ring.try_pop(out) == RingStatus::Ok);
  CHECK(out == big);
  // A push that starts a new lap and then fails leaves only the skip record: not data.
  bool skip_alone = false;
  for (int i = 0; i < 100 && !skip_alone; ++i) {
    CHECK_THROWS_AS(ring.push_with(60'000, kRingNoWait, [](std::byte*) { throw std::runtime_error("fill failed"); }),
                    std::runtime_error);
    skip_alone = ring.used_bytes() != 0;
    if (skip_alone) break;
    const std::string rec = pattern(60'000, seed++);
    REQUIRE(ring.try_push(bytes(rec)) == RingStatus::Ok);
    REQUIRE(ring.try_pop(out) == RingStatus::Ok);
    REQUIRE(out == rec);
  }
  REQUIRE(skip_alone);
  CHECK(ring.size() == 0);
  CHECK(ring.wait_readable(kRingNoWait) == RingStatus::Timeout);
  CHECK(ring.used_bytes() == 0);  // passed by the look
  CHECK(ring.try_pop(out) == RingStatus::Timeout);
  const std::string last = pattern(1000, seed++);
  REQUIRE(ring.try_push(bytes(last)) == RingStatus::Ok);
  CHECK(ring.wait_readable(kRingNoWait) == RingStatus::Ok);
  REQUIRE(ring.try_pop(out) == RingStatus::Ok);
  CHECK(out == last);
}

TEST_CASE_TEMPLATE("Queue.Ring.OversizedRecordIsRefusedWithSizes", B, Processes, Threads) {
  Ring ring(RingOptions{.capacity_bytes = 5000, .max_records = 0}, B::interprocess);
  CHECK(ring.capacity() == 8192);  // rounded up to a power of two
  CHECK(ring.max_record_size() == 8192 - 8);
  const std::string biggest(ring.max_record_size(), 'x');
  CHECK(ring.try_push(bytes(biggest)) == RingStatus::Ok);
  const std::string too_big(ring.max_record_size() + 1, 'x');
  try {
    (void)ring.push(bytes(too_big), std::nullopt);
    FAIL("an oversized record must be refused");
  } catch (const procpool::ValueError& e) {
    const std::string what = e.what();
    CHECK(what.find("8185") != std::string::npos);
    CHECK(what.find("8192") != std::string::npos);
    CHECK(what.find("capacity_bytes") != std::string::npos);
  }
  std::string out;
  CHECK(ring.try_pop(out) == RingStatus::Ok);
  CHECK(out == biggest);
  CHECK(ring.try_pop(out) == RingStatus::Timeout);
}

TEST_CASE_TEMPLATE("Queue.Ring.DeadlinesAndMaxRecords", B, Processes, Threads) {
  Ring ring(RingOptions{.capacity_bytes = 4096, .max_records = 2}, B::interprocess);
  const std::string rec = "abc";
  CHECK(ring.try_push(bytes(rec)) == RingStatus::Ok);
  CHECK(ring.try_push(bytes(rec)) == RingStatus::Ok);
  CHECK(ring.try_push(bytes(rec)) == RingStatus::Timeout);  // max_records
  auto t0 = std::chrono::steady_clock::now();
  CHECK(ring.push(bytes(rec), std::chrono::steady_clock::now() + 50ms) == RingStatus::Timeout);
  CHECK(qtest::ms_since(t0) >= 50ms);
  std::string out;
  CHECK(ring.try_pop(out) == RingStatus::Ok);
  CHECK(ring.try_pop(out) == RingStatus::Ok);
  t0 = std::chrono::steady_clock::now();
  CHECK(ring.pop(out, std::chrono::steady_clock::now() + 50ms) == RingStatus::Timeout);
  CHECK(qtest::ms_since(t0) >= 50ms);
  CHECK(ring.wait_readable(std::chrono::steady_clock::now() + 20ms) == RingStatus::Timeout);
}

// A stream makes the consumer look at the producers' index less often (the ring paces its
// waits); after the stream, a lone record must still arrive (through the futex sleep), a
// non-blocking pop must still look at once, and a timed pop must still honour its deadline.
TEST_CASE_TEMPLATE("Queue.Ring.PacedWaitsAfterAStream", B, Processes, Threads) {
  Ring ring(RingOptions{.capacity_bytes = 64 * 1024, .max_records = 0}, B::interprocess);
  constexpr std::uint32_t kStream = 200'000;
  qtest::Workers<B> workers;
  workers.spawn([&ring] {
    for (std::uint32_t i = 0; i < kStream; ++i)
      if (ring.push(std::as_bytes(std::span(&i, 1)), std::nullopt) != RingStatus::Ok) return 1;
    std::this_thread::sleep_for(30ms);  // the consumer spins, then sleeps
    const std::uint32_t last = kStream;
    return ring.push(std::as_bytes(std::span(&last, 1)), std::nullopt) == RingStatus::Ok ? 0 : 2;
  });
  std::string out;
  std::uint32_t bad = 0;
  for (std::uint32_t i = 0; i <= kStream; ++i) {
    REQUIRE(ring.pop(out, std::chrono::steady_clock::now() + 10s) == RingStatus::Ok);
    std::uint32_t v = 0;
    std::memcpy(&v, out.data(), sizeof v);
    bad += v != i;
  }
  CHECK(bad == 0);
  CHECK(qtest::all_zero(workers.join()));
  const std::string rec = "now";
  CHECK(ring.try_push(bytes(rec)) == RingStatus::Ok);
  CHECK(ring.try_pop(out) == RingStatus::Ok);
  CHECK(out == rec);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(ring.pop(out, std::chrono::steady_clock::now() + 20ms) == RingStatus::Timeout);
  CHECK(qtest::ms_since(t0) >= 20ms);
}

TEST_CASE_TEMPLATE("Queue.Ring.CloseDrainsThenReportsClosed", B, Processes, Threads) {
  Ring ring(RingOptions{.capacity_bytes = 4096, .max_records = 0}, B::interprocess);
  std::atomic<int> popped{0};
  std::thread waiter([&] {
    std::string out;
    while (ring.pop(out, std::nullopt) == RingStatus::Ok) popped.fetch_add(1);
  });
  const std::string rec = "x";
  CHECK(ring.push(bytes(rec), std::nullopt) == RingStatus::Ok);
  CHECK(ring.push(bytes(rec), std::nullopt) == RingStatus::Ok);
  ring.close();
  waiter.join();  // woken by close, after draining
  CHECK(popped.load() == 2);
  CHECK(ring.closed());
  CHECK(ring.push(bytes(rec), std::nullopt) == RingStatus::Closed);
  std::string out;
  CHECK(ring.pop(out, std::nullopt) == RingStatus::Closed);
  CHECK(ring.wait_readable(std::nullopt) == RingStatus::Closed);
}

TEST_CASE_TEMPLATE("Queue.Ring.ThrowingCallbacks", B, Processes, Threads) {
  Ring ring(RingOptions{.capacity_bytes = 4096, .max_records = 0}, B::interprocess);
  // A throwing fill publishes nothing and releases the lock.
  CHECK_THROWS_AS(ring.push_with(16, std::nullopt, [](std::byte*) { throw std::runtime_error("fill"); }),
                  std::runtime_error);
  CHECK(ring.size() == 0);
  const std::string a = "first", b = "second";
  CHECK(ring.try_push(bytes(a)) == RingStatus::Ok);
  CHECK(ring.try_push(bytes(b)) == RingStatus::Ok);
  // A throwing consume drops that record (a poison record must not wedge the ring).
  CHECK_THROWS_AS(ring.pop_with(std::nullopt, [](std::span<const std::byte>) { throw std::runtime_error("consume"); }),
                  std::runtime_error);
  std::string out;
  CHECK(ring.try_pop(out) == RingStatus::Ok);
  CHECK(out == b);
}

TEST_CASE("Queue.Ring.ProducerKilledWhileWritingLeavesNoTrace") {
  Ring ring(RingOptions{.capacity_bytes = 1 << 16, .max_records = 0}, true);
  const std::string before = pattern(300, 1), after = pattern(500, 2);
  REQUIRE(ring.try_push(bytes(before)) == RingStatus::Ok);
  // The child dies inside push_with, holding the producer lock, half-way through the copy.
  procpool::Process child(procpool::ProcessOptions{.name = {}, .daemon = std::nullopt, .start_method = procpool::StartMethod::Fork},
                          [&ring] {
                            (void)ring.push_with(1000, std::nullopt, [](std::byte* dst) {
                              std::memset(dst, 0xAB, 400);
                              ::raise(SIGKILL);
                            });
                            ::_exit(7);
                          });
  child.start();
  // Not joined yet: the dead child is a zombie, which must count as dead.
  while (ring.used_bytes() == 8 + 304 && child.is_alive()) std::this_thread::sleep_for(1ms);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(ring.push(bytes(after), std::chrono::steady_clock::now() + 10s) == RingStatus::Ok);  // takes the lock over
  CHECK(qtest::ms_since(t0) < 5s);
  child.join();
  CHECK(child.exitcode() == -SIGKILL);
  std::string out;
  REQUIRE(ring.try_pop(out) == RingStatus::Ok);
  CHECK(out == before);
  REQUIRE(ring.try_pop(out) == RingStatus::Ok);
  CHECK(out == after);  // the half-written record never appeared
  CHECK(ring.try_pop(out) == RingStatus::Timeout);
  CHECK(ring.size() == 0);
}

TEST_CASE("Queue.Ring.ConsumerKilledWhileReadingLosesNothing") {
  Ring ring(RingOptions{.capacity_bytes = 1 << 16, .max_records = 0}, true);
  const std::string first = pattern(2000, 3), second = pattern(10, 4);
  REQUIRE(ring.try_push(bytes(first)) == RingStatus::Ok);
  REQUIRE(ring.try_push(bytes(second)) == RingStatus::Ok);
  procpool::Process child(procpool::ProcessOptions{.name = {}, .daemon = std::nullopt, .start_method = procpool::StartMethod::Fork},
                          [&ring] {
                            (void)ring.pop_with(std::nullopt, [](std::span<const std::byte>) { ::raise(SIGKILL); });
                            ::_exit(7);
                          });
  child.start();
  child.join();
  CHECK(child.exitcode() == -SIGKILL);
  std::string out;
  REQUIRE(ring.pop(out, std::chrono::steady_clock::now() + 10s) == RingStatus::Ok);  // takes the lock over
  CHECK(out == first);  // redelivered whole
  REQUIRE(ring.try_pop(out) == RingStatus::Ok);
  CHECK(out == second);
  CHECK(ring.size() == 0);
}

TEST_CASE("Queue.Ring.SpawnedProcessAttaches") {
  Ring ring(RingOptions{.capacity_bytes = 8192, .max_records = 3}, true);
  std::string handle;
  ring.encode_handle(handle);
  std::string_view in = handle;
  auto other = Ring::attach(in);
  CHECK(in.empty());
  CHECK(other->capacity() == 8192);
  CHECK(other->max_records() == 3);
  const std::string rec = "through another mapping";
  REQUIRE(ring.try_push(bytes(rec)) == RingStatus::Ok);
  std::string out;
  REQUIRE(other->try_pop(out) == RingStatus::Ok);
  CHECK(out == rec);
  other->aux(1).store(42);
  CHECK(ring.aux(1).load() == 42);
  std::string garbage = "nonsense";
  std::string_view bad = garbage;
  CHECK_THROWS(Ring::attach(bad));
}

TEST_CASE("Queue.Ring.NoShmLeftovers") { CHECK(testing::procpool_shm_entries().empty()); }
