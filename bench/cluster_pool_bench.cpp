// The cluster Pool's figures (bench/cluster_pool.sh): this program is also its own worker
// (`bench-cluster-pool --procpool-worker URL -j 1`, served by procpool::init).
//   bench-cluster-pool URL QUEUE map N          cluster map of N tiny tasks (default chunksize): tasks/s
//   bench-cluster-pool URL QUEUE map1 N         the same with chunksize 1 (one Redis record per task)
//   bench-cluster-pool - - local-map N          procpool::Pool(2) map of the same tasks: tasks/s
//   bench-cluster-pool URL QUEUE rtt N          apply_async().get() round trips: p50 and p99 in microseconds
//   bench-cluster-pool URL QUEUE cpu TASKS MS   TASKS CPU-bound tasks of about MS ms: serial seconds, cluster seconds
// Prints `key value` lines.
#include <procpool/cluster.hpp>
#include <procpool/procpool.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int square(int x) { return x * x; }
int nop(int x) { return x; }

/// About `iterations` rounds of integer mixing: CPU only, no memory traffic.
std::uint64_t spin(std::uint64_t iterations) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    h = (h ^ i) * 1099511628211ULL;
    asm volatile("" : "+r"(h));  // one round per iteration: no closed form, no vectorising
  }
  return h;
}
volatile std::uint64_t g_sink;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

procpool::cluster::ClusterOptions options(const char* url, const char* queue) {
  procpool::cluster::ClusterOptions o;
  o.broker = url;
  o.queue = queue;
  return o;
}

std::vector<int> items(long n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s URL QUEUE map|map1|local-map|rtt|cpu N [MS]\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[3];
  const long n = std::atol(argv[4]);
  if (mode == "local-map") {
    procpool::Pool pool(2);
    const auto in = items(n);
    const auto t0 = Clock::now();
    const auto out = pool.map(square, in);
    const double s = seconds_since(t0);
    std::printf("tasks_per_s %.0f\ncheck %d\n", static_cast<double>(n) / s, out.back());
    return 0;
  }
  procpool::cluster::Pool pool(options(argv[1], argv[2]));
  if (mode == "map" || mode == "map1") {
    const auto in = items(n);
    (void)pool.map(square, items(100));  // the workers' first task: code paths warm
    const auto t0 = Clock::now();
    const auto out = pool.map(square, in, mode == "map1" ? 1 : 0);
    const double s = seconds_since(t0);
    std::printf("tasks_per_s %.0f\ncheck %d\n", static_cast<double>(n) / s, out.back());
  } else if (mode == "rtt") {
    for (int i = 0; i < 200; ++i) (void)pool.apply(nop, i);
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) {
      const auto t0 = Clock::now();
      (void)pool.apply_async(nop, static_cast<int>(i)).get();
      us.push_back(seconds_since(t0) * 1e6);
    }
    std::sort(us.begin(), us.end());
    std::printf("p50_us %.0f\np99_us %.0f\n", us[us.size() / 2], us[us.size() * 99 / 100]);
  } else if (mode == "cpu") {
    const double ms = argc > 5 ? std::atof(argv[5]) : 200;
    // Calibrate: iterations for about `ms` here.
    std::uint64_t iterations = 1 << 20;
    for (;;) {
      const auto t0 = Clock::now();
      g_sink = spin(iterations);
      const double took = seconds_since(t0) * 1000;
      if (took > 20) {
        iterations = static_cast<std::uint64_t>(static_cast<double>(iterations) * ms / took);
        break;
      }
      iterations *= 2;
    }
    std::vector<std::uint64_t> work(static_cast<std::size_t>(n), iterations);
    auto t0 = Clock::now();
    std::uint64_t serial_sum = 0;
    for (const auto w : work) serial_sum += spin(w);
    const double serial = seconds_since(t0);
    t0 = Clock::now();
    const auto out = pool.map(spin, work, 1);
    const double parallel = seconds_since(t0);
    const std::uint64_t cluster_sum = std::accumulate(out.begin(), out.end(), std::uint64_t{0});
    std::printf("serial_s %.3f\ncluster_s %.3f\nsame %d\n", serial, parallel, serial_sum == cluster_sum ? 1 : 0);
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  return 0;
}
