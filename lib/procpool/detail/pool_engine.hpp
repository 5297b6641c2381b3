#pragma once
/// @file detail/pool_engine.hpp
/// What the typed pool layer (pool.hpp) needs from the engine that runs its tasks: the local
/// engine (PoolCore: worker processes or threads over shared-memory rings) or the cluster engine
/// (workers on other hosts, through a Redis broker). The typed layer builds payloads and decodes
/// results the same way for both.
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "procpool/async_result.hpp"
#include "procpool/detail/os/ids.hpp"

namespace procpool::detail {

/// The parent's record of a task in flight. complete() or fail() is called exactly once, on
/// the pool's handler thread (or the thread running terminate()).
class PendingTask {
public:
  virtual ~PendingTask() = default;
  virtual void complete(std::string_view payload) = 0;
  virtual void fail(std::exception_ptr error) = 0;
};

/// A consumer of several results (an imap iteration) that wants one wake-up per batch of
/// results rather than one per result.
class ResultWaiter {
public:
  virtual ~ResultWaiter() = default;
  virtual void wake() = 0;
};

/// Wakes `waiter` now; on a pool's handler thread, once the handler has completed the results
/// that are already waiting (at most a few dozen), so that a consumer faster than the workers
/// is not woken for every single result.
void wake_after_batch(const std::shared_ptr<ResultWaiter>& waiter);

/// An iteration that submits its input lazily (imap / imap_unordered), registered with the pool
/// while it may still submit: after close(), an open stream may go on submitting (Python feeds
/// the whole input of an imap started before close()), and the task ring stays open until every
/// stream has finished or been destroyed. join() after close() drains every open stream: it
/// submits the rest of its input at once (no look-ahead bound), as CPython's task handler does.
class PoolStream {
public:
  virtual ~PoolStream() = default;
  /// Submits everything left of the input, then closes the stream (close_stream). Never throws:
  /// errors are kept for the stream's consumer. Called without any lock of the pool held.
  virtual void drain() noexcept = 0;
};

class PoolEngine;

/// While one exists, the task records that this thread submits to `core` are collected and go
/// into the task ring together when it ends (Ring::push_many: one lock, one publication, and
/// no record's writes waiting for the previous one's cache lines). For imap's look-ahead
/// top-ups, which submit many small tasks at once. Submission errors are thrown at once, as
/// without a batch. Not copyable; ends on the thread that made it.
class SubmitBatch {
public:
  explicit SubmitBatch(PoolEngine& core);
  SubmitBatch(const SubmitBatch&) = delete;
  SubmitBatch& operator=(const SubmitBatch&) = delete;
  ~SubmitBatch();

private:
  friend class PoolCore;
  friend class PoolEngine;
  PoolEngine& core_;
  SubmitBatch* outer_;
  std::string buffer_;                                       ///< the records, back to back
  std::vector<std::pair<std::size_t, std::size_t>> records_;  ///< offset and size in buffer_
};

/// The engine under a BasicPool. Owned through a shared_ptr: an imap iteration holds a
/// weak_ptr, so that it can outlive the pool safely (BrokenProcessPool, not a dangling pointer).
/// Every member is thread-safe unless it says otherwise.
class PoolEngine : public ResultDriver {
public:
  PoolEngine() = default;
  PoolEngine(const PoolEngine&) = delete;
  PoolEngine& operator=(const PoolEngine&) = delete;

  /// Terminates and joins, like leaving Python's `with Pool() as p:` block; errors are logged.
  /// Idempotent. Owner process only.
  virtual void shutdown() noexcept = 0;
  /// What a pool's destructor does with its engine in a process that does not own it (a forked
  /// child's copy): nothing that touches the owner's pool. Its workers, threads and rings are
  /// the owner's (the threads do not even exist here), so the copy is neither terminated nor
  /// joined nor destroyed: it is kept, unused, until this process exits.
  static void abandon(std::shared_ptr<PoolEngine> engine) noexcept;

  /// Whether the calling process created this pool (a forked child has a copy, not the pool).
  /// A cached-pid comparison: cheap enough for every submission.
  [[nodiscard]] bool owned_here() const noexcept { return os::current_pid() == owner_pid_; }
  /// Throws ProcessError unless owned_here(): a child's task ids would collide with the
  /// owner's, and its results would reach the owner's handler.
  void check_owner() const {
    if (!owned_here()) [[unlikely]] throw_not_owner();
  }

  /// Queues a task: `invoker(function, payload, out)` runs in a worker; `task` gets the outcome.
  /// The payload is the concatenation of `pieces`. Never blocks on a full queue. Throws
  /// ValueError once the pool is closed or terminated, ProcessError in a process that does not
  /// own the pool (check_owner). `stream`: the id of the open stream submitting (open_stream),
  /// which may still submit after close(); 0 for any other submission.
  virtual void submit(const void* invoker, const void* function, std::span<const std::string_view> pieces,
                      std::shared_ptr<PendingTask> task, std::uint64_t stream = 0) = 0;
  void submit(const void* invoker, const void* function, std::string_view payload, std::shared_ptr<PendingTask> task) {
    submit(invoker, function, std::span<const std::string_view>(&payload, 1), std::move(task));
  }

  /// Registers a lazy iteration (see PoolStream); returns its id (never 0). Throws ValueError
  /// unless the pool is running, ProcessError outside the owner.
  virtual std::uint64_t open_stream(std::weak_ptr<PoolStream> stream) = 0;
  /// The stream submits nothing more. Idempotent; a no-op outside the owner.
  virtual void close_stream(std::uint64_t id) noexcept = 0;
  /// Whether submit() takes tasks from `stream` (0: any other submitter).
  [[nodiscard]] virtual bool accepts(std::uint64_t stream) = 0;

  /// No new submissions; open streams may still submit the rest of their input.
  virtual void close() = 0;
  /// Stops now; queued and running tasks fail with BrokenProcessPool.
  virtual void terminate() = 0;
  /// Waits for the end; ValueError unless close() or terminate() came first.
  virtual void join() = 0;

  /// The number of workers (Python's `processes`: default chunk sizes and look-ahead use it).
  [[nodiscard]] virtual int workers() const noexcept = 0;
  /// Whether each worker runs an initializer first (then tasks must run in workers only).
  [[nodiscard]] virtual bool has_initializer() const noexcept = 0;
  /// The most bytes the typed layer puts in one chunk.
  [[nodiscard]] virtual std::size_t chunk_byte_budget() const noexcept = 0;
  /// Pids of the current workers.
  [[nodiscard]] virtual std::vector<int> worker_pids() const = 0;
  [[nodiscard]] virtual bool running() const noexcept = 0;
  /// True once terminate() has begun (explicitly or by the destructor).
  [[nodiscard]] virtual bool terminated() const noexcept = 0;

protected:
  friend class SubmitBatch;
  /// Puts a batch's collected records where they go (engines that collect none: nothing).
  virtual void flush_batch(SubmitBatch& /*batch*/) noexcept {}
  [[noreturn]] void throw_not_owner() const;

  pid_t owner_pid_ = os::current_pid();
};

} // namespace procpool::detail
