// PyMOTW threading_names: named threads, and one with the default name "Thread-1".
#include <fmt/core.h>

#include <chrono>
#include <thread>

#include <procpool/procpool.hpp>

namespace threading = procpool::threading;
using namespace std::chrono_literals;

void worker() {
  fmt::print("{} Starting\n", threading::current_thread().name());
  std::this_thread::sleep_for(2s);
  fmt::print("{} Exiting\n", threading::current_thread().name());
}

void my_service() {
  fmt::print("{} Starting\n", threading::current_thread().name());
  std::this_thread::sleep_for(3s);
  fmt::print("{} Exiting\n", threading::current_thread().name());
}

int main() {
  threading::Thread t({.name = "my_service"}, my_service);
  threading::Thread w({.name = "worker"}, worker);
  threading::Thread w2(worker);  // use default name
  w.start();
  w2.start();
  t.start();
}
