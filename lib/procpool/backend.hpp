#pragma once
/// @file backend.hpp
/// The two backends, procpool::Processes and procpool::Threads: each is the policy every
/// primitive is written over (`BasicLock<Backend>`...) and the bundle of that backend's types,
/// so that generic code swaps processes for threads with one word, as Python code swaps
/// `import multiprocessing as mp` for `import multiprocessing.dummy as mp`:
///
///     template <class mp> void run() { typename mp::Lock lock; typename mp::Queue<int> q; ... }
///     run<procpool::Processes>();  run<procpool::Threads>();
///
/// Light on purpose (forward declarations only): include the header of each type you use, or
/// procpool/procpool.hpp.
#include <utility>

#include "procpool/detail/shm.hpp"
#include "procpool/queue_options.hpp"

namespace procpool {

template <class Backend>
class BasicLock;
template <class Backend>
class BasicRLock;
template <class Backend, bool Bounded>
class BasicSemaphore;
template <class Backend>
class BasicCondition;
template <class Backend>
class BasicEvent;
template <class Backend>
class BasicBarrier;
template <class T, class Backend, bool Locked>
class BasicValue;
template <class T, class Backend, bool Locked>
class BasicArray;
template <class T, class Backend>
class BasicQueue;
template <class T, class Backend>
class BasicJoinableQueue;
template <class T, class Backend>
class BasicSimpleQueue;
template <class T, class Backend>
class BasicConnection;
template <class Backend>
class BasicPool;
class Process;
struct ProcessOptions;
namespace threading {
class Thread;
struct ThreadOptions;
} // namespace threading

namespace detail {
/// The types every backend names, over the backend `B` itself (written once for both).
template <class B>
struct BackendTypes {
  using Lock = BasicLock<B>;
  using RLock = BasicRLock<B>;
  using Semaphore = BasicSemaphore<B, false>;
  using BoundedSemaphore = BasicSemaphore<B, true>;
  using Condition = BasicCondition<B>;
  using Event = BasicEvent<B>;
  using Barrier = BasicBarrier<B>;
  template <class T>
  using Value = BasicValue<T, B, true>;
  template <class T>
  using RawValue = BasicValue<T, B, false>;
  template <class T>
  using Array = BasicArray<T, B, true>;
  template <class T>
  using RawArray = BasicArray<T, B, false>;
  template <class T>
  using Queue = BasicQueue<T, B>;
  template <class T>
  using JoinableQueue = BasicJoinableQueue<T, B>;
  template <class T>
  using SimpleQueue = BasicSimpleQueue<T, B>;
  template <class T>
  using Connection = BasicConnection<T, B>;
  /// Python's Pipe(duplex): two connected ends (defined in pipe.hpp).
  template <class T>
  static std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true, const QueueOptions& options = {});
  using Pool = BasicPool<B>;
};
} // namespace detail

/// The process backend (Python's multiprocessing): state in memfd shared memory, futexes
/// shared between processes; its objects pass to Process children of every start method.
struct Processes : detail::BackendTypes<Processes> {
  /// Policy: cross-process futexes, and where a primitive keeps its state.
  static constexpr bool interprocess = true;
  template <class State>
  using Storage = detail::SharedObject<State>;
  /// The worker: a process.
  using Process = procpool::Process;
  using ProcessOptions = procpool::ProcessOptions;
};

/// The thread backend (Python's multiprocessing.dummy and threading): the same types over
/// heap state and private futexes, for threads of one process. Its objects cannot be passed
/// to a Process.
struct Threads : detail::BackendTypes<Threads> {
  /// Policy: process-private futexes, and where a primitive keeps its state.
  static constexpr bool interprocess = false;
  template <class State>
  using Storage = detail::LocalObject<State>;
  /// The worker: a thread (multiprocessing.dummy.Process is a threading.Thread).
  using Process = threading::Thread;
  using ProcessOptions = threading::ThreadOptions;
};

} // namespace procpool
