// Sync benchmarks: Value += 1 under its lock from 2 processes, and uncontended
// acquire/release of the locks. Prints "name<TAB>value<TAB>unit" lines (medians of runs).
// Usage: bench-sync [ops-per-process] [runs]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include <time.h>

#include <procpool/procpool.hpp>

namespace {

using Clock = std::chrono::steady_clock;

// Python's `with v.get_lock(): v.value += 1`: the lock, then a locked read and a locked
// write that re-enter it (as CPython's Synchronized.value does).
void add_python_style(procpool::Value<long>& v, procpool::Barrier& start, long n) {
  start.wait();
  for (long i = 0; i < n; ++i) {
    std::lock_guard g(v.get_lock());
    v.set(v.value() + 1);
  }
}

// The C++ idiom: one lock, a plain increment of the shared object.
void add_direct(procpool::Value<long>& v, procpool::Barrier& start, long n) {
  start.wait();
  for (long i = 0; i < n; ++i) {
    std::lock_guard g(v.get_lock());
    ++v.get_obj();
  }
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

// Ops per second of 2 processes each doing `n` increments; the clock runs from the moment
// all three parties pass the start barrier until both children have exited.
double value_ops_per_s(void (*body)(procpool::Value<long>&, procpool::Barrier&, long), long n) {
  procpool::Value<long> v(0);
  procpool::Barrier start(3);
  procpool::Process a(body, v, start, n);
  procpool::Process b(body, v, start, n);
  a.start();
  b.start();
  start.wait();
  const auto t0 = Clock::now();
  a.join();
  b.join();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (v.value() != 2 * n) {
    std::fprintf(stderr, "bench-sync: lost updates: %ld != %ld\n", v.value(), 2 * n);
    std::exit(1);
  }
  return static_cast<double>(2 * n) / s;
}

double thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Thread CPU time, not wall time: on a busy 2-core machine the wall clock mostly measures
// the scheduler.
template <class L>
double uncontended_ns(L& lock, long n) {
  const double t0 = thread_cpu_ns();
  for (long i = 0; i < n; ++i) {
    lock.lock();
    lock.unlock();
  }
  return (thread_cpu_ns() - t0) / static_cast<double>(n);
}

} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const long ops = argc > 1 ? std::atol(argv[1]) : 2'000'000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;

  std::vector<double> py_style, direct;
  for (int r = 0; r < runs; ++r) {
    py_style.push_back(value_ops_per_s(&add_python_style, ops));
    direct.push_back(value_ops_per_s(&add_direct, ops));
  }
  std::printf("value_pystyle\t%.0f\tops/s\n", median(py_style));
  std::printf("value_direct\t%.0f\tops/s\n", median(direct));

  constexpr long kIters = 20'000'000;
  // A second, idle thread: glibc takes a non-atomic shortcut in std::mutex while a process
  // is single-threaded, which would flatter the reference.
  std::atomic<bool> stop{false};
  std::thread idle([&] {
    while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  procpool::Lock plock;
  procpool::dummy::Lock tlock;
  procpool::RLock prlock;
  std::mutex mutex;
  std::vector<double> a, b, c, d;
  for (int r = 0; r < runs; ++r) {
    a.push_back(uncontended_ns(plock, kIters));
    b.push_back(uncontended_ns(tlock, kIters));
    c.push_back(uncontended_ns(prlock, kIters));
    d.push_back(uncontended_ns(mutex, kIters));
  }
  stop = true;
  idle.join();
  std::printf("lock_process\t%.1f\tns\n", median(a));
  std::printf("lock_thread\t%.1f\tns\n", median(b));
  std::printf("rlock_process\t%.1f\tns\n", median(c));
  std::printf("std_mutex\t%.1f\tns\n", median(d));
  return 0;
}
