// The cluster Pool's figures (bench/cluster_pool.sh): this program is also its own worker
// (`bench-cluster-pool --procpool-worker URL -j 1`, served by procpool::init).
//   bench-cluster-pool URL QUEUE map N          cluster map of N tiny tasks (default chunksize): tasks/s
//   bench-cluster-pool URL QUEUE map1 N         the same with chunksize 1 (one Redis record per task)
//   bench-cluster-pool - - local-map N          procpool::Pool(2) map of the same tasks: tasks/s
//   bench-cluster-pool URL QUEUE rtt N          apply_async().get() round trips: p50 and p99 in microseconds
//   bench-cluster-pool URL QUEUE cpu TASKS MS   TASKS CPU-bound tasks of about MS ms: serial seconds, cluster seconds
//   bench-cluster-pool URL QUEUE all            map 100000, map1 20000, rtt 2000, cpu 16 250 in one process
// Prints `key<TAB>value` lines (bench/lib.sh).
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

int twice(int x) { return 2 * x; }
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

/// map of n tiny tasks; chunksize 0: Python's default. False when a result is wrong.
bool bench_map(procpool::cluster::Pool& pool, long n, std::size_t chunksize, const char* key) {
  const auto in = items(n);
  (void)pool.map(twice, items(100));  // the workers' first task: code paths warm
  const auto t0 = Clock::now();
  const auto out = pool.map(twice, in, chunksize);
  std::printf("%s\t%.0f\n", key, static_cast<double>(n) / seconds_since(t0));
  return out.back() == 2 * (n - 1);
}

void bench_rtt(procpool::cluster::Pool& pool, long n) {
  for (int i = 0; i < 200; ++i) (void)pool.apply(nop, i);
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    (void)pool.apply_async(nop, static_cast<int>(i)).get();
    us.push_back(seconds_since(t0) * 1e6);
  }
  std::sort(us.begin(), us.end());
  std::printf("rtt_p50_us\t%.0f\nrtt_p99_us\t%.0f\n", us[us.size() / 2], us[us.size() * 99 / 100]);
}

/// `tasks` CPU-bound tasks of about `ms` each, serially here and then on the cluster (chunksize 1).
bool bench_cpu(procpool::cluster::Pool& pool, long tasks, double ms) {
  std::uint64_t iterations = 1 << 16;  // calibrated: iterations for about `ms` here
  for (;;) {
    const auto t0 = Clock::now();
    g_sink = spin(iterations);
    const double took = seconds_since(t0) * 1000;
    if (took > 50) {
      iterations = static_cast<std::uint64_t>(static_cast<double>(iterations) * ms / took);
      break;
    }
    iterations *= 2;
  }
  const std::vector<std::uint64_t> work(static_cast<std::size_t>(tasks), iterations);
  std::uint64_t serial_sum = 0;
  auto serially = [&] {
    const auto t0 = Clock::now();
    serial_sum = 0;
    for (const auto w : work) serial_sum += spin(w);
    return seconds_since(t0);
  };
  // Serially before and after the cluster run, averaged: this VM's cores drift in speed.
  const double before = serially();
  const auto t0 = Clock::now();
  const auto out = pool.map(spin, work, 1);
  const double parallel = seconds_since(t0);
  const double serial = (before + serially()) / 2;
  std::printf("cpu_serial_s\t%.3f\ncpu_cluster_s\t%.3f\ncpu_speedup\t%.3f\n", serial, parallel, serial / parallel);
  return std::accumulate(out.begin(), out.end(), std::uint64_t{0}) == serial_sum;
}

} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s URL QUEUE map|map1|local-map|rtt|cpu|all [N [MS]]\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[3];
  const long n = argc > 4 ? std::atol(argv[4]) : 0;
  if (mode == "local-map") {
    procpool::Pool pool(2);
    const auto in = items(n);
    (void)pool.map(twice, items(100));
    const auto t0 = Clock::now();
    const auto out = pool.map(twice, in);
    std::printf("local_map_tasks_per_s\t%.0f\n", static_cast<double>(n) / seconds_since(t0));
    return out.back() == 2 * (n - 1) ? 0 : 1;
  }
  procpool::cluster::Pool pool(options(argv[1], argv[2]));
  bool ok = true;
  if (mode == "map" || mode == "all") ok = bench_map(pool, mode == "all" ? 100000 : n, 0, "map_tasks_per_s") && ok;
  if (mode == "map1" || mode == "all") ok = bench_map(pool, mode == "all" ? 20000 : n, 1, "map1_tasks_per_s") && ok;
  if (mode == "rtt" || mode == "all") bench_rtt(pool, mode == "all" ? 2000 : n);
  if (mode == "cpu" || mode == "all") ok = bench_cpu(pool, mode == "all" ? 16 : n, argc > 5 ? std::atof(argv[5]) : 250) && ok;
  if (!ok) std::fprintf(stderr, "bench-cluster-pool: wrong results\n");
  return ok ? 0 : 1;
}
