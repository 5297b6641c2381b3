// Twin of PyMOTW's threading_semaphore.py: twenty workers share a Semaphore(5), so at most
// five are ever active; an ActivePool (a Lock and a shared list) shows which. The pool
// also records the largest number active at once, printed and checked at the end.
// Usage: threading_semaphore [threads|processes|fork] [time-scale]
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <procpool/procpool.hpp>

#include "sync_example_mode.hpp"

using sync_examples::say;

constexpr int kWorkers = 20;
constexpr int kLimit = 5;

// The seed's ActivePool; on processes its list lives in shared memory: slot 0 holds the
// length, slots 1.. the active worker numbers in activation order.
template <class mp>
class ActivePool {
public:
  void make_active(int name) {
    std::lock_guard guard(lock_);
    const int n = active_[0];
    active_[static_cast<std::size_t>(n + 1)] = name;
    active_[0] = n + 1;
    if (n + 1 > max_active_.get_obj()) max_active_.get_obj() = n + 1;
  }
  void make_inactive(int name) {
    std::lock_guard guard(lock_);
    const int n = active_[0];
    int j = 1;
    for (int i = 1; i <= n; ++i)
      if (active_[static_cast<std::size_t>(i)] != name) active_[static_cast<std::size_t>(j++)] = active_[static_cast<std::size_t>(i)];
    active_[0] = j - 1;
  }
  /// Python's str(list): ['0', '1'].
  std::string str() {
    std::lock_guard guard(lock_);
    std::string s = "[";
    for (int i = 1; i <= active_[0]; ++i)
      s += (i > 1 ? ", '" : "'") + std::to_string(active_[static_cast<std::size_t>(i)]) + "'";
    return s + "]";
  }
  int max_active() const { return max_active_.value(); }

private:
  typename mp::Lock lock_;
  // Parentheses, not braces: RawArray<int>{21} would be the one-element array [21].
  typename mp::template RawArray<int> active_ = typename mp::template RawArray<int>(std::size_t{kWorkers + 1});
  typename mp::template RawValue<int> max_active_ = typename mp::template RawValue<int>(0);
};

template <class mp>
void worker(typename mp::Semaphore& s, ActivePool<mp>& pool, int name, unsigned seed, double scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> random(0.0, 1.0);
  std::lock_guard guard(s);
  pool.make_active(name);
  say("(%-2s) Running: %s", mp::current_name().c_str(), pool.str().c_str());
  sync_examples::pause_for(random(rng) * scale);
  pool.make_inactive(name);
}

template <class mp>
int run(double scale) {
  ActivePool<mp> pool;
  typename mp::Semaphore s(kLimit);
  std::vector<std::unique_ptr<typename mp::Process>> workers;
  const unsigned base = std::random_device{}();
  for (int i = 0; i < kWorkers; ++i) {
    workers.push_back(std::make_unique<typename mp::Process>(typename mp::ProcessOptions{.name = std::to_string(i)},
                                                            &worker<mp>, std::ref(s), std::ref(pool), i,
                                                            base + static_cast<unsigned>(i), scale));
    workers.back()->start();
  }
  for (auto& w : workers) w->join();
  say("Max active: %d (limit %d)", pool.max_active(), kLimit);
  return pool.max_active() <= kLimit ? 0 : 1;
}

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  const double scale = sync_examples::time_scale(argc, argv);
  return sync_examples::run_in_mode(argc, argv, [&](auto mode) { return run<decltype(mode)>(scale); });
}
