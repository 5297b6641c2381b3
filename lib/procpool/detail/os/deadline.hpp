#pragma once
/// @file detail/os/deadline.hpp
/// The timeout convention of every blocking call, in one place (see docs/ARCHITECTURE.md,
/// "Waiting and timeouts"):
/// - a relative timeout becomes an absolute steady_clock deadline through deadline_after(),
///   which saturates: a timeout too long to represent (`hours::max()`, `1e300s`) gives
///   `time_point::max()`, i.e. never, instead of overflowing into the past; a negative, zero or
///   NaN timeout gives `now` (already passed: try once);
/// - `time_point::max()` means "no deadline" wherever a deadline is taken (is_never(),
///   as_deadline()), so a caller's `time_point::max()` waits forever too.
#include <chrono>
#include <optional>
#include <type_traits>

namespace procpool::os {

using SteadyClock = std::chrono::steady_clock;  // CLOCK_MONOTONIC in libstdc++
/// An optional absolute deadline: std::nullopt waits forever.
using Deadline = std::optional<SteadyClock::time_point>;

/// `now + timeout`, saturated to [now, time_point::max()]. Thread-safe (pure).
template <class Rep, class Period>
[[nodiscard]] inline SteadyClock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout,
                                                            SteadyClock::time_point now = SteadyClock::now()) noexcept {
  using Seconds = std::chrono::duration<long double>;
  const long double wanted = Seconds(timeout).count();
  if (!(wanted > 0)) return now;  // negative, zero or NaN
  const long double room = Seconds(SteadyClock::time_point::max() - now).count();
  if (wanted >= room - 1) return SteadyClock::time_point::max();
  if constexpr (std::is_floating_point_v<Rep>)
    return now + std::chrono::ceil<SteadyClock::duration>(Seconds(wanted));
  else
    return now + std::chrono::ceil<SteadyClock::duration>(timeout);  // fits: checked above
}

/// The optional form: no timeout means no deadline (wait forever). Thread-safe (pure).
template <class Rep, class Period>
[[nodiscard]] inline std::optional<SteadyClock::time_point> deadline_after(
    const std::optional<std::chrono::duration<Rep, Period>>& timeout) noexcept {
  if (!timeout) return std::nullopt;
  return deadline_after(*timeout);
}

/// True for a deadline that deadline_after saturated (or a caller's time_point::max()): wait
/// without a timeout. Thread-safe (pure).
[[nodiscard]] inline bool is_never(SteadyClock::time_point deadline) noexcept {
  return deadline == SteadyClock::time_point::max();
}

/// `deadline` as an optional deadline: time_point::max() becomes "none" (wait forever).
/// Thread-safe (pure).
[[nodiscard]] inline Deadline as_deadline(SteadyClock::time_point deadline) noexcept {
  if (is_never(deadline)) return std::nullopt;
  return deadline;
}

/// Whether `deadline` has passed (never, for no deadline). Thread-safe.
[[nodiscard]] inline bool expired(const Deadline& deadline) noexcept {
  return deadline && SteadyClock::now() >= *deadline;
}

} // namespace procpool::os
