// PyMOTW threading_simpleargs: the thread's argument tells it what to do.
#include <fmt/core.h>

#include <memory>
#include <vector>

#include <procpool/procpool.hpp>

namespace threading = procpool::threading;

void worker(int num) { fmt::print("Worker: {}\n", num); }

int main() {
  std::vector<std::unique_ptr<threading::Thread>> threads;
  for (int i = 0; i < 5; ++i) {
    threads.push_back(std::make_unique<threading::Thread>(worker, i));
    threads.back()->start();
  }
}
