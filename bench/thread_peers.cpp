// The thread backend against C++ thread pools (bench/threads.sh): procpool::dummy::Pool(2) beside
// oneTBB limited to 2 threads and std::async, in one process:
//   - map of 1M tiny tasks: dummy::Pool::map at chunksize kChunk against tbb::parallel_for with that
//     grain (simple_partitioner: chunks of at most that size), the first call on a fresh pool and the
//     median of 5 later calls;
//   - one task's round trip: apply_async().get() against task_group::run + wait and
//     std::async(std::launch::async).get().
// Prints "name<TAB>value<TAB>unit" lines. Usage: bench-threads [map items] [round trips]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <numeric>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <procpool/procpool.hpp>

namespace {
using Clock = std::chrono::steady_clock;
constexpr int kWorkers = 2;
constexpr int kRepeats = 5;
// The chunk the pool itself picks for 1M ints since its chunks are capped at an eighth of the task
// ring's warm zone (128 KiB of 4-byte items; Python's default would be 125000). Given to both sides
// explicitly, so that they split the work the same way whatever the pool's default becomes.
constexpr std::size_t kChunk = 32768;

// Not inlined: the pool calls it through a function pointer, so TBB's loop calls it too (inlined,
// TBB's loop would be vectorised into a plain array add).
[[gnu::noinline]] int tiny(int x) { return x + 1; }

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

void row(const char* name, double value, const char* unit) { std::printf("%s\t%.3f\t%s\n", name, value, unit); }

void check(const std::vector<int>& out, int n) {
  if (static_cast<int>(out.size()) != n || out.front() != 1 || out.back() != n) std::abort();
}

// Rates of the first call and the median of kRepeats later ones, for a map over `n` items.
template <class Map>
void map_rates(const char* first_key, const char* key, int n, Map map) {
  auto t0 = Clock::now();
  check(map(), n);
  row(first_key, n / seconds_since(t0), "tasks/s");
  std::vector<double> rates;
  for (int r = 0; r < kRepeats; ++r) {
    t0 = Clock::now();
    check(map(), n);
    rates.push_back(n / seconds_since(t0));
  }
  row(key, percentile(rates, 0.5), "tasks/s");
}

// p50 and p99 in µs of `n` round trips of one tiny task.
template <class RoundTrip>
void round_trips(const char* p50_key, const char* p99_key, int n, RoundTrip round_trip) {
  for (int i = 0; i < 100; ++i) round_trip(i);  // warm-up
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    if (round_trip(i) != i + 1) std::abort();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  row(p50_key, percentile(us, 0.5), "us");
  row(p99_key, percentile(us, 0.99), "us");
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const int n_map = argc > 1 ? std::atoi(argv[1]) : 1'000'000;
  const int n_rtt = argc > 2 ? std::atoi(argv[2]) : 20'000;
  std::vector<int> in(static_cast<std::size_t>(n_map));
  std::iota(in.begin(), in.end(), 0);

  {
    procpool::dummy::Pool pool(kWorkers);
    map_rates("thread_map_first_call_tasks_per_s", "thread_map_tasks_per_s", n_map,
              [&] { return pool.map(&tiny, in, kChunk); });
  }
  {
    // A pool of its own: what a pool did before (a map) trains its spin budgets and moves its
    // threads, and the round trips would measure that history.
    procpool::dummy::Pool pool(kWorkers);
    round_trips("thread_rtt_p50", "thread_rtt_p99", n_rtt, [&](int i) { return pool.apply_async(&tiny, i).get(); });
  }
  {
    tbb::global_control threads(tbb::global_control::max_allowed_parallelism, kWorkers);
    tbb::task_arena arena(kWorkers);
    map_rates("tbb_map_first_call_tasks_per_s", "tbb_map_tasks_per_s", n_map, [&] {
      std::vector<int> out(in.size());
      arena.execute([&] {
        tbb::parallel_for(
            tbb::blocked_range<std::size_t>(0, in.size(), kChunk),
            [&](const tbb::blocked_range<std::size_t>& r) {
              for (std::size_t i = r.begin(); i != r.end(); ++i) out[i] = tiny(in[i]);
            },
            tbb::simple_partitioner{});
      });
      return out;
    });
    tbb::task_group group;
    round_trips("tbb_rtt_p50", "tbb_rtt_p99", n_rtt, [&](int i) {
      int result = 0;
      arena.execute([&] {
        group.run([&] { result = tiny(i); });
        group.wait();
      });
      return result;
    });
  }
  round_trips("async_rtt_p50", "async_rtt_p99", n_rtt,
              [](int i) { return std::async(std::launch::async, &tiny, i).get(); });
  return 0;
}
