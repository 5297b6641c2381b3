#pragma once
/// @file detail/ring_large.hpp
/// Items too large for a ring (process backend): each travels in a memfd of its own, the ring
/// carrying only a small LargeRecord, and the memfd itself through a Unix socket pair that every
/// holder of the ring holds (SCM_RIGHTS).
///
/// Why a socket: a descriptor in flight belongs to the kernel, not to the sender, so a
/// producer may exit (or be SIGKILLed) right after put() and the item stays in the queue, as a
/// small item does. Nothing outlives the queue: once every holder has closed the socket (closed
/// the queue or died), the kernel drops the descriptors in flight and the memory goes with them.
/// A forked child inherits the socket; a spawned or forkserver child fetches it from its
/// creator's descriptor server (detail/fd_server.hpp; /proc/<pid>/fd cannot open a socket, and
/// pidfd_getfd needs ptrace rights over the parent, which Yama and container profiles refuse).
///
/// Ordering: the producer sends the descriptor and writes the record under the ring's producer
/// lock, the consumer receives it under the consumer lock, so the socket's messages are in the
/// ring's order. Each message and its record carry the same id, which makes a death between
/// the two steps harmless: a message without a record (a producer died after sending) is
/// dropped by the next consumer, a record without a message (a consumer died after receiving)
/// is skipped, as an item taken by the dead consumer.
///
/// Bound: the pages of the items in flight are counted in the ring's control page; a push waits
/// while the count plus its item would pass the budget (an item larger than the whole budget
/// waits until nothing else is in flight). The count is updated next to the socket operations,
/// so a death between them can only leave it too low (never too high: the queue cannot get
/// stuck), by at most one item per death inside those few instructions.
///
/// Recycling: a consumer done with an item (decoded, or its LargeView gone) hands the memfd
/// back through the same socket pair, the other way, as a spare; the next push rewrites its
/// pages instead of allocating fresh ones (and the consumer's unmap frees nothing): for a
/// 256 MiB item that is most of the cost of a transfer. Spares are bounded by a second count
/// in the control page (`spare_pages` against the queue's spare budget); a death between a
/// spare's count and its socket operation can only leave that count high, which means fewer
/// spares, never a wait. A spare belongs to the socket, so spares go when the queue does.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "procpool/detail/ring.hpp"

namespace procpool::detail {

/// The shared state of a ring's large items, in its control page.
struct RingLargeState {
  std::atomic<std::uint32_t> enabled{0};         ///< 1: the ring's users send large items out of band
  std::atomic<std::uint32_t> next_id{0};         ///< producers' message counter (under the producer lock)
  std::atomic<std::uint32_t> pages_in_flight{0}; ///< 4 KiB pages of the items sent and not taken; a futex word
  std::atomic<std::uint32_t> budget_pages{0};    ///< 0: no budget
  std::atomic<std::uint32_t> spare_pages{0};     ///< 4 KiB pages of the spares in the socket
  std::atomic<std::uint32_t> spare_budget_pages{0};  ///< 0: no spares (each taken item is freed)
};

class LargeChannel;

/// A large item's record in the ring.
struct LargeRecord {
  static constexpr std::uint64_t kMarker = ~std::uint64_t{0};  // no inline encoding starts with it
  std::uint64_t marker = kMarker;
  std::uint32_t id = 0;
  std::uint32_t pages = 0;
  std::uint64_t size = 0;  ///< bytes of the item's encoding
};

/// Whether `record` is a LargeRecord (an inline record never is: see kMarker).
inline bool is_large_record(std::span<const std::byte> record) noexcept {
  if (record.size() != sizeof(LargeRecord)) return false;
  std::uint64_t marker = 0;
  std::memcpy(&marker, record.data(), sizeof marker);
  return marker == LargeRecord::kMarker;
}

/// A received large item: its memfd mapped read-only. Move-only; unmaps on destruction and
/// hands the memfd back to its channel as a spare (or closes it).
class MappedItem {
public:
  MappedItem() = default;
  /// Maps `size` bytes of `fd` (all pages at once); owns `fd` (closed on failure too).
  /// `home`: where the memfd goes back once unmapped (null: closed). Throws ProcessError.
  MappedItem(int fd, std::size_t size, std::shared_ptr<LargeChannel> home = nullptr);
  MappedItem(MappedItem&& other) noexcept { swap(other); }
  MappedItem& operator=(MappedItem&& other) noexcept {
    MappedItem tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  MappedItem(const MappedItem&) = delete;
  MappedItem& operator=(const MappedItem&) = delete;
  ~MappedItem();
  [[nodiscard]] std::string_view bytes() const noexcept { return {static_cast<const char*>(data_), size_}; }
  [[nodiscard]] const void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
  void swap(MappedItem& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(fd_, other.fd_);
    std::swap(home_, other.home_);
    std::swap(taker_, other.taker_);
  }
  void* data_ = nullptr;
  std::size_t size_ = 0;
  int fd_ = -1;
  std::shared_ptr<LargeChannel> home_;
  int taker_ = 0;  ///< the pid that took it
};

/// One ring's out-of-band channel (see the file comment). Thread-safe: push and take may be
/// called concurrently from any thread of any process holding the ring.
class LargeItems {
public:
  /// A new channel (a socket pair), for the ring in memfd `ring_fd` whose RingLargeState, at
  /// `state_offset` of its control page, it initialises. The channel maps that page itself:
  /// an item's view may outlive the ring object and still hand its memfd back.
  LargeItems(int ring_fd, std::size_t state_offset, std::size_t budget_bytes, std::size_t spare_bytes);
  /// Attaches to the channel of another, live process (spawn hand-off); advances `in`.
  LargeItems(int ring_fd, std::size_t state_offset, std::string_view& in);
  LargeItems(const LargeItems&) = delete;
  LargeItems& operator=(const LargeItems&) = delete;
  ~LargeItems();
  /// What a spawned child needs to attach (serves the sockets while this object lives).
  void encode_handle(std::string& out) const;

  /// Writes an item, the concatenation of `pieces`, into a fresh memfd and pushes its record:
  /// waits for the budget, then for room in the ring and the socket, until `deadline`.
  /// `count_in` as push_item's. Throws ProcessError on a system error, ValueError if the item is
  /// larger than the budget can ever count.
  RingStatus push(Ring& ring, std::span<const std::string_view> pieces, const RingDeadline& deadline,
                  std::atomic<std::uint32_t>* count_in);

  /// Under the consumer lock, for the large record `record`: receives its memfd (the caller
  /// owns it), or returns -1 when it is gone with a dead consumer (skip the record).
  int take(std::span<const std::byte> record);

  /// Maps an item received by take() (`size` from its record); the memfd goes back as a spare
  /// when the MappedItem goes. Throws ProcessError.
  [[nodiscard]] MappedItem map(int fd, std::size_t size) const;

  /// Whether out-of-band items in flight have reached the budget (for Full's message).
  [[nodiscard]] bool over_budget() const noexcept;

private:
  void release_pages(std::uint32_t pages) noexcept;
  bool wait_budget(std::uint32_t pages, const RingDeadline& deadline);
  /// A spare memfd for an item of `size` bytes, or a fresh one.
  int segment_for(std::size_t size);

  std::shared_ptr<LargeChannel> channel_;
  mutable std::mutex served_mutex_;
  mutable std::string served_;  ///< the names under which served_by_ serves the sockets ("" until a hand-off)
  mutable int served_by_ = 0;   ///< the pid that serves them (a forked child inherits the string, not the names)
};

} // namespace procpool::detail
