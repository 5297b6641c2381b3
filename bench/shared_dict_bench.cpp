// shared::Dict get and set from 2 processes, against the limit: a std::unordered_map under a
// std::mutex in one thread. String keys ("key0".."key9999") and 64-bit values, as the CPython
// peer (bench/shared_dict.py, Manager().dict()). Prints "name<TAB>value<TAB>unit" lines
// (medians of runs). Usage: bench-shared-dict [ops-per-process] [runs]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <procpool/procpool.hpp>

namespace {

using Clock = std::chrono::steady_clock;
using SharedDict = procpool::shared::Dict<std::string, std::int64_t>;
constexpr std::size_t kKeys = 10000;

std::vector<std::string> make_keys() {
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < kKeys; ++i) keys.push_back("key" + std::to_string(i));
  return keys;
}

// The i-th key a worker touches: a stride through all of them.
std::size_t pick(long i, long worker) { return static_cast<std::size_t>((i * 7919 + worker * 4999) % kKeys); }

void do_sets(SharedDict& d, procpool::Barrier& start, long n, long worker) {
  const auto keys = make_keys();
  start.wait();
  for (long i = 0; i < n; ++i) d.set(keys[pick(i, worker)], i);
}

void do_gets(SharedDict& d, procpool::Barrier& start, long n, long worker) {
  const auto keys = make_keys();
  std::int64_t sum = 0;
  start.wait();
  for (long i = 0; i < n; ++i) sum += *d.get(keys[pick(i, worker)]);
  if (sum < 0) std::exit(2);  // keeps the reads
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

// Ops per second of 2 processes doing `n` operations each, from the start barrier until both
// have exited.
double two_processes(void (*body)(SharedDict&, procpool::Barrier&, long, long), long n) {
  SharedDict d;
  const auto keys = make_keys();
  for (std::size_t i = 0; i < kKeys; ++i) d.set(keys[i], static_cast<std::int64_t>(i));
  procpool::Barrier start(3);
  procpool::Process a(body, d, start, n, 0L);
  procpool::Process b(body, d, start, n, 1L);
  a.start();
  b.start();
  start.wait();
  const auto t0 = Clock::now();
  a.join();
  b.join();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (a.exitcode() != 0 || b.exitcode() != 0 || d.size() != kKeys) {
    std::fprintf(stderr, "bench-shared-dict: a worker failed\n");
    std::exit(1);
  }
  return static_cast<double>(2 * n) / s;
}

// The limit: the same operations on a process-private map under a mutex, one thread.
double private_map(bool sets, long n) {
  std::unordered_map<std::string, std::int64_t> m;
  std::mutex mutex;
  const auto keys = make_keys();
  for (std::size_t i = 0; i < kKeys; ++i) m[keys[i]] = static_cast<std::int64_t>(i);
  std::int64_t sum = 0;
  const auto t0 = Clock::now();
  for (long i = 0; i < 2 * n; ++i) {
    std::lock_guard g(mutex);
    if (sets)
      m[keys[pick(i, 0)]] = i;
    else
      sum += m.find(keys[pick(i, 0)])->second;
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (sum < 0) std::exit(2);
  return static_cast<double>(2 * n) / s;
}

} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const long ops = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  std::vector<double> gets, sets, map_gets, map_sets;
  for (int r = 0; r < runs; ++r) {
    gets.push_back(two_processes(&do_gets, ops));
    sets.push_back(two_processes(&do_sets, ops));
    map_gets.push_back(private_map(false, ops));
    map_sets.push_back(private_map(true, ops));
  }
  std::printf("dict_get\t%.0f\tops/s\n", median(gets));
  std::printf("dict_set\t%.0f\tops/s\n", median(sets));
  std::printf("map_get\t%.0f\tops/s\n", median(map_gets));
  std::printf("map_set\t%.0f\tops/s\n", median(map_sets));
  return 0;
}
