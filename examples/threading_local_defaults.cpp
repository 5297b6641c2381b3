// PyMOTW threading_local_defaults: every thread starts from the same initial value; the
// initializer runs once per thread, on that thread (Python's MyLocal(1000).__init__).
#include <fmt/core.h>

#include <functional>
#include <memory>
#include <random>
#include <vector>

#include <procpool/procpool.hpp>

namespace threading = procpool::threading;

using MyLocal = threading::local<int>;

void show_value(MyLocal& data) {
  const int value = *data;  // the first access in a thread runs the initializer
  fmt::print("{} : value= {}\n", threading::current_thread().name(), value);
}

void worker(MyLocal& data) {
  show_value(data);
  thread_local std::mt19937 rng(std::random_device{}());
  *data = std::uniform_int_distribution<int>(1, 100)(rng);
  show_value(data);
}

int main() {
  const void* id = nullptr;
  MyLocal local_data([&id] {
    fmt::print("(Initializing {} for {})\n", id, threading::current_thread().name());
    return 1000;
  });
  id = &local_data;
  show_value(local_data);

  std::vector<std::unique_ptr<threading::Thread>> threads;
  for (int i = 0; i < 2; ++i) {
    threads.push_back(std::make_unique<threading::Thread>(worker, std::ref(local_data)));
    threads.back()->start();
  }
  for (const auto& t : threads) t->join();
}
