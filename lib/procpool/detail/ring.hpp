#pragma once
/// @file detail/ring.hpp
/// The transport under Queue, Pipe and (next) the Pool: a multi-producer / multi-consumer ring
/// of length-prefixed variable-size records in one shared memfd segment.
///
/// Layout: one control page (indices on separate cache lines) followed by the data area, which
/// is mapped twice back to back, so a record that crosses the end of the ring is still one
/// contiguous span (no padding records, no split copies).
///
/// Concurrency: producers serialise on a producer lock, consumers on a consumer lock; the two
/// sides run in parallel and only meet through the head/tail indices. A producer copies its
/// record in and *then* publishes the new head; a consumer copies the record out and *then*
/// publishes the new tail. Empty/full waits follow the one wait policy (detail/os/wait.hpp:
/// spin with an adaptive budget per Ring object, yielding now and then, then sleep on a futex
/// word in the segment); every wait honours its deadline. While the other side streams, a
/// spinning waiter looks at its index less often (up to every 64 steps, adaptively), so that
/// the two sides' cache lines do not cross between cores on every record.
///
/// Crash guarantee (process backend). A process killed at any instruction (SIGKILL included):
/// - inside a push: the record is either wholly published or not at all; consumers never see a
///   partial record. A push that had not published leaves nothing behind.
/// - inside a pop: the record is either consumed or still at the front, and then the next
///   consumer receives it (it is never lost because a consumer died while copying it out).
/// - holding either lock: both are the one robust lock (detail/os/robust_lock.hpp) holding the
///   owner's pid; a waiter whose sleep slice (2 ms, doubling up to 10 ms) ends checks the
///   owner with pidfd (a zombie counts as dead), takes the lock over and rolls the
///   owner's half-done index update forward (an intent record makes it idempotent). So the
///   ring stays usable, typically within 2-20 ms of the death.
///
/// Cost: a push or pop takes its side's lock with one atomic compare-and-swap and releases it
/// with a plain store; sleepers of the other side register under this lock, so the publisher
/// learns of them without a fence. (A lock waiter that sets its wait bit exactly as the owner
/// releases may miss that wake-up; lock waits sleep in bounded slices, so that is a rare delay,
/// never a hang.)
/// Limits: an owner stopped (SIGSTOP) or hung inside a callback is alive, and is waited for;
/// a dead owner whose pid was already reused by a new process is not detected until that one
/// ends. The thread backend has no owner-death handling (threads do not die alone).
///
/// Working set: records cycle through the first warm_bytes() of the ring while they fit there
/// and the consumers keep up (skip records, invisible to users, jump to the next lap).
///
/// Record size: at most max_record_size() = capacity - 8 bytes. Larger records are refused
/// with procpool::ValueError naming both sizes and RingOptions::capacity_bytes; nothing is
/// truncated and nothing blocks.
///
/// Thread-safety: every member may be called concurrently from any thread of any process that
/// shares the ring, except construction and destruction.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "procpool/detail/os/futex.hpp"

namespace procpool::detail {

struct RingControl;
class LargeItems;

/// Sizing of a ring.
struct RingOptions {
  /// Bytes of the data area, rounded up to a power of two and at least one page. Each record
  /// takes 8 header bytes plus its payload, rounded up to 8. Memory is committed lazily.
  std::size_t capacity_bytes = std::size_t{4} << 20;
  /// At most this many records in the ring at once (Python's maxsize); 0: limited by bytes only.
  std::uint64_t max_records = 0;
  /// Process backend queues and pipes: a record larger than large_threshold() is sent out of
  /// band, in a memfd of its own (detail/ring_large.hpp), instead of being refused.
  bool large_items = false;
  /// Bytes of out-of-band items in flight at which pushes of more wait (0: no limit).
  std::size_t large_budget_bytes = 0;
  /// Bytes of taken items' memory kept for reuse by the next large pushes (0: none).
  std::size_t large_spare_bytes = 0;
};

/// Outcome of a ring operation.
enum class RingStatus : std::uint8_t {
  Ok,       ///< done
  Timeout,  ///< the deadline passed first (for a non-blocking call: it would have blocked)
  Closed,   ///< push: the ring is closed. pop: the ring is closed and drained.
};

/// std::nullopt: wait forever. A deadline in the past: do not wait (try once).
using RingDeadline = os::Deadline;
/// The deadline of a non-blocking call.
inline const RingDeadline kRingNoWait{os::SteadyClock::time_point::min()};
/// Whether `deadline` is kRingNoWait.
inline bool is_no_wait(const RingDeadline& deadline) noexcept {
  return deadline && *deadline == os::SteadyClock::time_point::min();
}

class Ring {
public:
  static constexpr std::size_t kHeaderBytes = 8;
  static constexpr std::size_t kAuxWords = 8;

  /// Creates a ring in a fresh memfd segment. `interprocess` selects shared futexes and
  /// owner-death detection (process backend) or private futexes (thread backend).
  Ring(const RingOptions& options, bool interprocess);
  /// Attaches to a ring created by another live process from a handle written by
  /// encode_handle(); advances `in` past it. Throws ProcessError / SerializationError.
  static std::unique_ptr<Ring> attach(std::string_view& in);
  /// Appends a handle that a spawned process can attach() to while this process lives.
  void encode_handle(std::string& out) const;

  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring();

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t max_record_size() const noexcept { return capacity_ - kHeaderBytes; }
  /// The warm zone: once the head is past it, a push starts the next lap early (a skip record
  /// to the end of the ring) if the start of the ring is free already, so that records of up to
  /// this size cycle through the same committed, cached pages instead of touching the whole
  /// ring (a first Pool::map would otherwise fault in every page of both rings). Larger records
  /// use the whole ring. Rings under 2 MiB use the whole ring: they are small already.
  [[nodiscard]] std::size_t warm_bytes() const noexcept {
    return capacity_ >= kWarmRingMin ? std::min(capacity_ / 8, kWarmMax) : capacity_;
  }
  /// Bytes of memory the ring's segment has committed (pages touched at least once).
  [[nodiscard]] std::uint64_t committed_bytes() const;
  static constexpr std::size_t kWarmRingMin = std::size_t{2} << 20;
  static constexpr std::size_t kWarmMax = std::size_t{1} << 20;
  [[nodiscard]] std::uint64_t max_records() const noexcept;
  [[nodiscard]] bool interprocess() const noexcept { return interprocess_; }

  /// The out-of-band channel of a ring created with RingOptions::large_items; null otherwise.
  [[nodiscard]] LargeItems* large() const noexcept { return large_.get(); }
  /// Records over this size go out of band (when large() is set): a quarter of the ring, so
  /// that one item never takes the room of many.
  [[nodiscard]] std::size_t large_threshold() const noexcept { return max_record_size() / 4; }

  /// Appends a record of `size` bytes, written in place by `fill(std::byte* dst)` while the
  /// producer lock is held (so keep it short; it must not use this ring). If `fill` throws,
  /// nothing is published and the exception propagates. Waits for space until `deadline`.
  /// Throws ValueError if size > max_record_size().
  template <class Fill>
  RingStatus push_with(std::size_t size, const RingDeadline& deadline, Fill&& fill) {
    std::byte* dst = nullptr;
    const RingStatus status = begin_push(size, deadline, dst);
    if (status != RingStatus::Ok) return status;
    try {
      fill(dst);
    } catch (...) {
      abort_push();
      throw;
    }
    commit_push(size);
    return RingStatus::Ok;
  }
  RingStatus push(std::span<const std::byte> record, const RingDeadline& deadline) {
    return push_with(record.size(), deadline,
                     [&](std::byte* dst) { if (!record.empty()) std::memcpy(dst, record.data(), record.size()); });
  }
  [[nodiscard]] RingStatus try_push(std::span<const std::byte> record) { return push(record, kRingNoWait); }

  /// Appends records in order, as many as there is room for now (no waiting for room), under one
  /// lock and with one publication: consumers see them all at once, and the writes of one
  /// record do not wait for the previous one's cache lines. Returns how many were appended (0
  /// if closed). Throws ValueError if one is larger than max_record_size().
  std::size_t push_many(std::span<const std::string_view> records);

  /// Removes the oldest record, handing it to `consume(std::span<const std::byte>)` while the
  /// consumer lock is held (the span is valid only during the call). If `consume` throws, the
  /// record counts as consumed (a poison record must not block the ring) and the exception
  /// propagates. Waits for a record until `deadline`; returns closed once closed and drained.
  template <class Consume>
  RingStatus pop_with(const RingDeadline& deadline, Consume&& consume) {
    const std::byte* src = nullptr;
    std::size_t size = 0;
    const RingStatus status = begin_pop(deadline, src, size);
    if (status != RingStatus::Ok) return status;
    try {
      consume(std::span<const std::byte>(src, size));
    } catch (...) {
      commit_pop(size);
      throw;
    }
    commit_pop(size);
    return RingStatus::Ok;
  }
  /// Pops into `out` (resized; its capacity is reused across calls).
  RingStatus pop(std::string& out, const RingDeadline& deadline) {
    return pop_with(deadline, [&](std::span<const std::byte> rec) {
      out.resize(rec.size());
      if (!rec.empty()) std::memcpy(out.data(), rec.data(), rec.size());
    });
  }
  [[nodiscard]] RingStatus try_pop(std::string& out) { return pop(out, kRingNoWait); }

  /// Waits until a record is available (ok), the ring is closed and drained (closed), or the
  /// deadline passes (timeout). Consumes nothing; another consumer may take the record first.
  RingStatus wait_readable(const RingDeadline& deadline);

  // -- Consumers that sleep outside pop (the pool's result handler) ----------------------------
  /// The consumers' wake-up counter: read it, check for records, then wait_data(epoch); a push
  /// that finds the wake-up armed (arm_data_wakeup) bumps it, and close() always does.
  [[nodiscard]] std::uint32_t data_epoch() const noexcept;
  /// Asks the next push to wake data waiters (as a consumer asleep in pop would). Returns
  /// false, arming nothing, if a record (or a skip) is there already or the ring is closed.
  [[nodiscard]] bool arm_data_wakeup();
  /// Withdraws an armed wake-up: the next push wakes nobody unless a consumer sleeps in pop.
  /// Only for a ring whose consumers all coordinate (no pop may be asleep meanwhile).
  void disarm_data_wakeup();
  /// Sleeps until data_epoch() != epoch or `deadline`; no spinning.
  void wait_data(std::uint32_t epoch, const RingDeadline& deadline);
  /// Wakes every consumer waiting for records (they look again and find what they find).
  void wake_consumers() noexcept;
  /// Whether a record (or a skip) is there; approximate, as size().
  [[nodiscard]] bool has_data() const noexcept;

  /// Closes the ring for everyone: pushes return closed from now on (a push that already
  /// published is kept), pops drain what is left and then return closed. Wakes all waiters.
  void close();
  [[nodiscard]] bool closed() const noexcept;

  /// Records in the ring: exact when no push or pop is in flight, else approximate.
  [[nodiscard]] std::uint64_t size() const noexcept;
  /// Bytes occupied by records (headers included): approximate like size().
  [[nodiscard]] std::uint64_t used_bytes() const noexcept;

  /// Spare 32-bit words in the shared control page for the ring's owner (e.g. JoinableQueue's
  /// unfinished-task count); zero at creation. Futex waits on them use interprocess().
  [[nodiscard]] std::atomic<std::uint32_t>& aux(std::size_t index) const noexcept;

private:
  struct Attach {};
  Ring(Attach, int fd, std::size_t total_size);
  void map(int fd, std::size_t capacity);

  RingStatus begin_push(std::size_t size, const RingDeadline& deadline, std::byte*& dst);
  void commit_push(std::size_t size) noexcept;
  void abort_push() noexcept;
  RingStatus begin_pop(const RingDeadline& deadline, const std::byte*& src, std::size_t& size);
  void commit_pop(std::size_t size) noexcept;

  RingControl* ctl_ = nullptr;
  std::unique_ptr<LargeItems> large_;
  std::byte* data_ = nullptr;
  void* mapping_ = nullptr;
  std::size_t mapping_size_ = 0;
  std::size_t capacity_ = 0;
  int fd_ = -1;
  bool interprocess_ = true;
  // The adaptive spin budget (os::SpinBudget; 0: no history yet) of this process's waits.
  // Process-local on purpose: no shared traffic.
  mutable std::atomic<std::uint32_t> spin_budget_{0};
  // How often this process's waits for records (data) and for room (space) look at the other
  // side's index while spinning: every N steps (RingAccess::kMaxPace). Process-local, as above.
  mutable std::atomic<std::uint32_t> data_pace_{1};
  mutable std::atomic<std::uint32_t> space_pace_{1};
  // The producers' head as this process's consumers last read it: records below it are
  // published, so a pop needs no look at the producers' line for them. A hint kept here, not in
  // the shared consumer side, whose first line is the consumers' lock.
  mutable std::atomic<std::uint64_t> seen_head_{0};

  friend struct RingAccess;
};

} // namespace procpool::detail
