#pragma once
/// @file queue.hpp
/// Python's multiprocessing.Queue, JoinableQueue and SimpleQueue (procpool::), and their
/// thread twins (procpool::dummy::), over a shared-memory ring (detail/ring.hpp).
///
/// Differences from CPython, by design: there is no feeder thread, so put() writes the item
/// into shared memory before it returns (an item put is visible to every process at once, and
/// a process may exit right after put without losing it), and put() also blocks (or raises
/// Full when not blocking) while the ring's bytes are full, even with maxsize 0.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "procpool/codec.hpp"
#include "procpool/detail/os/futex.hpp"
#include "procpool/detail/ring.hpp"
#include "procpool/detail/ring_items.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/errors.hpp"

namespace procpool {

/// A FIFO queue between processes (ProcessBackend) or threads (ThreadBackend).
///
/// FIFO holds per producer; items of different producers interleave in publication order.
/// Thread-safety: every member may be called concurrently from any thread of any process that
/// shares the queue. close() is local to this object (this process), as in Python.
/// Non-copyable, non-movable: the object is pinned (processes share its state).
template <class T, class Backend>
class BasicQueue : public detail::SharedObjectTag<Backend> {
  static_assert(detail::check_item_type<T>());

public:
  using value_type = T;

  /// maxsize <= 0: no item limit (only the ring's bytes bound the queue), as Python.
  explicit BasicQueue(std::int64_t maxsize = 0, QueueOptions options = {})
      : ring_(std::make_unique<detail::Ring>(
            detail::RingOptions{options.capacity_bytes, maxsize > 0 ? static_cast<std::uint64_t>(maxsize) : 0},
            Backend::interprocess)) {}
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;
  ~BasicQueue() = default;

  /// Puts `item`, waiting for room if `block` (forever), else raising Full at once.
  /// Throws ValueError if closed or if the encoded item exceeds the ring (see QueueOptions).
  void put(const T& item, bool block = true) { put_until(item, block ? detail::RingDeadline{} : detail::kRingNoWait); }
  /// Puts `item`, waiting at most `timeout` for room (if `block`); raises Full after it.
  template <class Rep, class Period>
  void put(const T& item, bool block, std::chrono::duration<Rep, Period> timeout) {
    put_until(item, detail::block_deadline(block, timeout));
  }
  void put_nowait(const T& item) { put(item, false); }
  /// put without the exception: false when full.
  [[nodiscard]] bool try_put(const T& item) { return put_status(item, detail::kRingNoWait) == detail::RingStatus::Ok; }

  /// Removes and returns the oldest item, waiting if `block` (forever), else raising Empty.
  T get(bool block = true) { return get_until(block ? detail::RingDeadline{} : detail::kRingNoWait); }
  /// Waits at most `timeout` (if `block`); raises Empty after it.
  template <class Rep, class Period>
  T get(bool block, std::chrono::duration<Rep, Period> timeout) {
    return get_until(detail::block_deadline(block, timeout));
  }
  T get_nowait() { return get(false); }
  /// get without the exception: empty optional when there is no item.
  [[nodiscard]] std::optional<T> try_get() {
    check_open("get");
    std::optional<T> out;
    (void)detail::pop_item(*ring_, out, detail::kRingNoWait);
    return out;
  }

  /// Items in the queue. Exact when no put/get is in flight; otherwise a value between the
  /// counts before and after the operations in flight (Python: "approximate").
  [[nodiscard]] std::size_t qsize() const noexcept { return static_cast<std::size_t>(ring_->size()); }
  /// qsize() == 0, with the same caveat. ValueError after close(), as CPython's empty()
  /// raises on a closed queue (its reader is closed).
  [[nodiscard]] bool empty() const {
    check_open("empty");
    return ring_->size() == 0;
  }
  /// qsize() >= maxsize (always false with no maxsize), with the same caveat.
  [[nodiscard]] bool full() const noexcept {
    const std::uint64_t max = ring_->max_records();
    return max != 0 && ring_->size() >= max;
  }
  /// The maxsize given at construction (0: none).
  [[nodiscard]] std::int64_t maxsize() const noexcept { return static_cast<std::int64_t>(ring_->max_records()); }
  /// This process will use this queue no more: later put/get on this object raise ValueError.
  /// Other processes' use is unaffected (Python semantics). Not synchronised with calls
  /// already blocked in this object.
  void close() noexcept { closed_.store(true, std::memory_order_release); }

  /// For Process: the handle a spawned child attaches to.
  void procpool_encode_handle(std::string& out) const { ring_->encode_handle(out); }
  static std::unique_ptr<BasicQueue> procpool_attach(std::string_view& in) {
    return std::unique_ptr<BasicQueue>(new BasicQueue(detail::Ring::attach(in), false));
  }

protected:
  BasicQueue(std::unique_ptr<detail::Ring> ring, bool counts_tasks) : ring_(std::move(ring)), counts_tasks_(counts_tasks) {}
  detail::Ring& ring() const noexcept { return *ring_; }
  void set_counts_tasks() noexcept { counts_tasks_ = true; }

  // JoinableQueue's unfinished-task counter lives in the ring's control page.
  std::atomic<std::uint32_t>& unfinished() const noexcept { return ring_->aux(0); }
  void finish_tasks(std::uint32_t before) const noexcept {
    if (before == 1) os::futex::wake(unfinished(), Backend::interprocess);
  }

private:
  void check_open(const char* what) const {
    if (closed_.load(std::memory_order_acquire))
      throw ValueError(std::string("procpool: Queue.") + what + " after close(): this queue object is closed");
  }

  detail::RingStatus put_status(const T& item, const detail::RingDeadline& deadline) {
    check_open("put");
    // JoinableQueue: the task is counted once the item is in (see push_item), never while
    // waiting for room, so a producer killed while blocked leaves the count as it was.
    return detail::push_item(*ring_, item, deadline, counts_tasks_ ? &unfinished() : nullptr);
  }

  void put_until(const T& item, const detail::RingDeadline& deadline) {
    switch (put_status(item, deadline)) {
      case detail::RingStatus::Ok: return;
      case detail::RingStatus::Timeout:
        if (ring_->max_records() != 0 && ring_->size() >= ring_->max_records())
          throw Full("procpool: Queue.put: the queue is full (maxsize " + std::to_string(ring_->max_records()) + ")");
        throw Full("procpool: Queue.put: the queue's ring of " + std::to_string(ring_->capacity()) +
                   " bytes is full (raise QueueOptions::capacity_bytes, or consume faster)");
      case detail::RingStatus::Closed: break;
    }
    throw ValueError("procpool: Queue.put: the queue's ring is closed");
  }

  T get_until(const detail::RingDeadline& deadline) {
    check_open("get");
    std::optional<T> out;
    switch (detail::pop_item(*ring_, out, deadline)) {
      case detail::RingStatus::Ok: return std::move(*out);
      case detail::RingStatus::Timeout: throw Empty("procpool: Queue.get: the queue is empty");
      case detail::RingStatus::Closed: break;
    }
    throw ValueError("procpool: Queue.get: the queue's ring is closed");
  }

  std::unique_ptr<detail::Ring> ring_;
  bool counts_tasks_ = false;
  std::atomic<bool> closed_{false};
};

/// A Queue that counts unfinished tasks: every put() adds one, task_done() removes one, and
/// join() waits until none is left (Python's JoinableQueue). The count is shared by all
/// processes. An item is counted only once it is in the queue, so a producer killed while it
/// waits for room leaves nothing behind; only one killed inside the few instructions between
/// copying its item in and publishing it leaves the count one too high (join() then waits).
template <class T, class Backend>
class BasicJoinableQueue : public BasicQueue<T, Backend> {
  using Base = BasicQueue<T, Backend>;

public:
  explicit BasicJoinableQueue(std::int64_t maxsize = 0, QueueOptions options = {}) : Base(maxsize, options) {
    this->set_counts_tasks();
  }

  /// Marks one item as processed. Throws ValueError if called more times than items were put.
  /// Thread- and process-safe.
  void task_done() {
    auto& word = this->unfinished();
    std::uint32_t v = word.load(std::memory_order_seq_cst);
    do {
      if (v == 0) throw ValueError("procpool: JoinableQueue.task_done() called too many times");
    } while (!word.compare_exchange_weak(v, v - 1, std::memory_order_seq_cst));
    this->finish_tasks(v);
  }

  /// Waits until every item put has been marked done. Thread- and process-safe.
  void join() const {
    auto& word = this->unfinished();
    for (std::uint32_t v = word.load(std::memory_order_seq_cst); v != 0; v = word.load(std::memory_order_seq_cst))
      os::futex::wait(word, v, Backend::interprocess);
  }
  /// join() with a limit; returns false if tasks remain after `timeout`.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) const {
    auto& word = this->unfinished();
    const auto deadline = detail::block_deadline(true, timeout);
    for (std::uint32_t v = word.load(std::memory_order_seq_cst); v != 0; v = word.load(std::memory_order_seq_cst))
      if (!os::futex::wait(word, v, Backend::interprocess, deadline)) return word.load() == 0;
    return true;
  }

  static std::unique_ptr<BasicJoinableQueue> procpool_attach(std::string_view& in) {
    return std::unique_ptr<BasicJoinableQueue>(new BasicJoinableQueue(detail::Ring::attach(in)));
  }

private:
  explicit BasicJoinableQueue(std::unique_ptr<detail::Ring> ring) : Base(std::move(ring), true) {}
};

/// Python's SimpleQueue: unbounded (by items), get/put/empty/close only.
/// Thread-safety and pinning as BasicQueue.
template <class T, class Backend>
class BasicSimpleQueue : public detail::SharedObjectTag<Backend> {
  static_assert(detail::check_item_type<T>());

public:
  using value_type = T;
  explicit BasicSimpleQueue(QueueOptions options = {})
      : ring_(std::make_unique<detail::Ring>(detail::RingOptions{options.capacity_bytes, 0}, Backend::interprocess)) {}
  BasicSimpleQueue(const BasicSimpleQueue&) = delete;
  BasicSimpleQueue& operator=(const BasicSimpleQueue&) = delete;
  ~BasicSimpleQueue() = default;

  /// Waits while the ring's bytes are full.
  void put(const T& item) {
    check_open("put");
    if (detail::push_item(*ring_, item, std::nullopt) != detail::RingStatus::Ok)
      throw ValueError("procpool: SimpleQueue.put: the queue's ring is closed");
  }
  /// Waits for an item.
  T get() {
    check_open("get");
    std::optional<T> out;
    if (detail::pop_item(*ring_, out, std::nullopt) != detail::RingStatus::Ok)
      throw ValueError("procpool: SimpleQueue.get: the queue's ring is closed");
    return std::move(*out);
  }
  /// Whether no item is there (a snapshot). ValueError after close(), as CPython.
  [[nodiscard]] bool empty() const {
    check_open("empty");
    return ring_->size() == 0;
  }
  /// Local to this object, as BasicQueue::close().
  void close() noexcept { closed_.store(true, std::memory_order_release); }

  void procpool_encode_handle(std::string& out) const { ring_->encode_handle(out); }
  static std::unique_ptr<BasicSimpleQueue> procpool_attach(std::string_view& in) {
    return std::unique_ptr<BasicSimpleQueue>(new BasicSimpleQueue(detail::Ring::attach(in)));
  }

private:
  explicit BasicSimpleQueue(std::unique_ptr<detail::Ring> ring) : ring_(std::move(ring)) {}
  void check_open(const char* what) const {
    if (closed_.load(std::memory_order_acquire))
      throw ValueError(std::string("procpool: SimpleQueue.") + what + " after close(): this queue object is closed");
  }
  std::unique_ptr<detail::Ring> ring_;
  std::atomic<bool> closed_{false};
};

/// Process backend: shared memory, usable by forked, spawned and forkserver children.
template <class T>
using Queue = BasicQueue<T, detail::ProcessBackend>;
template <class T>
using JoinableQueue = BasicJoinableQueue<T, detail::ProcessBackend>;
template <class T>
using SimpleQueue = BasicSimpleQueue<T, detail::ProcessBackend>;

namespace dummy {
/// Thread backend (multiprocessing.dummy / queue.Queue): the same API between threads.
template <class T>
using Queue = BasicQueue<T, detail::ThreadBackend>;
template <class T>
using JoinableQueue = BasicJoinableQueue<T, detail::ThreadBackend>;
template <class T>
using SimpleQueue = BasicSimpleQueue<T, detail::ThreadBackend>;
} // namespace dummy

} // namespace procpool
