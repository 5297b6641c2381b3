#pragma once
/// @file queue.hpp
/// Python's multiprocessing.Queue, JoinableQueue and SimpleQueue (procpool::), and their
/// thread twins (procpool::dummy::), over a shared-memory ring (detail/ring.hpp).
///
/// Differences from CPython, by design: there is no feeder thread, so put() writes the item
/// into shared memory before it returns (an item put is visible to every process at once, and
/// a process may exit right after put without losing it), and put() also blocks (or raises
/// Full when not blocking) while the ring's bytes are full, even with maxsize 0.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "procpool/backend.hpp"
#include "procpool/codec.hpp"
#include "procpool/detail/os/futex.hpp"
#include "procpool/detail/ring.hpp"
#include "procpool/detail/ring_items.hpp"
#include "procpool/detail/ring_large.hpp"
#include "procpool/detail/shared_handle.hpp"
#include "procpool/errors.hpp"
#include "procpool/large_view.hpp"
#include "procpool/queue_options.hpp"

namespace procpool {
namespace detail {

/// The core of every queue (Queue, JoinableQueue, SimpleQueue): a ring of T items, Python's
/// put/get over it with the Full/Empty/closed errors, and the object's local close flag.
/// `name` ("Queue", "SimpleQueue") starts its error messages. Thread-safety: as the queues.
template <class T, class Backend>
class QueueCore {
  static_assert(check_item_type<T, Backend::interprocess>());

public:
  QueueCore(const QueueCore&) = delete;
  QueueCore& operator=(const QueueCore&) = delete;

protected:
  QueueCore(const char* name, std::uint64_t max_records, const QueueOptions& options)
      : ring_(std::make_unique<Ring>(
            RingOptions{options.capacity_bytes, max_records, Backend::interprocess, options.max_large_bytes,
                        options.spare_large_bytes},
            Backend::interprocess)),
        name_(name) {}
  /// Attaches to the ring described at the front of `in` (spawn hand-off).
  QueueCore(const char* name, std::string_view& in) : ring_(Ring::attach(in)), name_(name) {}
  /// Thread backend: the items still in the queue are destroyed with it.
  ~QueueCore() {
    if constexpr (!Backend::interprocess) drain_values<T>(*ring_);
  }

  /// The spawn hand-off: the ring is the whole handle.
  void encode_handle(std::string& out) const { ring_->encode_handle(out); }

  void check_open(const char* what) const {
    if (closed_.load(std::memory_order_acquire)) [[unlikely]]
      throw_error<ValueError>(what, " after close(): this queue object is closed");
  }

  /// `item`: const T& or T&& (the thread backend moves an rvalue in; processes copy bytes).
  template <class U>
  RingStatus put_status(U&& item, const RingDeadline& deadline) {
    check_open("put");
    // JoinableQueue: the task is counted once the item is in (see push_item), never while
    // waiting for room, so a producer killed while blocked leaves the count as it was.
    std::atomic<std::uint32_t>* const count = counts_tasks_ ? &unfinished() : nullptr;
    if constexpr (Backend::interprocess)
      return push_item(*ring_, static_cast<const T&>(item), deadline, count);
    else
      return push_value<T>(*ring_, std::forward<U>(item), deadline, count);
  }

  template <class U>
  void put_until(U&& item, const RingDeadline& deadline) {
    const RingStatus status = put_status(std::forward<U>(item), deadline);
    if (status != RingStatus::Ok) [[unlikely]]
      throw_put_failed(status);
  }

  T get_until(const RingDeadline& deadline) {
    check_open("get");
    std::optional<T> out;
    const RingStatus status = pop(out, deadline);
    if (status != RingStatus::Ok) [[unlikely]]
      throw_get_failed(status);
    return std::move(*out);
  }

  LargeView<T> get_view_until(const RingDeadline& deadline)
    requires ContiguousSendable<T>
  {
    check_open("get");
    LargeView<T> view;
    RingStatus status;
    if constexpr (Backend::interprocess) {
      status = pop_view(*ring_, view, deadline);
    } else {
      std::optional<T> out;
      status = pop_value(*ring_, out, deadline);
      if (status == RingStatus::Ok) LargeViewAccess::hold(view, std::move(*out));
    }
    if (status != RingStatus::Ok) [[unlikely]]
      throw_get_failed(status);
    return view;
  }

  std::optional<T> try_get() {
    check_open("get");
    std::optional<T> out;
    (void)pop(out, kRingNoWait);
    return out;
  }

  RingStatus pop(std::optional<T>& out, const RingDeadline& deadline) {
    if constexpr (Backend::interprocess)
      return pop_item(*ring_, out, deadline);
    else
      return pop_value(*ring_, out, deadline);
  }

  /// ValueError after close(), as CPython's empty() raises on a closed queue (its reader is closed).
  bool empty() const {
    check_open("empty");
    return ring_->size() == 0;
  }
  void close() noexcept { closed_.store(true, std::memory_order_release); }

  Ring& ring() const noexcept { return *ring_; }

  // JoinableQueue's unfinished-task counter lives in the ring's control page.
  void set_counts_tasks() noexcept { counts_tasks_ = true; }
  std::atomic<std::uint32_t>& unfinished() const noexcept { return ring_->aux(0); }

private:
  // The error paths, out of line: the fast paths above stay small enough to inline.
  template <class Error>
  [[noreturn, gnu::cold, gnu::noinline]] void throw_error(const char* what, const char* why) const {
    throw Error(std::string("procpool: ") + name_ + "." + what + why);
  }
  [[noreturn, gnu::cold, gnu::noinline]] void throw_get_failed(RingStatus status) const {
    if (status == RingStatus::Timeout) throw_error<Empty>("get", ": the queue is empty");
    throw_error<ValueError>("get", ": the queue's ring is closed");
  }
  [[noreturn, gnu::cold, gnu::noinline]] void throw_put_failed(RingStatus status) const {
    if (status == RingStatus::Closed) throw_error<ValueError>("put", ": the queue's ring is closed");
    if (ring_->max_records() != 0 && ring_->size() >= ring_->max_records())
      throw_error<Full>("put", (": the queue is full (maxsize " + std::to_string(ring_->max_records()) + ")").c_str());
    if (ring_->large() != nullptr && ring_->large()->over_budget() && ring_->used_bytes() < ring_->capacity() / 2)
      throw_error<Full>("put", ": the queue's out-of-band items are at QueueOptions::max_large_bytes (consume faster, "
                               "or raise it)");
    throw_error<Full>("put", (": the queue's ring of " + std::to_string(ring_->capacity()) +
                              " bytes is full (raise QueueOptions::capacity_bytes, or consume faster)")
                                 .c_str());
  }

  std::unique_ptr<Ring> ring_;
  const char* name_;
  bool counts_tasks_ = false;
  std::atomic<bool> closed_{false};
};

} // namespace detail

/// A FIFO queue between processes (Processes) or threads (Threads).
///
/// FIFO holds per producer; items of different producers interleave in publication order.
/// Thread-safety: every member may be called concurrently from any thread of any process that
/// shares the queue. close() is local to this object (this process), as in Python.
/// Non-copyable, non-movable: the object is pinned (processes share its state).
template <class T, class Backend>
class BasicQueue : public detail::SharedHandle<BasicQueue<T, Backend>, Backend>,
                   protected detail::QueueCore<T, Backend> {
  using Core = detail::QueueCore<T, Backend>;

public:
  using value_type = T;

  /// maxsize <= 0: no item limit (only the ring's bytes bound the queue), as Python.
  explicit BasicQueue(std::int64_t maxsize = 0, QueueOptions options = {})
      : Core("Queue", maxsize > 0 ? static_cast<std::uint64_t>(maxsize) : 0, options) {}

  /// Puts `item`, waiting for room if `block` (forever), else raising Full at once.
  /// Throws ValueError if closed. Items of any size (process backend: large ones out of band,
  /// see QueueOptions). The T&& forms move the item in on the thread backend (move-only types
  /// welcome); an item that was not put is left as it was.
  void put(const T& item, bool block = true) {
    this->put_until(item, block ? detail::RingDeadline{} : detail::kRingNoWait);
  }
  void put(T&& item, bool block = true) {
    this->put_until(std::move(item), block ? detail::RingDeadline{} : detail::kRingNoWait);
  }
  /// Puts `item`, waiting at most `timeout` for room (if `block`); raises Full after it.
  template <class Rep, class Period>
  void put(const T& item, bool block, std::chrono::duration<Rep, Period> timeout) {
    this->put_until(item, detail::block_deadline(block, timeout));
  }
  template <class Rep, class Period>
  void put(T&& item, bool block, std::chrono::duration<Rep, Period> timeout) {
    this->put_until(std::move(item), detail::block_deadline(block, timeout));
  }
  void put_nowait(const T& item) { put(item, false); }
  void put_nowait(T&& item) { put(std::move(item), false); }
  /// put without the exception: false when full.
  [[nodiscard]] bool try_put(const T& item) {
    return this->put_status(item, detail::kRingNoWait) == detail::RingStatus::Ok;
  }
  [[nodiscard]] bool try_put(T&& item) {
    return this->put_status(std::move(item), detail::kRingNoWait) == detail::RingStatus::Ok;
  }

  /// Removes and returns the oldest item, waiting if `block` (forever), else raising Empty.
  T get(bool block = true) { return this->get_until(block ? detail::RingDeadline{} : detail::kRingNoWait); }
  /// Waits at most `timeout` (if `block`); raises Empty after it.
  template <class Rep, class Period>
  T get(bool block, std::chrono::duration<Rep, Period> timeout) {
    return this->get_until(detail::block_deadline(block, timeout));
  }
  T get_nowait() { return get(false); }
  /// get() for a std::vector / std::string of trivially copyable elements, as a read-only view:
  /// an out-of-band item (over a quarter of the ring) is read in place from the shared memory it
  /// came in, without a copy, until the view goes away (see large_view.hpp).
  LargeView<T> get_view(bool block = true)
    requires ContiguousSendable<T>
  {
    return this->get_view_until(block ? detail::RingDeadline{} : detail::kRingNoWait);
  }
  template <class Rep, class Period>
  LargeView<T> get_view(bool block, std::chrono::duration<Rep, Period> timeout)
    requires ContiguousSendable<T>
  {
    return this->get_view_until(detail::block_deadline(block, timeout));
  }
  /// get without the exception: empty optional when there is no item.
  [[nodiscard]] std::optional<T> try_get() { return Core::try_get(); }

  /// Items in the queue. Exact when no put/get is in flight; otherwise a value between the
  /// counts before and after the operations in flight (Python: "approximate").
  [[nodiscard]] std::size_t qsize() const noexcept { return static_cast<std::size_t>(this->ring().size()); }
  /// qsize() == 0, with the same caveat. ValueError after close(), as CPython's empty()
  /// raises on a closed queue (its reader is closed).
  [[nodiscard]] bool empty() const { return Core::empty(); }
  /// qsize() >= maxsize (always false with no maxsize), with the same caveat.
  [[nodiscard]] bool full() const noexcept {
    const std::uint64_t max = this->ring().max_records();
    return max != 0 && this->ring().size() >= max;
  }
  /// The maxsize given at construction (0: none).
  [[nodiscard]] std::int64_t maxsize() const noexcept { return static_cast<std::int64_t>(this->ring().max_records()); }
  /// This process will use this queue no more: later put/get on this object raise ValueError.
  /// Other processes' use is unaffected (Python semantics). Not synchronised with calls
  /// already blocked in this object.
  void close() noexcept { Core::close(); }

protected:
  // Spawn hand-off (detail::SharedHandle): the ring is the whole handle.
  friend detail::HandleAccess;
  BasicQueue(detail::AttachTag, std::string_view& in) : Core("Queue", in) {}
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
    if (v == 1) os::futex::wake(word, Backend::interprocess);
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

  /// Spawn hand-off: as Queue's (the same handle), attached as a JoinableQueue.
  static std::unique_ptr<BasicJoinableQueue> procpool_attach(std::string_view& in)
    requires Backend::interprocess
  {
    return detail::HandleAccess::attach<BasicJoinableQueue>(in);
  }

private:
  friend detail::HandleAccess;
  BasicJoinableQueue(detail::AttachTag tag, std::string_view& in) : Base(tag, in) { this->set_counts_tasks(); }
};

/// Python's SimpleQueue: unbounded (by items), get/put/empty/close only. The same core as
/// Queue; put() waits while the ring's bytes are full. Thread-safety and pinning as BasicQueue.
template <class T, class Backend>
class BasicSimpleQueue : public detail::SharedHandle<BasicSimpleQueue<T, Backend>, Backend>,
                         private detail::QueueCore<T, Backend> {
  using Core = detail::QueueCore<T, Backend>;

public:
  using value_type = T;
  explicit BasicSimpleQueue(QueueOptions options = {}) : Core("SimpleQueue", 0, options) {}

  /// Waits while the ring's bytes are full.
  void put(const T& item) { this->put_until(item, std::nullopt); }
  void put(T&& item) { this->put_until(std::move(item), std::nullopt); }
  /// Waits for an item.
  T get() { return this->get_until(std::nullopt); }
  /// get() as a view (see BasicQueue::get_view).
  LargeView<T> get_view()
    requires ContiguousSendable<T>
  {
    return this->get_view_until(std::nullopt);
  }
  /// Whether no item is there (a snapshot). ValueError after close(), as CPython.
  [[nodiscard]] bool empty() const { return Core::empty(); }
  /// Local to this object, as BasicQueue::close().
  void close() noexcept { Core::close(); }

private:
  // Spawn hand-off (detail::SharedHandle): the ring is the whole handle.
  friend detail::HandleAccess;
  BasicSimpleQueue(detail::AttachTag, std::string_view& in) : Core("SimpleQueue", in) {}
};

/// Process backend: shared memory, usable by forked, spawned and forkserver children.
template <class T>
using Queue = Processes::Queue<T>;
template <class T>
using JoinableQueue = Processes::JoinableQueue<T>;
template <class T>
using SimpleQueue = Processes::SimpleQueue<T>;

namespace dummy {
/// Thread backend (multiprocessing.dummy / queue.Queue): the same API between threads.
template <class T>
using Queue = Threads::Queue<T>;
template <class T>
using JoinableQueue = Threads::JoinableQueue<T>;
template <class T>
using SimpleQueue = Threads::SimpleQueue<T>;
} // namespace dummy

} // namespace procpool
