#pragma once
/// @file queue_options.hpp
/// procpool::QueueOptions, the options of a Queue, JoinableQueue, SimpleQueue or Pipe.
#include <cstddef>

namespace procpool {

/// Options of a Queue, JoinableQueue, SimpleQueue or Pipe.
struct QueueOptions {
  /// Bytes of shared ring memory (rounded up to a power of two). One item takes its encoded
  /// size plus 8 bytes, rounded up to 8; an item larger than capacity_bytes - 8 is refused
  /// with ValueError. Pages are committed as the ring is used.
  std::size_t capacity_bytes = std::size_t{4} << 20;
};

} // namespace procpool
