// procpool Queue/Pipe benchmarks, process -> process (fork), 64-byte items.
// Usage: queue_bench queue N [bounded|ring DEPTH] -> "msgs_per_s<TAB>value<TAB>msgs/s"
//          no depth: Queue() with the default 4 MiB ring (about 58,000 items);
//          bounded DEPTH: Queue(maxsize = DEPTH) (the default ring, the limit in items);
//          ring DEPTH: Queue() whose ring holds at most DEPTH items (the largest power of two of
//          bytes that does: 64 KiB = 910 items for 1024, 256 KiB = 3640 for 4096), to compare
//          with a peer bounded at DEPTH items without giving procpool more room
//        queue_bench pipe N              -> "msgs_per_s<TAB>value<TAB>msgs/s"
//        queue_bench pingpong N          -> "rtt_p50<TAB>µs<TAB>us", "rtt_p99<TAB>µs<TAB>us" (two Queues, echo child)
// bench/queue.sh (bench/run.sh queue) runs it beside Boost.Interprocess and CPython and prints the table.
#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include <procpool/procpool.hpp>

#include "pin.hpp"

namespace {
using Clock = std::chrono::steady_clock;

struct Msg {
  std::array<char, 64> bytes;  // trivially copyable: one memcpy into and out of the ring
};

procpool::ProcessOptions fork_options() {
  return procpool::ProcessOptions{.name = {}, .daemon = std::nullopt, .start_method = procpool::StartMethod::Fork};
}

// A record of a 64-byte item in the ring: its 8-byte header plus the item (docs/queues.md).
constexpr std::size_t kRecordBytes = 8 + sizeof(Msg);

// The first item starts the clock on the receiving side, so process start-up is not counted.
int queue_throughput(long n, std::int64_t maxsize, std::size_t capacity_bytes) {
  procpool::Queue<Msg> q(maxsize, procpool::QueueOptions{.capacity_bytes = capacity_bytes});
  procpool::Process producer(fork_options(), [&q, n] {
    bench::pin_producer();
    Msg m{};
    for (long i = 0; i <= n; ++i) {
      std::memcpy(m.bytes.data(), &i, sizeof i);
      q.put(m);
    }
    ::_exit(0);
  });
  bench::pin_consumer();
  producer.start();
  Msg m = q.get();
  const auto t0 = Clock::now();
  long bad = 0;
  for (long i = 1; i <= n; ++i) {
    m = q.get();
    long v = 0;
    std::memcpy(&v, m.bytes.data(), sizeof v);
    bad += v != i;
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  producer.join();
  if (bad != 0) {
    std::fprintf(stderr, "%ld items out of order\n", bad);
    return 1;
  }
  std::printf("msgs_per_s\t%.0f\tmsgs/s\n", static_cast<double>(n) / s);
  return 0;
}

int pipe_throughput(long n) {
  auto [rx, tx] = procpool::Pipe<Msg>(false);
  procpool::Process producer(fork_options(), [&tx = tx, n] {
    bench::pin_producer();
    Msg m{};
    for (long i = 0; i <= n; ++i) {
      std::memcpy(m.bytes.data(), &i, sizeof i);
      tx.send(m);
    }
    ::_exit(0);
  });
  bench::pin_consumer();
  producer.start();
  (void)rx.recv();
  const auto t0 = Clock::now();
  for (long i = 1; i <= n; ++i) (void)rx.recv();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  producer.join();
  std::printf("msgs_per_s\t%.0f\tmsgs/s\n", static_cast<double>(n) / s);
  return 0;
}

int pingpong(long n) {
  procpool::Queue<Msg> ping, pong;
  procpool::Process echo(fork_options(), [&ping, &pong, n] {
    bench::pin_producer();
    for (long i = 0; i < n + 1000; ++i) pong.put(ping.get());
    ::_exit(0);
  });
  bench::pin_consumer();
  echo.start();
  Msg m{};
  for (int i = 0; i < 1000; ++i) {  // warm-up
    ping.put(m);
    m = pong.get();
  }
  std::vector<double> us(static_cast<std::size_t>(n));
  for (auto& u : us) {
    const auto t0 = Clock::now();
    ping.put(m);
    m = pong.get();
    u = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  }
  echo.join();
  std::sort(us.begin(), us.end());
  std::printf("rtt_p50\t%.2f\tus\nrtt_p99\t%.2f\tus\n", us[us.size() / 2], us[us.size() * 99 / 100]);
  return 0;
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s queue N [bounded|ring DEPTH] | pipe N | pingpong N\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const long n = std::atol(argv[2]);
  if (mode == "queue") {
    const procpool::QueueOptions defaults;
    if (argc < 5) return queue_throughput(n, 0, defaults.capacity_bytes);
    const std::string limit = argv[3];
    const auto depth = static_cast<std::size_t>(std::atol(argv[4]));
    if (limit == "bounded") return queue_throughput(n, static_cast<std::int64_t>(depth), defaults.capacity_bytes);
    if (limit == "ring") return queue_throughput(n, 0, std::bit_floor(depth * kRecordBytes));
    std::fprintf(stderr, "unknown limit %s (bounded or ring)\n", limit.c_str());
    return 2;
  }
  if (mode == "pipe") return pipe_throughput(n);
  if (mode == "pingpong") return pingpong(n);
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
