#pragma once
/// @file detail/os/wait.hpp
/// The one spin-then-sleep policy of every wait in procpool (ring waits, the robust lock,
/// Semaphore, Event, AsyncResult, IMapResult): before sleeping on a futex (or a condition
/// variable), a waiter spins a bounded number of steps, since most waits end within a few µs
/// and a sleep costs a wake-up round trip that is far longer. The constants come from
/// bench/wait_bench.cpp (bench/wait.sh); docs/ARCHITECTURE.md ("Waiting and timeouts") has
/// the figures.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include <sched.h>

#include "procpool/detail/os/deadline.hpp"

namespace procpool::os {

/// One pause: tells the core (and its hyper-thread sibling) that we spin.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Every this many steps a spinner yields the CPU, so that with more runnable threads than
/// cores it never keeps the thread it waits for off the CPU.
inline constexpr std::uint32_t kSpinYieldEvery = 64;
/// Bounds of a spin, in steps. kSpinStart is the budget of a wait without history (about one
/// futex wake-up latency of spinning); an adaptive budget moves within [kSpinMin, kSpinMax].
inline constexpr std::uint32_t kSpinMin = 256;
inline constexpr std::uint32_t kSpinStart = 1024;
inline constexpr std::uint32_t kSpinMax = 4096;
/// A sleep that ended sooner than this would have been covered by spinning longer.
inline constexpr std::chrono::microseconds kShortSleep{200};
/// No spin when the deadline is nearer than this: the spin could overrun it.
inline constexpr std::chrono::milliseconds kSpinDeadlineMargin{1};

/// Step `i` (counting from 1) of a spin: a pause, and a sched_yield() every kSpinYieldEvery.
inline void spin_step(std::uint32_t i) noexcept {
  cpu_relax();
  if (i % kSpinYieldEvery == 0) ::sched_yield();
}

/// Whether a wait until `deadline` may spin first (no deadline, or one far enough away).
[[nodiscard]] inline bool may_spin(const Deadline& deadline) noexcept {
  // Compared as now + margin: `*deadline - now` overflows for a deadline far in the past.
  return !deadline || *deadline > SteadyClock::now() + kSpinDeadlineMargin;
}

/// Spins up to `steps` steps until `ready()`; returns whether it became ready.
template <class Ready>
[[nodiscard]] inline bool spin_until(Ready&& ready, std::uint32_t steps = kSpinStart) {
  for (std::uint32_t i = 1; i <= steps; ++i) {
    spin_step(i);
    if (ready()) return true;
  }
  return false;
}

/// An adaptive spin budget kept in one 32-bit word of the waited-on object (shared memory
/// included; 0 means "no history yet"). After a spin that failed, the sleep that followed
/// tells how to adapt: a short one means a longer spin would have saved the futex round trip
/// (double the budget), a long one means spinning is wasted CPU here (halve it). Relaxed
/// loads and stores: a lost update only costs a less apt budget. Thread- and process-safe.
class SpinBudget {
public:
  explicit SpinBudget(std::atomic<std::uint32_t>& word) noexcept : word_(word) {}

  /// The current budget, in steps.
  [[nodiscard]] std::uint32_t steps() const noexcept {
    const std::uint32_t v = word_.load(std::memory_order_relaxed);
    return v == 0 ? kSpinStart : std::clamp(v, kSpinMin, kSpinMax);
  }

  /// Adapts after a failed spin of `steps` steps followed by a sleep of `slept`.
  void after_sleep(std::uint32_t steps, SteadyClock::duration slept) noexcept {
    const std::uint32_t next = slept < kShortSleep ? std::min(steps * 2, kSpinMax) : std::max(steps / 2, kSpinMin);
    if (next != steps) word_.store(next, std::memory_order_relaxed);
  }

private:
  std::atomic<std::uint32_t>& word_;
};

/// The policy in one call. Spins until `ready()` (the budget: `budget_word`'s SpinBudget, or
/// kSpinStart for a wait without one; no spin when the deadline is near), returning
/// `when_ready` if that succeeds; otherwise calls `sleep()`, which blocks on the caller's futex
/// (or condition variable) until done or `deadline`, adapts the budget from how long that
/// took, and returns sleep()'s result. Thread-safe as `ready` and `sleep` are.
template <class Result, class Ready, class Sleep>
Result spin_then_sleep(std::atomic<std::uint32_t>* budget_word, const Deadline& deadline, Result when_ready,
                       Ready&& ready, Sleep&& sleep) {
  if (!may_spin(deadline)) return sleep();
  if (budget_word == nullptr) return spin_until(ready, kSpinStart) ? when_ready : sleep();
  SpinBudget budget(*budget_word);
  const std::uint32_t steps = budget.steps();
  if (spin_until(ready, steps)) return when_ready;
  const auto slept_at = SteadyClock::now();
  Result result = sleep();
  budget.after_sleep(steps, SteadyClock::now() - slept_at);
  return result;
}

} // namespace procpool::os
