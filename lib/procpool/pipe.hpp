#pragma once
/// @file pipe.hpp
/// Python's multiprocessing.Pipe: `auto [a, b] = procpool::Pipe<T>();` gives two connected
/// Connection<T> ends, each over a shared-memory ring per direction (detail/ring.hpp).
///
/// close() is local, as CPython's: it closes this process's copy of the end. An end is gone
/// once every process holding it has closed it or died (SIGKILL included; a forked child
/// holds the ends it inherited, a spawned child the ends passed to it). Then the peer's
/// recv() drains what was sent and throws EOFError, and the peer's send() throws
/// BrokenPipeError. The process backend tracks holders with a kernel pipe per end (see
/// detail/end_tokens.hpp), so a dead holder counts as closed. The thread backend has one
/// holder per end, the object itself: closing or destroying it closes the end.
///
/// Noticing: an explicit close by the last holder is seen at once (the rings are closed). A
/// holder's death is seen by a blocked recv/send/poll within about 100 ms, and by poll();
/// a send() that does not have to wait (the ring has room) does not look, so sends to a dead
/// peer succeed until the ring is full.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "procpool/backend.hpp"
#include "procpool/codec.hpp"
#include "procpool/detail/os/deadline.hpp"
#include "procpool/detail/end_tokens.hpp"
#include "procpool/detail/os/futex.hpp"
#include "procpool/detail/ring.hpp"
#include "procpool/detail/ring_items.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/errors.hpp"
#include "procpool/large_view.hpp"
#include "procpool/queue_options.hpp"

namespace procpool {

/// One end of a Pipe. Movable (the pair is returned by value); shared rings stay pinned.
/// Thread-safety: send/recv/poll may be called concurrently from several threads and
/// processes (each direction is an MPMC ring); moving, closing or destroying an end must not
/// race with its use in this process.
template <class T, class Backend>
class BasicConnection : public detail::SharedHandle<BasicConnection<T, Backend>, Backend> {
  static_assert(detail::check_item_type<T, Backend::interprocess>());

public:
  using value_type = T;

  BasicConnection(std::shared_ptr<detail::Ring> rx, std::shared_ptr<detail::Ring> tx, detail::EndTokens tokens = {})
      : rx_(std::move(rx)), tx_(std::move(tx)), tokens_(std::move(tokens)), readable_(rx_ != nullptr),
        writable_(tx_ != nullptr) {}
  BasicConnection(BasicConnection&& other) noexcept { swap(other); }
  BasicConnection& operator=(BasicConnection&& other) noexcept {
    BasicConnection tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  BasicConnection(const BasicConnection&) = delete;
  BasicConnection& operator=(const BasicConnection&) = delete;
  /// Closes this end (as close()), like CPython's Connection when it is collected.
  ~BasicConnection() { close(); }

  /// Sends `item` (of any size); waits while the direction's ring is full. Throws
  /// BrokenPipeError once the peer end is gone, StateError if this end is closed, moved-from or
  /// receive-only. The thread backend moves an rvalue in (move-only types welcome).
  void send(const T& item) { send_any(item); }
  void send(T&& item) { send_any(std::move(item)); }

  /// Receives the next item, waiting for one. Throws EOFError once the peer end is gone and
  /// everything it sent has been received.
  T recv() {
    check_usable("recv", readable_, "a send-only end (Pipe(duplex=false) gives (recv, send))");
    std::optional<T> out;
    detail::RingStatus status = pop(out, detail::kRingNoWait);
    if (status == detail::RingStatus::Timeout) status = recv_slow(out, std::nullopt);
    if (status == detail::RingStatus::Closed)
      throw EOFError("procpool: Connection.recv: the other end of the pipe is closed and nothing is left to receive");
    return std::move(*out);
  }

  /// recv() for a std::vector / std::string of trivially copyable elements, as a read-only view:
  /// an out-of-band item is read in place, without a copy (see large_view.hpp).
  LargeView<T> recv_view()
    requires ContiguousSendable<T>
  {
    check_usable("recv", readable_, "a send-only end (Pipe(duplex=false) gives (recv, send))");
    LargeView<T> view;
    auto op = [&](const detail::RingDeadline& d) {
      if constexpr (Backend::interprocess) {
        return detail::pop_view(*rx_, view, d);
      } else {
        std::optional<T> out;
        const detail::RingStatus status = detail::pop_value(*rx_, out, d);
        if (status == detail::RingStatus::Ok) detail::LargeViewAccess::hold(view, std::move(*out));
        return status;
      }
    };
    detail::RingStatus status = op(detail::kRingNoWait);
    if (status == detail::RingStatus::Timeout) status = sliced(std::nullopt, op);
    if (status == detail::RingStatus::Closed)
      throw EOFError("procpool: Connection.recv: the other end of the pipe is closed and nothing is left to receive");
    return view;
  }

  /// Whether recv() would not block (an item is there, or end of file): checks without waiting.
  [[nodiscard]] bool poll() { return poll_until(detail::kRingNoWait); }
  /// Waits at most `timeout` for poll() to become true. A negative timeout waits not at all,
  /// as CPython's poll().
  template <class Rep, class Period>
  [[nodiscard]] bool poll(std::chrono::duration<Rep, Period> timeout) {
    if (!(timeout > std::chrono::duration<Rep, Period>::zero())) return poll_until(detail::kRingNoWait);
    return poll_until(os::as_deadline(os::deadline_after(timeout)));
  }
  /// Python's poll(None): waits without limit.
  [[nodiscard]] bool poll(std::nullopt_t) { return poll_until(std::nullopt); }

  /// Closes this process's copy of the end (see the file comment). Idempotent.
  void close() noexcept {
    if (closed_) return;
    closed_ = true;
    if (!rx_ && !tx_) return;  // moved-from
    bool gone = true;          // thread backend: this object is the only holder
    if constexpr (Backend::interprocess) gone = tokens_.release();
    if (gone) close_rings();
  }
  /// Whether close() was called on this object.
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] bool readable() const noexcept { return readable_; }
  [[nodiscard]] bool writable() const noexcept { return writable_; }

private:
  // Spawn hand-off (detail::SharedHandle): which directions this end has, their rings, and
  // this process's hold on the end, handed to the child (see detail/end_tokens.hpp).
  friend detail::HandleAccess;
  void encode_handle(std::string& out) const {
    if (closed_ || (!rx_ && !tx_)) throw StateError("procpool: cannot pass a closed or moved-from Connection to a child");
    const std::uint8_t which = static_cast<std::uint8_t>((rx_ ? 1 : 0) | (tx_ ? 2 : 0));
    codec::encode_to(out, which);
    if (rx_) rx_->encode_handle(out);
    if (tx_) tx_->encode_handle(out);
    tokens_.encode_handoff(out, {rx_, tx_});
  }
  BasicConnection(detail::AttachTag, std::string_view& in) : BasicConnection(attached(in)) {}
  static BasicConnection attached(std::string_view& in) {
    const auto which = codec::decode_from<std::uint8_t>(in);
    std::shared_ptr<detail::Ring> rx, tx;
    if ((which & 1) != 0) rx = detail::Ring::attach(in);
    if ((which & 2) != 0) tx = detail::Ring::attach(in);
    auto tokens = detail::EndTokens::attach_handoff(in);
    return BasicConnection(std::move(rx), std::move(tx), std::move(tokens));
  }

  // A blocked call looks whether the peer is gone (processes) between slices of its wait.
  static constexpr auto kFirstSlice = std::chrono::milliseconds(5);
  static constexpr auto kMaxSlice = std::chrono::milliseconds(100);

  void swap(BasicConnection& other) noexcept {
    std::swap(rx_, other.rx_);
    std::swap(tx_, other.tx_);
    std::swap(tokens_, other.tokens_);
    std::swap(readable_, other.readable_);
    std::swap(writable_, other.writable_);
    std::swap(closed_, other.closed_);
  }

  void check_usable(const char* what, bool direction_ok, const char* direction_error) const {
    if (closed_) throw StateError(std::string("procpool: Connection.") + what + " on a closed connection");
    if (!rx_ && !tx_)
      throw StateError(std::string("procpool: Connection.") + what +
                       " on a moved-from connection (it was moved into another Connection object)");
    if (!direction_ok) throw StateError(std::string("procpool: Connection.") + what + " on " + direction_error);
  }

  /// Every holder of one end is gone: no producer is left for one ring and no consumer for
  /// the other. Closing them tells everyone else at once (pops drain, then end of file).
  void close_rings() noexcept {
    if (rx_) rx_->close();
    if (tx_) tx_->close();
  }

  /// Runs `op(slice deadline)` until it stops timing out or `deadline` passes; between slices
  /// (processes) checks whether the peer end is gone and if so closes the rings.
  template <class Op>
  detail::RingStatus sliced(const detail::RingDeadline& deadline, Op op) {
    if constexpr (!Backend::interprocess) {
      return op(deadline);
    } else {
      return sliced_checking_peer(deadline, op);
    }
  }
  template <class Op>
  detail::RingStatus sliced_checking_peer(const detail::RingDeadline& deadline, Op& op) {
    auto slice = std::chrono::duration_cast<os::SteadyClock::duration>(kFirstSlice);
    for (;;) {
      detail::RingDeadline until = os::SteadyClock::now() + slice;
      if (deadline && *deadline < *until) until = deadline;
      const detail::RingStatus status = op(until);
      if (status != detail::RingStatus::Timeout) return status;
      if (tokens_.peer_gone()) {
        close_rings();
        return op(detail::kRingNoWait);  // drains what is left, else closed
      }
      if (deadline && os::SteadyClock::now() >= *deadline) return status;
      slice = std::min<os::SteadyClock::duration>(slice * 2, kMaxSlice);
    }
  }

  template <class U>
  void send_any(U&& item) {
    check_usable("send", writable_, "a receive-only end (Pipe(duplex=false) gives (recv, send))");
    detail::RingStatus status = push(item, detail::kRingNoWait);
    if (status == detail::RingStatus::Timeout)
      status = sliced(std::nullopt, [&](const detail::RingDeadline& d) { return push(item, d); });
    if (status == detail::RingStatus::Closed)
      throw BrokenPipeError("procpool: Connection.send: the other end of the pipe is closed");
  }
  /// `item` is an lvalue here: forwarded as what the caller gave (a push that fails leaves it).
  template <class U>
  detail::RingStatus push(U& item, const detail::RingDeadline& deadline) {
    if constexpr (Backend::interprocess)
      return detail::push_item(*tx_, static_cast<const T&>(item), deadline);
    else if constexpr (std::is_const_v<U>)
      return detail::push_value<T>(*tx_, item, deadline);
    else
      return detail::push_value<T>(*tx_, std::move(item), deadline);
  }
  detail::RingStatus pop(std::optional<T>& out, const detail::RingDeadline& deadline) {
    if constexpr (Backend::interprocess)
      return detail::pop_item(*rx_, out, deadline);
    else
      return detail::pop_value(*rx_, out, deadline);
  }
  detail::RingStatus recv_slow(std::optional<T>& out, const detail::RingDeadline& deadline) {
    return sliced(deadline, [&](const detail::RingDeadline& d) { return pop(out, d); });
  }

  bool poll_until(const detail::RingDeadline& deadline) {
    check_usable("poll", readable_, "a send-only end");
    detail::RingStatus status = rx_->wait_readable(detail::kRingNoWait);
    if (status == detail::RingStatus::Timeout) {
      if constexpr (Backend::interprocess) {
        if (tokens_.peer_gone()) {
          close_rings();
          return true;
        }
      }
      if (detail::is_no_wait(deadline)) return false;
      status = sliced(deadline, [&](const detail::RingDeadline& d) { return rx_->wait_readable(d); });
    }
    return status != detail::RingStatus::Timeout;
  }

  std::shared_ptr<detail::Ring> rx_;
  std::shared_ptr<detail::Ring> tx_;
  detail::EndTokens tokens_;  ///< process backend: this process's hold on the end
  bool readable_ = false;
  bool writable_ = false;
  bool closed_ = false;
};

namespace detail {
template <class T, class Backend>
std::pair<BasicConnection<T, Backend>, BasicConnection<T, Backend>> make_pipe(bool duplex, const QueueOptions& options) {
  using C = BasicConnection<T, Backend>;
  const RingOptions ring_options{options.capacity_bytes, 0, Backend::interprocess, options.max_large_bytes,
                                 options.spare_large_bytes};
  auto make_ring = [&] {
    if constexpr (Backend::interprocess) {
      return std::make_shared<Ring>(ring_options, true);
    } else {
      // The items still in a direction are destroyed with its ring.
      return std::shared_ptr<Ring>(new Ring(ring_options, false), [](Ring* ring) {
        drain_values<T>(*ring);
        delete ring;
      });
    }
  };
  auto forward = make_ring();
  auto backward = duplex ? make_ring() : nullptr;
  std::pair<EndTokens, EndTokens> tokens;
  if constexpr (Backend::interprocess) tokens = EndTokens::create_pair();
  // Duplex: a sends on `forward` and receives on `backward`; b the reverse.
  // One-way: a only receives, b only sends (Python's order).
  if (!duplex) return {C(forward, nullptr, std::move(tokens.first)), C(nullptr, forward, std::move(tokens.second))};
  return {C(backward, forward, std::move(tokens.first)), C(forward, backward, std::move(tokens.second))};
}
} // namespace detail

template <class B>
template <class T>
std::pair<BasicConnection<T, B>, BasicConnection<T, B>> detail::BackendTypes<B>::Pipe(bool duplex,
                                                                                    const QueueOptions& options) {
  return detail::make_pipe<T, B>(duplex, options);
}

template <class T>
using Connection = Processes::Connection<T>;

/// Two connected ends. duplex: both can send and receive. Otherwise, as Python, the first
/// end only receives and the second only sends.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true, const QueueOptions& options = {}) {
  return Processes::Pipe<T>(duplex, options);
}

namespace dummy {
template <class T>
using Connection = Threads::Connection<T>;
/// The thread backend's Pipe.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true, const QueueOptions& options = {}) {
  return Threads::Pipe<T>(duplex, options);
}
} // namespace dummy

} // namespace procpool
