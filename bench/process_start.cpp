// Process start + join latency for each start method: prints "METHOD_p50<TAB>µs<TAB>us" and
// "METHOD_p90<TAB>µs<TAB>us" lines (RUNS starts each; spawn: RUNS / 4). Usage: bench-process-start [RUNS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <procpool/procpool.hpp>

namespace {
void noop() {}

struct Stats {
  double median_us;
  double p90_us;
};

Stats measure(procpool::StartMethod method, int runs) {
  std::vector<double> us;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    procpool::Process p(procpool::ProcessOptions{.start_method = method}, &noop);
    p.start();
    p.join();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (*p.exitcode() != 0) std::abort();
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 9 / 10]};
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const int runs = argc > 1 ? std::atoi(argv[1]) : 200;
  for (auto method : {procpool::StartMethod::Fork, procpool::StartMethod::Spawn, procpool::StartMethod::Forkserver}) {
    measure(method, 3);  // warm-up (starts the forkserver)
    const Stats s = measure(method, method == procpool::StartMethod::Spawn ? runs / 4 : runs);
    const std::string name(procpool::to_string(method));
    std::printf("%s_p50\t%.1f\tus\n%s_p90\t%.1f\tus\n", name.c_str(), s.median_us, name.c_str(), s.p90_us);
  }
  return 0;
}
