// Core.Deadline: the one timeout-to-deadline conversion saturates instead of overflowing.
#include <doctest/doctest.h>

#include <chrono>
#include <limits>

#include "procpool/detail/os/deadline.hpp"

using namespace std::chrono_literals;
using procpool::os::deadline_after;
using procpool::os::is_never;
using Clock = std::chrono::steady_clock;

TEST_CASE("Core.Deadline.Huge timeouts mean never") {
  const auto now = Clock::now();
  CHECK(is_never(deadline_after(std::chrono::hours::max(), now)));
  CHECK(is_never(deadline_after(std::chrono::nanoseconds::max(), now)));
  CHECK(is_never(deadline_after(std::chrono::duration<double>(1e300), now)));
  CHECK(is_never(deadline_after(std::chrono::duration<double>(std::numeric_limits<double>::infinity()), now)));
  CHECK(is_never(deadline_after(std::chrono::years(10000), now)));
}

TEST_CASE("Core.Deadline.Ordinary timeouts are exact") {
  const auto now = Clock::now();
  CHECK(deadline_after(1500ms, now) == now + 1500ms);
  CHECK(deadline_after(std::chrono::duration<double>(0.25), now) == now + 250ms);
  CHECK(deadline_after(std::chrono::hours(24 * 365), now) == now + std::chrono::hours(24 * 365));
  CHECK(!is_never(deadline_after(std::chrono::hours(24 * 365 * 100), now)));
}

TEST_CASE("Core.Deadline.Negative, zero and NaN timeouts have already passed") {
  const auto now = Clock::now();
  CHECK(deadline_after(-5s, now) == now);
  CHECK(deadline_after(0s, now) == now);
  CHECK(deadline_after(std::chrono::hours::min(), now) == now);
  CHECK(deadline_after(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN()), now) == now);
}

TEST_CASE("Core.Deadline.Optional timeout") {
  CHECK(!deadline_after(std::optional<std::chrono::seconds>{}).has_value());
  CHECK(deadline_after(std::optional<std::chrono::hours>{std::chrono::hours::max()}).value() == Clock::time_point::max());
}
