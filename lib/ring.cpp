#include "procpool/detail/ring.hpp"

#include <bit>
#include <cerrno>
#include <new>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procpool/codec.hpp"
#include "procpool/errors.hpp"
#include "procpool/detail/ring_large.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/detail/os/ids.hpp"
#include "procpool/detail/os/robust_lock.hpp"
#include "procpool/detail/os/wait.hpp"
#include "procpool/log.hpp"

namespace procpool::detail {

namespace {

constexpr std::uint64_t kMagic = 0x31'30'67'6e'69'72'70'70ULL;  // "ppring01"
constexpr std::uint32_t kRecordTag = 0x5245'4344u;              // header check: tag ^ length
constexpr std::uint32_t kSkipTag = 0x534b'4950u;                // a skip to the next lap (see warm_bytes)
constexpr std::size_t kPage = 4096;
constexpr std::size_t kMinCapacity = kPage;
constexpr std::size_t round8(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }

} // namespace

/// One side (producers or consumers) of the ring. The first line is touched only by the lock
/// holder (and lock waiters); the second is what the other side reads. Keeping them apart
/// stops a spinning reader from stealing the line the holder is writing.
struct alignas(64) RingSide {
  os::RobustLockState lock;                    ///< owner pid (processes) or this process (threads)
  std::atomic<std::uint32_t> intent_valid{0};  ///< 1 while pos/count are being published
  std::atomic<std::uint32_t> sleepers{0};      ///< the other side has parties asleep (see wait_until)
  std::atomic<std::uint64_t> intent_pos{0};    ///< the values being published, for roll-forward
  std::atomic<std::uint64_t> intent_count{0};
  std::atomic<std::uint64_t> seen_pos{0};      ///< cached copy of the other side's pos
  std::atomic<std::uint64_t> seen_count{0};    ///< cached copy of the other side's count
  alignas(64) std::atomic<std::uint64_t> pos{0};  ///< head (producers) or tail (consumers), bytes
  std::atomic<std::uint64_t> count{0};            ///< records pushed / popped
};

/// A futex word that sleepers wait on; bumped by whoever must wake them.
struct alignas(64) RingWaitPoint {
  std::atomic<std::uint32_t> seq{0};
};

struct RingControl {
  std::uint64_t magic = kMagic;
  std::uint64_t capacity = 0;
  std::uint64_t max_records = 0;
  RingSide prod;
  RingSide cons;
  RingWaitPoint data;   ///< consumers wait here for records (registered in prod.sleepers)
  RingWaitPoint space;  ///< producers wait here for room (registered in cons.sleepers)
  alignas(64) std::atomic<std::uint32_t> closed{0};
  alignas(64) std::atomic<std::uint32_t> aux[Ring::kAuxWords]{};
  alignas(64) RingLargeState large;
};
static_assert(sizeof(RingControl) <= kPage, "the control block must fit its page");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

namespace {
/// Where the control page holds the out-of-band state (LargeItems maps the page itself).
std::size_t large_state_offset(const RingControl* ctl) noexcept {
  return static_cast<std::size_t>(reinterpret_cast<const std::byte*>(&ctl->large) -
                                  reinterpret_cast<const std::byte*>(ctl));
}
bool no_wait(const RingDeadline& d) noexcept { return is_no_wait(d); }
RingDeadline lock_deadline(const RingDeadline& d) noexcept { return no_wait(d) ? std::nullopt : d; }
} // namespace

/// The ring's internals, kept out of the header (hidden: no PLT indirection on the hot path).
struct __attribute__((visibility("hidden"))) RingAccess {
  /// Processes: a lock holder's death is detected (its pid is the owner); threads cannot die alone.
  static os::OwnerScope scope(const Ring& r) noexcept {
    return r.interprocess_ ? os::OwnerScope::Process : os::OwnerScope::None;
  }
  static bool lock(Ring& r, RingSide& side, const RingDeadline& deadline) {
    std::uint32_t expected = 0;
    const auto me = static_cast<std::uint32_t>(os::current_pid());
    if (side.lock.word.compare_exchange_strong(expected, me, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
    return lock_slow(r, side, me, deadline);
  }
  /// lock() for a push or pop: a non-blocking call still waits for the lock itself (it is
  /// held only for a copy, or until a dead owner is replaced); only waits for records or room
  /// are subject to "no wait". The deadline is not copied on the fast path.
  static bool lock_for_op(Ring& r, RingSide& side, const RingDeadline& deadline) {
    std::uint32_t expected = 0;
    const auto me = static_cast<std::uint32_t>(os::current_pid());
    if (side.lock.word.compare_exchange_strong(expected, me, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
    return lock_slow(r, side, me, lock_deadline(deadline));
  }
  static bool lock_slow(Ring& r, RingSide& side, std::uint32_t me, const RingDeadline& deadline);
  /// A plain store (no locked instruction): the hot path pays one atomic RMW per operation
  /// (see os::robust_unlock_unfenced).
  static void unlock(Ring& r, RingSide& side) noexcept { os::robust_unlock_unfenced(side.lock, r.interprocess_); }
  /// Under `side`'s lock, after publishing: claims the other side's sleepers, if any.
  static bool take_sleepers(RingSide& side, RingWaitPoint& wp) noexcept {
    if (side.sleepers.load(std::memory_order_relaxed) == 0) return false;
    side.sleepers.store(0, std::memory_order_relaxed);
    wp.seq.fetch_add(1, std::memory_order_acq_rel);
    return true;
  }
  static void wake_all(Ring& r, RingWaitPoint& wp) noexcept {
    wp.seq.fetch_add(1, std::memory_order_acq_rel);
    os::futex::wake(wp.seq, r.interprocess_);
  }
  static void recover(Ring& r, RingSide& side) noexcept;
  /// Under `side`'s lock: publishes `pos` (and `count`) through the intent record, so that a
  /// holder killed half-way is rolled forward by recover().
  static void publish(RingSide& side, std::uint64_t pos, std::uint64_t count, bool count_first) noexcept {
    side.intent_pos.store(pos, std::memory_order_relaxed);
    side.intent_count.store(count, std::memory_order_relaxed);
    side.intent_valid.store(1, std::memory_order_release);
    if (count_first) side.count.store(count, std::memory_order_release);
    side.pos.store(pos, std::memory_order_release);
    if (!count_first) side.count.store(count, std::memory_order_release);
    side.intent_valid.store(0, std::memory_order_release);
  }
  /// Under the producer lock: whether `bytes` more fit after `head` (with `pushed` records
  /// pushed), judged first from the cached consumer indices (no read of the consumers' cache
  /// line on most pushes), then from fresh ones.
  static bool fits(Ring& r, std::uint64_t head, std::uint64_t pushed, std::uint64_t bytes) noexcept {
    RingControl& c = *r.ctl_;
    RingSide& p = c.prod;
    const std::uint64_t max = c.max_records;
    const auto within = [&] {
      return head - p.seen_pos.load(std::memory_order_relaxed) + bytes <= r.capacity_ &&
             (max == 0 || pushed - p.seen_count.load(std::memory_order_relaxed) < max);
    };
    if (within()) return true;
    p.seen_count.store(c.cons.count.load(std::memory_order_acquire), std::memory_order_relaxed);
    p.seen_pos.store(c.cons.pos.load(std::memory_order_acquire), std::memory_order_relaxed);
    return within();
  }
  /// Under the producer lock, for a record of `need` bytes that fits at `head`: past the warm
  /// zone, starts the next lap if its beginning is free already (never a wait that a plain push
  /// would not have had), writing a skip record; returns where the record goes. The caller
  /// publishes the skip (alone or with the records after it).
  static std::uint64_t warm_head(Ring& r, std::uint64_t head, std::uint64_t pushed, std::uint64_t need) noexcept {
    const std::uint64_t offset = head & (r.capacity_ - 1);
    if (offset < r.warm_bytes() || need > r.warm_bytes()) return head;
    const std::uint64_t skip = r.capacity_ - offset;
    if (!fits(r, head, pushed, skip + need)) return head;
    const std::uint64_t header = skip | (static_cast<std::uint64_t>(kSkipTag ^ static_cast<std::uint32_t>(skip)) << 32);
    std::memcpy(r.data_ + offset, &header, sizeof header);
    return head + skip;
  }
  /// Under the consumer lock, with the record header at `tail` read: if it is a skip record,
  /// passes it (the producers may be waiting for the room it held) and returns true.
  static bool pass_skip(Ring& r, std::uint64_t header, std::uint64_t tail, std::uint64_t head);
  /// Waits until pred() (exact, for the sleep) or `deadline`: looks once, then spins, looking
  /// at the other side every `pace` steps, then sleeps on `wp`, registered in `waker`. Adapts
  /// `pace` (see kMaxPace).
  template <class Pred>
  static bool wait_until(Ring& r, RingSide& waker, RingWaitPoint& wp, std::atomic<std::uint32_t>& pace,
                         const RingDeadline& deadline, Pred pred);
  /// Pacing of a streaming wait. Each look at the other side's index pulls its cache line over,
  /// and the other side's next publication must take it back before its next atomic instruction
  /// completes: with a consumer that keeps up and looks at every spin step, every push costs
  /// the producer a cache-line round trip between cores. So while the awaited side streams (a
  /// wait ends at the first look of its spin), the waiter's spin looks half as often, down to
  /// every kMaxPace steps (2.6 µs at 40 ns a step), and the items pile up in between, to be
  /// taken in one pass from the cached index. A wait that needed more looks (a round trip, an
  /// idle peer) goes back to looking at every step, so a lone item's latency stays that of one
  /// spin step. Items already there are seen at once (the look before the spin). (16, 32, 64,
  /// 128, 256 measured on 2 cores, producer and consumer on different cores: 64 was fastest.)
  static constexpr std::uint32_t kMaxPace = 64;
};

bool RingAccess::lock_slow(Ring& r, RingSide& side, std::uint32_t me, const RingDeadline& deadline) {
  switch (os::robust_lock_slow(side.lock, me, scope(r), r.interprocess_, true, deadline)) {
    case os::AcquireResult::Acquired: return true;
    case os::AcquireResult::Failed: return false;
    case os::AcquireResult::AcquiredOwnerDied:
      logger().warn("ring: process {} died holding a {} lock; taking over",
                    side.lock.dead_owner.load(std::memory_order_relaxed),
                    &side == &r.ctl_->prod ? "producer" : "consumer");
      recover(r, side);
      return true;
  }
  return false;
}

void RingAccess::recover(Ring& r, RingSide& side) noexcept {
  // Roll forward a publication the dead owner had begun (idempotent); anything it had not
  // begun to publish is simply not there.
  if (side.intent_valid.load(std::memory_order_acquire) != 0) {
    side.count.store(side.intent_count.load(std::memory_order_relaxed), std::memory_order_release);
    side.pos.store(side.intent_pos.load(std::memory_order_relaxed), std::memory_order_release);
    side.intent_valid.store(0, std::memory_order_release);
  }
  // The cached view of the other side may predate the death; refresh it on next use.
  side.seen_pos.store(0, std::memory_order_relaxed);
  side.seen_count.store(0, std::memory_order_relaxed);
  side.sleepers.store(0, std::memory_order_relaxed);
  wake_all(r, r.ctl_->data);
  wake_all(r, r.ctl_->space);
}

bool RingAccess::pass_skip(Ring& r, std::uint64_t header, std::uint64_t tail, std::uint64_t head) {
  const auto len = static_cast<std::uint32_t>(header);
  if (static_cast<std::uint32_t>(header >> 32) != (kSkipTag ^ len)) return false;
  if (len != r.capacity_ - (tail & (r.capacity_ - 1)) || len > head - tail) {
    unlock(r, r.ctl_->cons);
    throw Error("procpool: ring corrupted: bad skip record at position " + std::to_string(tail) +
                " (shared memory overwritten outside procpool?)");
  }
  RingSide& s = r.ctl_->cons;
  publish(s, tail + len, s.count.load(std::memory_order_relaxed), false);
  const bool wake = take_sleepers(s, r.ctl_->space);
  unlock(r, s);
  if (wake) os::futex::wake(r.ctl_->space.seq, r.interprocess_);
  return true;
}

template <class Pred>
bool RingAccess::wait_until(Ring& r, RingSide& waker, RingWaitPoint& wp, std::atomic<std::uint32_t>& pace,
                            const RingDeadline& deadline, Pred pred) {
  const std::uint32_t stride = std::clamp<std::uint32_t>(pace.load(std::memory_order_relaxed), 1, kMaxPace);
  if (pred()) return true;
  if (no_wait(deadline)) return false;
  const auto sleep = [&] {
    for (;;) {
      // Register under the waker side's lock: the waker checks `sleepers` inside its own
      // critical section, after publishing, so either it sees us or we see its publication.
      // The futex value is read first: a bump after that read makes the wait return at once.
      if (!lock(r, waker, deadline)) return pred();
      const std::uint32_t seq = wp.seq.load(std::memory_order_acquire);
      if (pred()) {
        unlock(r, waker);
        return true;
      }
      waker.sleepers.store(1, std::memory_order_relaxed);
      unlock(r, waker);
      if (!os::futex::wait(wp.seq, seq, r.interprocess_, deadline)) return pred();
      if (pred()) return true;
    }
  };
  std::uint32_t steps = 0;
  std::uint32_t until_look = stride;  // a countdown, not steps % stride: no division per step
  std::uint32_t found_at = 0;         // the step of the look that succeeded; 0: none (slept)
  const auto look = [&] {
    ++steps;
    if (--until_look != 0) return false;
    until_look = stride;
    if (!pred()) return false;
    found_at = steps;
    return true;
  };
  // The budget is per Ring object and process-local: it learns this process's wake-ups.
  const bool ready = os::spin_then_sleep(&r.spin_budget_, deadline, true, look, sleep);
  const std::uint32_t next = found_at != 0 && found_at <= stride ? std::min(stride * 2, kMaxPace) : 1;
  if (next != stride) pace.store(next, std::memory_order_relaxed);
  return ready;
}

Ring::Ring(const RingOptions& options, bool interprocess) : interprocess_(interprocess) {
  std::size_t cap = std::max(options.capacity_bytes, kMinCapacity);
  if (cap > (std::size_t{1} << 40))
    throw ValueError("procpool: ring capacity of " + std::to_string(options.capacity_bytes) +
                     " bytes is too large (at most 1 TiB)");
  cap = std::bit_ceil(cap);
  const int fd = ::memfd_create("procpool-ring", MFD_CLOEXEC);
  if (fd < 0) throw_errno("procpool: memfd_create for a ring failed", errno);
  if (::ftruncate(fd, static_cast<off_t>(kPage + cap)) != 0) {
    const int err = errno;
    ::close(fd);
    throw_errno("procpool: ftruncate of a " + std::to_string(cap) + "-byte ring failed", err);
  }
  try {
    map(fd, cap);
  } catch (...) {
    ::close(fd);
    throw;
  }
  auto* ctl = new (ctl_) RingControl();
  ctl->capacity = cap;
  ctl->max_records = options.max_records;
  if (options.large_items) {
    try {
      large_ = std::make_unique<LargeItems>(fd_, large_state_offset(ctl), options.large_budget_bytes,
                                            options.large_spare_bytes);
    } catch (...) {
      ::munmap(mapping_, mapping_size_);
      ::close(fd_);
      throw;
    }
  }
}

Ring::Ring(Attach, int fd, std::size_t total_size) {
  try {
    if (total_size < kPage + kMinCapacity) throw SerializationError("procpool: bad ring handle (size)");
    map(fd, total_size - kPage);
  } catch (...) {
    ::close(fd);
    throw;
  }
}

void Ring::map(int fd, std::size_t capacity) {
  // Reserve room for control + data + a second view of data, then map the data twice so a
  // record crossing the end of the ring reads and writes as one contiguous span.
  const std::size_t total = kPage + 2 * capacity;
  void* base = ::mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) throw_errno("procpool: cannot reserve address space for a ring", errno);
  auto* bytes = static_cast<std::byte*>(base);
  void* first = ::mmap(bytes, kPage + capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
  void* second = first == MAP_FAILED ? MAP_FAILED
                                     : ::mmap(bytes + kPage + capacity, capacity, PROT_READ | PROT_WRITE,
                                              MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(kPage));
  if (second == MAP_FAILED) {
    const int err = errno;
    ::munmap(base, total);
    throw_errno("procpool: cannot map a ring", err);
  }
  mapping_ = base;
  mapping_size_ = total;
  capacity_ = capacity;
  fd_ = fd;
  ctl_ = static_cast<RingControl*>(base);
  data_ = bytes + kPage;
}

Ring::~Ring() {
  large_.reset();
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
  if (fd_ >= 0) ::close(fd_);
}

namespace {
struct RingHandle {
  std::int32_t pid;
  std::int32_t fd;
  std::uint64_t total_size;
  std::uint64_t dev;  // identity of the memfd: the fd number may be reused by then
  std::uint64_t ino;
};
} // namespace

void Ring::encode_handle(std::string& out) const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw_errno("procpool: fstat of a ring failed", errno);
  codec::encode_to(out, RingHandle{::getpid(), fd_, kPage + capacity_, static_cast<std::uint64_t>(st.st_dev),
                                   static_cast<std::uint64_t>(st.st_ino)});
  if (large_) large_->encode_handle(out);
}

std::unique_ptr<Ring> Ring::attach(std::string_view& in) {
  const auto h = codec::decode_from<RingHandle>(in);
  const int fd = open_creator_fd(h.pid, h.fd, h.dev, h.ino, "ring");
  std::unique_ptr<Ring> ring(new Ring(Attach{}, fd, static_cast<std::size_t>(h.total_size)));
  const RingControl* ctl = std::launder(ring->ctl_);
  if (ctl->magic != kMagic || ctl->capacity != ring->capacity_)
    throw SerializationError("procpool: the attached segment of process " + std::to_string(h.pid) + " is not a procpool ring");
  if (ring->ctl_->large.enabled.load(std::memory_order_acquire) != 0)
    ring->large_ = std::make_unique<LargeItems>(ring->fd_, large_state_offset(ring->ctl_), in);
  return ring;
}

std::uint64_t Ring::committed_bytes() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw_errno("procpool: fstat of a ring failed", errno);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

std::uint64_t Ring::max_records() const noexcept { return ctl_->max_records; }

std::atomic<std::uint32_t>& Ring::aux(std::size_t index) const noexcept { return ctl_->aux[index % kAuxWords]; }

bool Ring::closed() const noexcept { return ctl_->closed.load(std::memory_order_acquire) != 0; }

std::uint64_t Ring::size() const noexcept {
  // Popped first: both only grow, so the difference is never negative.
  const std::uint64_t popped = ctl_->cons.count.load(std::memory_order_seq_cst);
  const std::uint64_t pushed = ctl_->prod.count.load(std::memory_order_seq_cst);
  return pushed >= popped ? pushed - popped : 0;
}

std::uint64_t Ring::used_bytes() const noexcept {
  const std::uint64_t tail = ctl_->cons.pos.load(std::memory_order_seq_cst);
  const std::uint64_t head = ctl_->prod.pos.load(std::memory_order_seq_cst);
  return head >= tail ? head - tail : 0;
}

RingStatus Ring::begin_push(std::size_t size, const RingDeadline& deadline, std::byte*& dst) {
  if (size > max_record_size())
    throw ValueError("procpool: a record of " + std::to_string(size) + " bytes does not fit a ring of " +
                     std::to_string(capacity_) + " bytes (at most " + std::to_string(max_record_size()) +
                     " per record); raise capacity_bytes in the queue's options");
  const std::uint64_t need = round8(kHeaderBytes + size);
  RingControl& c = *ctl_;
  RingSide& p = c.prod;
  const std::uint64_t max = c.max_records;
  // Is there room, judging from the consumers' published indices? Read count before tail:
  // consumers publish tail before count.
  const auto room_now = [&] {
    const std::uint64_t popped = c.cons.count.load(std::memory_order_acquire);
    const std::uint64_t tail = c.cons.pos.load(std::memory_order_acquire);
    const std::uint64_t head = p.pos.load(std::memory_order_acquire);
    const std::uint64_t pushed = p.count.load(std::memory_order_acquire);
    return head - tail + need <= capacity_ && (max == 0 || pushed - popped < max);
  };
  for (;;) {
    if (!RingAccess::lock_for_op(*this, p, deadline)) return RingStatus::Timeout;
    if (c.closed.load(std::memory_order_relaxed) != 0) {
      RingAccess::unlock(*this, p);
      return RingStatus::Closed;
    }
    std::uint64_t head = p.pos.load(std::memory_order_relaxed);
    const std::uint64_t pushed = p.count.load(std::memory_order_relaxed);
    if (!RingAccess::fits(*this, head, pushed, need)) {
      RingAccess::unlock(*this, p);
      const bool ready = RingAccess::wait_until(*this, c.cons, c.space, space_pace_, deadline, [&] {
        return c.closed.load(std::memory_order_acquire) != 0 || room_now();
      });
      if (!ready) return RingStatus::Timeout;
      continue;
    }
    // Records then cycle through pages that are committed and cached instead of touching the
    // whole ring once. The skip is published at once, the record at commit_push.
    if (const std::uint64_t at_lap = RingAccess::warm_head(*this, head, pushed, need); at_lap != head) {
      RingAccess::publish(p, at_lap, pushed, true);
      head = at_lap;
    }
    std::byte* at = data_ + (head & (capacity_ - 1));
    const std::uint64_t header =
        static_cast<std::uint64_t>(size) | (static_cast<std::uint64_t>(kRecordTag ^ static_cast<std::uint32_t>(size)) << 32);
    std::memcpy(at, &header, sizeof header);
    dst = at + kHeaderBytes;
    return RingStatus::Ok;
  }
}

std::size_t Ring::push_many(std::span<const std::string_view> records) {
  for (const std::string_view record : records)
    if (record.size() > max_record_size())
      throw ValueError("procpool: a record of " + std::to_string(record.size()) + " bytes does not fit a ring of " +
                       std::to_string(capacity_) + " bytes (at most " + std::to_string(max_record_size()) + " per record)");
  RingControl& c = *ctl_;
  RingSide& p = c.prod;
  (void)RingAccess::lock(*this, p, std::nullopt);
  if (c.closed.load(std::memory_order_relaxed) != 0) {
    RingAccess::unlock(*this, p);
    return 0;
  }
  std::uint64_t head = p.pos.load(std::memory_order_relaxed);
  std::uint64_t pushed = p.count.load(std::memory_order_relaxed);
  std::size_t done = 0;
  for (const std::string_view record : records) {
    const std::uint64_t need = round8(kHeaderBytes + record.size());
    if (!RingAccess::fits(*this, head, pushed, need)) break;
    head = RingAccess::warm_head(*this, head, pushed, need);  // published with the records
    std::byte* at = data_ + (head & (capacity_ - 1));
    const auto size = static_cast<std::uint32_t>(record.size());
    const std::uint64_t header = size | (static_cast<std::uint64_t>(kRecordTag ^ size) << 32);
    std::memcpy(at, &header, sizeof header);
    if (!record.empty()) std::memcpy(at + kHeaderBytes, record.data(), record.size());
    head += need;
    ++pushed;
    ++done;
  }
  if (done != 0) RingAccess::publish(p, head, pushed, true);
  const bool wake = done != 0 && RingAccess::take_sleepers(p, c.data);
  RingAccess::unlock(*this, p);
  if (wake) os::futex::wake(c.data.seq, interprocess_);
  return done;
}

void Ring::commit_push(std::size_t size) noexcept {
  RingControl& c = *ctl_;
  RingSide& p = c.prod;
  const std::uint64_t head = p.pos.load(std::memory_order_relaxed) + round8(kHeaderBytes + size);
  const std::uint64_t pushed = p.count.load(std::memory_order_relaxed) + 1;
  RingAccess::publish(p, head, pushed, true);  // pos last: publishes the record
  const bool wake = RingAccess::take_sleepers(p, c.data);
  RingAccess::unlock(*this, p);
  if (wake) os::futex::wake(c.data.seq, interprocess_);
}

void Ring::abort_push() noexcept { RingAccess::unlock(*this, ctl_->prod); }

RingStatus Ring::begin_pop(const RingDeadline& deadline, const std::byte*& src, std::size_t& size) {
  RingControl& c = *ctl_;
  RingSide& s = c.cons;
  const auto has_record = [&] {
    return c.prod.pos.load(std::memory_order_acquire) != s.pos.load(std::memory_order_acquire);
  };
  for (;;) {
    // Wait for a record before taking the lock: an empty ring costs no lock traffic. Records
    // this process has seen published already (seen_head_) need no look at the producers'
    // line: after one look, a consumer takes every record published by then without another
    // (and the producers' next push finds their line still theirs).
    if (seen_head_.load(std::memory_order_relaxed) <= s.pos.load(std::memory_order_relaxed)) {
      const bool ready = RingAccess::wait_until(*this, c.prod, c.data, data_pace_, deadline, [&] {
        return has_record() || c.closed.load(std::memory_order_acquire) != 0;
      });
      if (!ready) return RingStatus::Timeout;
      if (!has_record()) {
        // closed is set under the producer lock after the last push published: seeing it, then
        // head == tail, means drained. Otherwise another consumer took the record: wait again.
        if (c.closed.load(std::memory_order_acquire) != 0 && !has_record()) return RingStatus::Closed;
        continue;
      }
    }
    if (!RingAccess::lock_for_op(*this, s, deadline)) return RingStatus::Timeout;
    const std::uint64_t tail = s.pos.load(std::memory_order_relaxed);
    std::uint64_t head = s.seen_pos.load(std::memory_order_relaxed);
    if (head <= tail) {
      head = c.prod.pos.load(std::memory_order_acquire);
      s.seen_pos.store(head, std::memory_order_relaxed);
      seen_head_.store(head, std::memory_order_relaxed);
    }
    if (head == tail) {  // another consumer took it
      RingAccess::unlock(*this, s);
      continue;
    }
    const std::byte* at = data_ + (tail & (capacity_ - 1));
    std::uint64_t header = 0;
    std::memcpy(&header, at, sizeof header);
    if (RingAccess::pass_skip(*this, header, tail, head)) continue;
    const auto len = static_cast<std::uint32_t>(header);
    const auto check = static_cast<std::uint32_t>(header >> 32);
    if (check != (kRecordTag ^ len) || round8(kHeaderBytes + len) > head - tail) {
      RingAccess::unlock(*this, s);
      throw Error("procpool: ring corrupted: bad record header at position " + std::to_string(tail) +
                  " (shared memory overwritten outside procpool?)");
    }
    src = at + kHeaderBytes;
    size = len;
    return RingStatus::Ok;
  }
}

void Ring::commit_pop(std::size_t size) noexcept {
  RingControl& c = *ctl_;
  RingSide& s = c.cons;
  const std::uint64_t tail = s.pos.load(std::memory_order_relaxed) + round8(kHeaderBytes + size);
  const std::uint64_t popped = s.count.load(std::memory_order_relaxed) + 1;
  RingAccess::publish(s, tail, popped, false);  // producers read count, then tail
  const bool wake = RingAccess::take_sleepers(s, c.space);
  RingAccess::unlock(*this, s);
  if (wake) os::futex::wake(c.space.seq, interprocess_);
}

RingStatus Ring::wait_readable(const RingDeadline& deadline) {
  RingControl& c = *ctl_;
  const auto has_data = [&] {
    return c.prod.pos.load(std::memory_order_seq_cst) != c.cons.pos.load(std::memory_order_seq_cst);
  };
  for (;;) {
    const bool ready = RingAccess::wait_until(*this, c.prod, c.data, data_pace_, deadline, [&] {
      return has_data() || c.closed.load(std::memory_order_acquire) != 0;
    });
    if (!ready) return RingStatus::Timeout;
    if (!has_data()) return RingStatus::Closed;
    // A skip record is not data: pass it, then look again.
    if (!RingAccess::lock_for_op(*this, c.cons, deadline)) return RingStatus::Timeout;
    const std::uint64_t tail = c.cons.pos.load(std::memory_order_relaxed);
    const std::uint64_t head = c.prod.pos.load(std::memory_order_acquire);
    std::uint64_t header = 0;
    if (head != tail) std::memcpy(&header, data_ + (tail & (capacity_ - 1)), sizeof header);
    if (head == tail || !RingAccess::pass_skip(*this, header, tail, head)) {
      RingAccess::unlock(*this, c.cons);
      if (head != tail) return RingStatus::Ok;
    }
  }
}

std::uint32_t Ring::data_epoch() const noexcept { return ctl_->data.seq.load(std::memory_order_seq_cst); }

bool Ring::arm_data_wakeup() {
  RingControl& c = *ctl_;
  RingAccess::lock(*this, c.prod, std::nullopt);
  // Under the producer lock, like a sleeping pop's registration: a push either published
  // before (we see its record) or publishes after and sees the flag.
  const bool empty = c.closed.load(std::memory_order_relaxed) == 0 &&
                     c.prod.pos.load(std::memory_order_relaxed) == c.cons.pos.load(std::memory_order_seq_cst);
  if (empty) c.prod.sleepers.store(1, std::memory_order_relaxed);
  RingAccess::unlock(*this, c.prod);
  return empty;
}

void Ring::disarm_data_wakeup() {
  RingControl& c = *ctl_;
  if (c.prod.sleepers.load(std::memory_order_relaxed) == 0) return;
  RingAccess::lock(*this, c.prod, std::nullopt);
  c.prod.sleepers.store(0, std::memory_order_relaxed);
  RingAccess::unlock(*this, c.prod);
}

void Ring::wait_data(std::uint32_t epoch, const RingDeadline& deadline) {
  (void)os::futex::wait(ctl_->data.seq, epoch, interprocess_, deadline);
}

void Ring::wake_consumers() noexcept { RingAccess::wake_all(*this, ctl_->data); }

bool Ring::has_data() const noexcept {
  return ctl_->prod.pos.load(std::memory_order_seq_cst) != ctl_->cons.pos.load(std::memory_order_seq_cst);
}

void Ring::close() {
  RingControl& c = *ctl_;
  // Under the producer lock, so that no push publishes after a consumer has seen "closed".
  RingAccess::lock(*this, c.prod, std::nullopt);
  c.closed.store(1, std::memory_order_release);
  RingAccess::unlock(*this, c.prod);
  RingAccess::wake_all(*this, c.data);
  RingAccess::wake_all(*this, c.space);
}

} // namespace procpool::detail
