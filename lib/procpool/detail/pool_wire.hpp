#pragma once
/// @file detail/pool_wire.hpp
/// What travels through a Pool's rings: task records (parent → workers) and result records
/// (workers → parent), and the typed invokers a worker calls to run a task.
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "procpool/codec.hpp"
#include "procpool/detail/arg_transfer.hpp"
#include "procpool/detail/callable_ref.hpp"
#include "procpool/errors.hpp"

namespace procpool::detail {

/// Runs a task: decodes `payload`, calls the function, appends the encoded result(s) to `out`.
using TaskInvoker = void (*)(const void* function, std::string_view payload, std::string& out);

/// Where a record's payload is. A payload too large for the rings (over a quarter of one)
/// travels out of band: in its own shared segment between processes, in the sender's memory
/// between threads; the record carries only where it is.
enum class PayloadAt : std::uint32_t {
  Inline = 0,   ///< in the record
  Memory = 1,   ///< thread backend: a task's OutOfBandMemory; a result's heap std::string*, owned by the receiver
  Segment = 2,  ///< process backend: a SegmentHandle of the sender's memfd
};

/// A thread-backend task's out-of-band payload: bytes the pool keeps until the task has ended.
struct OutOfBandMemory {
  const char* data;
  std::size_t size;
};

/// Header of a task record; followed by the invoker's and the function's object names (when
/// addresses are not raw) and the payload (or where it is: PayloadAt).
struct TaskHeader {
  std::uint64_t task_id;
  std::uint64_t invoker;   ///< raw address, or offset inside object `invoker_object`
  std::uint64_t function;  ///< same; 0 when the invoker builds the callable itself
  std::uint32_t invoker_object_len;
  std::uint32_t function_object_len;
  PayloadAt payload_at;
};

enum class ResultKind : std::uint32_t { Ok = 0, Error = 1, WorkerLost = 2 };

/// Header of a result record; followed by the encoded result(s), or for an error the encoded
/// (type name, message) pair.
struct ResultHeader {
  std::uint64_t task_id;
  ResultKind kind;
  std::int32_t worker_pid;
  std::int32_t exit_status;  ///< worker_lost: exit code, or -N after signal N
  std::uint32_t worker_index;
  PayloadAt payload_at;
};

/// Registers a cluster pool's task entry before main() (see allow_cluster_invoker).
template <auto Invoker>
struct ClusterInvoker {
  static inline const bool allowed = allow_cluster_invoker(reinterpret_cast<const void*>(Invoker));
};

/// Whether `Fn` can run in a pool worker: a function or a captureless lambda.
template <class Fn>
constexpr void require_pool_callable() {
  static_assert(is_portable_callable<Fn>(),
                "procpool::Pool: the task must be a function or a captureless lambda, found again in every "
                "worker (also under spawn). Pass state as arguments, or set it up once per worker with the "
                "pool's initializer, instead of capturing it.");
}

/// Calls `fn` built from `function` (a function pointer) or default-constructed (a lambda).
template <class Fn, class... A>
decltype(auto) call_task_function(const void* function, A&&... args) {
  using D = std::decay_t<Fn>;
  if constexpr (std::is_pointer_v<D>) return std::invoke(reinterpret_cast<D>(const_cast<void*>(function)), std::forward<A>(args)...);
  else return std::invoke(D{}, std::forward<A>(args)...);
}

/// Calls the task function with the worker's own decoded arguments: moved into it when it takes
/// them by value or by rvalue reference (a large argument is not copied once more), else as
/// lvalues (a `T&` parameter).
template <class Fn, class Tuple>
decltype(auto) call_with_decoded(const void* function, Tuple& args) {
  return std::apply(
      [&](auto&... a) -> decltype(auto) {
        if constexpr (std::is_invocable_v<std::decay_t<Fn>&, std::remove_reference_t<decltype(a)>&&...>)
          return call_task_function<Fn>(function, std::move(a)...);
        else
          return call_task_function<Fn>(function, a...);
      },
      args);
}

/// What call_with_decoded returns for arguments of types Args (decayed).
template <class Fn, class... Args>
using decoded_call_result_t =
    typename std::conditional_t<std::is_invocable_v<std::decay_t<Fn>&, Args&&...>,
                                std::invoke_result<std::decay_t<Fn>&, Args&&...>,
                                std::invoke_result<std::decay_t<Fn>&, Args&...>>::type;

/// apply / apply_async: the payload is the encoded arguments; the result is one encoded R.
template <class Fn, class... Args>
void invoke_apply(const void* function, std::string_view payload, std::string& out) {
  std::tuple<Args...> args{codec::decode_from<Args>(payload)...};
  (void)payload;  // unused when there are no arguments
  using R = decoded_call_result_t<Fn, Args...>;
  if constexpr (std::is_void_v<R>) {
    call_with_decoded<Fn>(function, args);
  } else {
    codec::encode_to(out, static_cast<R>(call_with_decoded<Fn>(function, args)));
  }
}

/// Thread backend: an apply's arguments and result, kept in the caller's memory; the task record
/// carries only this object's address. No codec: any movable type, of any size, is moved in and
/// out, never copied or encoded (as multiprocessing.dummy passes references).
template <class R, class... Args>
struct InPlaceApply {
  std::tuple<Args...> args;
  std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>> result;
};

/// The worker side of InPlaceApply: the record's payload is the object's address.
template <class Fn, class R, class... Args>
void invoke_apply_in_place(const void* function, std::string_view payload, std::string&) {
  InPlaceApply<R, Args...>* call = nullptr;
  if (payload.size() != sizeof call) throw SerializationError("procpool: malformed in-place task record");
  std::memcpy(static_cast<void*>(&call), payload.data(), sizeof call);
  if constexpr (std::is_void_v<R>) {
    call_with_decoded<Fn>(function, call->args);
    call->result.emplace();
  } else {
    call->result.emplace(call_with_decoded<Fn>(function, call->args));
  }
}

/// A chunk's payload: the item count, then the items (one memcpy for trivially copyable items).
template <class T>
void encode_chunk_items(std::string& out, const T* items, std::uint32_t count) {
  out.append(reinterpret_cast<const char*>(&count), sizeof count);
  if constexpr (TriviallySendable<T>) {
    out.append(reinterpret_cast<const char*>(items), sizeof(T) * count);
  } else {
    for (std::uint32_t i = 0; i < count; ++i) codec::encode_to(out, items[i]);
  }
}

/// A chunk's payload as pieces for PoolCore::submit: for trivially copyable items, the count
/// and the caller's items themselves (copied once, into the ring); otherwise the items encoded
/// into `scratch`. The pieces refer to `count_storage`, `items` and `scratch`.
template <class T>
std::array<std::string_view, 2> chunk_pieces(const T* items, std::uint32_t count, std::uint32_t& count_storage,
                                             std::string& scratch) {
  if constexpr (TriviallySendable<T>) {
    count_storage = count;
    return {std::string_view(reinterpret_cast<const char*>(&count_storage), sizeof count_storage),
            std::string_view(reinterpret_cast<const char*>(items), sizeof(T) * count)};
  } else {
    scratch.clear();
    encode_chunk_items(scratch, items, count);
    return {std::string_view(scratch), std::string_view()};
  }
}

template <class T, class Each>
void decode_chunk_items(std::string_view payload, Each&& each) {
  std::uint32_t count = 0;
  if (payload.size() < sizeof count) throw SerializationError("procpool: truncated task chunk");
  std::memcpy(&count, payload.data(), sizeof count);
  payload.remove_prefix(sizeof count);
  for (std::uint32_t i = 0; i < count; ++i) each(codec::decode_from<T>(payload));
}

/// map / imap: applies Fn to each item; the results are encoded back to back.
template <class Fn, class T>
void invoke_map(const void* function, std::string_view payload, std::string& out) {
  using R = std::invoke_result_t<std::decay_t<Fn>&, T&>;
  if constexpr (TriviallySendable<T> && TriviallySendable<R>) {
    std::uint32_t count = 0;
    std::memcpy(&count, payload.data(), sizeof count);
    payload.remove_prefix(sizeof count);
    if (payload.size() != sizeof(T) * count) throw SerializationError("procpool: malformed task chunk");
    const size_t base = out.size();
    out.resize(base + sizeof(R) * count);
    for (std::uint32_t i = 0; i < count; ++i) {
      T item;
      std::memcpy(&item, payload.data() + sizeof(T) * i, sizeof(T));
      const R r = call_task_function<Fn>(function, item);
      std::memcpy(out.data() + base + sizeof(R) * i, &r, sizeof(R));
    }
  } else {
    decode_chunk_items<T>(payload, [&](T item) {
      if constexpr (std::is_invocable_v<std::decay_t<Fn>&, T&&>)
        codec::encode_to(out, call_task_function<Fn>(function, std::move(item)));
      else
        codec::encode_to(out, call_task_function<Fn>(function, item));
    });
  }
}

/// starmap: each item is a tuple of arguments.
template <class Fn, class Tuple>
void invoke_starmap(const void* function, std::string_view payload, std::string& out) {
  decode_chunk_items<Tuple>(payload, [&](Tuple item) {
    codec::encode_to(out, call_with_decoded<Fn>(function, item));
  });
}

/// The thread backend's map chunks travel in place: the task record carries where the items
/// are and where their results go, the worker reads and writes them there (no encoding, no
/// copy through the rings), and the result record only says that the chunk is done.
///
/// A call's gate tells its caller when no worker thread touches its items any more: a
/// terminate() fails chunks that a thread may still run (or pop from the ring later), and
/// map() must not return to a caller that frees its input while that happens.
class InPlaceGate {
public:
  /// A worker is about to touch the call's items; false once the caller has left.
  [[nodiscard]] bool enter() noexcept {
    active_.fetch_add(1);
    if (!abandoned_.load()) return true;
    leave();
    return false;
  }
  void leave() noexcept {
    if (active_.fetch_sub(1) == 1 && abandoned_.load()) active_.notify_all();
  }
  /// The caller leaves: no worker enters from now on; waits for those inside (each finishes
  /// the chunk it runs, at most).
  void abandon_and_wait() noexcept {
    abandoned_.store(true);
    for (int active = active_.load(); active != 0; active = active_.load()) active_.wait(active);
  }

private:
  std::atomic<int> active_{0};
  std::atomic<bool> abandoned_{false};
};

/// A chunk that the waiting caller of map() may run itself (so that its core computes instead
/// of idling while the workers' placement is settled): whoever moves it from Free to Running
/// runs it; the other waits for Done.
enum class ChunkClaim : std::uint8_t { Free = 0, Running = 1, Done = 2 };

/// Claims `claim` for the calling thread; false when another thread has it (then returns once
/// that thread is done with it).
inline bool claim_chunk(std::atomic<ChunkClaim>& claim) noexcept {
  ChunkClaim expected = ChunkClaim::Free;
  if (claim.compare_exchange_strong(expected, ChunkClaim::Running)) return true;
  for (ChunkClaim now = claim.load(); now != ChunkClaim::Done; now = claim.load()) claim.wait(now);
  return false;
}
inline void finish_chunk(std::atomic<ChunkClaim>& claim) noexcept {
  claim.store(ChunkClaim::Done);
  claim.notify_all();
}

/// The payload of an in-place chunk (the thread backend's map and starmap).
struct InPlaceChunk {
  const void* items;
  void* results;
  std::size_t count;
  InPlaceGate* gate;
  std::atomic<ChunkClaim>* claim;  ///< null unless the caller may run this chunk itself
};

/// Runs one in-place chunk on the calling thread: results[i] = fn(items[i]) (fn(items[i]...)
/// for starmap). Each item is copied first, as a decoded one would be: fn may take it by reference.
template <class Fn, class T, bool Star>
void run_chunk_in_place(const void* function, const InPlaceChunk& chunk) {
  const T* items = static_cast<const T*>(chunk.items);
  auto run = [&](T& item) -> decltype(auto) {
    if constexpr (Star) return std::apply([&](auto&... a) -> decltype(auto) { return call_task_function<Fn>(function, a...); }, item);
    else return call_task_function<Fn>(function, item);
  };
  using R = std::remove_cvref_t<decltype(run(std::declval<T&>()))>;
  R* results = static_cast<R*>(chunk.results);
  for (std::size_t i = 0; i < chunk.count; ++i) {
    T item = items[i];
    results[i] = run(item);
  }
}

/// map / starmap on worker threads: results[i] = fn(items[i]) (fn(items[i]...) for starmap),
/// in place. Each item is copied first, as a decoded one would be: fn may take it by reference.
template <class Fn, class T, bool Star>
void invoke_map_in_place(const void* function, std::string_view payload, std::string& /*out*/) {
  InPlaceChunk chunk{};
  std::memcpy(&chunk, payload.data(), sizeof chunk);
  if (!chunk.gate->enter()) return;  // the call has failed and its caller left: nothing to do
  struct Leave {
    InPlaceGate* gate;
    ~Leave() { gate->leave(); }
  } leave{chunk.gate};
  if (chunk.claim == nullptr) return run_chunk_in_place<Fn, T, Star>(function, chunk);
  // The caller ran it (or runs it now: waited for), its outcome is in the call already.
  if (!claim_chunk(*chunk.claim)) return;
  struct Finish {
    std::atomic<ChunkClaim>* claim;
    ~Finish() { finish_chunk(*claim); }
  } finish{chunk.claim};
  run_chunk_in_place<Fn, T, Star>(function, chunk);
}

/// The error a worker sends back for an exception: (type name, message).
inline std::string encode_task_error(std::string type_name, std::string message) {
  std::string out;
  codec::encode_to(out, std::make_pair(std::move(type_name), std::move(message)));
  return out;
}
inline std::string encode_task_error(const std::exception& e) { return encode_task_error(exception_type_name(e), e.what()); }

/// The exception being handled as a task error: the RemoteError its worker would have sent, so
/// that an error is the same whichever thread ran the task (the thread backend's map caller too).
std::exception_ptr current_task_error() noexcept;

inline RemoteError decode_task_error(std::string_view payload) {
  auto [type, message] = codec::decode<std::pair<std::string, std::string>>(payload);
  return RemoteError(std::move(type), std::move(message));
}

} // namespace procpool::detail
