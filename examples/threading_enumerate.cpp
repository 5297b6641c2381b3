// PyMOTW threading_enumerate: join every running thread without keeping handles to them.
#include <fmt/core.h>

#include <chrono>
#include <random>
#include <thread>

#include <procpool/procpool.hpp>

namespace threading = procpool::threading;

void worker() {
  const auto t = threading::current_thread();
  thread_local std::mt19937 rng(std::random_device{}());
  const int pause = std::uniform_int_distribution<int>(1, 5)(rng);
  fmt::print("Starting: {} sleeping {}\n", t.name(), pause);
  std::this_thread::sleep_for(std::chrono::seconds(pause));
  fmt::print("Ending : {}\n", t.name());
}

int main() {
  for (int i = 0; i < 3; ++i) {
    // Destroying the Thread object leaves its thread running: enumerate() still finds it.
    threading::Thread t(worker);
    t.set_daemon(true);
    t.start();
  }

  const auto main_thread = threading::current_thread();
  for (const auto& t : threading::enumerate()) {
    if (t == main_thread) continue;
    fmt::print("Joining : {}\n", t.name());
    t.join();
  }
}
