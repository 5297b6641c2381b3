// Process start + join latency for each start method: prints one TSV line per method,
// "method<TAB>median_us<TAB>p90_us<TAB>runs".
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
    std::printf("%s\t%.1f\t%.1f\t%d\n", std::string(procpool::to_string(method)).c_str(), s.median_us, s.p90_us,
                method == procpool::StartMethod::Spawn ? runs / 4 : runs);
  }
  return 0;
}
