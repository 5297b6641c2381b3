// Large ring items out of band: see detail/ring_large.hpp for the protocol and its guarantees.
#include "procpool/detail/ring_large.hpp"

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "os/fd.hpp"
#include "procpool/detail/fd_server.hpp"
#include "procpool/detail/os/deadline.hpp"
#include "procpool/detail/os/futex.hpp"
#include "procpool/errors.hpp"

namespace procpool::detail {

namespace {

constexpr std::size_t kPage = 4096;

/// One socket message: the record's id, and the pages to uncount when it is dropped.
struct LargeMessage {
  std::uint32_t id;
  std::uint32_t pages;
};

/// Thrown out of push_with's fill to withdraw the reservation when the socket is full.
struct SocketFull {};

std::uint32_t pages_of(std::size_t size) {
  const std::size_t pages = (size + kPage - 1) / kPage;
  if (pages > UINT32_MAX / 2)
    throw ValueError("procpool: an item of " + std::to_string(size) + " bytes is too large to send (at most 8 TiB)");
  return static_cast<std::uint32_t>(pages);
}

/// Milliseconds to `deadline` for poll(2): -1 forever, 0 passed.
int poll_timeout(const RingDeadline& deadline) {
  if (!deadline) return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - os::SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, INT_MAX));
}

void encode_name(std::string& out, std::string_view name) {
  const auto length = static_cast<std::uint8_t>(name.size());
  out.push_back(static_cast<char>(length));
  out.append(name);
}

std::string decode_name(std::string_view& in) {
  if (in.empty() || in.size() < 1 + std::size_t{static_cast<std::uint8_t>(in[0])})
    throw SerializationError("procpool: truncated large-item channel handle");
  const std::size_t length = static_cast<std::uint8_t>(in[0]);
  std::string name(in.substr(1, length));
  in.remove_prefix(1 + length);
  return name;
}

} // namespace

/// The socket pair and the control page of one ring's out-of-band items, shared by the
/// LargeItems object and every MappedItem taken from it (which may outlive it).
class LargeChannel {
public:
  LargeChannel(int send, int recv, int ring_fd, std::size_t state_offset) : send_(send), recv_(recv) {
    void* page = ::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, ring_fd, 0);
    if (page == MAP_FAILED) {
      const int err = errno;
      close_sockets();
      throw_errno("procpool: cannot map a ring's control page", err);
    }
    page_ = page;
    state_ = std::launder(reinterpret_cast<RingLargeState*>(static_cast<std::byte*>(page) + state_offset));
  }
  LargeChannel(const LargeChannel&) = delete;
  LargeChannel& operator=(const LargeChannel&) = delete;
  ~LargeChannel() {
    ::munmap(page_, kPage);
    close_sockets();
  }

  [[nodiscard]] RingLargeState& state() const noexcept { return *state_; }
  [[nodiscard]] int send_end() const noexcept { return send_; }
  [[nodiscard]] int recv_end() const noexcept { return recv_; }

  /// A taken item's memfd, no longer mapped here: kept as a spare in the socket if the spare
  /// budget has room, else closed (its pages freed once no one else holds it).
  void give_back(int fd, std::size_t size) noexcept {
    const std::size_t pages = (size + kPage - 1) / kPage;
    const std::uint32_t budget = state_->spare_budget_pages.load(std::memory_order_relaxed);
    std::uint32_t now = state_->spare_pages.load(std::memory_order_relaxed);
    bool reserved = false;
    while (pages <= budget && now + pages <= budget) {
      if (state_->spare_pages.compare_exchange_weak(now, now + static_cast<std::uint32_t>(pages),
                                                    std::memory_order_acq_rel)) {
        reserved = true;
        break;
      }
    }
    if (reserved) {
      const LargeMessage message{0, static_cast<std::uint32_t>(pages)};
      // The consumers' end sends, the producers' end receives: the pair's other direction.
      if (os::send_with_fd(recv_, &message, sizeof message, fd) != 0) release_spare(message.pages);
    }
    ::close(fd);  // a sent descriptor is the kernel's now
  }

  /// A spare memfd and its pages (uncounted), or -1 when there is none.
  int take_spare() noexcept {
    LargeMessage message{};
    const int fd = os::recv_with_fd(send_, &message, sizeof message);
    if (fd >= 0) release_spare(message.pages);
    return fd;
  }

private:
  void release_spare(std::uint32_t pages) noexcept {
    std::uint32_t now = state_->spare_pages.load(std::memory_order_relaxed);
    while (!state_->spare_pages.compare_exchange_weak(now, now > pages ? now - pages : 0, std::memory_order_acq_rel)) {
    }
  }
  void close_sockets() noexcept {
    if (send_ >= 0) ::close(send_);
    if (recv_ >= 0) ::close(recv_);
  }

  int send_ = -1;  ///< producers' end of the socket pair (non-blocking): items out, spares in
  int recv_ = -1;  ///< consumers' end (non-blocking): items in, spares out
  void* page_ = nullptr;
  RingLargeState* state_ = nullptr;
};

MappedItem::MappedItem(int fd, std::size_t size, std::shared_ptr<LargeChannel> home) : fd_(fd) {
  if (size == 0) return;  // nothing to map; the memfd is closed with the item
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    ::close(fd);
    fd_ = -1;
    throw_errno("procpool: cannot map a received " + std::to_string(size) + "-byte item", err);
  }
  data_ = p;
  size_ = size;
  home_ = std::move(home);
  taker_ = ::getpid();
}

MappedItem::~MappedItem() {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ < 0) return;
  // Only by the process that took it: a forked child's copy of the item is still mapped in
  // the parent, and a spare is rewritten by the next put.
  if (home_ && data_ != nullptr && taker_ == ::getpid())
    home_->give_back(fd_, size_);
  else
    ::close(fd_);
}

LargeItems::LargeItems(int ring_fd, std::size_t state_offset, std::size_t budget_bytes, std::size_t spare_bytes) {
  int pair[2];
  // SEQPACKET: one message per item, and (a socket pair) no backlog limit but the send buffer.
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0)
    throw_errno("procpool: socketpair for a queue's large items failed", errno);
  channel_ = std::make_shared<LargeChannel>(pair[0], pair[1], ring_fd, state_offset);
  RingLargeState& state = channel_->state();
  const auto to_pages = [](std::size_t bytes) {
    const std::size_t pages = bytes == 0 ? 0 : std::max<std::size_t>(1, bytes / kPage);
    return static_cast<std::uint32_t>(std::min<std::size_t>(pages, UINT32_MAX / 2));
  };
  state.budget_pages.store(to_pages(budget_bytes));
  state.spare_budget_pages.store(to_pages(spare_bytes));
  state.enabled.store(1, std::memory_order_release);
}

LargeItems::LargeItems(int ring_fd, std::size_t state_offset, std::string_view& in) {
  const std::string send_name = decode_name(in);
  const std::string recv_name = decode_name(in);
  os::UniqueFd send(fetch_descriptor(send_name));
  os::UniqueFd recv(fetch_descriptor(recv_name));
  channel_ = std::make_shared<LargeChannel>(send.get(), recv.get(), ring_fd, state_offset);
  (void)send.release();
  (void)recv.release();
}

LargeItems::~LargeItems() {
  std::lock_guard lock(served_mutex_);
  if (!served_.empty() && served_by_ == ::getpid()) {
    std::string_view names(served_);
    stop_serving_descriptor(decode_name(names));
    stop_serving_descriptor(decode_name(names));
  }
}

MappedItem LargeItems::map(int fd, std::size_t size) const { return MappedItem(fd, size, channel_); }

void LargeItems::encode_handle(std::string& out) const {
  std::lock_guard lock(served_mutex_);
  // Served once per process and object: a forked child that hands the queue on serves its own
  // (its copy of the parent's names is not served by it, and may outlive the parent).
  if (served_.empty() || served_by_ != ::getpid()) {
    std::string names;
    const std::string send_name = serve_descriptor(channel_->send_end());
    try {
      encode_name(names, send_name);
      encode_name(names, serve_descriptor(channel_->recv_end()));
    } catch (...) {
      stop_serving_descriptor(send_name);
      throw;
    }
    served_ = std::move(names);
    served_by_ = ::getpid();
  }
  out += served_;
}

bool LargeItems::wait_budget(std::uint32_t pages, const RingDeadline& deadline) {
  const std::uint32_t budget = channel_->state().budget_pages.load(std::memory_order_relaxed);
  if (budget == 0) return true;
  for (;;) {
    const std::uint32_t now = channel_->state().pages_in_flight.load(std::memory_order_acquire);
    if (now == 0 || static_cast<std::uint64_t>(now) + pages <= budget) return true;
    if (is_no_wait(deadline)) return false;
    if (!os::futex::wait(channel_->state().pages_in_flight, now, true, deadline)) return false;
  }
}

bool LargeItems::over_budget() const noexcept {
  const std::uint32_t budget = channel_->state().budget_pages.load(std::memory_order_relaxed);
  return budget != 0 && channel_->state().pages_in_flight.load(std::memory_order_relaxed) != 0;
}

void LargeItems::release_pages(std::uint32_t pages) noexcept {
  // Saturating: a count left too low by a death must not wrap (see the header).
  std::uint32_t now = channel_->state().pages_in_flight.load(std::memory_order_relaxed);
  while (!channel_->state().pages_in_flight.compare_exchange_weak(now, now > pages ? now - pages : 0, std::memory_order_acq_rel)) {
  }
  if (channel_->state().budget_pages.load(std::memory_order_relaxed) != 0) os::futex::wake(channel_->state().pages_in_flight, true);
}

int LargeItems::segment_for(std::size_t size) {
  if (const int spare = channel_->take_spare(); spare >= 0) {
    // Sized to the item: a larger spare's tail is freed, a smaller one grows.
    if (::ftruncate(spare, static_cast<off_t>(size)) == 0) return spare;
    ::close(spare);
  }
  os::UniqueFd memfd(::memfd_create("procpool-queue-item", MFD_CLOEXEC));
  if (!memfd) throw_errno("procpool: memfd_create for a large item failed", errno);
  if (::ftruncate(memfd.get(), static_cast<off_t>(size)) != 0)
    throw_errno("procpool: cannot size a " + std::to_string(size) + "-byte item segment", errno);
  return memfd.release();
}

RingStatus LargeItems::push(Ring& ring, std::span<const std::string_view> pieces, const RingDeadline& deadline,
                            std::atomic<std::uint32_t>* count_in) {
  std::size_t size = 0;
  for (const std::string_view piece : pieces) size += piece.size();
  const std::uint32_t pages = pages_of(size);
  if (ring.closed()) return RingStatus::Closed;
  if (!wait_budget(pages, deadline)) return RingStatus::Timeout;

  // The item's own segment, written whole before the record exists. Written with pwritev, not
  // through a mapping: the kernel then copies into the pages without zeroing them first (a
  // populated mapping is zeroed, then copied: 1.8x slower for 256 MiB here). A spare's pages
  // exist already: rewriting them costs a copy, not an allocation.
  os::UniqueFd memfd(segment_for(size));
  std::uint64_t offset = 0;
  for (const std::string_view piece : pieces) {
    if (const int err = os::pwrite_all(memfd.get(), piece, offset); err != 0)
      throw_errno("procpool: cannot write a " + std::to_string(size) + "-byte item segment", err);
    offset += piece.size();
  }

  for (;;) {
    try {
      return ring.push_with(sizeof(LargeRecord), deadline, [&](std::byte* dst) {
        const std::uint32_t id = channel_->state().next_id.load(std::memory_order_relaxed);
        channel_->state().next_id.store(id + 1, std::memory_order_relaxed);
        const LargeMessage message{id, pages};
        // Sent before it is counted and recorded: a death in between leaves a message without
        // a record, which the next consumer drops (and uncounts: the count can only end low).
        const int err = os::send_with_fd(channel_->send_end(), &message, sizeof message, memfd.get());
        if (err == EAGAIN || err == ENOBUFS) throw SocketFull{};
        if (err != 0) throw_errno("procpool: cannot send a large item's descriptor", err);
        channel_->state().pages_in_flight.fetch_add(pages, std::memory_order_acq_rel);
        const LargeRecord record{LargeRecord::kMarker, id, pages, size};
        std::memcpy(dst, &record, sizeof record);
        if (count_in != nullptr) count_in->fetch_add(1, std::memory_order_seq_cst);
      });
    } catch (const SocketFull&) {
      // The socket's buffer holds a few hundred descriptors: wait for consumers to take some.
      if (is_no_wait(deadline)) return RingStatus::Timeout;
      pollfd writable{channel_->send_end(), POLLOUT, 0};
      const int ready = ::poll(&writable, 1, poll_timeout(deadline));
      if (ready == 0 && deadline && os::SteadyClock::now() >= *deadline) return RingStatus::Timeout;
    }
  }
}

int LargeItems::take(std::span<const std::byte> raw) {
  LargeRecord record;
  std::memcpy(&record, raw.data(), sizeof record);
  for (;;) {
    LargeMessage next{};
    ssize_t got;
    do {
      got = ::recv(channel_->recv_end(), &next, sizeof next, MSG_PEEK | MSG_DONTWAIT);
    } while (got < 0 && errno == EINTR);
    // No message, or only later ones: a consumer that died after receiving this record's
    // descriptor (and uncounting it) took the item with it.
    if (got != static_cast<ssize_t>(sizeof next)) return -1;
    const auto ahead = static_cast<std::int32_t>(next.id - record.id);
    if (ahead > 0) return -1;
    // Uncounted before it is received: a death in between leaves the count low, never high.
    release_pages(next.pages);
    LargeMessage taken{};
    const int fd = os::recv_with_fd(channel_->recv_end(), &taken, sizeof taken);
    if (ahead == 0) {
      if (fd < 0) throw_errno("procpool: cannot receive a large item's descriptor", errno != 0 ? errno : EPROTO);
      return fd;
    }
    if (fd >= 0) ::close(fd);  // a producer died between sending it and writing its record
  }
}

} // namespace procpool::detail
