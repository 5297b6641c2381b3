#pragma once
/// @file queue_options.hpp
/// procpool::QueueOptions, the options of a Queue, JoinableQueue, SimpleQueue or Pipe.
#include <cstddef>

namespace procpool {

/// Options of a Queue, JoinableQueue, SimpleQueue or Pipe.
struct QueueOptions {
  /// Bytes of shared ring memory (rounded up to a power of two). One item takes its encoded
  /// size plus 8 bytes, rounded up to 8. Pages are committed as the ring is used. Process
  /// backend: an item over a quarter of the ring travels out of band, in shared memory of its
  /// own (the ring holds a 24-byte record); thread backend: an item larger than
  /// capacity_bytes - 8 is refused with ValueError.
  std::size_t capacity_bytes = std::size_t{4} << 20;
  /// Process backend: bytes of out-of-band items in the queue (put and not yet taken) past
  /// which put() waits (or raises Full), as it does for a full ring; an item larger than this
  /// waits until no other is in the queue. 0: no limit. Counted in 4 KiB pages.
  std::size_t max_large_bytes = std::size_t{1} << 30;
  /// Process backend: bytes of taken out-of-band items' memory the queue keeps for reuse. The
  /// next large put rewrites those pages instead of allocating fresh ones, and the taker's
  /// unmap frees nothing: 2-3x faster for items of hundreds of MiB. The memory stays with the
  /// queue (counted in Shmem) until a put reuses it or the queue's last holder closes it.
  /// 0: each taken item's memory is freed at once. Counted in 4 KiB pages.
  std::size_t spare_large_bytes = std::size_t{512} << 20;
};

} // namespace procpool
