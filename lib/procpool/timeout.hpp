#pragma once
/// @file timeout.hpp
/// procpool::Timeout, the timeout parameter of the synchronisation primitives.
#include <chrono>
#include <optional>

namespace procpool {

/// A Python-style optional timeout: `std::nullopt` waits forever; any std::chrono duration
/// converts implicitly (`lock.acquire(true, 250ms)`).
using Timeout = std::optional<std::chrono::duration<double>>;

} // namespace procpool
