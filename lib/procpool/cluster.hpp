#pragma once
/// @file cluster.hpp
/// procpool::cluster::Pool: the Pool API with workers on many hosts, through a Redis server
/// (the broker of `procpool worker` / `procpool run --broker`: same leases, watchdog and
/// fencing). Workers are this program's own binary, started on each host as
///
///     ./app --procpool-worker redis://head:6379/0 [-j N] [--queue NAME] [--lease 10s]
///
/// which procpool::init() turns into a worker (see worker_main). Tasks name their function by
/// its offset in this binary and carry its ELF build-id: a worker running another build refuses
/// them with an error naming both build-ids and its host.
///
/// Built when hiredis is found (meson option `broker`). Reference: docs/cluster.md.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "procpool/pool.hpp"

namespace procpool {
namespace detail {
/// The backend tag of a cluster pool: tasks and results are encoded, as between processes.
struct ClusterBackend {
  static constexpr bool interprocess = true;
  static constexpr bool cluster = true;
};
} // namespace detail

namespace cluster {

/// How a cluster pool reaches its workers. Only `broker` is required.
struct ClusterOptions {
  /// `redis://[user[:password]@]host[:port][/db]` or `redis+unix://[user[:password]@]/path.sock[?db=N]`;
  /// the password may come from $PROCPOOL_REDIS_PASSWORD instead.
  std::string broker;
  /// The queue the workers serve (`[A-Za-z0-9_.-]{1,64}`); pool tasks never mix with `procpool run` jobs.
  std::string queue = "default";
  /// How many workers a task may take down (crash, SIGKILL, lost host) before it fails with
  /// WorkerLostError; each loss requeues it.
  int max_crashes = 5;
  /// The number of worker slots the pool plans for (Python's `processes`: default chunk sizes and
  /// imap's look-ahead). Empty: the slots registered on the queue when the pool starts (at least 1).
  std::optional<int> processes{};
  /// Tasks in Redis at once (queued or running); more wait in this process. Bounds Redis memory.
  std::size_t max_queued = 1024;
  /// After this long without a heartbeat from this process (it died), its queued tasks are dropped
  /// and the workers move on.
  std::chrono::milliseconds owner_timeout{std::chrono::seconds(30)};
  /// Allow a broker beyond loopback without a password (anyone who reaches it can run this
  /// program's functions on the workers).
  bool insecure_broker = false;
};

/// The pool: Pool's methods (apply/apply_async/map/map_async/starmap/imap/imap_unordered,
/// close/terminate/join) with the same semantics; errors arrive as RemoteError with the type
/// name and message, a task that took down max_crashes workers as WorkerLostError naming the
/// host and pid. No initializer (workers are shared by every pool on the queue) and no shared
/// memory arguments (tasks cross hosts). At-least-once execution: a task whose worker is lost
/// runs again elsewhere; exactly one result is delivered.
///
/// Thread-safety: as Pool. Non-copyable, non-movable. Construction throws ValueError for a bad
/// URL, queue name or server setting, ProcessError when the broker cannot be reached.
class Pool : public BasicPool<detail::ClusterBackend> {
public:
  explicit Pool(const ClusterOptions& options);
};

/// What a worker process does (the options of `--procpool-worker`).
struct WorkerOptions {
  std::string broker;
  std::string queue = "default";
  int jobs = 0;  ///< tasks at once; 0: cpu_count()
  /// The queue's lease (shared by its workers): a worker silent this long is presumed dead and its
  /// tasks requeued.
  std::chrono::milliseconds lease{std::chrono::seconds(10)};
  std::string host_name{};  ///< empty: gethostname()
  bool insecure_broker = false;
  /// Exit after this long without a task (0: never).
  std::chrono::milliseconds exit_when_idle{0};
};

/// Runs this process as a worker of cluster pools until SIGTERM/SIGINT/SIGHUP (running tasks go
/// back to the queue) or exit_when_idle. Tasks run in a local procpool::Pool of `jobs` worker
/// processes, so a task that crashes its process costs one crash, not the worker. Returns the
/// exit status; throws ValueError for a bad option or server.
int worker_main(const WorkerOptions& options);

/// `--procpool-worker URL [-j N] [--queue Q] [--lease D] [--host-name H] [--insecure-broker]
/// [--exit-when-idle D]` as worker options. Throws ValueError with what is wrong.
WorkerOptions parse_worker_args(int argc, char** argv);

} // namespace cluster

namespace detail {
/// procpool::init()'s entry into worker mode: argv[1] is --procpool-worker.
int cluster_worker_entry(int argc, char** argv);
/// Makes procpool::init() accept --procpool-worker in this program (a program that includes this
/// header is a cluster program; any other keeps ignoring the flag).
bool enable_cluster_worker_entry(int (*entry)(int, char**)) noexcept;
inline const bool cluster_worker_entry_enabled = enable_cluster_worker_entry(&cluster_worker_entry);
} // namespace detail

} // namespace procpool
