// PyMOTW threading_daemon: the program exits without waiting for the daemon thread, so its
// "Exiting" line never appears.
#include <fmt/core.h>

#include <chrono>
#include <thread>

#include <procpool/procpool.hpp>

namespace threading = procpool::threading;
using namespace std::chrono_literals;

void daemon_task() {  // not "daemon": that is daemon(3) from <unistd.h>
  fmt::print("Starting: {}\n", threading::current_thread().name());
  std::this_thread::sleep_for(2s);
  fmt::print("Exiting : {}\n", threading::current_thread().name());
}

void non_daemon() {
  fmt::print("Starting: {}\n", threading::current_thread().name());
  fmt::print("Exiting : {}\n", threading::current_thread().name());
}

int main() {
  threading::Thread d({.name = "daemon"}, daemon_task);
  d.set_daemon(true);
  threading::Thread t({.name = "non-daemon"}, non_daemon);
  d.start();
  t.start();
}
