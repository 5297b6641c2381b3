#pragma once
/// @file detail/os/futex.hpp
/// Thin futex wrappers: wait on a 32-bit word with an optional steady_clock deadline, wake.
/// `shared` selects a cross-process futex (a word in a shared mapping) or a private one.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

#include "procpool/detail/os/deadline.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace procpool::os::futex {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

/// Sleeps while `word == expected`, until woken or `deadline` passes (none, or
/// time_point::max(): no limit). Returns false only when the deadline passed; spurious
/// wake-ups return true (callers loop). Thread-safe.
inline bool wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, bool shared,
                 const Deadline& deadline = std::nullopt) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (deadline && !is_never(*deadline)) {
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
/// Thread-safe.
inline int wake(std::atomic<std::uint32_t>& word, bool shared, int count = INT_MAX) noexcept {
  const int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  return static_cast<int>(::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, count, nullptr, nullptr, 0));
}

} // namespace procpool::os::futex
