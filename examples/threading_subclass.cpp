// PyMOTW threading_subclass: a Thread subclass overriding run().
#include <fmt/core.h>

#include <memory>
#include <vector>

#include <procpool/procpool.hpp>

namespace threading = procpool::threading;

class MyThread : public threading::Thread {
protected:
  void run() override { fmt::print("MyThread: {}\n", name()); }
};

int main() {
  std::vector<std::unique_ptr<MyThread>> threads;
  for (int i = 0; i < 5; ++i) {
    threads.push_back(std::make_unique<MyThread>());
    threads.back()->start();
  }
  // run() is a member function: its object must outlive the thread.
  for (const auto& t : threads) t->join();
}
