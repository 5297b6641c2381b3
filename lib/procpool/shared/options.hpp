#pragma once
/// @file shared/options.hpp
/// The room of a shared container (Dict, List, String) and the errors its operations raise.
#include <cstddef>
#include <string>

#include "procpool/errors.hpp"

namespace procpool::shared {

/// How much shared memory a container may use. The segment holds two complete copies of the
/// container (the crash guarantee, docs/shared_memory.md), each in a heap of `initial_bytes`;
/// when an operation does not fit, both heaps double, up to `max_bytes` each. Only touched pages
/// take memory, so a generous `initial_bytes` costs nothing until it is used.
struct Options {
  std::size_t initial_bytes = std::size_t{256} << 10;  ///< each copy's heap at creation (at least 16 KiB)
  std::size_t max_bytes = std::size_t{1} << 30;        ///< each copy's heap at most; CapacityError past it
};

/// Names a container served by another process (its name()): `Dict<K, V> d(shared::Attach{name});`.
struct Attach {
  std::string name;
};

/// An operation needs more room than Options::max_bytes allows (or the system refused to grow
/// the segment). Python: MemoryError. The operation had no effect.
class CapacityError : public Error {
public:
  using Error::Error;
};

/// A Dict key that is not there (Python's KeyError).
class KeyError : public Error {
public:
  using Error::Error;
};

} // namespace procpool::shared
