// The peer: Boost.Interprocess message_queue, process -> process (fork), 64-byte messages.
// Usage: boost_mq_bench throughput N [DEPTH] -> "msgs_per_s<TAB>value<TAB>msgs/s" (DEPTH messages
//          at most in the queue, 4096 by default; bench/queue.sh gives procpool's queue the same)
//        boost_mq_bench pingpong N     -> "rtt_p50<TAB>µs<TAB>us", "rtt_p99<TAB>µs<TAB>us"
// message_queue needs a name in /dev/shm: it is removed before and after the run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <boost/interprocess/ipc/message_queue.hpp>

#include "pin.hpp"

namespace bip = boost::interprocess;
using Clock = std::chrono::steady_clock;

namespace {
constexpr std::size_t kMsg = 64;
constexpr std::size_t kDepth = 4096;  // the round trip's queues; throughput takes its depth as an argument

struct Names {
  std::string a = "pp_bench_mq_a_" + std::to_string(::getpid());
  std::string b = "pp_bench_mq_b_" + std::to_string(::getpid());
  Names() { clean(); }
  ~Names() { clean(); }
  void clean() const {
    bip::message_queue::remove(a.c_str());
    bip::message_queue::remove(b.c_str());
  }
};

int throughput(long n, std::size_t depth) {
  Names names;
  bip::message_queue q(bip::create_only, names.a.c_str(), depth, kMsg);
  const pid_t child = ::fork();
  if (child == 0) {
    bench::pin_producer();
    bip::message_queue cq(bip::open_only, names.a.c_str());
    char buf[kMsg] = {};
    for (long i = 0; i <= n; ++i) {
      std::memcpy(buf, &i, sizeof i);
      cq.send(buf, kMsg, 0);
    }
    ::_exit(0);
  }
  char buf[kMsg];
  std::size_t got = 0;
  unsigned prio = 0;
  bench::pin_consumer();
  q.receive(buf, kMsg, got, prio);
  const auto t0 = Clock::now();
  for (long i = 1; i <= n; ++i) q.receive(buf, kMsg, got, prio);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::waitpid(child, nullptr, 0);
  std::printf("msgs_per_s\t%.0f\tmsgs/s\n", static_cast<double>(n) / s);
  return 0;
}

int pingpong(long n) {
  Names names;
  bip::message_queue ping(bip::create_only, names.a.c_str(), kDepth, kMsg);
  bip::message_queue pong(bip::create_only, names.b.c_str(), kDepth, kMsg);
  const pid_t child = ::fork();
  char buf[kMsg] = {};
  std::size_t got = 0;
  unsigned prio = 0;
  if (child == 0) {
    bip::message_queue cping(bip::open_only, names.a.c_str());
    bip::message_queue cpong(bip::open_only, names.b.c_str());
    for (long i = 0; i < n + 1000; ++i) {
      cping.receive(buf, kMsg, got, prio);
      cpong.send(buf, kMsg, 0);
    }
    ::_exit(0);
  }
  for (int i = 0; i < 1000; ++i) {
    ping.send(buf, kMsg, 0);
    pong.receive(buf, kMsg, got, prio);
  }
  std::vector<double> us(static_cast<std::size_t>(n));
  for (auto& u : us) {
    const auto t0 = Clock::now();
    ping.send(buf, kMsg, 0);
    pong.receive(buf, kMsg, got, prio);
    u = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  }
  ::waitpid(child, nullptr, 0);
  std::sort(us.begin(), us.end());
  std::printf("rtt_p50\t%.2f\tus\nrtt_p99\t%.2f\tus\n", us[us.size() / 2], us[us.size() * 99 / 100]);
  return 0;
}
} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s throughput N [DEPTH] | pingpong N\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const long n = std::atol(argv[2]);
  if (mode == "throughput") return throughput(n, argc > 3 ? static_cast<std::size_t>(std::atol(argv[3])) : kDepth);
  if (mode == "pingpong") return pingpong(n);
  return 2;
}
