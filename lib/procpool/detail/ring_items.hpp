#pragma once
/// @file detail/ring_items.hpp
/// Typed items over a Ring, shared by Queue, SimpleQueue and Connection. Process backend
/// (push_item/pop_item): a trivially copyable item is one record of sizeof(T) bytes, memcpy'd
/// straight into and out of the ring (no allocation, no cereal); any other Sendable item is
/// encoded with the codec first; a large one travels out of band (detail/ring_large.hpp).
/// Thread backend (push_value/pop_value): the value itself is moved into its record and out.
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "procpool/codec.hpp"
#include "procpool/detail/os/deadline.hpp"
#include "procpool/detail/ring.hpp"
#include "procpool/detail/ring_large.hpp"
#include "procpool/large_view.hpp"
#include "procpool/queue_options.hpp"

namespace procpool::detail {

/// The compile-time rule for a queue's or pipe's items. Process backend: Sendable (the clear
/// error below names what to do). Thread backend: any movable type, as multiprocessing.dummy
/// passes references (items are moved through memory, never encoded).
template <class T, bool Interprocess = true>
constexpr bool check_item_type() {
  if constexpr (Interprocess) {
    static_assert(Sendable<T>,
                  "procpool: this type cannot travel through a Queue or Pipe. Use a trivially copyable type "
                  "(no pointers inside), a std::string / standard container / tuple / optional of such, "
                  "or give your type a cereal `template <class A> void serialize(A&)` member.");
  } else {
    static_assert(std::is_move_constructible_v<T> && std::is_destructible_v<T>,
                  "procpool: a thread-backend (procpool::dummy) queue's items must be move-constructible");
  }
  static_assert(!std::is_reference_v<T> && !std::is_const_v<T>, "procpool: queue items are plain values");
  return true;
}

/// Releases a per-thread encode/decode buffer after an unusually large item.
inline void trim_buffer(std::string& buf) {
  if (buf.capacity() > (std::size_t{1} << 20)) std::string().swap(buf);
}

/// Pushes an item out of band (see detail/ring_large.hpp): the concatenation of `pieces`.
inline RingStatus push_large(Ring& ring, std::initializer_list<std::string_view> pieces, const RingDeadline& deadline,
                             std::atomic<std::uint32_t>* count_in) {
  return ring.large()->push(ring, std::span<const std::string_view>(pieces.begin(), pieces.size()), deadline,
                            count_in);
}

/// Pushes one item. `count_in`, if given, is incremented once the item is in the ring,
/// still under the producer lock, so a consumer can pop the item only after the count
/// includes it, and a producer that never gets room (blocked, timed out, killed) never
/// counted it (JoinableQueue's unfinished tasks). An item larger than the ring's
/// large_threshold() travels out of band when the ring has large() (process backend queues).
template <class T>
RingStatus push_item(Ring& ring, const T& item, const RingDeadline& deadline,
                     std::atomic<std::uint32_t>* count_in = nullptr) {
  if constexpr (TriviallySendable<T>) {
    if (sizeof(T) > ring.large_threshold() && ring.large() != nullptr) [[unlikely]] {
      return push_large(ring, {std::string_view(reinterpret_cast<const char*>(&item), sizeof(T))}, deadline,
                        count_in);
    }
    return ring.push_with(sizeof(T), deadline, [&](std::byte* dst) {
      std::memcpy(dst, &item, sizeof(T));
      if (count_in != nullptr) count_in->fetch_add(1, std::memory_order_seq_cst);
    });
  } else {
    if constexpr (ContiguousSendable<T>) {
      // Written straight from the value into its segment: one copy.
      const std::size_t size = 2 * sizeof(std::uint64_t) + item.size() * sizeof(item[0]);
      if (size > ring.large_threshold() && ring.large() != nullptr) [[unlikely]] {
        std::string prefix;
        const std::string_view elements = codec::encode_split(prefix, item);
        return push_large(ring, {prefix, elements}, deadline, count_in);
      }
    }
    thread_local std::string buf;  // per-thread guard: fork-safe (the child's thread is the forker)
    buf.clear();
    codec::encode_to(buf, item);
    struct Trim {
      std::string& b;
      ~Trim() { trim_buffer(b); }
    } trim{buf};
    if (buf.size() > ring.large_threshold() && ring.large() != nullptr) [[unlikely]] {
      return push_large(ring, {buf}, deadline, count_in);
    }
    return ring.push_with(buf.size(), deadline, [&](std::byte* dst) {
      if (!buf.empty()) std::memcpy(dst, buf.data(), buf.size());
      if (count_in != nullptr) count_in->fetch_add(1, std::memory_order_seq_cst);
    });
  }
}

/// What a pop found: -2 an inline item, -1 a large record whose item went with a dead consumer
/// (skip it), else the large item's descriptor.
inline constexpr int kInlineItem = -2;

/// Under the consumer lock: the descriptor of the large record `rec`, or -1 (see kInlineItem).
inline int take_large(Ring& ring, std::span<const std::byte> rec) { return ring.large()->take(rec); }

/// Pops the oldest record into `buf`; for a large record, also takes its descriptor into
/// `large` under the consumer lock (see kInlineItem).
inline RingStatus pop_record(Ring& ring, std::string& buf, const RingDeadline& deadline, int& large) {
  return ring.pop_with(deadline, [&](std::span<const std::byte> rec) {
    buf.resize(rec.size());
    if (!rec.empty()) std::memcpy(buf.data(), rec.data(), rec.size());
    if (ring.large() != nullptr && is_large_record(rec)) [[unlikely]]
      large = take_large(ring, rec);
  });
}

/// Decodes a large item received as `fd` (taken by take_large) into `out`.
template <class T>
void decode_large(const Ring& ring, int fd, std::span<const std::byte> rec, std::optional<T>& out) {
  LargeRecord record;
  std::memcpy(&record, rec.data(), sizeof record);
  const MappedItem mapped = ring.large()->map(fd, static_cast<std::size_t>(record.size));
  out.emplace(codec::decode<T>(mapped.bytes()));
}

/// Pops one item into `out` (emplaced) or returns why not.
template <class T>
RingStatus pop_item(Ring& ring, std::optional<T>& out, const RingDeadline& deadline) {
  if constexpr (TriviallySendable<T>) {
    for (;;) {
      // Copied out under the consumer lock: it is one memcpy, inlined (the codec's decode, with
      // its size checks, is the cold path, for a large item or the error it throws on a record
      // of another size).
      int large = kInlineItem;
      LargeRecord record{};
      const RingStatus status = ring.pop_with(deadline, [&](std::span<const std::byte> rec) {
        if (rec.size() != sizeof(T)) [[unlikely]] {
          if (ring.large() != nullptr && is_large_record(rec)) {
            std::memcpy(&record, rec.data(), sizeof record);
            large = take_large(ring, rec);
            return;
          }
          out.emplace(codec::decode<T>(std::string_view(reinterpret_cast<const char*>(rec.data()), rec.size())));
          return;
        }
        std::array<std::byte, sizeof(T)> raw;
        std::memcpy(raw.data(), rec.data(), sizeof(T));
        out.emplace(std::bit_cast<T>(raw));
      });
      if (large == kInlineItem || status != RingStatus::Ok) [[likely]]
        return status;
      if (large >= 0) {
        decode_large(ring, large, std::as_bytes(std::span(&record, 1)), out);
        return status;
      }
    }
  } else {
    // Copied out under the lock, decoded after it, so consumers decode in parallel.
    thread_local std::string buf;  // per-thread guard: fork-safe, as above
    for (;;) {
      int large = kInlineItem;
      const RingStatus status = pop_record(ring, buf, deadline, large);
      if (status != RingStatus::Ok) return status;
      struct Trim {
        std::string& b;
        ~Trim() { trim_buffer(b); }
      } trim{buf};
      if (large == kInlineItem) [[likely]] {
        out.emplace(codec::decode<T>(buf));
        return status;
      }
      if (large >= 0) {
        decode_large(ring, large, std::as_bytes(std::span(buf)), out);
        return status;
      }
    }
  }
}

/// Process backend: pops one ContiguousSendable item into `view`: in place in its segment if it
/// came out of band, else decoded into a container of the view's own.
template <class T>
RingStatus pop_view(Ring& ring, LargeView<T>& view, const RingDeadline& deadline) {
  thread_local std::string buf;  // per-thread guard: fork-safe, as pop_item's
  for (;;) {
    int large = kInlineItem;
    const RingStatus status = pop_record(ring, buf, deadline, large);
    if (status != RingStatus::Ok) return status;
    if (large == kInlineItem) {
      LargeViewAccess::hold(view, codec::decode<T>(buf));
      trim_buffer(buf);
      return status;
    }
    if (large >= 0) {
      LargeRecord record;
      std::memcpy(&record, buf.data(), sizeof record);
      LargeViewAccess::map(view, ring.large()->map(large, static_cast<std::size_t>(record.size)));
      return status;
    }
  }
}

// -- Thread backend: values moved through memory, no codec, no size limit -------------------------

/// Alignment of a record's payload in a ring.
inline constexpr std::size_t kRecordAlign = 8;

/// Whether the thread backend keeps a T on the heap, the ring holding only its pointer: for a
/// type over-aligned for a record or larger than the ring. Otherwise the T itself lives in its
/// record, moved in and moved out. The same answer for every user of one ring.
template <class T>
bool boxed_in(const Ring& ring) noexcept {
  return alignof(T) > kRecordAlign || sizeof(T) > ring.max_record_size();
}

/// Thread backend: moves (an rvalue) or copies (an lvalue) `item` into the ring. `count_in` as
/// push_item's. An item that is not put (full, closed) is left as it was.
template <class T, class U>
RingStatus push_value(Ring& ring, U&& item, const RingDeadline& deadline,
                      std::atomic<std::uint32_t>* count_in = nullptr) {
  if (!boxed_in<T>(ring)) [[likely]] {
    return ring.push_with(sizeof(T), deadline, [&](std::byte* dst) {
      if constexpr (std::is_trivially_copyable_v<T>)
        std::memcpy(dst, std::addressof(item), sizeof(T));
      else
        ::new (static_cast<void*>(dst)) T(std::forward<U>(item));
      if (count_in != nullptr) count_in->fetch_add(1, std::memory_order_seq_cst);
    });
  }
  auto box = std::make_unique<T>(std::forward<U>(item));
  T* raw = box.get();
  const RingStatus status = ring.push_with(sizeof raw, deadline, [&](std::byte* dst) {
    std::memcpy(dst, &raw, sizeof raw);
    if (count_in != nullptr) count_in->fetch_add(1, std::memory_order_seq_cst);
  });
  if (status == RingStatus::Ok) {
    (void)box.release();  // the ring's now: popped or drained
  } else if constexpr (!std::is_lvalue_reference_v<U> && std::is_move_assignable_v<T>) {
    item = std::move(*box);  // not put: the caller keeps its value
  }
  return status;
}

/// Thread backend: moves the oldest item out of the ring into `out` (emplaced).
template <class T>
RingStatus pop_value(Ring& ring, std::optional<T>& out, const RingDeadline& deadline) {
  const bool boxed = boxed_in<T>(ring);
  return ring.pop_with(deadline, [&](std::span<const std::byte> rec) {
    if (boxed) [[unlikely]] {
      T* raw = nullptr;
      std::memcpy(&raw, rec.data(), sizeof raw);
      const std::unique_ptr<T> box(raw);
      out.emplace(std::move(*box));
      return;
    }
    if constexpr (std::is_trivially_copyable_v<T>) {
      std::array<std::byte, sizeof(T)> raw;
      std::memcpy(raw.data(), rec.data(), sizeof(T));
      out.emplace(std::bit_cast<T>(raw));
    } else {
      // The record is ours (the consumer lock): the value is moved out, then destroyed there.
      T* value = std::launder(reinterpret_cast<T*>(const_cast<std::byte*>(rec.data())));
      struct Destroy {
        T* value;
        ~Destroy() { value->~T(); }
      } destroy{value};
      out.emplace(std::move(*value));
    }
  });
}

/// Thread backend: destroys the items left in `ring` (its queue or pipe is going away).
template <class T>
void drain_values(Ring& ring) noexcept {
  std::optional<T> out;
  try {
    while (pop_value<T>(ring, out, kRingNoWait) == RingStatus::Ok) out.reset();
  } catch (...) {  // a throwing move constructor: what it left is lost, as with any container
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
