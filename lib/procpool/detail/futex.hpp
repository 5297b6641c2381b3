#pragma once
/// @file detail/futex.hpp
/// Thin futex wrappers: wait on a 32-bit word with an optional steady_clock deadline, wake.
/// `shared` selects a cross-process futex (a word in a shared mapping) or a private one.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>
#include <optional>

#include "procpool/detail/deadline.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace procpool::detail::futex {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC in libstdc++
using Deadline = std::optional<Clock::time_point>;

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

/// Sleeps while `word == expected`, until woken or `deadline` passes.
/// Returns false only when the deadline passed; spurious wake-ups return true (callers loop).
inline bool wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, bool shared,
                 const Deadline& deadline = std::nullopt) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (deadline) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch()).count();
    if (ns <= 0) return false;
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    tsp = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline: no drift across retries.
  const int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  const long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, expected, tsp, nullptr,
                            FUTEX_BITSET_MATCH_ANY);
  if (rc == -1 && errno == ETIMEDOUT) return false;
  return true;  // woken, value changed (EAGAIN) or interrupted (EINTR)
}

/// Wakes up to `count` waiters on `word` (INT_MAX: all). Returns how many were woken.
inline int wake(std::atomic<std::uint32_t>& word, bool shared, int count = INT_MAX) noexcept {
  const int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  return static_cast<int>(::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, count, nullptr, nullptr, 0));
}

/// Converts an optional relative timeout into an absolute deadline (saturating, see deadline.hpp).
template <class Rep, class Period>
inline Deadline deadline_after(const std::optional<std::chrono::duration<Rep, Period>>& timeout) {
  return detail::deadline_after(timeout);
}

} // namespace procpool::detail::futex

namespace procpool::detail {
/// One step of a bounded busy-wait before a futex wait: tells the core (and its hyper-thread
/// sibling) that we spin.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Step `i` (counting from 1) of a spin before a futex wait: a pause, and every 64 steps a
/// sched_yield(), so that with more runnable threads than cores a spinner never keeps the
/// thread it waits for off the CPU.
inline void spin_step(std::uint32_t i) noexcept {
  cpu_relax();
  if (i % 64 == 0) ::sched_yield();
}
} // namespace procpool::detail
