#pragma once
/// @file pipe.hpp
/// Python's multiprocessing.Pipe: `auto [a, b] = procpool::Pipe<T>();` gives two connected
/// Connection<T> ends, each over a shared-memory ring per direction (detail/ring.hpp).
///
/// close() on an end closes it for every process that shares it (there is no per-process
/// descriptor to count): the peer's recv() then drains what was sent and throws EOFError,
/// and the peer's send() throws BrokenPipeError.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "procpool/codec.hpp"
#include "procpool/detail/ring.hpp"
#include "procpool/detail/ring_items.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/errors.hpp"

namespace procpool {

/// One end of a Pipe. Movable (the pair is returned by value); shared rings stay pinned.
/// Thread-safety: send/recv/poll may be called concurrently from several threads and
/// processes (each direction is an MPMC ring); moving or destroying an end must not race
/// with its use.
template <class T, class Backend>
class BasicConnection : public detail::SharedObjectTag<Backend> {
  static_assert(detail::check_item_type<T>());

public:
  using value_type = T;

  BasicConnection(std::shared_ptr<detail::Ring> rx, std::shared_ptr<detail::Ring> tx) : rx_(std::move(rx)), tx_(std::move(tx)) {}
  BasicConnection(BasicConnection&&) noexcept = default;
  BasicConnection& operator=(BasicConnection&&) noexcept = default;
  BasicConnection(const BasicConnection&) = delete;
  BasicConnection& operator=(const BasicConnection&) = delete;
  ~BasicConnection() = default;

  /// Sends `item`; waits while the direction's ring is full. Throws BrokenPipeError if the
  /// peer closed, StateError if this end is closed or receive-only, ValueError if too large.
  void send(const T& item) {
    if (!tx_) throw StateError("procpool: Connection.send on a receive-only end (Pipe(duplex=false) gives (recv, send))");
    check_open("send");
    if (detail::push_item(*tx_, item, std::nullopt) == detail::RingStatus::closed)
      throw BrokenPipeError("procpool: Connection.send: the other end of the pipe is closed");
  }

  /// Receives the next item, waiting for one. Throws EOFError once the peer has closed and
  /// everything it sent has been received.
  T recv() {
    if (!rx_) throw StateError("procpool: Connection.recv on a send-only end (Pipe(duplex=false) gives (recv, send))");
    check_open("recv");
    std::optional<T> out;
    if (detail::pop_item(*rx_, out, std::nullopt) == detail::RingStatus::closed)
      throw EOFError("procpool: Connection.recv: the other end of the pipe is closed and nothing is left to receive");
    return std::move(*out);
  }

  /// Whether recv() would not block (an item is there, or end of file): checks without waiting.
  [[nodiscard]] bool poll() { return poll_until(detail::kRingNoWait); }
  /// Waits at most `timeout` for poll() to become true.
  template <class Rep, class Period>
  [[nodiscard]] bool poll(std::chrono::duration<Rep, Period> timeout) {
    return poll_until(detail::block_deadline(true, timeout));
  }
  /// Python's poll(None): waits without limit.
  [[nodiscard]] bool poll(std::nullopt_t) { return poll_until(std::nullopt); }

  /// Closes this end for every process sharing it (see the file comment). Idempotent.
  void close() {
    if (closed_) return;
    closed_ = true;
    if (tx_) tx_->close();
    if (rx_) rx_->close();
  }
  /// Whether close() was called on this object.
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] bool readable() const noexcept { return rx_ != nullptr; }
  [[nodiscard]] bool writable() const noexcept { return tx_ != nullptr; }

  void procpool_encode_handle(std::string& out) const {
    const std::uint8_t which = static_cast<std::uint8_t>((rx_ ? 1 : 0) | (tx_ ? 2 : 0));
    codec::encode_to(out, which);
    if (rx_) rx_->encode_handle(out);
    if (tx_) tx_->encode_handle(out);
  }
  static std::unique_ptr<BasicConnection> procpool_attach(std::string_view& in) {
    const auto which = codec::decode_from<std::uint8_t>(in);
    std::shared_ptr<detail::Ring> rx, tx;
    if ((which & 1) != 0) rx = detail::Ring::attach(in);
    if ((which & 2) != 0) tx = detail::Ring::attach(in);
    return std::make_unique<BasicConnection>(std::move(rx), std::move(tx));
  }

private:
  void check_open(const char* what) const {
    if (closed_) throw StateError(std::string("procpool: Connection.") + what + " on a closed connection");
  }
  bool poll_until(const detail::RingDeadline& deadline) {
    if (!rx_) throw StateError("procpool: Connection.poll on a send-only end");
    check_open("poll");
    return rx_->wait_readable(deadline) != detail::RingStatus::timeout;
  }

  std::shared_ptr<detail::Ring> rx_;
  std::shared_ptr<detail::Ring> tx_;
  bool closed_ = false;
};

namespace detail {
template <class T, class Backend>
std::pair<BasicConnection<T, Backend>, BasicConnection<T, Backend>> make_pipe(bool duplex, const QueueOptions& options) {
  const RingOptions ring_options{options.capacity_bytes, 0};
  auto forward = std::make_shared<Ring>(ring_options, Backend::interprocess);
  if (!duplex) return {BasicConnection<T, Backend>(forward, nullptr), BasicConnection<T, Backend>(nullptr, forward)};
  auto backward = std::make_shared<Ring>(ring_options, Backend::interprocess);
  // a sends on `forward` and receives on `backward`; b the reverse.
  return {BasicConnection<T, Backend>(backward, forward), BasicConnection<T, Backend>(forward, backward)};
}
} // namespace detail

template <class T>
using Connection = BasicConnection<T, detail::ProcessBackend>;

/// Two connected ends. duplex: both can send and receive. Otherwise, as Python, the first
/// end only receives and the second only sends.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true, const QueueOptions& options = {}) {
  return detail::make_pipe<T, detail::ProcessBackend>(duplex, options);
}

namespace dummy {
template <class T>
using Connection = BasicConnection<T, detail::ThreadBackend>;
/// The thread backend's Pipe.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true, const QueueOptions& options = {}) {
  return detail::make_pipe<T, detail::ThreadBackend>(duplex, options);
}
} // namespace dummy

} // namespace procpool
