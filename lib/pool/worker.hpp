#pragma once
// The pool's worker side, shared by lib/pool/worker.cpp and lib/pool/pool_core.cpp (not installed).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "procpool/detail/arg_transfer.hpp"
#include "procpool/start_method.hpp"

namespace procpool {
struct ProcessOptions;
} // namespace procpool

namespace procpool::detail {

class Ring;

// Shared worker control: one slot per worker says which task it holds, so that the parent can
// fail exactly that task when the worker dies. A worker sets its slot while it still holds the
// task ring's consumer lock, before the record leaves the ring: a record is never both gone
// from the ring and unaccounted for.

struct alignas(64) WorkerSlot {
  std::atomic<std::uint64_t> task_id{0};
  std::atomic<std::int32_t> pid{0};
  /// The last task whose out-of-band result the parent has mapped: the worker may close the
  /// segments of that task and earlier ones (a worker's tasks come, and their results are taken,
  /// in increasing id order).
  std::atomic<std::uint64_t> result_taken{0};
};

struct alignas(64) WorkerControl {
  std::atomic<std::uint32_t> terminating{0};
  std::uint32_t count = 0;
  WorkerSlot& slot(std::size_t i) noexcept { return reinterpret_cast<WorkerSlot*>(this + 1)[i]; }
  static std::size_t bytes_for(std::size_t workers) { return sizeof(WorkerControl) + workers * sizeof(WorkerSlot); }
};
static_assert(std::is_trivially_destructible_v<WorkerSlot> && std::is_trivially_destructible_v<WorkerControl>);

/// A pool worker: a process or a thread behind one interface. Used by the pool's supervisor
/// (under its workers mutex) only.
class WorkerHandle {
public:
  virtual ~WorkerHandle() = default;
  /// An fd that becomes readable when the worker ends.
  [[nodiscard]] virtual int sentinel() const = 0;
  [[nodiscard]] virtual bool alive() = 0;
  /// Exit code, or -N after signal N (threads: 0).
  [[nodiscard]] virtual int exit_status() = 0;
  [[nodiscard]] virtual int pid() const = 0;
  virtual void signal(int sig) = 0;
  virtual void join() = 0;
};

/// Appends what a worker process needs besides the rings and the control block: its task
/// limit, whether code addresses are raw (fork) or object offsets, its initializer.
/// The first part of a worker process's config: how it reaches the rings and control block.
/// Inherited (fork): the addresses of the parent's objects, valid in the forked child.
void encode_inherited_worker(std::string& out, Ring& tasks, Ring& results, WorkerControl& control);
/// Attached (spawn, forkserver): the handles follow (Ring::encode_handle, SegmentHandle).
void encode_attached_worker(std::string& out);
void encode_worker_config(std::string& out, std::optional<int> max_tasks, bool raw_addresses,
                          const std::optional<PortableTarget>& initializer);

/// Starts worker process `index` (pool_worker_process_main with `config`). Throws ProcessError.
std::unique_ptr<WorkerHandle> start_process_worker(ProcessOptions options, const std::string& config,
                                                   std::uint32_t index);
/// Starts worker thread `index` over the given rings. Throws ProcessError.
std::unique_ptr<WorkerHandle> start_thread_worker(Ring& tasks, Ring& results, WorkerControl& control,
                                                  std::uint32_t index, std::optional<int> max_tasks,
                                                  std::optional<PortableTarget> initializer);

/// Logs why worker thread `index` stopped (defined in pool_core.cpp, with the pool's other log
/// calls: each TU that formats a log message pays seconds of compile time).
void log_worker_thread_stopped(std::size_t index, const char* what) noexcept;

/// The next worker's name: ForkPoolWorker-N, SpawnPoolWorker-N, ... or PoolThread-N.
std::string next_worker_name(bool interprocess, StartMethod method);

} // namespace procpool::detail
