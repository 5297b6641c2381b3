// PyMOTW threading_timer: t2 is cancelled before it fires; t1 fires after main() is done,
// because a non-daemon thread is joined at exit.
#include <fmt/core.h>

#include <chrono>
#include <thread>

#include <procpool/procpool.hpp>

namespace threading = procpool::threading;
using namespace std::chrono_literals;

void delayed() { fmt::print("Worker running {}\n", threading::current_thread().name()); }

int main() {
  threading::Timer t1(3s, delayed);
  t1.set_name("t1");
  threading::Timer t2(3s, delayed);
  t2.set_name("t2");

  fmt::print("Starting timers\n");
  t1.start();
  t2.start();

  fmt::print("Waiting before canceling {}\n", t2.name());
  std::this_thread::sleep_for(2s);
  fmt::print("Canceling {}\n", t2.name());
  t2.cancel();
  fmt::print("Main thread done\n");
}
