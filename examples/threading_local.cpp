// PyMOTW threading_local: each thread has its own value, and none until it sets one
// (Python's plain threading.local(): here a local<std::optional<int>>).
#include <fmt/core.h>

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include <procpool/procpool.hpp>

namespace threading = procpool::threading;

void show_value(threading::local<std::optional<int>>& data) {
  const auto name = threading::current_thread().name();
  if (*data) fmt::print("{} : value= {}\n", name, **data);
  else fmt::print("{} : value= No value yet\n", name);
}

void worker(threading::local<std::optional<int>>& data) {
  show_value(data);
  thread_local std::mt19937 rng(std::random_device{}());
  *data = std::uniform_int_distribution<int>(1, 100)(rng);
  show_value(data);
}

int main() {
  threading::local<std::optional<int>> local_data;
  show_value(local_data);
  *local_data = 1000;
  show_value(local_data);

  std::vector<std::unique_ptr<threading::Thread>> threads;
  for (int i = 0; i < 2; ++i) {
    threads.push_back(std::make_unique<threading::Thread>(worker, std::ref(local_data)));
    threads.back()->start();
  }
  // local_data lives on main()'s stack: the threads must finish before it goes away.
  for (const auto& t : threads) t->join();
}
