// One program, two backends: the seed's `from multiprocessing.dummy import Pool as ThreadPool`
// example. Built twice: pool_swap_thread (namespace mp = procpool::dummy) and
// pool_swap_process (namespace mp = procpool); nothing else differs.
#include <chrono>
#include <cstdio>
#include <thread>

#include <unistd.h>

#include <procpool/procpool.hpp>

#ifdef PROCPOOL_SWAP_THREADS
namespace mp = procpool::dummy;
#else
namespace mp = procpool;
#endif

namespace {
int f(int n) {
  std::printf("%d (pid %d)\n", n, static_cast<int>(::getpid()));
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return n * 10;
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  mp::Pool pool(10);
  const auto results = pool.map(&f, std::views::iota(0, 5));
  pool.close();
  pool.join();
  int total = 0;
  for (int r : results) total += r;
  std::printf("total %d\n", total);
  return 0;
}
