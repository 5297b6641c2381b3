#pragma once
/// @file pool.hpp
/// procpool::Pool (worker processes) and procpool::dummy::Pool (worker threads): Python's
/// multiprocessing.Pool, one implementation over two backends.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "procpool/async_result.hpp"
#include "procpool/backend.hpp"
#include "procpool/codec.hpp"
#include "procpool/detail/os/deadline.hpp"
#include "procpool/detail/os/ids.hpp"
#include "procpool/detail/os/wait.hpp"
#include "procpool/detail/pool_core.hpp"
#include "procpool/detail/pool_wire.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/process.hpp"

namespace procpool {

/// Options of a Pool, as Python's keyword arguments.
struct PoolOptions {
  std::optional<int> processes{};           ///< empty: cpu_count(); at least 1, as Python
  std::optional<int> maxtasksperchild{};    ///< replace a worker after this many tasks
  std::optional<StartMethod> start_method{};  ///< empty: the global default (process backend)
  std::size_t ring_bytes = std::size_t{8} << 20;  ///< task and result ring size: bounds one record (an eighth of its first MiB bounds a chunk)
};

/// Callbacks for apply_async / map_async / starmap_async, run one at a time on the thread that
/// handles the pool's results: its handler thread, or a thread waiting on the pool at that moment
/// (keep them short and never wait on the same pool from them).
template <class R>
struct Callbacks {
  typename detail::ResultState<R>::Callback callback{};
  std::function<void(const std::exception&)> error_callback{};
};

namespace detail {

template <class R>
class SingleTask final : public PendingTask {
public:
  explicit SingleTask(std::shared_ptr<ResultState<R>> state) : state_(std::move(state)) {}
  void complete(std::string_view payload) override {
    if constexpr (std::is_void_v<R>) state_->set_value(std::monostate{});
    else state_->set_value(codec::decode<R>(payload));
  }
  void fail(std::exception_ptr error) override { state_->set_error(error); }

private:
  std::shared_ptr<ResultState<R>> state_;
};

/// Thread backend: an apply whose arguments and result stay in memory (InPlaceApply).
template <class R, class Call>
class InPlaceApplyTask final : public PendingTask {
public:
  InPlaceApplyTask(std::shared_ptr<ResultState<R>> state, std::unique_ptr<Call> call)
      : state_(std::move(state)), call_(std::move(call)) {}
  /// The worker thread has run the call (the result record orders its writes before this).
  void complete(std::string_view) override {
    if (!call_->result) throw StateError("procpool: an in-place task completed without its result");
    state_->set_value(std::move(*call_->result));
  }
  void fail(std::exception_ptr error) override { state_->set_error(error); }
  [[nodiscard]] const Call* call() const noexcept { return call_.get(); }

private:
  std::shared_ptr<ResultState<R>> state_;
  std::unique_ptr<Call> call_;  // lives with the task: until the worker is done with it
};

/// Decodes `count` results of a chunk into `out` (one memcpy for trivially copyable results).
template <class R>
void decode_chunk_results(std::string_view payload, R* out, std::size_t count) {
  if constexpr (TriviallySendable<R>) {
    if (payload.size() != sizeof(R) * count) throw SerializationError("procpool: malformed chunk result");
    if (count != 0) std::memcpy(static_cast<void*>(out), payload.data(), sizeof(R) * count);
  } else {
    for (std::size_t i = 0; i < count; ++i) out[i] = codec::decode_from<R>(payload);
    if (!payload.empty()) throw SerializationError("procpool: trailing bytes in chunk result");
  }
}

/// map_async / starmap_async: the chunks of one call fill one vector; the call's result is
/// ready when every chunk has finished. If chunks failed, get() throws the error of the first
/// failed chunk (in input order), after all the others have finished.
template <class R>
struct MapCall {
  std::shared_ptr<ResultState<std::vector<R>>> state;
  std::vector<R> values;
  std::size_t remaining = 0;
  std::size_t first_error_chunk = SIZE_MAX;
  std::exception_ptr first_error;
  /// Thread backend (in-place chunks): the input when the caller does not wait for the result
  /// (map_async: a copy), and the gate that a waiting caller leaves by.
  std::shared_ptr<const void> owned_items;
  InPlaceGate gate;
  /// map() on the thread backend: each chunk's claim, and the error of a chunk its caller ran.
  std::unique_ptr<std::atomic<ChunkClaim>[]> claims;
  std::vector<std::exception_ptr> caller_errors;
  /// Chunks finish on the thread handling results, but terminate() fails the rest on its own.
  std::mutex mutex;

  void chunk_done() { finish_chunk(SIZE_MAX, nullptr); }
  void chunk_failed(std::size_t chunk, std::exception_ptr error) { finish_chunk(chunk, std::move(error)); }

private:
  void finish_chunk(std::size_t chunk, std::exception_ptr error) {
    {
      std::lock_guard lock(mutex);
      if (error && chunk < first_error_chunk) {
        first_error_chunk = chunk;
        first_error = std::move(error);
      }
      if (--remaining != 0) return;
    }
    if (first_error) state->set_error(first_error);
    else state->set_value(std::move(values));
  }
};

template <class R>
class MapChunkTask final : public PendingTask {
public:
  /// `in_place`: the worker wrote the results into call->values itself (InPlaceChunk).
  MapChunkTask(std::shared_ptr<MapCall<R>> call, std::size_t chunk, std::size_t offset, std::size_t count,
               bool in_place = false)
      : call_(std::move(call)), chunk_(chunk), offset_(offset), count_(count), in_place_(in_place) {}
  void complete(std::string_view payload) override {
    if (!in_place_) decode_chunk_results<R>(payload, call_->values.data() + offset_, count_);
    if (!call_->caller_errors.empty() && call_->caller_errors[chunk_]) call_->chunk_failed(chunk_, call_->caller_errors[chunk_]);
    else call_->chunk_done();
  }
  void fail(std::exception_ptr error) override { call_->chunk_failed(chunk_, std::move(error)); }

private:
  std::shared_ptr<MapCall<R>> call_;
  std::size_t chunk_, offset_, count_;
  bool in_place_;
};

/// imap / imap_unordered: finished chunks wait here until the consumer takes them. The
/// handler wakes the consumer once per batch of results (see wake_after_batch).
template <class R>
struct IMapShared final : ResultWaiter {
  struct Chunk {
    std::size_t index = 0;
    std::vector<R> values;
    std::optional<R> single;  ///< a one-item chunk (chunksize 1): no vector allocated per result
    std::exception_ptr error;
  };
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<Chunk> done;              // in completion order
  std::atomic<bool> any_done{false};   // !done.empty(), readable without the mutex (for spinning)
  void wake() override { cv.notify_all(); }
};

template <class R>
class IMapChunkTask final : public PendingTask {
public:
  IMapChunkTask(std::shared_ptr<IMapShared<R>> shared, std::size_t chunk, std::size_t count)
      : shared_(std::move(shared)), chunk_(chunk), count_(count) {}
  void complete(std::string_view payload) override {
    if (count_ == 1) {
      std::optional<R> value{std::in_place};
      decode_chunk_results<R>(payload, &*value, 1);
      deliver({chunk_, {}, std::move(value), nullptr});
      return;
    }
    std::vector<R> values(count_);
    decode_chunk_results<R>(payload, values.data(), count_);
    deliver({chunk_, std::move(values), std::nullopt, nullptr});
  }
  void fail(std::exception_ptr error) override { deliver({chunk_, {}, std::nullopt, error}); }

private:
  void deliver(typename IMapShared<R>::Chunk chunk) {
    {
      std::lock_guard lock(shared_->mutex);
      shared_->done.push_back(std::move(chunk));
      shared_->any_done.store(true, std::memory_order_release);
    }
    wake_after_batch(shared_);
  }
  std::shared_ptr<IMapShared<R>> shared_;
  std::size_t chunk_, count_;
};

/// Python's default chunksize for map: len / (4 × workers), rounded up.
inline std::size_t default_chunksize(std::size_t items, int workers) {
  if (items == 0) return 1;
  const std::size_t per = static_cast<std::size_t>(workers) * 4;
  return items / per + (items % per != 0 ? 1 : 0);
}

/// The submitting side of an imap iteration: the input and what has been submitted of it,
/// shared by the consumer (which keeps a bounded look-ahead) and the pool's join() (which, after
/// close(), drains the rest of the input: PoolStream::drain), serialised by `mutex_`. Every
/// chunk it submits or refuses reaches `shared->done` exactly once. Registered with the pool as
/// an open stream until its input ends, the pool refuses it, or it is destroyed; the consumer's
/// IMapResult is its only owner (the pool holds a weak reference).
template <class R>
class IMapFeed final : public PoolStream {
public:
  /// What an attempt to submit the next chunk did.
  struct Submission {
    enum class Kind { None, Submitted, Refused } kind = Kind::None;  ///< None: input exhausted
    std::exception_ptr chunk_error;  ///< refused: why this chunk cannot run (e.g. too big)
    std::exception_ptr input_error;  ///< the input range threw (after the items of this chunk)
  };
  /// Submits chunk `index` as open stream `stream` (its task reports to `shared`). Throws when
  /// the pool cannot take any more chunks.
  using SubmitNext =
      std::function<Submission(std::size_t index, std::uint64_t stream, const std::shared_ptr<IMapShared<R>>& shared)>;

  /// What the consumer needs to know after a top-up.
  struct Progress {
    std::size_t submitted = 0;  ///< chunks submitted or refused so far
    bool exhausted = false;     ///< nothing more will be submitted
  };

  IMapFeed(SubmitNext submit_next, std::shared_ptr<IMapShared<R>> shared, std::weak_ptr<PoolEngine> core)
      : submit_next_(std::move(submit_next)), shared_(std::move(shared)), core_(std::move(core)) {}
  IMapFeed(const IMapFeed&) = delete;
  IMapFeed& operator=(const IMapFeed&) = delete;
  /// No owner left (nor a drain in progress, which holds a reference): the stream closes and
  /// the rest of the input is never submitted.
  ~IMapFeed() override {
    if (!exhausted_) close_stream();
  }

  /// Registers with the pool (once, right after construction). Throws ValueError unless the
  /// pool is running.
  void open(PoolEngine& core, const std::shared_ptr<IMapFeed>& self) {
    std::lock_guard lock(mutex_);  // a join() on another thread may drain it once registered
    stream_ = core.open_stream(self);
  }

  /// Consumer: submits chunks until `limit` have been submitted in all, or the input ends; the
  /// chunks go into the pool's task ring together (SubmitBatch).
  Progress top_up(std::size_t limit) {
    std::lock_guard lock(mutex_);
    if (exhausted_ || submitted_ >= limit) return {submitted_, exhausted_};
    const std::shared_ptr<PoolEngine> core = core_.lock();
    std::optional<SubmitBatch> batch;
    if (core && core->owned_here()) batch.emplace(*core);
    while (!exhausted_ && submitted_ < limit) submit_one();
    return {submitted_, exhausted_};
  }
  /// join() after close(): submits the whole rest of the input, unbounded (results wait in
  /// `shared` for the consumer, as in CPython's IMapIterator cache).
  void drain() noexcept override {
    std::lock_guard lock(mutex_);
    while (!exhausted_) submit_one();
  }
  /// Why the pool took no more chunks (every time: results are missing), else null.
  std::exception_ptr pool_error() {
    std::lock_guard lock(mutex_);
    return pool_error_;
  }
  /// The pool, while it exists.
  std::shared_ptr<PoolEngine> core() const { return core_.lock(); }
  /// The input range's exception, once.
  std::exception_ptr take_input_error() {
    std::lock_guard lock(mutex_);
    return std::exchange(input_error_, nullptr);
  }

private:
  void submit_one() {  // mutex_ held, !exhausted_
    Submission submission;
    try {
      submission = submit_next_(submitted_, stream_, shared_);
    } catch (...) {
      // The pool takes no more chunks: what is in flight arrives, then this error.
      pool_error_ = std::current_exception();
      finish();
      return;
    }
    if (submission.kind == Submission::Kind::Submitted) {
      ++submitted_;
    } else if (submission.kind == Submission::Kind::Refused) {
      {
        std::lock_guard lock(shared_->mutex);
        shared_->done.push_back({submitted_, {}, std::nullopt, submission.chunk_error});
        shared_->any_done.store(true, std::memory_order_release);
      }
      shared_->wake();  // the consumer may wait on another thread while join() drains
      ++submitted_;
    }
    if (submission.input_error) input_error_ = submission.input_error;
    if (submission.kind == Submission::Kind::None || submission.input_error) finish();
  }
  void finish() {
    exhausted_ = true;
    close_stream();
  }
  void close_stream() noexcept {
    if (stream_ == 0) return;
    if (const std::shared_ptr<PoolEngine> core = core_.lock()) core->close_stream(stream_);
  }

  std::mutex mutex_;
  SubmitNext submit_next_;
  std::shared_ptr<IMapShared<R>> shared_;
  std::weak_ptr<PoolEngine> core_;
  std::uint64_t stream_ = 0;
  std::size_t submitted_ = 0;
  bool exhausted_ = false;
  std::exception_ptr input_error_;  // the input range threw: raised once, after the rest
  std::exception_ptr pool_error_;   // the pool refused more chunks: raised on every later next()
};

} // namespace detail

/// The lazy result of imap / imap_unordered: an input range (iterate it once). At most a
/// bounded number of chunks is in flight (look-ahead), so an endless input is fine; chunks are
/// submitted as the caller consumes results. A failed task throws its error when its result is
/// reached (imap) or when its chunk comes back (imap_unordered); iteration may continue after it.
/// An exception thrown by the input range itself comes once, after the results of every item
/// read before it (in order for imap, last for imap_unordered); the iteration then ends.
///
/// After the pool's close(), the iteration goes on over its whole input, as Python's: close()
/// refuses only new submissions. join() submits the rest of the input of every iteration still
/// open at once (their results wait here for the consumer, unbounded, as in Python), so join()
/// never waits for a consumer. Destroying the iteration abandons the rest of its input. When
/// the pool can take no more chunks (terminated or destroyed), the results in flight come
/// first, then every next() throws BrokenProcessPool: the output is incomplete, so it never
/// ends normally.
///
/// Thread-safety: one consumer thread at a time (the pool's join() may run on another). The
/// input range must outlive the iteration unless it was passed as an rvalue (then it is owned);
/// after close() it is read by the thread that calls join(), under the iteration's lock. The
/// iteration may outlive its pool.
template <class R>
class IMapResult {
public:
  using Submission = typename detail::IMapFeed<R>::Submission;
  using SubmitNext = typename detail::IMapFeed<R>::SubmitNext;

  /// `feed` is open (registered with its pool) and reports to `shared`.
  IMapResult(std::shared_ptr<detail::IMapFeed<R>> feed, std::shared_ptr<detail::IMapShared<R>> shared, bool ordered,
             std::size_t lookahead)
      : feed_(std::move(feed)), ordered_(ordered), lookahead_(lookahead), shared_(std::move(shared)) {}

  /// The next result; std::nullopt once exhausted. Throws the task's error for a failed one.
  std::optional<R> next() { return next_until(std::nullopt); }
  /// Same, waiting at most `timeout` (TimeoutError after it), like Python's next(timeout). A
  /// timeout too long to represent (hours::max()) waits forever.
  template <class Rep, class Period>
  std::optional<R> next(std::chrono::duration<Rep, Period> timeout) {
    return next_until(os::deadline_after(timeout));
  }

  class iterator {
  public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(IMapResult* owner) : owner_(owner) { advance(); }
    const R& operator*() const { return *current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    bool operator==(std::default_sentinel_t) const { return !current_.has_value(); }

  private:
    void advance() { current_ = owner_->next(); }
    IMapResult* owner_ = nullptr;
    std::optional<R> current_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

private:
  using Chunk = typename detail::IMapShared<R>::Chunk;

  std::optional<R> next_until(const std::optional<std::chrono::steady_clock::time_point>& deadline) {
    for (;;) {
      if (position_ < current_.size()) return std::move(current_[position_++]);
      if (take_ready_chunk()) continue;
      // Nothing on hand: refill the look-ahead in one go (fewer worker wake-ups than one
      // chunk per result), then wait for the shared queue and take everything it holds.
      top_up();
      if (fed_.submitted == taken_) {  // everything submitted has been delivered (input ended)
        if (auto error = feed_->pool_error()) std::rethrow_exception(error);  // every time
        if (auto error = feed_->take_input_error()) std::rethrow_exception(error);  // once
        return std::nullopt;
      }
      // As AsyncResult::get(): complete results on this thread (no hop through the pool's
      // handler), else spin (the one wait policy), before sleeping on the condition.
      const auto arrived_now = [&] { return shared_->any_done.load(std::memory_order_acquire); };
      if (const std::shared_ptr<detail::PoolEngine> core = feed_->core()) (void)core->drive(arrived_now, deadline);
      else if (os::may_spin(deadline)) (void)os::spin_until(arrived_now);
      std::unique_lock lock(shared_->mutex);
      auto arrived = [&] { return !shared_->done.empty(); };
      for (;;) {
        // Only the pool's process receives results: a forked child's copy would wait forever.
        if (!arrived() && os::current_pid() != owner_) detail::throw_foreign_result(owner_);
        if (!detail::wait_on(shared_->cv, lock, deadline, arrived))
          throw TimeoutError("procpool: the next imap result was not ready within the timeout");
        taken_ += shared_->done.size();
        for (Chunk& chunk : shared_->done) accept(std::move(chunk));
        shared_->done.clear();
        shared_->any_done.store(false, std::memory_order_relaxed);
        if (!ordered_ || reorder_.count(next_chunk_) != 0) break;
      }
    }
  }

  void accept(Chunk&& chunk) {
    if (ordered_) reorder_.emplace(chunk.index, std::move(chunk));
    else ready_.push_back(std::move(chunk));
  }

  /// Moves the next deliverable chunk (in input order for imap) into current_; rethrows its error.
  bool take_ready_chunk() {
    Chunk chunk;
    if (ordered_) {
      auto node = reorder_.extract(next_chunk_);
      if (node.empty()) return false;
      chunk = std::move(node.mapped());
      ++next_chunk_;
    } else {
      if (ready_.empty()) return false;
      chunk = std::move(ready_.front());
      ready_.pop_front();
    }
    if (chunk.single) {
      current_.clear();  // keeps its capacity: no allocation per one-item chunk
      current_.push_back(std::move(*chunk.single));
    } else {
      current_ = std::move(chunk.values);
    }
    position_ = 0;
    if (chunk.error) std::rethrow_exception(chunk.error);
    return true;
  }

  /// Keeps at most lookahead_ chunks submitted and not yet consumed (in flight, or taken and
  /// waiting for their turn). Once the feed is exhausted its count is final: no lock.
  void top_up() {
    if (fed_.exhausted) return;
    fed_ = feed_->top_up(taken_ - reorder_.size() + lookahead_);
  }

  std::shared_ptr<detail::IMapFeed<R>> feed_;
  bool ordered_;
  std::size_t lookahead_;
  std::shared_ptr<detail::IMapShared<R>> shared_;
  std::vector<R> current_;
  std::size_t position_ = 0;
  std::deque<Chunk> ready_;                 // imap_unordered: taken from shared_, in completion order
  std::map<std::size_t, Chunk> reorder_;    // imap: taken from shared_, waiting for their turn
  std::size_t next_chunk_ = 0;
  std::size_t taken_ = 0;                   // chunks taken from shared_
  typename detail::IMapFeed<R>::Progress fed_;  // the feed's counts after the last top-up
  pid_t owner_ = os::current_pid();
};

/// The pool, over a backend: Processes (procpool::Pool) or Threads (procpool::dummy::Pool).
/// See the README for the semantics.
///
/// Thread-safety: submitting (apply*, map*, imap*, starmap*) is safe from any thread; close(),
/// terminate() and join() too. Only the process that created the pool may use it: in a forked
/// child every member (but processes()) throws ProcessError. Non-copyable, non-movable.
template <class Backend>
class BasicPool {
public:
  /// A pool of cpu_count() workers.
  BasicPool() : BasicPool(PoolOptions{}) {}
  /// A pool of `processes` workers; ValueError unless 1 <= processes and they can fit (the
  /// process and thread limits, and memory for worker processes).
  explicit BasicPool(int processes) : BasicPool(PoolOptions{.processes = processes}) {}
  explicit BasicPool(PoolOptions options)
      : core_(std::make_shared<detail::PoolCore>(make_config(options, std::nullopt))) {}
  /// With an initializer run once in each worker before its first task (a function or a
  /// captureless lambda; its arguments must be Sendable).
  template <class Init, class... InitArgs>
  BasicPool(PoolOptions options, Init initializer, InitArgs&&... initargs)
      : core_(std::make_shared<detail::PoolCore>(
            make_config(options, make_initializer(initializer, std::forward<InitArgs>(initargs)...)))) {}

  BasicPool(const BasicPool&) = delete;
  BasicPool& operator=(const BasicPool&) = delete;
  /// Terminates the workers, like leaving Python's `with Pool() as pool:` block. In a forked
  /// child (a copy of the owner's pool) it does nothing to the owner's workers: the copy is
  /// abandoned, see detail::PoolEngine::abandon.
  ~BasicPool() {
    if (!core_->owned_here()) detail::PoolEngine::abandon(std::move(core_));
    else core_->shutdown();  // now, even while an imap iteration briefly holds the core
  }

  // -- apply ------------------------------------------------------------------------------------

  /// Runs fn(args...) in a worker; the result arrives through the AsyncResult.
  template <class Fn, class... Args>
  auto apply_async(Fn fn, Args&&... args) {
    return apply_async(Callbacks<result_of_apply<Fn, Args...>>{}, fn, std::forward<Args>(args)...);
  }
  /// Same, with a callback (value) and an error_callback (exception), run as Callbacks says.
  template <class R, class Fn, class... Args>
  AsyncResult<R> apply_async(Callbacks<R> callbacks, Fn fn, Args&&... args) {
    detail::require_pool_callable<Fn>();
    static_assert(std::is_same_v<R, result_of_apply<Fn, Args...>>, "procpool: the callbacks' type must match fn's result");
    auto state =
        std::make_shared<detail::ResultState<R>>(std::move(callbacks.callback), std::move(callbacks.error_callback));
    state->set_driver(core_);
    if constexpr (!Backend::interprocess) {
      // Threads: the arguments move into memory the worker reads, the result moves back.
      using Call = detail::InPlaceApply<R, std::decay_t<Args>...>;
      auto task = std::make_shared<detail::InPlaceApplyTask<R, Call>>(
          state, std::make_unique<Call>(Call{std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...), {}}));
      const Call* address = task->call();
      const void* invoker = task_entry<&detail::invoke_apply_in_place<Fn, R, std::decay_t<Args>...>>();
      core_->submit(invoker, function_address(fn), std::string_view(reinterpret_cast<const char*>(&address), sizeof address),
                    std::move(task));
    } else {
      (codec::require_sendable<std::decay_t<Args>>(), ...);
      const void* invoker = task_entry<&detail::invoke_apply<Fn, std::decay_t<Args>...>>();
      auto task = std::make_shared<detail::SingleTask<R>>(state);
      if ((is_large_contiguous(args) || ...)) {
        // A large vector or string goes from the caller's memory straight to where the task
        // reads it (the ring, or its own segment): no intermediate copy.
        std::deque<std::string> encoded;  // stable addresses for the pieces
        std::vector<std::string_view> pieces;
        (add_piece(encoded, pieces, static_cast<const std::decay_t<Args>&>(args)), ...);
        core_->submit(invoker, function_address(fn), pieces, std::move(task));
      } else {
        std::string payload;
        (codec::encode_to(payload, static_cast<const std::decay_t<Args>&>(args)), ...);
        core_->submit(invoker, function_address(fn), payload, std::move(task));
      }
    }
    return AsyncResult<R>(state);
  }
  /// apply_async(...).get().
  template <class Fn, class... Args>
  auto apply(Fn fn, Args&&... args) {
    return apply_async(fn, std::forward<Args>(args)...).take();
  }

  // -- map --------------------------------------------------------------------------------------

  /// fn over every item, results in input order. chunksize 0: Python's default.
  template <class Fn, std::ranges::input_range Range>
  auto map_async(Fn fn, Range&& items, std::size_t chunksize = 0) {
    using T = std::ranges::range_value_t<Range>;
    return map_impl<false>(fn, std::forward<Range>(items), chunksize, Callbacks<std::vector<result_of_item<Fn, T>>>{})
        .result;
  }
  template <class Fn, std::ranges::input_range Range, class R>
  AsyncResult<std::vector<R>> map_async(Fn fn, Range&& items, std::size_t chunksize, Callbacks<std::vector<R>> callbacks) {
    return map_impl<false>(fn, std::forward<Range>(items), chunksize, std::move(callbacks)).result;
  }
  template <class Fn, std::ranges::input_range Range>
  auto map(Fn fn, Range&& items, std::size_t chunksize = 0) {
    using T = std::ranges::range_value_t<Range>;
    return wait_for_map(map_impl<false>(fn, std::forward<Range>(items), chunksize,
                                        Callbacks<std::vector<result_of_item<Fn, T>>>{}, /*borrow_items=*/true));
  }

  /// Like map, but each item is a tuple of fn's arguments.
  template <class Fn, std::ranges::input_range Range>
  auto starmap_async(Fn fn, Range&& items, std::size_t chunksize = 0) {
    return map_impl<true>(fn, std::forward<Range>(items), chunksize, Callbacks<std::vector<result_of_tuple<Fn, Range>>>{})
        .result;
  }
  template <class Fn, std::ranges::input_range Range>
  auto starmap(Fn fn, Range&& items, std::size_t chunksize = 0) {
    return wait_for_map(map_impl<true>(fn, std::forward<Range>(items), chunksize,
                                       Callbacks<std::vector<result_of_tuple<Fn, Range>>>{}, /*borrow_items=*/true));
  }

  // -- imap -------------------------------------------------------------------------------------

  /// Lazy, ordered map: results come as they are ready, in input order.
  template <class Fn, std::ranges::input_range Range>
  auto imap(Fn fn, Range&& items, std::size_t chunksize = 1) {
    return imap_impl(fn, std::forward<Range>(items), chunksize, true);
  }
  /// Lazy map in completion order.
  template <class Fn, std::ranges::input_range Range>
  auto imap_unordered(Fn fn, Range&& items, std::size_t chunksize = 1) {
    return imap_impl(fn, std::forward<Range>(items), chunksize, false);
  }

  // -- lifecycle --------------------------------------------------------------------------------

  /// No more tasks; workers exit when the queued ones are done.
  void close() { core_->close(); }
  /// Stops the workers now; unfinished tasks fail with BrokenProcessPool. A process worker is
  /// killed (SIGTERM, SIGKILL after 200 ms); a thread worker finishes its current task first.
  void terminate() { core_->terminate(); }
  /// Waits for the workers to exit. Throws ValueError unless close() or terminate() came first.
  void join() { core_->join(); }
  /// Number of workers.
  [[nodiscard]] int processes() const noexcept { return core_->workers(); }
  /// Current workers' pids (the thread backend: this process's pid).
  [[nodiscard]] std::vector<int> worker_pids() const { return core_->worker_pids(); }

private:
  template <class Fn, class... Args>
  using result_of_apply = detail::decoded_call_result_t<Fn, std::decay_t<Args>...>;
  template <class Fn, class T>
  using result_of_item = std::invoke_result_t<std::decay_t<Fn>&, T&>;
  template <class Fn, class Range>
  using result_of_tuple =
      decltype(std::apply(std::declval<std::decay_t<Fn>&>(), std::declval<std::ranges::range_value_t<Range>&>()));

  /// Large enough for apply_async to copy it into the task directly (encode_split).
  template <class A>
  static bool is_large_contiguous(const A& arg) {
    if constexpr (ContiguousSendable<std::decay_t<A>>) return arg.size() * sizeof(arg[0]) >= 64 * 1024;
    else return false;
  }
  template <class A>
  static void add_piece(std::deque<std::string>& encoded, std::vector<std::string_view>& pieces, const A& arg) {
    std::string& own = encoded.emplace_back();
    if constexpr (ContiguousSendable<A>) {
      const std::string_view elements = codec::encode_split(own, arg);
      pieces.push_back(own);
      pieces.push_back(elements);
    } else {
      codec::encode_to(own, arg);
      pieces.push_back(own);
    }
  }

  /// A task's entry point; a cluster pool's entries are registered for its workers (ClusterInvoker).
  template <auto Invoker>
  static const void* task_entry() {
    if constexpr (requires { Backend::cluster; }) (void)detail::ClusterInvoker<Invoker>::allowed;
    return detail::code_address(Invoker);
  }

  template <class Fn>
  static const void* function_address(Fn fn) {
    if constexpr (std::is_pointer_v<std::decay_t<Fn>>) return detail::code_address(fn);
    else return nullptr;  // a captureless lambda is rebuilt by the invoker
  }

  template <class Init, class... InitArgs>
  static detail::PortableTarget make_initializer(Init initializer, InitArgs&&... initargs) {
    static_assert(detail::is_portable_callable<Init>(),
                  "procpool::Pool: the initializer must be a function or a captureless lambda");
    detail::PortableTarget target;
    std::tuple<detail::StoredArg<InitArgs>...> stored(std::forward<InitArgs>(initargs)...);
    if (!detail::make_portable_target(target, initializer, stored))
      throw ValueError("procpool: the initializer's arguments must be Sendable");
    return target;
  }

  static detail::PoolCoreConfig make_config(const PoolOptions& options,
                                            std::optional<detail::PortableTarget> initializer) {
    detail::PoolCoreConfig config;
    config.workers = options.processes.value_or(cpu_count());
    if (config.workers < 1) throw ValueError("procpool: Number of processes must be at least 1");
    config.max_tasks_per_child = options.maxtasksperchild;
    config.interprocess = Backend::interprocess;
    // Only a process backend reads the start method (and the environment's default, which
    // may be invalid): a thread pool never needs it.
    if constexpr (Backend::interprocess)
      config.start_method = options.start_method ? *options.start_method : get_start_method();
    config.ring_bytes = options.ring_bytes;
    config.initializer = std::move(initializer);
    return config;
  }

  /// One chunk of a map call: `count` items from `offset`; `encoded` holds the payload of
  /// items that are not trivially copyable (those are encoded while the chunks are cut).
  struct MapChunk {
    std::size_t offset = 0;
    std::size_t count = 0;
    std::string encoded;
  };

  /// `chunksize`, capped so that a chunk of trivially copyable items (and of their results, when
  /// those are trivially copyable too) takes at most the core's chunk byte budget.
  template <class T, class R>
  std::size_t capped_chunksize(std::size_t chunksize) const {
    if constexpr (TriviallySendable<T>) {
      std::size_t per_item = sizeof(T);
      if constexpr (TriviallySendable<R>) per_item = std::max(per_item, sizeof(R));
      return std::max<std::size_t>(1, std::min(chunksize, core_->chunk_byte_budget() / per_item));
    } else {
      return chunksize;
    }
  }

  /// Cuts `items` into chunks of at most `chunksize` items, smaller where a chunk's arguments
  /// (or trivially copyable results) would take more than a quarter of a ring: map over any
  /// input size works with the default chunksize and ring size, and several chunks fit in a
  /// ring at once, so workers can take one while the next is written.
  template <class T, class R>
  std::vector<MapChunk> cut_chunks(std::span<const T> items, std::size_t chunksize) const {
    std::vector<MapChunk> chunks;
    if constexpr (TriviallySendable<T>) {
      chunksize = capped_chunksize<T, R>(chunksize);
      chunks.reserve((items.size() + chunksize - 1) / chunksize);
      for (std::size_t offset = 0; offset < items.size(); offset += chunksize)
        chunks.push_back({offset, std::min(chunksize, items.size() - offset), {}});
    } else {
      const std::size_t budget = core_->chunk_byte_budget();
      for (std::size_t offset = 0; offset < items.size();) {
        std::size_t count = std::min(chunksize, items.size() - offset);
        std::string encoded;
        for (;;) {  // halve a chunk whose encoding is over budget (down to one item)
          encoded.clear();
          detail::encode_chunk_items(encoded, items.data() + offset, static_cast<std::uint32_t>(count));
          if (encoded.size() <= budget || count == 1) break;
          count = (count + 1) / 2;
        }
        chunks.push_back({offset, count, std::move(encoded)});
        offset += count;
      }
    }
    return chunks;
  }

  /// A submitted map call: its result, and the call itself (whose gate a waiting caller leaves by).
  template <class R>
  struct MapSubmission {
    AsyncResult<std::vector<R>> result;
    std::shared_ptr<detail::MapCall<R>> call;
    std::function<void()> help;  ///< thread backend: runs chunks on the waiting caller's thread
  };

  /// map() / starmap(): the result, once every chunk has finished. On the thread backend the
  /// chunks read the caller's items in place, so on an error (terminate() fails chunks that a
  /// thread may still run) it returns only once no worker reads them any more.
  template <class R>
  static std::vector<R> wait_for_map(MapSubmission<R> submission) {
    try {
      if (submission.help) submission.help();
      return submission.result.take();
    } catch (...) {
      if (submission.call) submission.call->gate.abandon_and_wait();
      throw;
    }
  }

  /// map / starmap (Star: each item is a tuple of fn's arguments). `borrow_items`: the caller
  /// waits for the result (wait_for_map), so the thread backend may read its items in place
  /// without a copy.
  template <bool Star, class Fn, class Range, class R>
  MapSubmission<R> map_impl(Fn fn, Range&& items, std::size_t chunksize, Callbacks<std::vector<R>> callbacks,
                            bool borrow_items = false) {
    using T = std::ranges::range_value_t<Range>;
    detail::require_pool_callable<Fn>();
    codec::require_sendable<T>();
    codec::require_sendable<R>();
    static_assert(std::is_default_constructible_v<R>, "procpool::Pool::map: the result type must be default constructible");
    core_->check_owner();
    auto state = std::make_shared<detail::ResultState<std::vector<R>>>(std::move(callbacks.callback), std::move(callbacks.error_callback));
    state->set_driver(core_);
    constexpr bool contiguous = std::ranges::sized_range<Range> && std::ranges::contiguous_range<Range>;
    // Materialise the input once: its size gives Python's default chunksize.
    std::vector<T> materialised;
    if constexpr (!contiguous)
      for (auto&& item : items) materialised.push_back(static_cast<T>(item));
    std::span<const T> span = [&]() -> std::span<const T> {
      if constexpr (contiguous) return std::span<const T>(std::ranges::data(items), std::ranges::size(items));
      else return std::span<const T>(materialised);
    }();
    if (chunksize == 0) chunksize = detail::default_chunksize(span.size(), core_->workers());
    auto call = std::make_shared<detail::MapCall<R>>();
    call->state = state;
    call->values.resize(span.size());
    if (span.empty()) {
      state->set_value({});
      return {AsyncResult<std::vector<R>>(state), call, {}};
    }
    if constexpr (!Backend::interprocess) {
      // In place: each chunk record says where its items and result slots are.
      if (!contiguous || !borrow_items) {
        auto owned = std::make_shared<std::vector<T>>(contiguous ? std::vector<T>(span.begin(), span.end())
                                                                 : std::move(materialised));
        span = std::span<const T>(*owned);
        call->owned_items = std::move(owned);
      }
      const std::size_t chunks = (span.size() + chunksize - 1) / chunksize;
      call->remaining = chunks;
      const void* invoker = detail::code_address(&detail::invoke_map_in_place<Fn, T, Star>);
      // A caller that waits runs chunks too, from the last one back, while the workers take
      // them from the first: its core computes instead of idling (as a TBB caller does). Not
      // with an initializer: its tasks may rely on the per-worker state it set up.
      const bool caller_helps = borrow_items && chunks > 1 && !core_->has_initializer();
      if (caller_helps) {
        call->claims = std::make_unique<std::atomic<detail::ChunkClaim>[]>(chunks);
        call->caller_errors.resize(chunks);
      }
      const auto chunk_at = [c = call.get(), span, chunksize](std::size_t i) {  // c: kept alive by its tasks
        const std::size_t offset = i * chunksize;
        return detail::InPlaceChunk{span.data() + offset, c->values.data() + offset,
                                    std::min(chunksize, span.size() - offset), &c->gate,
                                    c->claims ? &c->claims[i] : nullptr};
      };
      try {
        for (std::size_t i = 0; i < chunks; ++i) {
          const std::size_t offset = i * chunksize;
          const detail::InPlaceChunk chunk = chunk_at(i);
          core_->submit(invoker, function_address(fn), std::string_view(reinterpret_cast<const char*>(&chunk), sizeof chunk),
                        std::make_shared<detail::MapChunkTask<R>>(call, i, offset, chunk.count, /*in_place=*/true));
        }
      } catch (...) {
        call->gate.abandon_and_wait();  // closed meanwhile: the chunks already queued must not read borrowed items
        throw;
      }
      if (caller_helps) {
        const void* function = function_address(fn);
        MapSubmission<R> submission{AsyncResult<std::vector<R>>(state), call, {}};
        submission.help = [call = call.get(), chunk_at, chunks, function] {
          for (std::size_t i = chunks; i-- > 0;) {
            if (!detail::claim_chunk(call->claims[i])) return;  // the workers have come this far
            try {
              detail::run_chunk_in_place<Fn, T, Star>(function, chunk_at(i));
            } catch (...) {
              call->caller_errors[i] = detail::current_task_error();  // reported when the chunk's record completes
            }
            detail::finish_chunk(call->claims[i]);
          }
        };
        return submission;
      }
    } else {
      const void* invoker = nullptr;
      if constexpr (Star) invoker = task_entry<&detail::invoke_starmap<Fn, T>>();
      else invoker = task_entry<&detail::invoke_map<Fn, T>>();
      const std::vector<MapChunk> chunks = cut_chunks<T, R>(span, chunksize);
      call->remaining = chunks.size();
      std::uint32_t count_storage = 0;
      std::string scratch;
      for (std::size_t i = 0; i < chunks.size(); ++i) {
        const MapChunk& c = chunks[i];
        const auto pieces = c.encoded.empty()
                                ? detail::chunk_pieces(span.data() + c.offset, static_cast<std::uint32_t>(c.count), count_storage, scratch)
                                : std::array<std::string_view, 2>{c.encoded, std::string_view()};
        core_->submit(invoker, function_address(fn), pieces, std::make_shared<detail::MapChunkTask<R>>(call, i, c.offset, c.count));
      }
    }
    return {AsyncResult<std::vector<R>>(state), call, {}};
  }

  template <class Fn, class Range>
  auto imap_impl(Fn fn, Range&& items, std::size_t chunksize, bool ordered) {
    using T = std::ranges::range_value_t<Range>;
    using R = result_of_item<Fn, T>;
    detail::require_pool_callable<Fn>();
    codec::require_sendable<T>();
    codec::require_sendable<R>();
    if (chunksize == 0) throw ValueError("procpool: imap chunksize must be at least 1");
    core_->check_owner();
    if (!core_->running()) throw ValueError("procpool: Pool not running: imap needs a pool before close() or terminate()");
    chunksize = capped_chunksize<T, R>(chunksize);  // as map: a chunk takes at most a quarter of a ring
    // Own an rvalue range; refer to an lvalue one.
    using Holder = std::conditional_t<std::is_lvalue_reference_v<Range>, std::remove_reference_t<Range>*, std::remove_cvref_t<Range>>;
    struct Source {
      Holder holder;
      std::optional<decltype(std::ranges::begin(std::declval<std::remove_reference_t<Range>&>()))> it;
      auto& range() {
        if constexpr (std::is_pointer_v<Holder>) return *holder;
        else return holder;
      }
    };
    std::shared_ptr<Source> source;
    if constexpr (std::is_lvalue_reference_v<Range>) source = std::make_shared<Source>(Source{&items, std::nullopt});
    else source = std::make_shared<Source>(Source{std::move(items), std::nullopt});
    const void* invoker = task_entry<&detail::invoke_map<Fn, T>>();
    const void* function = function_address(fn);
    using Feed = detail::IMapFeed<R>;
    using Submission = typename Feed::Submission;
    // A weak reference: the iteration may outlive the pool (BrokenProcessPool, not a dangling
    // pointer). Input exceptions are kept apart from submission errors: the former end the
    // input after the items read before them, the latter say the pool takes nothing more.
    auto submit_next = [weak_core = std::weak_ptr<detail::PoolEngine>(core_), source, chunksize, invoker, function,
                        chunk = std::vector<T>(), scratch = std::string()](
                           std::size_t index, std::uint64_t stream,
                           const std::shared_ptr<detail::IMapShared<R>>& shared) mutable -> Submission {
      const std::shared_ptr<detail::PoolEngine> core = weak_core.lock();
      auto broken = [] {
        return BrokenProcessPool("procpool: the pool of this imap iteration was terminated or destroyed; the rest of "
                                 "its input cannot run");
      };
      if (!core || core->terminated()) throw broken();
      Submission submission;
      chunk.clear();
      try {
        if (!source->it) source->it = std::ranges::begin(source->range());
        while (chunk.size() < chunksize && *source->it != std::ranges::end(source->range())) {
          chunk.push_back(static_cast<T>(**source->it));
          ++*source->it;
        }
      } catch (...) {
        submission.input_error = std::current_exception();
      }
      if (chunk.empty()) return submission;
      std::uint32_t count_storage = 0;
      try {
        const auto pieces = detail::chunk_pieces(chunk.data(), static_cast<std::uint32_t>(chunk.size()), count_storage, scratch);
        core->submit(invoker, function, pieces, std::make_shared<detail::IMapChunkTask<R>>(shared, index, chunk.size()), stream);
        submission.kind = Submission::Kind::Submitted;
      } catch (...) {
        if (core->terminated()) throw broken();              // terminated meanwhile
        if (!core->owned_here() || !core->accepts(stream)) throw;  // the pool takes nothing more
        submission.kind = Submission::Kind::Refused;           // this chunk cannot run (too big)
        submission.chunk_error = std::current_exception();
      }
      return submission;
    };
    // Enough chunks in flight to keep every worker busy without a round trip per chunk, few
    // enough that an endless input stays in bounded memory.
    const std::size_t lookahead = static_cast<std::size_t>(std::max(256, core_->workers() * 64));
    auto shared = std::make_shared<detail::IMapShared<R>>();
    auto feed = std::make_shared<Feed>(std::move(submit_next), shared, std::weak_ptr<detail::PoolEngine>(core_));
    feed->open(*core_, feed);  // ValueError if close() or terminate() came meanwhile
    return IMapResult<R>(std::move(feed), std::move(shared), ordered, lookahead);
  }

protected:
  /// Over another engine (cluster::Pool: workers on other hosts).
  explicit BasicPool(std::shared_ptr<detail::PoolEngine> engine) : core_(std::move(engine)) {}

private:
  std::shared_ptr<detail::PoolEngine> core_;  // shared with nothing but imap iterations' weak references
};

/// The process pool (multiprocessing.Pool).
using Pool = Processes::Pool;

namespace dummy {
/// The thread pool behind the same API (multiprocessing.dummy.Pool / ThreadPool).
using Pool = Threads::Pool;
} // namespace dummy

} // namespace procpool
