#pragma once
/// @file detail/ring_items.hpp
/// Typed items over a Ring, shared by Queue, SimpleQueue and Connection: a trivially copyable
/// item is one record of sizeof(T) bytes, memcpy'd straight into and out of the ring (no
/// allocation, no cereal); any other Sendable item is encoded with the codec first.
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "procpool/codec.hpp"
#include "procpool/detail/os/deadline.hpp"
#include "procpool/detail/ring.hpp"
#include "procpool/queue_options.hpp"

namespace procpool::detail {

template <class T>
constexpr bool check_item_type() {
  static_assert(Sendable<T>,
                "procpool: this type cannot travel through a Queue or Pipe. Use a trivially copyable type "
                "(no pointers inside), a std::string / standard container / tuple / optional of such, "
                "or give your type a cereal `template <class A> void serialize(A&)` member.");
  static_assert(!std::is_reference_v<T> && !std::is_const_v<T>, "procpool: queue items are plain values");
  return true;
}

/// Releases a per-thread encode/decode buffer after an unusually large item.
inline void trim_buffer(std::string& buf) {
  if (buf.capacity() > (std::size_t{1} << 20)) std::string().swap(buf);
}

/// Pushes one item. `count_in`, if given, is incremented once the item is in the ring,
/// still under the producer lock, so a consumer can pop the item only after the count
/// includes it, and a producer that never gets room (blocked, timed out, killed) never
/// counted it (JoinableQueue's unfinished tasks).
template <class T>
RingStatus push_item(Ring& ring, const T& item, const RingDeadline& deadline,
                     std::atomic<std::uint32_t>* count_in = nullptr) {
  if constexpr (TriviallySendable<T>) {
    return ring.push_with(sizeof(T), deadline, [&](std::byte* dst) {
      std::memcpy(dst, &item, sizeof(T));
      if (count_in != nullptr) count_in->fetch_add(1, std::memory_order_seq_cst);
    });
  } else {
    thread_local std::string buf;  // per-thread guard: fork-safe (the child's thread is the forker)
    buf.clear();
    codec::encode_to(buf, item);
    const RingStatus status = ring.push_with(buf.size(), deadline, [&](std::byte* dst) {
      if (!buf.empty()) std::memcpy(dst, buf.data(), buf.size());
      if (count_in != nullptr) count_in->fetch_add(1, std::memory_order_seq_cst);
    });
    trim_buffer(buf);
    return status;
  }
}

/// Pops one item into `out` (emplaced) or returns why not.
template <class T>
RingStatus pop_item(Ring& ring, std::optional<T>& out, const RingDeadline& deadline) {
  if constexpr (TriviallySendable<T>) {
    // Copied out under the consumer lock: it is one memcpy, inlined (the codec's decode, with
    // its size checks, is the cold path, for the error it throws on a record of another size).
    return ring.pop_with(deadline, [&](std::span<const std::byte> rec) {
      if (rec.size() != sizeof(T)) [[unlikely]] {
        out.emplace(codec::decode<T>(std::string_view(reinterpret_cast<const char*>(rec.data()), rec.size())));
        return;
      }
      std::array<std::byte, sizeof(T)> raw;
      std::memcpy(raw.data(), rec.data(), sizeof(T));
      out.emplace(std::bit_cast<T>(raw));
    });
  } else {
    // Copied out under the lock, decoded after it, so consumers decode in parallel.
    thread_local std::string buf;  // per-thread guard: fork-safe, as above
    const RingStatus status = ring.pop(buf, deadline);
    if (status == RingStatus::Ok) {
      struct Trim {
        std::string& b;
        ~Trim() { trim_buffer(b); }
      } trim{buf};
      out.emplace(codec::decode<T>(buf));
    }
    return status;
  }
}

/// A deadline from Python's (block, timeout) pair; a negative timeout is a ValueError.
/// Saturating: a timeout too long to represent waits forever.
template <class Rep, class Period>
RingDeadline block_deadline(bool block, std::chrono::duration<Rep, Period> timeout) {
  if (!block) return kRingNoWait;
  if (timeout < std::chrono::duration<Rep, Period>::zero())
    throw ValueError("procpool: 'timeout' must be a non-negative duration");
  return os::as_deadline(os::deadline_after(timeout));
}

} // namespace procpool::detail
