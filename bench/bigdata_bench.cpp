// bench-bigdata: a 256 MiB std::vector<double> between two processes (bench/bigdata.sh).
// Prints `key<TAB>GB/s<TAB>unit` lines, each the median of kReps timed transfers after a warm-up:
//   queue_vector        Queue::put in one process to Queue::get (a new std::vector) in the other
//   queue_view          the same to Queue::get_view (a span over the shared pages, no copy)
//   pool_apply          Pool(1).apply_async(echo, v).get(): argument there, result back (2 x 256 MiB)
//   memcpy_fresh        one memcpy into a freshly allocated buffer (its pages faulted in on the way)
//   memcpy_prefaulted   one memcpy into a buffer whose pages are already there
// Transfer times run from the sender's first instruction of put to the receiver's return (one
// CLOCK_MONOTONIC for the machine).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <procpool/procpool.hpp>

namespace {

using Clock = std::chrono::steady_clock;
using Vec = std::vector<double>;
constexpr std::size_t kBytes = std::size_t{256} << 20;
constexpr std::size_t kCount = kBytes / sizeof(double);
constexpr int kReps = 3;

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Vec source() {
  Vec v(kCount);
  for (std::size_t i = 0; i < kCount; ++i) v[i] = static_cast<double>(i);
  return v;
}

Vec echo(Vec v) { return v; }

double gbps(double bytes, double seconds) { return bytes / seconds / 1e9; }

double memcpy_fresh(const Vec& from) {
  std::vector<double> times;
  for (int r = 0; r <= kReps; ++r) {
    const double t0 = now_s();
    std::unique_ptr<double[]> to(new double[kCount]);  // not initialised: fresh pages
    std::memcpy(to.get(), from.data(), kBytes);
    const double t1 = now_s();
    if (to[kCount - 1] != from.back()) std::abort();
    if (r > 0) times.push_back(t1 - t0);
  }
  return gbps(kBytes, median(times));
}

double memcpy_prefaulted(const Vec& from) {
  Vec to(kCount, 1.0);
  std::vector<double> times;
  for (int r = 0; r <= kReps; ++r) {
    const double t0 = now_s();
    std::memcpy(to.data(), from.data(), kBytes);
    const double t1 = now_s();
    if (r > 0) times.push_back(t1 - t0);
  }
  return gbps(kBytes, median(times));
}

/// Transfers through a Queue: received as a vector, then as a view (a fresh child for each).
double through_queue(bool view) {
  procpool::Queue<Vec> items;
  procpool::Queue<int> go;
  procpool::Queue<double> started;
  procpool::Process sender(procpool::ProcessOptions{.start_method = procpool::StartMethod::Fork}, [&] {
    const Vec v = source();
    for (int r = 0; r <= kReps; ++r) {
      (void)go.get();
      started.put(now_s());
      items.put(v);
    }
  });
  sender.start();
  std::vector<double> times;
  for (int r = 0; r <= kReps; ++r) {
    go.put(r);
    double t1 = 0;
    if (view) {
      const procpool::LargeView<Vec> got = items.get_view();
      t1 = now_s();
      if (got.size() != kCount || got[kCount - 1] != static_cast<double>(kCount - 1)) std::abort();
    } else {
      const Vec got = items.get();
      t1 = now_s();
      if (got.size() != kCount || got.back() != static_cast<double>(kCount - 1)) std::abort();
    }
    const double t0 = started.get();
    if (r > 0) times.push_back(t1 - t0);
  }
  sender.join();
  return gbps(kBytes, median(times));
}

double through_pool(const Vec& v) {
  procpool::Pool pool(1);
  std::vector<double> times;
  for (int r = 0; r <= kReps; ++r) {
    const double t0 = now_s();
    const Vec back = pool.apply_async(&echo, v).get();
    const double t1 = now_s();
    if (back.size() != kCount || back.back() != v.back()) std::abort();
    if (r > 0) times.push_back(t1 - t0);
  }
  return gbps(2.0 * kBytes, median(times));
}

} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  std::printf("queue_vector\t%.3f\tGB/s\n", through_queue(false));
  std::printf("queue_view\t%.3f\tGB/s\n", through_queue(true));
  {
    const Vec v = source();
    std::printf("pool_apply\t%.3f\tGB/s\n", through_pool(v));
    std::printf("memcpy_fresh\t%.3f\tGB/s\n", memcpy_fresh(v));
    std::printf("memcpy_prefaulted\t%.3f\tGB/s\n", memcpy_prefaulted(v));
  }
  return 0;
}
