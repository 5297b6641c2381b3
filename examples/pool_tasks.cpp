// Twin of the seed's Pool(3) example: ten apply_async(task, i) on three workers, then
// close() and join(). Usage: pool_tasks [seconds per task, default 1]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <unistd.h>

#include <procpool/procpool.hpp>

namespace {
void task(int name, double seconds) {
  std::printf("Subprocess %d implement task %d\n", static_cast<int>(::getpid()), name);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}
} // namespace

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  procpool::Pool p(3);
  for (int i = 0; i < 10; ++i) (void)p.apply_async(&task, i, seconds);
  p.close();
  p.join();  // waits for all ten tasks
  std::printf("All subprocesses done\n");
  return 0;
}
