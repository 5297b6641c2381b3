// The SummingThread: sum 0..999,999 in two halves on two threads, then add the halves.
#include <fmt/core.h>

#include <cstdint>

#include <procpool/procpool.hpp>

namespace threading = procpool::threading;

class SummingThread : public threading::Thread {
public:
  SummingThread(std::int64_t low, std::int64_t high) : low_(low), high_(high) {}
  ~SummingThread() override {
    if (is_alive()) join();  // run() uses our members: it must finish before they go
  }

  [[nodiscard]] std::int64_t total() const { return total_; }  // read after join()

protected:
  void run() override {
    for (std::int64_t i = low_; i < high_; ++i) total_ += i;
  }

private:
  std::int64_t low_, high_;
  std::int64_t total_ = 0;
};

int main() {
  SummingThread thread1(0, 500'000);
  SummingThread thread2(500'000, 1'000'000);
  thread1.start();  // this actually causes the thread to run
  thread2.start();
  thread1.join();   // this waits until the thread has completed
  thread2.join();
  // At this point, both threads have completed.
  fmt::print("{}\n", thread1.total() + thread2.total());
}
