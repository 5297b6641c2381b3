#pragma once
/// @file detail/pool_core.hpp
/// The untyped engine under Pool and dummy::Pool: workers (processes or threads), the task and
/// result rings, the handler thread that completes tasks, the supervisor that replaces workers
/// and turns a dead worker's task into WorkerLostError, and the feeder that keeps submission
/// non-blocking. The typed layer (pool.hpp) builds payloads and decodes results.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "procpool/async_result.hpp"
#include "procpool/detail/arg_transfer.hpp"
#include "procpool/detail/pool_engine.hpp"
#include "procpool/detail/sync_support.hpp"
#include "procpool/start_method.hpp"

namespace procpool::detail {

class Ring;
class SharedSegment;
class SpareSegments;
struct ResultHeader;

struct PoolCoreConfig {
  int workers = 1;
  std::optional<int> max_tasks_per_child;
  bool interprocess = true;             ///< processes (true) or threads (false)
  StartMethod start_method = StartMethod::Fork;
  std::size_t ring_bytes = std::size_t{8} << 20;
  std::optional<PortableTarget> initializer;
};

struct WorkerControl;
class WorkerHandle;
struct Wakeup;

/// Owned through a shared_ptr: an imap iteration holds a weak_ptr, so that it can outlive the
/// pool safely (BrokenProcessPool instead of a dangling pointer).
class PoolCore final : public PoolEngine {
public:
  /// Throws ValueError for a size that cannot fit (see check_pool_size in pool/pool_core.cpp).
  explicit PoolCore(PoolCoreConfig config);
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;
  /// shutdown().
  ~PoolCore() override;

  /// ResultDriver: a thread waiting for a result (AsyncResult::get, an imap's next) completes
  /// results itself, straight from the result ring, while the handler thread sleeps. One
  /// thread at a time handles results (the handler or one waiter: `driver_mutex_`), so
  /// callbacks still run one at a time. Thread-safe; in a process that does not own the pool,
  /// or on a thread already handling results (a callback), it returns at once.
  bool drive_until(bool (*ready)(const void*), const void* context, const os::Deadline& deadline) override;

  /// Terminates and joins, like leaving Python's `with Pool() as p:` block; errors are logged.
  /// Idempotent. Owner process only.
  void shutdown() noexcept override;

  /// Queues a task: `invoker(function, payload, out)` runs in a worker; `task` gets the outcome.
  /// The payload is the concatenation of `pieces`, copied straight into the task ring (no
  /// intermediate record). Never blocks on a full ring (a feeder thread takes over).
  /// Thread-safe. Throws ValueError once the pool is closed or terminated, ProcessError in a
  /// process that does not own the pool (check_owner).
  /// `stream`: the id of the open stream submitting (open_stream), which may still submit
  /// after close(); 0 for any other submission.
  void submit(const void* invoker, const void* function, std::span<const std::string_view> pieces,
              std::shared_ptr<PendingTask> task, std::uint64_t stream = 0) override;
  using PoolEngine::submit;

  /// Registers a lazy iteration (see PoolStream); returns its id (never 0). Throws ValueError
  /// unless the pool is running, ProcessError outside the owner. Thread-safe.
  std::uint64_t open_stream(std::weak_ptr<PoolStream> stream) override;
  /// The stream submits nothing more (its input ended, the pool refused it, or it is being
  /// destroyed). Idempotent. Thread-safe; a no-op outside the owner.
  void close_stream(std::uint64_t id) noexcept override;
  /// Whether submit() takes tasks from `stream` (0: any other submitter): the pool runs, or it
  /// is closed and the stream is still open. Thread-safe.
  [[nodiscard]] bool accepts(std::uint64_t stream) override;

  /// No new submissions; open streams may still submit the rest of their input. Workers exit
  /// once the queued tasks are done and every stream is closed. Thread-safe. close(),
  /// terminate(), join() and worker_pids() also check_owner().
  void close() override;
  /// Stops the workers now (SIGTERM, then SIGKILL after 200 ms for processes); queued and
  /// running tasks fail with BrokenProcessPool. Thread-safe.
  void terminate() override;
  /// Waits for the workers and the handler to finish; after close(), first drains every open
  /// stream (PoolStream::drain), so that it never waits on a consumer. Throws ValueError if the
  /// pool is still running (call close() or terminate() first), like Python.
  void join() override;

  [[nodiscard]] int workers() const noexcept override { return config_.workers; }
  /// Whether each worker runs an initializer first (then tasks must run in workers only).
  [[nodiscard]] bool has_initializer() const noexcept override { return config_.initializer.has_value(); }
  /// The most bytes the typed layer puts in one chunk: an eighth of the task ring's warm zone,
  /// so that chunks cycle through pages already committed (Ring::warm_bytes) and each worker's
  /// copy of a chunk stays small.
  [[nodiscard]] std::size_t chunk_byte_budget() const noexcept override;
  /// Pids of the current worker processes (the thread backend reports this process's pid).
  [[nodiscard]] std::vector<int> worker_pids() const override;
  [[nodiscard]] bool running() const noexcept override { return state_.load() == State::Run; }
  /// True once terminate() has begun (explicitly or by the destructor). Thread-safe.
  [[nodiscard]] bool terminated() const noexcept override { return state_.load() == State::Terminate; }

private:
  enum class State { Run, Close, Terminate };

  void start_worker(std::size_t index);
  void handler_loop();
  void supervisor_loop();
  void feeder_loop();
  /// Starts the feeder thread unless it runs (feed_mutex_ held). Throws ProcessError.
  void start_feeder();
  friend class SubmitBatch;
  /// Moves a batch's records into the task ring (what does not fit: into the backlog).
  void flush_batch(SubmitBatch& batch) noexcept override;
  void handle_result(std::string_view record);
  /// Tells the worker that sent this out-of-band result that it may close its segment.
  void take_result_segment(const ResultHeader& header) noexcept;
  /// Pops and completes up to `max` results without waiting (driver_mutex_ held); returns how
  /// many, or -1 once the ring is closed and drained.
  int handle_available(int max);
  /// A waiter stops handling results: the handler thread takes them over after its grace.
  void end_driving(std::unique_lock<std::mutex>& lock) noexcept;
  void fail_all_pending(const std::string& why);
  void encode_code(std::string& out, const void* address, std::uint64_t& field, std::uint32_t& name_len);

  PoolCoreConfig config_;
  std::atomic<State> state_{State::Run};
  std::unique_ptr<Ring> tasks_;
  std::unique_ptr<Ring> results_;
  std::unique_ptr<SharedSegment> control_segment_;
  WorkerControl* control_ = nullptr;
  bool raw_addresses_ = true;  ///< thread workers and fork workers share our addresses

  mutable std::mutex workers_mutex_;
  std::vector<std::unique_ptr<WorkerHandle>> workers_;

  /// A task in flight and the bytes its record took in the task ring.
  struct Pending {
    std::shared_ptr<PendingTask> task;
    std::size_t bytes = 0;
    std::shared_ptr<const void> payload;  ///< an out-of-band payload, kept until the task has ended
    bool payload_is_segment = false;      ///< payload is a SharedSegment (spares_ may keep it)
  };
  /// Process backend: memfds of out-of-band arguments whose tasks completed, rewritten by the
  /// next large submissions instead of allocated afresh; freed by join() and terminate().
  std::unique_ptr<SpareSegments> spares_;
  /// Records over this size carry their payload out of band (PayloadAt).
  [[nodiscard]] std::size_t out_of_band_threshold() const noexcept;
  std::mutex pending_mutex_;
  std::unordered_map<std::uint64_t, Pending> pending_;
  /// Thread backend: tasks failed by terminate() that a worker thread may still run, kept until
  /// the workers are joined (pending_mutex_).
  std::vector<Pending> retired_;
  std::atomic<std::uint64_t> next_task_id_{1};
  /// Bytes of task records in the ring or running, whose results are not handled yet. Over
  /// inflight_cap_ new records wait in the backlog, so that a map's chunks cycle through the
  /// rings' warm pages (Ring::warm_bytes) instead of faulting in the whole ring on first use.
  std::atomic<std::size_t> inflight_bytes_{0};
  std::size_t inflight_cap_ = 0;
  /// What the feeder waits for (FeederWait), so that releasing bytes wakes it only then.
  std::atomic<int> feeder_waits_{0};
  [[nodiscard]] bool fits_inflight(std::size_t size) const noexcept;
  void release_inflight(std::size_t bytes) noexcept;

  std::mutex feed_mutex_;
  std::condition_variable feed_cv_;
  std::deque<std::string> backlog_;  ///< task records not yet in the ring, in submission order
  bool close_after_backlog_ = false;
  bool feeder_started_ = false;  ///< feed_mutex_
  std::unordered_map<std::uint64_t, std::weak_ptr<PoolStream>> streams_;  ///< open streams (feed_mutex_)
  std::uint64_t next_stream_id_ = 1;                                      ///< feed_mutex_
  std::atomic<std::size_t> open_streams_{0};  ///< streams_.size(), readable without feed_mutex_

  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  std::atomic<bool> supervisor_done_{false};
  std::atomic<bool> joined_{false};

  std::mutex code_cache_mutex_;
  std::unordered_map<const void*, CodeRef> code_cache_;

  /// Held by whichever thread handles results: the handler thread, or a waiter (drive_until).
  /// Only ever try-locked by waiters, which otherwise wait on their own result's condition.
  std::mutex driver_mutex_;
  /// 1 while a waiter handles results (drive_until): the handler thread then leaves the ring to
  /// it and sleeps unregistered, so that workers' pushes do not wake it.
  std::atomic<int> drivers_{0};
  std::atomic<std::uint32_t> drive_spin_budget_{0};  ///< os::SpinBudget of the waiters' spins
  std::atomic<std::int64_t> last_drive_end_ns_{0};    ///< when a waiter last stopped (steady clock)
  std::atomic<bool> handler_idle_{false};             ///< the handler sleeps until a push wakes it

  std::unique_ptr<Wakeup> wakeup_;
  std::string worker_config_;  ///< built once: ring and control handles, limits, initializer
  std::thread handler_;
  std::thread supervisor_;
  std::thread feeder_;
};

/// The entry point of a pool worker process (a plain function, so every start method finds it).
void pool_worker_process_main(std::string config, std::uint32_t index);

} // namespace procpool::detail
