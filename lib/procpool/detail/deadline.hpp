#pragma once
/// @file detail/deadline.hpp
/// The one conversion from a relative timeout to an absolute steady_clock deadline.
/// It saturates: a timeout too long to represent (`std::chrono::hours::max()`, `1e300s`) gives
/// `time_point::max()`, i.e. "never", instead of overflowing into the past; a negative or NaN
/// timeout gives `now` (already passed: try once). Every timed wait in procpool goes through here.
#include <chrono>
#include <optional>
#include <type_traits>

namespace procpool::detail {

using SteadyClock = std::chrono::steady_clock;

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

/// The optional form: no timeout means no deadline (wait forever).
template <class Rep, class Period>
[[nodiscard]] inline std::optional<SteadyClock::time_point> deadline_after(
    const std::optional<std::chrono::duration<Rep, Period>>& timeout) noexcept {
  if (!timeout) return std::nullopt;
  return deadline_after(*timeout);
}

/// True for a deadline that deadline_after saturated: callers may wait without a timeout.
[[nodiscard]] inline bool is_never(SteadyClock::time_point deadline) noexcept {
  return deadline == SteadyClock::time_point::max();
}

} // namespace procpool::detail
