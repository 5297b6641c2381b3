// Twin of PyMOTW's threading_lock_noblock.py: three workers try a non-blocking acquire
// until each has held the lock three times, counting their attempts.
// Usage: threading_lock_noblock [threads|processes|fork|spawn|forkserver] [time-scale]
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include <procpool/procpool.hpp>

#include "sync_example_mode.hpp"

using sync_examples::say;

template <class mp>
void worker(typename mp::Lock& lock, unsigned seed, double scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> random(0.0, 1.0);
  auto random_pause = [&] { sync_examples::pause_for(random(rng) * scale); };
  say("(%-8s) Starting", mp::current_name().c_str());
  int num_tries = 0;
  int num_acquires = 0;
  while (num_acquires < 3) {
    random_pause();
    const bool have_it = lock.acquire(false);
    ++num_tries;
    if (have_it) {
      say("(%-8s) Iteration %d: Acquired", mp::current_name().c_str(), num_tries);
      ++num_acquires;
      random_pause();
      lock.release();
    } else {
      say("(%-8s) Iteration %d: Not acquired", mp::current_name().c_str(), num_tries);
    }
  }
  say("(%-8s) Done after %d iterations", mp::current_name().c_str(), num_tries);
}

template <class mp>
int run(double scale) {
  typename mp::Lock lock;
  std::vector<std::unique_ptr<typename mp::Process>> workers;
  const unsigned base = std::random_device{}();
  for (unsigned i = 0; i < 3; ++i) {
    workers.push_back(std::make_unique<typename mp::Process>(&worker<mp>, std::ref(lock), base + i, scale));
    workers.back()->start();
  }
  for (auto& w : workers) w->join();
  return 0;
}

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const double scale = sync_examples::time_scale(argc, argv);
  return sync_examples::run_in_mode(argc, argv, [&](auto mode) { return run<decltype(mode)>(scale); });
}
