// The measurements behind the one wait policy (lib/procpool/detail/os/wait.hpp): the cost of
// one spin step, and how long a waiter takes to notice a store when it sleeps on a futex versus
// when it spins. Prints "name<TAB>value<TAB>unit" lines (medians, and p90 for latencies).
// Usage: bench-wait [rounds]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <procpool/detail/os/futex.hpp>
#include <procpool/detail/os/wait.hpp>

namespace {

using Clock = std::chrono::steady_clock;
namespace os = procpool::os;

double ns_since(Clock::time_point t0, Clock::time_point t1) { return std::chrono::duration<double, std::nano>(t1 - t0).count(); }

double percentile(std::vector<double> xs, double p) {
  std::sort(xs.begin(), xs.end());
  return xs[static_cast<std::size_t>(p * static_cast<double>(xs.size() - 1))];
}

// ns per os::cpu_relax(), and per os::spin_step() (its sched_yield every kSpinYieldEvery steps
// included), with nothing else to run on this core.
double step_ns(bool with_yield) {
  constexpr std::uint32_t kSteps = 1u << 20;
  std::vector<double> runs;
  for (int r = 0; r < 7; ++r) {
    const auto t0 = Clock::now();
    for (std::uint32_t i = 1; i <= kSteps; ++i) {
      if (with_yield) os::spin_step(i);
      else os::cpu_relax();
    }
    runs.push_back(ns_since(t0, Clock::now()) / kSteps);
  }
  return percentile(runs, 0.5);
}

// Latency from a store (plus futex wake) to the waiter seeing it: `spin` waiters poll with
// os::spin_step, sleepers block in futex_wait. One waker, one waiter thread, `rounds` rounds.
std::vector<double> wake_latency(bool spin, int rounds) {
  std::atomic<std::uint32_t> word{0};
  std::atomic<std::uint32_t> armed{0};
  std::atomic<std::int64_t> woke_at{0};
  std::thread waiter([&] {
    for (int r = 0; r < rounds; ++r) {
      const auto expected = static_cast<std::uint32_t>(2 * r);
      armed.store(1, std::memory_order_release);
      if (spin) {
        for (std::uint32_t i = 1; word.load(std::memory_order_acquire) == expected; ++i) os::spin_step(i);
      } else {
        while (word.load(std::memory_order_acquire) == expected) os::futex::wait(word, expected, false);
      }
      woke_at.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
      word.store(expected + 2, std::memory_order_release);  // hand the round back
    }
  });
  std::vector<double> out;
  for (int r = 0; r < rounds; ++r) {
    const auto expected = static_cast<std::uint32_t>(2 * r);
    while (armed.exchange(0, std::memory_order_acq_rel) == 0) os::cpu_relax();
    // Give a sleeper time to reach the kernel (and its CPU time to idle), as in a real wait.
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    const auto t0 = Clock::now();
    word.store(expected + 1, std::memory_order_release);
    if (!spin) os::futex::wake(word, false);
    while (word.load(std::memory_order_acquire) != expected + 2) os::cpu_relax();
    out.push_back(static_cast<double>(woke_at.load(std::memory_order_acquire) - t0.time_since_epoch().count()));
  }
  waiter.join();
  return out;
}

} // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 2000;
  const double pause_ns = step_ns(false);
  const double step = step_ns(true);
  std::printf("pause\t%.2f\tns\n", pause_ns);
  std::printf("spin_step\t%.2f\tns\n", step);
  const auto sleeper = wake_latency(false, rounds);
  const auto spinner = wake_latency(true, rounds);
  const double sleep_p50 = percentile(sleeper, 0.5);
  std::printf("futex_wake_p50\t%.0f\tns\n", sleep_p50);
  std::printf("futex_wake_p90\t%.0f\tns\n", percentile(sleeper, 0.9));
  std::printf("spin_wake_p50\t%.0f\tns\n", percentile(spinner, 0.5));
  std::printf("spin_wake_p90\t%.0f\tns\n", percentile(spinner, 0.9));
  // How many steps one sleeper's wake-up latency buys: what kSpinStart should cover.
  std::printf("steps_per_futex_wake\t%.0f\tsteps\n", sleep_p50 / step);
  std::printf("policy_spin_start\t%u\tsteps\n", static_cast<unsigned>(os::kSpinStart));
  std::printf("policy_spin_start_time\t%.1f\tus\n", os::kSpinStart * step / 1000);
  std::printf("policy_spin_max_time\t%.1f\tus\n", os::kSpinMax * step / 1000);
  return 0;
}
