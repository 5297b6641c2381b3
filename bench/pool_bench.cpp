// Pool benchmarks; prints "name<TAB>value<TAB>unit" lines, compared with bench/pool.py by pool.sh.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <procpool/procpool.hpp>

namespace {
using Clock = std::chrono::steady_clock;

int tiny(int x) { return x + 1; }

// About 20 ms of arithmetic on one core.
double cpu_work(int seed) {
  double acc = seed;
  for (int i = 0; i < 6'000'000; ++i) acc = std::sqrt(acc + i) * 1.0000001;
  return acc;
}

// Throughput figures are the median of this many runs (CPython's too, in pool.py).
constexpr int kRepeats = 5;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void row(const char* name, double value, const char* unit) { std::printf("%s\t%.3f\t%s\n", name, value, unit); }

long private_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  long total = 0;
  for (std::string key; in >> key;) {
    long v = 0;
    std::string unit;
    if (key == "Private_Clean:" || key == "Private_Dirty:") {
      in >> v >> unit;
      total += v;
    } else {
      std::string rest;
      std::getline(in, rest);
    }
  }
  return total;
}

long rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

template <class P>
double cpu_speedup_runs(P& pool, int tasks) {
  std::vector<int> seeds(static_cast<std::size_t>(tasks));
  std::iota(seeds.begin(), seeds.end(), 1);
  auto t0 = Clock::now();
  double serial = 0;
  for (int s : seeds) serial += cpu_work(s);
  const double serial_s = seconds_since(t0);
  t0 = Clock::now();
  const auto out = pool.map(&cpu_work, seeds, 1);
  const double parallel_s = seconds_since(t0);
  if (std::abs(std::accumulate(out.begin(), out.end(), 0.0) - serial) > 1e-6 * std::abs(serial)) std::abort();
  return serial_s / parallel_s;
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const int n_map = argc > 1 ? std::atoi(argv[1]) : 1'000'000;
  const int n_imap = argc > 2 ? std::atoi(argv[2]) : 200'000;
  const int n_rtt = argc > 3 ? std::atoi(argv[3]) : 20'000;
  // First, in the fresh process (pool.py does the same): a fork's cost grows with the memory of
  // the process that forks, so measured after the maps it would time their leftovers instead.
  std::vector<double> ms;
  for (int i = 0; i < 50; ++i) {
    const auto t0 = Clock::now();
    {
      procpool::Pool pool(procpool::PoolOptions{.processes = 2, .start_method = procpool::StartMethod::Fork});
      pool.close();
      pool.join();
    }
    ms.push_back(seconds_since(t0) * 1000);
  }
  std::sort(ms.begin(), ms.end());
  row("pool2_start_stop_fork", ms[ms.size() / 2], "ms");
  {
    procpool::Pool pool(2);
    std::vector<int> in(static_cast<std::size_t>(n_map));
    std::iota(in.begin(), in.end(), 0);
    auto t0 = Clock::now();
    (void)pool.map(&tiny, in);  // the first call also commits the rings' pages
    row("map_first_call_tasks_per_s", n_map / seconds_since(t0), "tasks/s");
    std::vector<double> rates;
    for (int rep = 0; rep < kRepeats; ++rep) {
      t0 = Clock::now();
      const auto out = pool.map(&tiny, in);
      rates.push_back(n_map / seconds_since(t0));
      if (out.back() != n_map) std::abort();
    }
    row("map_tasks_per_s", median(rates), "tasks/s");
    // Argument bytes per second: each task reads one int and writes one, as a memcpy reads and
    // writes each byte once (bench-limits' memcpy_bytes_per_s is the limit it is read against).
    row("map_bytes_per_s", median(rates) * sizeof(int), "B/s");

    rates.clear();
    for (int rep = 0; rep < kRepeats; ++rep) {
      t0 = Clock::now();
      long long sum = 0;
      for (int r : pool.imap_unordered(&tiny, std::views::iota(0, n_imap), 1)) sum += r;
      rates.push_back(n_imap / seconds_since(t0));
      if (sum != static_cast<long long>(n_imap) * (n_imap + 1) / 2) std::abort();
    }
    row("imap_unordered_tasks_per_s", median(rates), "tasks/s");

    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(n_rtt));
    for (int i = 0; i < n_rtt; ++i) {
      const auto t = Clock::now();
      if (pool.apply_async(&tiny, i).get() != i + 1) std::abort();
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
    }
    std::sort(us.begin(), us.end());
    row("apply_async_rtt_p50", us[us.size() / 2], "us");
    row("apply_async_rtt_p99", us[us.size() * 99 / 100], "us");

    long rss = 0, priv = 0;
    for (int pid : pool.worker_pids()) {
      rss += rss_kib(pid);
      priv += private_kib(pid);
    }
    row("worker_rss", static_cast<double>(rss) / 2 / 1024.0, "MiB");
    row("worker_private", static_cast<double>(priv) / 2 / 1024.0, "MiB");
    row("cpu_speedup_process", cpu_speedup_runs(pool, 16), "x");
  }
  {
    procpool::dummy::Pool threads(2);
    row("cpu_speedup_thread", cpu_speedup_runs(threads, 16), "x");
    std::vector<int> in(static_cast<std::size_t>(n_map));
    std::iota(in.begin(), in.end(), 0);
    const auto t0 = Clock::now();
    (void)threads.map(&tiny, in);
    row("thread_map_tasks_per_s", n_map / seconds_since(t0), "tasks/s");
  }
  return 0;
}
