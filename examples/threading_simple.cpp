// PyMOTW threading_simple: five threads, each printing "Worker". As in Python, main() does
// not join them: the non-daemon threads are joined when the program exits.
#include <fmt/core.h>

#include <memory>
#include <vector>

#include <procpool/procpool.hpp>

namespace threading = procpool::threading;

void worker() { fmt::print("Worker\n"); }

int main() {
  std::vector<std::unique_ptr<threading::Thread>> threads;
  for (int i = 0; i < 5; ++i) {
    threads.push_back(std::make_unique<threading::Thread>(worker));
    threads.back()->start();
  }
}
