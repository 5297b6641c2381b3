// Items of any size through Queue, JoinableQueue, SimpleQueue and Pipe. Process backend: out of
// band in a memfd each, with nothing left behind whoever dies, and the out-of-band byte budget.
// Thread backend: values moved through memory (no copy, no codec, move-only types).
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include <procpool/procpool.hpp>

#include "queue_support.hpp"
#include "run_program.hpp"
#include "start_methods.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr const char* kItemName = "procpool-queue-item";

/// n doubles that depend on `seed` and their index: a torn or shifted item would not match.
std::vector<double> pattern(std::size_t n, double seed) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = seed + static_cast<double>(i % 100003) * 0.5;
  return v;
}
bool matches(const std::vector<double>& v, std::size_t n, double seed) {
  if (v.size() != n) return false;
  for (std::size_t i = 0; i < n; ++i)
    if (v[i] != seed + static_cast<double>(i % 100003) * 0.5) return false;
  return true;
}

/// Descriptors and mappings of large items in process `pid` ("self": this one).
int item_fds(const std::string& pid = "self") {
  int n = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + pid + "/fd", ec)) {
    std::error_code link_ec;
    if (std::filesystem::read_symlink(entry.path(), link_ec).string().find(kItemName) != std::string::npos) ++n;
  }
  return n;
}
bool item_mapped(const std::string& pid = "self") {
  return testing::read_text_file("/proc/" + pid + "/maps").find(kItemName) != std::string::npos;
}
void check_nothing_left_here() {
  CHECK(item_fds() == 0);
  CHECK_FALSE(item_mapped());
  CHECK(testing::procpool_shm_entries().empty());
}

/// The machine's shared memory in use (memfds included), in bytes.
std::int64_t shmem_bytes() {
  std::istringstream in(testing::read_text_file("/proc/meminfo"));
  std::string key;
  std::int64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "Shmem:") return kib * 1024;
  return -1;
}

/// Waits until `ready()` or 10 s.
template <class F>
bool wait_for(F ready) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

using Vec = std::vector<double>;
const std::vector<std::size_t> kCounts = {0, 1, 1000, 2047, 2049, 200'000, 2 * kMiB, 32 * kMiB};  // doubles
constexpr std::size_t k256MiB = 32 * kMiB;  // doubles: 256 MiB

// A type of fixed size beyond the threshold of a 64 KiB ring (16 KiB): travels as its bytes.
struct Block {
  std::uint64_t seq;
  std::array<std::uint64_t, 16 * 1024> words;  // 128 KiB
};
Block make_block(std::uint64_t seq) {
  Block b{};
  b.seq = seq;
  for (std::size_t i = 0; i < b.words.size(); ++i) b.words[i] = seq * 1'000'003 + i;
  return b;
}
bool block_ok(const Block& b) {
  for (std::size_t i = 0; i < b.words.size(); ++i)
    if (b.words[i] != b.seq * 1'000'003 + i) return false;
  return true;
}

struct Labelled {  // through cereal
  std::string label;
  std::vector<double> values;
  template <class A>
  void serialize(A& ar) { ar(label, values); }
};

// Spawned children's targets.
void echo_vectors(procpool::Queue<Vec>& in, procpool::Queue<Vec>& out, int n) {
  for (int i = 0; i < n; ++i) out.put(in.get());
}
void echo_pipe(procpool::Connection<Vec>& end, int n) {
  for (int i = 0; i < n; ++i) end.send(end.recv());
}

} // namespace

TEST_CASE_TEMPLATE("Queue.Large.SizesThroughQueueAndJoinableQueue", B, procpool::Processes, procpool::Threads) {
  procpool::BasicQueue<Vec, B> in;
  procpool::BasicJoinableQueue<Vec, B> out;
  qtest::Workers<B> w;
  w.spawn([&] {
    for (std::size_t i = 0; i <= kCounts.size(); ++i) out.put(in.get());
    return 0;
  });
  for (std::size_t i = 0; i < kCounts.size(); ++i) {
    CAPTURE(kCounts[i]);
    in.put(pattern(kCounts[i], static_cast<double>(i)));
    const Vec back = out.get();
    CHECK(matches(back, kCounts[i], static_cast<double>(i)));
    out.task_done();
  }
  in.put(pattern(k256MiB, 7.0));
  CHECK(matches(out.get(), k256MiB, 7.0));
  out.task_done();
  CHECK(out.join(10s));
  CHECK(qtest::all_zero(w.join()));
  check_nothing_left_here();
}

TEST_CASE_TEMPLATE("Queue.Large.SizesThroughSimpleQueueAndPipe", B, procpool::Processes, procpool::Threads) {
  procpool::BasicSimpleQueue<std::string, B> strings;
  auto [parent, child] = B::template Pipe<Vec>();
  qtest::Workers<B> w;
  w.spawn([&] {
    for (std::size_t i = 0; i <= kCounts.size(); ++i) child.send(child.recv());
    for (std::size_t bytes : {std::size_t{0}, std::size_t{5}, 3 * kMiB, 256 * kMiB})
      strings.put(std::string(bytes, static_cast<char>('a' + bytes % 26)));
    return 0;
  });
  for (std::size_t i = 0; i < kCounts.size(); ++i) {
    CAPTURE(kCounts[i]);
    parent.send(pattern(kCounts[i], static_cast<double>(i)));
    CHECK(matches(parent.recv(), kCounts[i], static_cast<double>(i)));
  }
  parent.send(pattern(k256MiB, 3.0));
  CHECK(matches(parent.recv(), k256MiB, 3.0));
  for (std::size_t bytes : {std::size_t{0}, std::size_t{5}, 3 * kMiB, 256 * kMiB}) {
    const std::string s = strings.get();
    CHECK(s.size() == bytes);
    CHECK(s.find_first_not_of(static_cast<char>('a' + bytes % 26)) == std::string::npos);
  }
  CHECK(qtest::all_zero(w.join()));
  check_nothing_left_here();
}

TEST_CASE_TEMPLATE("Queue.Large.FixedSizeAndCerealTypes", B, procpool::Processes, procpool::Threads) {
  const procpool::QueueOptions small{.capacity_bytes = 64 * 1024};  // out of band over 16 KiB
  procpool::BasicQueue<Block, B> blocks(0, small);
  procpool::BasicQueue<Labelled, B> labelled(0, small);
  qtest::Workers<B> w;
  w.spawn([&] {
    for (std::uint64_t i = 0; i < 20; ++i) blocks.put(make_block(i));
    labelled.put(Labelled{"big", pattern(kMiB, 1.5)});
    labelled.put(Labelled{"small", {1.0}});
    return 0;
  });
  auto b = std::make_unique<Block>();
  for (std::uint64_t i = 0; i < 20; ++i) {
    *b = blocks.get();
    CHECK(b->seq == i);
    CHECK(block_ok(*b));
  }
  const Labelled big = labelled.get();
  CHECK(big.label == "big");
  CHECK(matches(big.values, kMiB, 1.5));
  CHECK(labelled.get().label == "small");
  CHECK(qtest::all_zero(w.join()));
  check_nothing_left_here();
}

TEST_CASE_TEMPLATE("Queue.Large.ChildrenOfEveryStartMethodSendAndReceive", M, ALL_START_METHODS) {
  procpool::Queue<Vec> in;
  procpool::Queue<Vec> out;
  procpool::Process p(testing::options<M>(), &echo_vectors, std::ref(in), std::ref(out), 3);
  p.start();
  auto [parent, child] = procpool::Pipe<Vec>();
  procpool::Process q(testing::options<M>(), &echo_pipe, std::ref(child), 2);
  q.start();
  child.close();
  for (int i = 0; i < 3; ++i) in.put(pattern(3 * kMiB + static_cast<std::size_t>(i), i));
  for (int i = 0; i < 3; ++i) CHECK(matches(out.get(), 3 * kMiB + static_cast<std::size_t>(i), i));
  for (int i = 0; i < 2; ++i) {
    parent.send(pattern(kMiB, 10.0 + i));
    CHECK(matches(parent.recv(), kMiB, 10.0 + i));
  }
  p.join();
  q.join();
  CHECK(p.exitcode() == 0);
  CHECK(q.exitcode() == 0);
}

TEST_CASE("Queue.Large.SenderKilledAfterCreatingItsSegmentLeavesNothing") {
  const std::int64_t before = shmem_bytes();
  {
    procpool::Queue<Vec> q;
    const Vec big = pattern(k256MiB, 5.0);  // made before the fork: the child only puts it
    qtest::Workers<procpool::Processes> w;
    w.spawn([&] {
      q.put(big);
      return 0;
    });
    const std::string pid = std::to_string(*w.processes()[0]->pid());
    // Killed while it writes the item into the segment it created.
    REQUIRE(wait_for([&] { return item_fds(pid) > 0 || !w.processes()[0]->is_alive(); }));
    w.processes()[0]->kill();
    (void)w.join();
    // Either the item never made it, or it made it whole.
    if (q.qsize() == 1) CHECK(matches(q.get(), k256MiB, 5.0));
    CHECK(q.empty());
    q.put(pattern(kMiB, 1.0));  // the queue still works, large and small
    q.put(Vec{2.0});
    CHECK(matches(q.get(), kMiB, 1.0));
    CHECK(q.get() == Vec{2.0});
    check_nothing_left_here();
  }
  CHECK(shmem_bytes() - before < std::int64_t{64 * kMiB});
}

TEST_CASE("Queue.Large.ReceiverKilledWhileTakingLeavesNothing") {
  const std::int64_t before = shmem_bytes();
  {
    procpool::Queue<Vec> q;
    q.put(pattern(k256MiB, 1.0));
    q.put(pattern(kMiB, 2.0));
    qtest::Workers<procpool::Processes> w;
    w.spawn([&] {
      (void)q.get();
      ::pause();  // killed before it gets here, or here
      return 0;
    });
    const std::string pid = std::to_string(*w.processes()[0]->pid());
    REQUIRE(wait_for([&] { return item_mapped(pid); }));
    w.processes()[0]->kill();
    (void)w.join();
    // The first item went with the consumer; the second is there, whole.
    CHECK(matches(q.get(true, 5s), kMiB, 2.0));
    CHECK(q.empty());
    // A receiver killed before it took anything: the items stay for the next one.
    q.put(pattern(2 * kMiB, 3.0));
    w.spawn([&] {
      ::pause();
      return 0;
    });
    w.processes()[0]->kill();
    (void)w.join();
    CHECK(matches(q.get(), 2 * kMiB, 3.0));
    check_nothing_left_here();
  }
  CHECK(shmem_bytes() - before < std::int64_t{64 * kMiB});
}

TEST_CASE("Queue.Large.QueueDestroyedWithItemsInItFreesThem") {
  const std::int64_t before = shmem_bytes();
  {
    procpool::Queue<Vec> q;
    auto [a, b] = procpool::Pipe<Vec>();
    qtest::Workers<procpool::Processes> w;
    w.spawn([&] {  // a holder that puts and exits: its items stay in the queue
      for (int i = 0; i < 2; ++i) q.put(pattern(8 * kMiB, i));  // 64 MiB each
      a.send(pattern(8 * kMiB, 9.0));
      return 0;
    });
    CHECK(qtest::all_zero(w.join()));
    for (int i = 0; i < 2; ++i) q.put(pattern(8 * kMiB, i));
    CHECK(q.qsize() == 4);
    CHECK(shmem_bytes() - before > std::int64_t{4 * 60 * kMiB});
  }
  CHECK(shmem_bytes() - before < std::int64_t{64 * kMiB});
  check_nothing_left_here();
}

TEST_CASE("Queue.Large.BudgetBoundsTheBytesInFlight") {
  procpool::Queue<std::string> q(0, procpool::QueueOptions{.capacity_bytes = 64 * 1024, .max_large_bytes = 8 * kMiB});
  q.put(std::string(3 * kMiB, 'a'));
  q.put(std::string(3 * kMiB, 'b'));
  try {
    q.put_nowait(std::string(3 * kMiB, 'c'));
    FAIL("expected Full");
  } catch (const procpool::Full& e) {
    CHECK(std::string(e.what()).find("max_large_bytes") != std::string::npos);
  }
  CHECK_THROWS_AS(q.put(std::string(3 * kMiB, 'c'), true, 50ms), procpool::Full);
  q.put_nowait(std::string(1000, 'i'));  // small items are not counted
  // A blocked put goes on once a get makes room.
  std::thread producer([&] { q.put(std::string(3 * kMiB, 'c')); });
  std::this_thread::sleep_for(50ms);
  CHECK(q.get().front() == 'a');
  producer.join();
  CHECK(q.get().front() == 'b');
  CHECK(q.get().front() == 'i');
  CHECK(q.get().front() == 'c');
  // An item larger than the whole budget goes when nothing else is in flight.
  q.put(std::string(20 * kMiB, 'd'));
  CHECK_FALSE(q.try_put(std::string(kMiB, 'e')));
  CHECK(q.get().size() == 20 * kMiB);
  CHECK(q.try_put(std::string(kMiB, 'e')));
}

TEST_CASE("Queue.Large.MaxsizeCountsLargeItems") {
  procpool::Queue<Vec> q(2);
  q.put(pattern(kMiB, 1.0));
  q.put(pattern(kMiB, 2.0));
  CHECK(q.full());
  try {
    q.put_nowait(pattern(kMiB, 3.0));
    FAIL("expected Full");
  } catch (const procpool::Full& e) {
    CHECK(std::string(e.what()).find("maxsize 2") != std::string::npos);
  }
  CHECK(matches(q.get(), kMiB, 1.0));
  q.put(pattern(kMiB, 3.0));
  CHECK(matches(q.get(), kMiB, 2.0));
  CHECK(matches(q.get(), kMiB, 3.0));
}

TEST_CASE("Queue.Large.ConsumerKilledBetweenReceivingAndPoppingSkipsOnlyItsItem") {
  // Deterministically inside the window: a child takes the first record's descriptor under the
  // consumer lock and dies before the pop completes. The record stays at the front without its
  // message; the next consumer takes the lock over, skips it and gets the second item.
  using procpool::detail::Ring;
  Ring ring(procpool::detail::RingOptions{.capacity_bytes = 64 * 1024, .max_records = 0, .large_items = true,
                                          .large_budget_bytes = 0},
            true);
  REQUIRE(procpool::detail::push_item(ring, pattern(kMiB, 1.0), std::nullopt) == procpool::detail::RingStatus::Ok);
  REQUIRE(procpool::detail::push_item(ring, pattern(kMiB, 2.0), std::nullopt) == procpool::detail::RingStatus::Ok);
  REQUIRE(procpool::detail::push_item(ring, Vec{3.0}, std::nullopt) == procpool::detail::RingStatus::Ok);
  qtest::Workers<procpool::Processes> w;
  w.spawn([&] {
    (void)ring.pop_with(std::nullopt, [&](std::span<const std::byte> rec) {
      (void)ring.large()->take(rec);
      ::_exit(0);
    });
    return 1;
  });
  CHECK(qtest::all_zero(w.join()));
  std::optional<Vec> out;
  REQUIRE(procpool::detail::pop_item(ring, out, procpool::detail::RingDeadline{std::chrono::steady_clock::now() + 5s}) ==
          procpool::detail::RingStatus::Ok);
  CHECK(matches(*out, kMiB, 2.0));
  out.reset();
  REQUIRE(procpool::detail::pop_item(ring, out, procpool::detail::kRingNoWait) == procpool::detail::RingStatus::Ok);
  CHECK(*out == Vec{3.0});
  CHECK(ring.size() == 0);
  check_nothing_left_here();
}

TEST_CASE("Queue.Large.ProducerKilledBetweenSendingAndRecordingLeavesNothing") {
  // Deterministically inside the window: the child's push sends the item's descriptor, counts
  // its pages and writes its record, then dies (SIGSEGV on a read-only count_in) before the
  // record is committed. The message without a record is dropped by the next consumer, its
  // pages uncounted with it.
  using procpool::detail::Ring;
  using procpool::detail::RingStatus;
  Ring ring(procpool::detail::RingOptions{.capacity_bytes = 64 * 1024, .max_records = 0, .large_items = true,
                                          .large_budget_bytes = 64 * kMiB},
            true);
  void* page = ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(page != MAP_FAILED);
  auto* read_only_count = static_cast<std::atomic<std::uint32_t>*>(page);
  qtest::Workers<procpool::Processes> w;
  w.spawn([&] {
    struct sigaction on_segv {};
    on_segv.sa_handler = [](int) { ::_exit(7); };
    ::sigaction(SIGSEGV, &on_segv, nullptr);
    (void)procpool::detail::push_item(ring, pattern(kMiB, 1.0), std::nullopt, read_only_count);
    return 1;
  });
  CHECK(w.join() == std::vector<int>{7});
  ::munmap(page, 4096);
  CHECK(ring.size() == 0);
  CHECK(ring.large()->over_budget());  // its pages are counted, its message is in the socket
  REQUIRE(procpool::detail::push_item(ring, pattern(kMiB, 2.0), std::nullopt) == RingStatus::Ok);
  REQUIRE(procpool::detail::push_item(ring, Vec{3.0}, std::nullopt) == RingStatus::Ok);
  std::optional<Vec> out;
  REQUIRE(procpool::detail::pop_item(ring, out, procpool::detail::kRingNoWait) == RingStatus::Ok);
  CHECK(matches(*out, kMiB, 2.0));
  out.reset();
  REQUIRE(procpool::detail::pop_item(ring, out, procpool::detail::kRingNoWait) == RingStatus::Ok);
  CHECK(*out == Vec{3.0});
  CHECK_FALSE(ring.large()->over_budget());  // nothing counted is left
  check_nothing_left_here();
}

TEST_CASE("Queue.Large.TakenItemsAreReusedBoundedAndNeverWhileViewed") {
  const std::int64_t before = shmem_bytes();
  {
    // Taken items' memfds come back as spares (at most 100 MiB here) and are rewritten by the
    // next puts, resized to each item: every item read back is its own, whatever the sizes.
    procpool::Queue<Vec> q(0, procpool::QueueOptions{.spare_large_bytes = 100 * kMiB});
    qtest::Workers<procpool::Processes> w;
    const std::vector<std::size_t> sizes = {8 * kMiB, kMiB, 8 * kMiB, 4 * kMiB, 8 * kMiB, 2 * kMiB};  // doubles
    w.spawn([&] {
      for (std::size_t i = 0; i < sizes.size(); ++i) q.put(pattern(sizes[i], static_cast<double>(i)));
      return 0;
    });
    for (std::size_t i = 0; i < sizes.size(); ++i) CHECK(matches(q.get(), sizes[i], static_cast<double>(i)));
    CHECK(qtest::all_zero(w.join()));
    // A held view's memory is never handed out: items put while it lives do not touch it.
    const procpool::LargeView<Vec> held = [&] {
      q.put(pattern(4 * kMiB, 10.0));
      return q.get_view();
    }();
    for (int i = 0; i < 4; ++i) {
      q.put(pattern(4 * kMiB, 20.0 + i));
      CHECK(matches(q.get(), 4 * kMiB, 20.0 + i));
    }
    CHECK(std::equal(held.begin(), held.end(), pattern(4 * kMiB, 10.0).begin()));
    CHECK(item_fds() == 1);  // the view's memfd, handed back when it goes
    // The spares stay within their bound (Shmem is the machine's: a loose check).
    CHECK(shmem_bytes() - before < std::int64_t{(100 + 32 + 64) * kMiB});
  }
  CHECK(shmem_bytes() - before < std::int64_t{64 * kMiB});  // the spares go with the queue
  check_nothing_left_here();
}

TEST_CASE("Queue.Large.WithoutSparesEachTakenItemIsFreed") {
  const std::int64_t before = shmem_bytes();
  procpool::Queue<Vec> q(0, procpool::QueueOptions{.spare_large_bytes = 0});
  for (int i = 0; i < 3; ++i) {
    q.put(pattern(16 * kMiB, i));  // 128 MiB
    CHECK(matches(q.get(), 16 * kMiB, i));
  }
  CHECK(shmem_bytes() - before < std::int64_t{64 * kMiB});
}

TEST_CASE("Queue.Large.ProducersKilledMidStreamLeaveWholeItemsAndAFreeBudget") {
  // Producers put 64-256 KiB items (all out of band: the ring is 64 KiB) and are SIGKILLed at
  // random points, some inside the protocol's windows. Every item received is whole and in
  // order per producer, and afterwards the budget is not held by the dead.
  constexpr std::size_t kBudget = 4 * kMiB;
  procpool::Queue<std::vector<std::uint64_t>> q(0, procpool::QueueOptions{.capacity_bytes = 64 * 1024,
                                                                          .max_large_bytes = kBudget});
  std::uint64_t received = 0;
  for (int round = 0; round < 6; ++round) {
    qtest::Workers<procpool::Processes> w;
    for (std::uint64_t producer = 0; producer < 2; ++producer)
      w.spawn([&q, producer] {
        for (std::uint64_t seq = 0;; ++seq) {
          std::vector<std::uint64_t> item(8 * 1024 + (seq * 7919) % (24 * 1024));
          for (std::size_t i = 0; i < item.size(); ++i) item[i] = (producer << 56) ^ (seq << 24) ^ i;
          q.put(item);
        }
        return 0;
      });
    std::uint64_t next[2] = {0, 0};
    bool ok = true;
    auto check = [&](const std::vector<std::uint64_t>& item) {
      const std::uint64_t producer = item[0] >> 56;
      const std::uint64_t seq = (item[0] >> 24) & 0xFFFFFFFF;
      ok = ok && producer < 2 && seq >= next[producer];
      for (std::size_t i = 0; ok && i < item.size(); ++i) ok = item[i] == ((producer << 56) ^ (seq << 24) ^ i);
      if (producer < 2) next[producer] = seq + 1;
      ++received;
    };
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100 + 37 * round);
    while (std::chrono::steady_clock::now() < until) {
      auto item = q.try_get();
      if (item) check(*item);
    }
    for (auto& p : w.processes()) p->kill();
    (void)w.join();
    while (auto item = q.try_get()) check(*item);  // what the dead left behind: whole or not at all
    CHECK(ok);
  }
  CHECK(received > 0);
  // The budget is free again: an item of the budget's size goes without waiting.
  CHECK(q.empty());
  CHECK(q.try_put(std::vector<std::uint64_t>(kBudget / 8 - 512)));
  CHECK(q.try_put(std::vector<std::uint64_t>(1)));
  check_nothing_left_here();
}

// -- Thread backend: moved, not copied -------------------------------------------------------------

namespace {

/// Counts live instances and copies: a queue must neither copy nor leak them.
struct Counted {
  static inline std::atomic<int> live{0};
  static inline std::atomic<int> copies{0};
  std::unique_ptr<int> payload;
  explicit Counted(int v) : payload(std::make_unique<int>(v)) { ++live; }
  Counted(Counted&& other) noexcept : payload(std::move(other.payload)) { ++live; }
  Counted(const Counted& other) : payload(std::make_unique<int>(*other.payload)) {
    ++live;
    ++copies;
  }
  Counted& operator=(Counted&& other) noexcept = default;
  ~Counted() { --live; }
};

/// Over-aligned: kept on the heap, the ring holding its pointer.
struct alignas(64) Wide {
  std::unique_ptr<int> payload;
};

/// Larger than a 64 KiB ring: on the heap too.
struct Huge {
  std::array<std::uint64_t, 16 * 1024> words;  // 128 KiB
};

} // namespace

TEST_CASE("Queue.Large.ThreadBackendMovesValuesWithoutCopying") {
  // A 256 MiB vector arrives with the very buffer it was put with: no byte is copied.
  procpool::dummy::Queue<Vec> q(0, procpool::QueueOptions{.capacity_bytes = 4096});
  Vec big = pattern(k256MiB, 1.0);
  const double* buffer = big.data();
  q.put(std::move(big));
  const Vec got = q.get();
  CHECK(got.data() == buffer);
  CHECK(matches(got, k256MiB, 1.0));

  // Move-only values through every transport, no copies.
  procpool::dummy::JoinableQueue<std::unique_ptr<int>> jq(1);
  auto p = std::make_unique<int>(7);
  int* const raw = p.get();
  jq.put(std::move(p));
  auto second = std::make_unique<int>(8);
  CHECK_FALSE(jq.try_put(std::move(second)));  // full: the value stays with the caller
  REQUIRE(second != nullptr);
  CHECK(*second == 8);
  const auto back = jq.get();
  CHECK(back.get() == raw);
  jq.task_done();
  CHECK(jq.join(1s));

  procpool::dummy::SimpleQueue<Counted> sq;
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) sq.put(Counted(i));
  });
  for (int i = 0; i < 1000; ++i) CHECK(*sq.get().payload == i);
  producer.join();
  CHECK(Counted::copies == 0);
  CHECK(Counted::live == 0);

  auto [a, b] = procpool::dummy::Pipe<std::unique_ptr<std::string>>();
  auto s = std::make_unique<std::string>(1000, 'z');
  const std::string* const sp = s.get();
  a.send(std::move(s));
  CHECK(b.recv().get() == sp);
}

TEST_CASE("Queue.Large.ThreadBackendKeepsOverAlignedAndHugeValuesOnTheHeap") {
  const procpool::QueueOptions small{.capacity_bytes = 64 * 1024};
  procpool::dummy::Queue<Wide> wide(0, small);
  wide.put(Wide{std::make_unique<int>(3)});
  const Wide w = wide.get();
  CHECK(*w.payload == 3);
  CHECK(reinterpret_cast<std::uintptr_t>(&w) % 64 == 0);

  procpool::dummy::Queue<Huge> huge(2, small);
  auto h = std::make_unique<Huge>();
  for (std::size_t i = 0; i < h->words.size(); ++i) h->words[i] = i * 3;
  huge.put(*h);
  huge.put(*h);
  CHECK_FALSE(huge.try_put(*h));  // maxsize counts them as any item
  for (int k = 0; k < 2; ++k) {
    *h = huge.get();
    bool same = true;
    for (std::size_t i = 0; i < h->words.size(); ++i) same = same && h->words[i] == i * 3;
    CHECK(same);
  }
}

TEST_CASE("Queue.Large.ThreadBackendDestroysWhatIsLeftInAQueueOrPipe") {
  {
    procpool::dummy::Queue<Counted> q;
    for (int i = 0; i < 10; ++i) q.put(Counted(i));
    procpool::dummy::Queue<std::unique_ptr<Huge>> boxed;
    boxed.put(std::make_unique<Huge>());
    auto [a, b] = procpool::dummy::Pipe<Counted>();
    a.send(Counted(1));
    b.send(Counted(2));
    CHECK(Counted::live == 12);
  }
  CHECK(Counted::live == 0);
  CHECK(Counted::copies == 0);
}

// -- Views: a received vector read in place ------------------------------------------------------

TEST_CASE_TEMPLATE("Queue.Large.ViewsReadTheItemWhereItLies", B, procpool::Processes, procpool::Threads) {
  procpool::BasicQueue<Vec, B> q;
  procpool::BasicSimpleQueue<std::string, B> strings;
  auto [a, b] = B::template Pipe<Vec>();
  qtest::Workers<B> w;
  w.spawn([&] {
    q.put(pattern(4 * kMiB, 1.0));  // 32 MiB: out of band on processes
    q.put(pattern(10, 2.0));        // through the ring
    strings.put(std::string(3 * kMiB, 's'));
    a.send(pattern(kMiB, 3.0));
    return 0;
  });
  {
    procpool::LargeView<Vec> big = q.get_view();
    CHECK(big.in_place() == B::interprocess);
    CHECK(big.size() == 4 * kMiB);
    CHECK(std::equal(big.begin(), big.end(), pattern(4 * kMiB, 1.0).begin()));
    if constexpr (B::interprocess) CHECK(item_mapped());
    const procpool::LargeView<Vec> moved = std::move(big);  // the mapping moves with it
    CHECK(moved.size() == 4 * kMiB);
    CHECK(moved[4 * kMiB - 1] == pattern(4 * kMiB, 1.0).back());
  }
  CHECK_FALSE(item_mapped());  // unmapped with the view
  const auto small = q.get_view(true, 5s);
  CHECK_FALSE(small.in_place());
  CHECK(matches(small.to_value(), 10, 2.0));
  const auto s = strings.get_view();
  CHECK(std::string_view(s.data(), s.size()) == std::string(3 * kMiB, 's'));
  const auto v = b.recv_view();
  const std::span<const double> span = v;
  CHECK(std::equal(span.begin(), span.end(), pattern(kMiB, 3.0).begin()));
  CHECK(qtest::all_zero(w.join()));
}

TEST_CASE("Queue.Large.OneGiBItem") {
  // One GiB (plus its 16-byte header: over the default 1 GiB budget, so it goes alone), received
  // as a view: two GiB at the peak, about a second here.
  procpool::Queue<std::string> q;
  {
    std::string item(std::size_t{1} << 30, 'g');
    item.back() = '!';
    q.put(item);
  }
  const auto view = q.get_view();
  CHECK(view.in_place());
  REQUIRE(view.size() == std::size_t{1} << 30);
  CHECK(view[0] == 'g');
  CHECK(view[view.size() / 2] == 'g');
  CHECK(view[view.size() - 1] == '!');
}
