// Twin of PyMOTW's threading_lock.py: five workers increment a Counter guarded by a Lock,
// three times each, after random pauses; the final count is 15. On processes the counter
// lives in shared memory (a RawValue) next to the Lock.
// Usage: threading_lock [threads|processes|fork] [time-scale]
#include <functional>
#include <random>
#include <vector>
#include <memory>

#include <procpool/procpool.hpp>

#include "sync_example_mode.hpp"

using sync_examples::say;

template <class mp>
class Counter {
public:
  explicit Counter(int start = 0) : value_(start) {}
  void increment() {
    lock_.acquire();
    try {
      say("(%-10s) Acquired lock", mp::current_name().c_str());
      value_.get_obj() = value_.get_obj() + 1;
    } catch (...) {
      lock_.release();
      throw;
    }
    lock_.release();
  }
  [[nodiscard]] int value() const { return value_.value(); }

private:
  typename mp::Lock lock_;
  typename mp::template RawValue<int> value_;
};

template <class mp>
void worker(Counter<mp>& c, unsigned seed, double scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> random(0.0, 1.0);
  for (int i = 0; i < 3; ++i) {
    const double pause = random(rng);
    say("(%-10s) Sleeping %0.02f", mp::current_name().c_str(), pause);
    sync_examples::pause_for(pause * scale);
    c.increment();
  }
  say("(%-10s) Done", mp::current_name().c_str());
}

template <class mp>
int run(double scale) {
  Counter<mp> counter;
  std::vector<std::unique_ptr<typename mp::Process>> workers;
  const unsigned base = std::random_device{}();
  for (unsigned i = 0; i < 5; ++i) {
    workers.push_back(std::make_unique<typename mp::Process>(&worker<mp>, std::ref(counter), base + i, scale));
    workers.back()->start();
  }
  say("(%-10s) Waiting for worker threads", mp::current_name().c_str());
  for (auto& w : workers) w->join();
  say("(%-10s) Counter: %d", mp::current_name().c_str(), counter.value());
  return counter.value() == 15 ? 0 : 1;
}

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const double scale = sync_examples::time_scale(argc, argv);
  return sync_examples::run_in_mode(argc, argv, [&](auto mode) { return run<decltype(mode)>(scale); });
}
