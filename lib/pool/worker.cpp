// The pool's worker side: the loop every worker runs, the worker process's entry point, and
// process and thread workers behind one interface.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <typeinfo>
#include <unordered_map>
#include <utility>

#include <deque>
#include <memory>
#include <optional>

#include <cxxabi.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "os/demangle.hpp"
#include "pool/worker.hpp"
#include "procpool/detail/pool_core.hpp"
#include "procpool/detail/pool_wire.hpp"
#include "procpool/detail/ring.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/errors.hpp"
#include "procpool/process.hpp"

namespace procpool::detail {
namespace {

/// Bytes of read results' segments a worker keeps for reuse (SpareSegments), and how long an
/// idle worker keeps them.
constexpr std::size_t kWorkerSpareBytes = std::size_t{512} << 20;
constexpr std::chrono::milliseconds kSpareIdle{1000};

/// The error record of the exception being handled when it is not a std::exception (`throw 42`,
/// `throw "text"`): its demangled type name and, for strings and integers, its value.
std::string encode_foreign_exception() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  std::string name = type != nullptr ? os::demangle(type->name()) : std::string("unknown type");
  std::string message;
  try {
    throw;
  } catch (const char* text) {
    message = text != nullptr ? text : "(null)";
  } catch (const std::string& text) {
    message = text;
  } catch (long long v) {
    message = std::to_string(v);
  } catch (long v) {
    message = std::to_string(v);
  } catch (int v) {
    message = std::to_string(v);
  } catch (unsigned long long v) {
    message = std::to_string(v);
  } catch (unsigned long v) {
    message = std::to_string(v);
  } catch (unsigned v) {
    message = std::to_string(v);
  } catch (...) {
    message = "an exception of type " + name + " (not derived from std::exception)";
  }
  return encode_task_error(std::move(name), std::move(message));
}

/// Resolves the code addresses of task records, caching each object's load bias.
class CodeResolver {
public:
  explicit CodeResolver(bool raw) : raw_(raw) {}
  const void* resolve(std::string_view object, std::uint64_t offset) {
    if (raw_) return reinterpret_cast<const void*>(offset);
    if (offset == 0) return nullptr;
    auto it = bases_.find(std::string(object));
    if (it == bases_.end()) {
      const auto base = reinterpret_cast<std::uintptr_t>(resolve_code_ref(CodeRef{std::string(object), 0}));
      it = bases_.emplace(std::string(object), base).first;
    }
    return reinterpret_cast<const void*>(it->second + offset);
  }

private:
  bool raw_;
  std::unordered_map<std::string, std::uintptr_t> bases_;
};

/// The payload of a task record after its names: in the record, or out of band (PayloadAt).
/// `mapped` keeps a segment mapped while the task runs. Throws when the segment is gone (its
/// task was failed meanwhile).
std::string_view task_payload(const TaskHeader& header, std::string_view rest, std::optional<SharedSegment>& mapped) {
  switch (header.payload_at) {
    case PayloadAt::Inline: return rest;
    case PayloadAt::Memory: {
      OutOfBandMemory memory{};
      if (rest.size() != sizeof memory) break;
      std::memcpy(&memory, rest.data(), sizeof memory);
      return {memory.data, memory.size};
    }
    case PayloadAt::Segment: {
      SegmentHandle handle{};
      if (rest.size() != sizeof handle) break;
      std::memcpy(&handle, rest.data(), sizeof handle);
      mapped.emplace(SharedSegment::attach(handle, /*populate=*/true));
      return {static_cast<const char*>(mapped->data()), handle.size};
    }
  }
  throw SerializationError("procpool: malformed out-of-band task record");
}

/// Moves a result's body (out, after its header) out of band when it is too large for the
/// result ring: into a segment kept in `sent` until the parent has mapped it (processes), or
/// onto the heap for the parent to free (threads). Leaves the record's new body in `out`.
void send_out_of_band(std::string& out, ResultHeader& result, bool thread_worker,
                      std::deque<std::pair<std::uint64_t, SharedSegment>>& sent, SpareSegments& spares) {
  const std::size_t size = out.size() - sizeof result;
  if (thread_worker) {
    auto body = std::make_unique<std::string>(out, sizeof result);
    std::string* raw = body.release();
    out.resize(sizeof result);
    out.append(reinterpret_cast<const char*>(&raw), sizeof raw);
    result.payload_at = PayloadAt::Memory;
    return;
  }
  const std::string_view body(out.data() + sizeof result, size);
  SharedSegment segment = spares.write(std::span<const std::string_view>(&body, 1), "procpool-pool-result");
  const SegmentHandle handle = segment.handle();
  sent.emplace_back(result.task_id, std::move(segment));
  out.resize(sizeof result);
  out.append(reinterpret_cast<const char*>(&handle), sizeof handle);
  result.payload_at = PayloadAt::Segment;
}

/// The worker's loop, the same for processes and threads.
void worker_loop(Ring& tasks, Ring& results, WorkerControl& control, std::uint32_t index,
                 std::optional<int> max_tasks, bool raw_addresses, bool thread_worker) {
  WorkerSlot& slot = control.slot(index);
  const auto pid = static_cast<std::int32_t>(::getpid());  // once: glibc does not cache it
  slot.pid.store(pid);
  CodeResolver resolver(raw_addresses);
  std::string task;
  std::string out;
  const std::size_t out_of_band_over = results.max_record_size() / 4;
  std::deque<std::pair<std::uint64_t, SharedSegment>> sent;  // out-of-band results not yet read by the parent
  // Segments of results the parent has read, rewritten by the next large results; freed after
  // kSpareIdle without a task, so that an idle worker holds no memory for them.
  SpareSegments spares(kWorkerSpareBytes);
  const auto pop_task = [&](const RingDeadline& deadline) {
    return tasks.pop_with(deadline, [&](std::span<const std::byte> record) {
      task.assign(reinterpret_cast<const char*>(record.data()), record.size());
      TaskHeader header;
      std::memcpy(&header, task.data(), sizeof header);
      slot.task_id.store(header.task_id, std::memory_order_release);
    });
  };
  const auto keep_read_results = [&] {
    while (!sent.empty() && sent.front().first <= slot.result_taken.load(std::memory_order_acquire)) {
      spares.keep(std::move(sent.front().second));
      sent.pop_front();
    }
  };
  for (int done = 0; !max_tasks || done < *max_tasks; ++done) {
    keep_read_results();
    RingStatus popped = RingStatus::Timeout;
    if (!spares.empty() || !sent.empty()) popped = pop_task(os::SteadyClock::now() + kSpareIdle);
    if (popped == RingStatus::Timeout) {
      keep_read_results();
      spares.clear();
      popped = pop_task(std::nullopt);
    }
    if (popped != RingStatus::Ok) break;                              // closed and drained
    keep_read_results();  // the parent has usually read the last result by the time a task comes
    if (control.terminating.load(std::memory_order_acquire)) break;  // terminate(): run nothing more

    TaskHeader header;
    std::memcpy(&header, task.data(), sizeof header);
    std::string_view rest(task);
    rest.remove_prefix(sizeof header);
    const std::string_view invoker_object = rest.substr(0, header.invoker_object_len);
    rest.remove_prefix(header.invoker_object_len);
    const std::string_view function_object = rest.substr(0, header.function_object_len);
    rest.remove_prefix(header.function_object_len);

    ResultHeader result{header.task_id, ResultKind::Ok, pid, 0, index, PayloadAt::Inline};
    out.assign(sizeof result, '\0');
    try {
      std::optional<SharedSegment> mapped;
      const std::string_view payload = task_payload(header, rest, mapped);
      const auto invoker = reinterpret_cast<TaskInvoker>(const_cast<void*>(resolver.resolve(invoker_object, header.invoker)));
      const void* function = header.function == 0 ? nullptr : resolver.resolve(function_object, header.function);
      invoker(function, payload, out);
      if (out.size() - sizeof result > out_of_band_over) send_out_of_band(out, result, thread_worker, sent, spares);
    } catch (const std::exception& e) {
      result.kind = ResultKind::Error;
      out.resize(sizeof result);
      out += encode_task_error(e);
    } catch (...) {
      result.kind = ResultKind::Error;
      out.resize(sizeof result);
      out += encode_foreign_exception();
    }
    if (result.kind != ResultKind::Ok) result.payload_at = PayloadAt::Inline;  // an error record is small
    std::memcpy(out.data(), &result, sizeof result);
    const RingStatus pushed = results.push(std::span(reinterpret_cast<const std::byte*>(out.data()), out.size()), std::nullopt);
    slot.task_id.store(0, std::memory_order_release);
    if (pushed != RingStatus::Ok) break;
  }
}

/// What a worker process needs: both rings, the control block, its limits and initializer.
struct WorkerConfig {
  std::optional<int> max_tasks;
  bool raw_addresses = true;
  std::optional<PortableTarget> initializer;
  template <class Archive>
  void serialize(Archive& ar) { ar(max_tasks, raw_addresses, initializer); }
};

void run_initializer(const PortableTarget& init) {
  const auto invoker = reinterpret_cast<PortableInvoker>(const_cast<void*>(resolve_code_ref(init.invoker)));
  const void* function = init.has_function ? resolve_code_ref(init.function) : nullptr;
  invoker(function, init.args);
}

class ProcessWorker final : public WorkerHandle {
public:
  ProcessWorker(ProcessOptions options, const std::string& config, std::uint32_t index)
      : process_(std::move(options), &pool_worker_process_main, config, index) {
    process_.start();
  }
  ~ProcessWorker() override {
    if (process_.is_alive()) {
      process_.kill();
      process_.join();
    }
  }
  int sentinel() const override { return process_.sentinel(); }
  bool alive() override { return process_.is_alive(); }
  int exit_status() override { return process_.exitcode().value_or(0); }
  int pid() const override { return static_cast<int>(process_.pid().value_or(0)); }
  void signal(int sig) override {
    if (sig == SIGKILL) process_.kill();
    else process_.terminate();
  }
  void join() override { process_.join(); }

private:
  Process process_;
};

class ThreadWorker final : public WorkerHandle {
public:
  template <class Body>
  explicit ThreadWorker(Body body) : done_fd_(::eventfd(0, EFD_CLOEXEC)) {
    if (done_fd_ < 0) throw_errno("procpool: eventfd failed", errno);
    try {
      thread_ = std::thread([this, body = std::move(body)] {
        body();
        done_.store(true);
        const std::uint64_t one = 1;
        (void)::write(done_fd_, &one, sizeof one);
      });
    } catch (const std::system_error& e) {  // out of threads: a procpool error, as a failed fork
      ::close(done_fd_);
      throw ProcessError(std::string("procpool: cannot start a pool worker thread: ") + e.what());
    }
  }
  ~ThreadWorker() override {
    if (thread_.joinable()) thread_.join();
    ::close(done_fd_);
  }
  int sentinel() const override { return done_fd_; }
  bool alive() override { return !done_.load(); }
  int exit_status() override { return 0; }
  int pid() const override { return static_cast<int>(::getpid()); }
  void signal(int) override {}  // threads cannot be killed; terminate() makes them stop between tasks
  void join() override {
    if (thread_.joinable()) thread_.join();
  }

private:
  int done_fd_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

std::atomic<int> worker_counter{0};

std::string worker_name_prefix(bool interprocess, StartMethod method) {
  if (!interprocess) return "PoolThread-";
  switch (method) {
    case StartMethod::Fork: return "ForkPoolWorker-";
    case StartMethod::Spawn: return "SpawnPoolWorker-";
    case StartMethod::Forkserver: return "ForkServerPoolWorker-";
  }
  return "PoolWorker-";
}

} // namespace

std::exception_ptr current_task_error() noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    return std::make_exception_ptr(RemoteError(exception_type_name(e), e.what()));
  } catch (...) {
    return std::make_exception_ptr(decode_task_error(encode_foreign_exception()));
  }
}

void encode_worker_config(std::string& out, std::optional<int> max_tasks, bool raw_addresses,
                          const std::optional<PortableTarget>& initializer) {
  codec::encode_to(out, WorkerConfig{max_tasks, raw_addresses, initializer});
}

std::unique_ptr<WorkerHandle> start_process_worker(ProcessOptions options, const std::string& config,
                                                   std::uint32_t index) {
  return std::make_unique<ProcessWorker>(std::move(options), config, index);
}

std::unique_ptr<WorkerHandle> start_thread_worker(Ring& tasks, Ring& results, WorkerControl& control,
                                                  std::uint32_t index, std::optional<int> max_tasks,
                                                  std::optional<PortableTarget> initializer) {
  Ring* task_ring = &tasks;
  Ring* result_ring = &results;
  WorkerControl* control_block = &control;
  return std::make_unique<ThreadWorker>([=] {
    try {
      if (initializer) run_initializer(*initializer);
      worker_loop(*task_ring, *result_ring, *control_block, index, max_tasks, true, true);
    } catch (const std::exception& e) {
      log_worker_thread_stopped(index, e.what());
    }
  });
}

std::string next_worker_name(bool interprocess, StartMethod method) {
  return worker_name_prefix(interprocess, method) + std::to_string(++worker_counter);
}

namespace {
struct InheritedWorker {
  std::uint64_t tasks, results, control;  // addresses in the parent, and so in the forked child
};
constexpr char kInherited = 'F';
constexpr char kAttached = 'A';
} // namespace

void encode_inherited_worker(std::string& out, Ring& tasks, Ring& results, WorkerControl& control) {
  out += kInherited;
  codec::encode_to(out, InheritedWorker{reinterpret_cast<std::uint64_t>(&tasks), reinterpret_cast<std::uint64_t>(&results),
                                        reinterpret_cast<std::uint64_t>(&control)});
}

void encode_attached_worker(std::string& out) { out += kAttached; }

void pool_worker_process_main(std::string config, std::uint32_t index) {
  std::string_view in = config;
  if (in.empty() || (in.front() != kInherited && in.front() != kAttached))
    throw SerializationError("procpool: bad pool worker configuration");
  const bool inherited = in.front() == kInherited;
  in.remove_prefix(1);
  if (inherited) {
    // Forked from the pool's process: its Ring objects and mappings are ours too (copy-on-write
    // copies of the objects, shared mappings of the memory). Never destroyed here.
    const auto addresses = codec::decode_from<InheritedWorker>(in);
    const auto worker = codec::decode<WorkerConfig>(in);
    if (worker.initializer) run_initializer(*worker.initializer);
    worker_loop(*reinterpret_cast<Ring*>(addresses.tasks), *reinterpret_cast<Ring*>(addresses.results),
                *reinterpret_cast<WorkerControl*>(addresses.control), index, worker.max_tasks, worker.raw_addresses, false);
    return;
  }
  auto tasks = Ring::attach(in);
  auto results = Ring::attach(in);
  const auto handle = codec::decode_from<SegmentHandle>(in);
  SharedSegment control_segment = SharedSegment::attach(handle);
  const auto worker = codec::decode<WorkerConfig>(in);
  auto* control = static_cast<WorkerControl*>(control_segment.data());
  if (worker.initializer) run_initializer(*worker.initializer);
  worker_loop(*tasks, *results, *control, index, worker.max_tasks, worker.raw_addresses, false);
}

} // namespace procpool::detail
