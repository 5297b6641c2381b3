// The seed's SummingThread sum of 0..999,999, done with Pool.map over chunks: each worker
// process sums one range; the parent adds the partial sums.
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <utility>
#include <vector>

#include <procpool/procpool.hpp>

namespace {
std::int64_t sum_range(std::pair<std::int64_t, std::int64_t> range) {
  std::int64_t total = 0;
  for (std::int64_t i = range.first; i < range.second; ++i) total += i;
  return total;
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const std::vector<std::pair<std::int64_t, std::int64_t>> parts{{0, 500000}, {500000, 1000000}};
  procpool::Pool pool(2);
  const std::vector<std::int64_t> totals = pool.map(&sum_range, parts);
  std::printf("%lld\n", static_cast<long long>(std::accumulate(totals.begin(), totals.end(), std::int64_t{0})));
  return 0;
}
