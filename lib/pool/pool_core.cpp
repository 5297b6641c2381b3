// The pool core: feeding tasks to the workers, completing results, supervising and replacing
// workers, refusing pools that cannot fit.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "os/proc.hpp"
#include "pool/worker.hpp"
#include "procpool/detail/pool_core.hpp"
#include "procpool/detail/pool_wire.hpp"
#include "procpool/detail/ring.hpp"
#include "procpool/detail/shm.hpp"
#include "procpool/errors.hpp"
#include "procpool/log.hpp"
#include "procpool/process.hpp"

namespace procpool::detail {

namespace {

std::string describe_exit(int status) {
  if (status < 0) {
    const char* name = sigabbrev_np(-status);
    return "killed by signal " + std::to_string(-status) + (name != nullptr ? std::string(" (SIG") + name + ")" : "");
  }
  return "exited with code " + std::to_string(status);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Batched wake-ups of imap consumers.

namespace {

constexpr int kHandlerBatch = 64;
thread_local std::vector<std::shared_ptr<ResultWaiter>>* handler_wakeups = nullptr;
/// The pool whose results this thread is handling (the handler thread, or a waiter driving):
/// a callback that waits on the same pool must not try to drive it again.
thread_local const PoolCore* handling_core = nullptr;
/// How a task fails when terminate() comes first.
/// Bytes of finished out-of-band arguments the pool keeps for reuse (SpareSegments).
constexpr std::size_t kSpareSegmentBytes = std::size_t{512} << 20;
constexpr const char* kTerminatedBeforeFinish = "procpool: the pool was terminated before this task finished";

/// The innermost SubmitBatch of this thread, if any.
thread_local SubmitBatch* open_batch = nullptr;
/// A batch buffer up to this size is kept for the thread's next batch.
constexpr std::size_t kSpareBatchBytes = std::size_t{1} << 20;

void wake_deferred(std::vector<std::shared_ptr<ResultWaiter>>& waiters) {
  for (const auto& waiter : waiters) waiter->wake();
  waiters.clear();
}

} // namespace

void wake_after_batch(const std::shared_ptr<ResultWaiter>& waiter) {
  if (handler_wakeups == nullptr) {
    waiter->wake();
  } else if (std::find(handler_wakeups->begin(), handler_wakeups->end(), waiter) == handler_wakeups->end()) {
    handler_wakeups->push_back(waiter);
  }
}

// ---------------------------------------------------------------------------------------------
// Pool sizes that cannot fit.

namespace {

/// Pools up to this size skip the limit checks: reading them costs more than starting such a
/// pool, and a fork or thread start that fails still ends in a clear ProcessError.
constexpr int kAlwaysFits = 64;
/// What a process worker costs at least (kernel stack and task, page tables, the pages it
/// dirties after fork), rounded up from measurements of idle fork workers.
constexpr std::uint64_t kProcessWorkerBytes = std::uint64_t{1} << 20;

/// Refuses, before starting anything, a pool that cannot fit: more workers than the process
/// (or thread) limits allow, or, for processes, than the available memory holds at their
/// minimal cost. Pool(100000) would otherwise fork until the OOM killer fires.
void check_pool_size(int workers, bool interprocess) {
  if (workers <= kAlwaysFits) return;
  const auto n = static_cast<std::uint64_t>(workers);
  const std::string what = "procpool: a pool of " + std::to_string(workers) + (interprocess ? " worker processes" : " worker threads");
  auto refuse_over = [&](std::optional<std::uint64_t> limit, const std::string& name) {
    if (limit && n > *limit)
      throw ValueError(what + " cannot fit: the limit is " + std::to_string(*limit) + " (" + name + ")");
  };
  rlimit nproc{};
  if (::getrlimit(RLIMIT_NPROC, &nproc) == 0 && nproc.rlim_cur != RLIM_INFINITY)
    refuse_over(static_cast<std::uint64_t>(nproc.rlim_cur), "RLIMIT_NPROC, ulimit -u: processes and threads of this user");
  const os::KernelLimits kernel = os::read_kernel_limits();
  refuse_over(kernel.threads_max, "/proc/sys/kernel/threads-max");
  refuse_over(kernel.pid_max, "/proc/sys/kernel/pid_max");
  refuse_over(os::cgroup_room("pids", "pids.max", "pids.current"), "the cgroup's pids.max less the tasks it runs");
  if (!interprocess) {
    // Each thread's stack is a mapping plus its guard page: two map entries.
    if (const auto maps = kernel.max_map_count) refuse_over(*maps / 2, "/proc/sys/vm/max_map_count / 2");
    return;
  }
  std::optional<std::uint64_t> room = os::read_meminfo().available;
  std::string room_name = "MemAvailable";
  for (const auto& [file, usage] : {std::pair{"memory.max", "memory.current"}, std::pair{"memory.limit_in_bytes", "memory.usage_in_bytes"}}) {
    const auto cg = os::cgroup_room("memory", file, usage);
    if (cg && (!room || *cg < *room)) {
      room = cg;
      room_name = std::string("the cgroup's ") + file + " less its usage";
    }
  }
  if (room && n * kProcessWorkerBytes > *room)
    throw ValueError(what + " cannot fit: at about " + std::to_string(kProcessWorkerBytes >> 10) + " KiB each they need " +
                     std::to_string((n * kProcessWorkerBytes) >> 20) + " MiB, and " + std::to_string(*room >> 20) +
                     " MiB are available (" + room_name + ")");
}

/// Forked children's copies of pools, kept reachable (and never destroyed) until exit.
struct AbandonedCore {
  std::shared_ptr<PoolEngine> core;
  AbandonedCore* next;
};
std::atomic<AbandonedCore*> g_abandoned{nullptr};

} // namespace

void log_worker_thread_stopped(std::size_t index, const char* what) noexcept {
  try {
    logger().error("procpool: pool worker thread {} stopped: {}", index, what);
  } catch (...) {
    // A log that cannot be written must not end the worker thread's caller.
  }
}

void report_callback_exception(const char* which) noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    logger().error("procpool: a pool {} threw {}: {} (ignored: the task's result stands)", which,
                   exception_type_name(e), e.what());
  } catch (...) {
    logger().error("procpool: a pool {} threw an exception not derived from std::exception (ignored: the task's "
                   "result stands)",
                   which);
  }
}

void throw_foreign_result(pid_t owner) {
  throw ProcessError("procpool: this result belongs to a pool of process " + std::to_string(owner) +
                     "; process " + std::to_string(os::current_pid()) +
                     " (a forked child) cannot wait for it: only the pool's process receives results");
}

// ---------------------------------------------------------------------------------------------
// PoolCore.

// Wakes the supervisor's poll() (close, terminate, join).
struct Wakeup {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ~Wakeup() { ::close(fd); }
  void notify() const {
    const std::uint64_t one = 1;
    (void)::write(fd, &one, sizeof one);
  }
  void drain() const {
    std::uint64_t v = 0;
    (void)::read(fd, &v, sizeof v);
  }
};


PoolCore::PoolCore(PoolCoreConfig config) : config_(std::move(config)) {
  if (config_.workers < 1) throw ValueError("procpool: Number of processes must be at least 1");
  check_pool_size(config_.workers, config_.interprocess);
  if (config_.max_tasks_per_child && *config_.max_tasks_per_child < 1)
    throw ValueError("procpool: maxtasksperchild must be at least 1");
  raw_addresses_ = !config_.interprocess || config_.start_method == StartMethod::Fork;
  if (config_.interprocess && config_.start_method != StartMethod::Fork && !initialized())
    throw ProcessError("procpool: a pool with the '" + std::string(to_string(config_.start_method)) +
                       "' start method needs procpool::init(argc, argv) as the first line of main()");
  const RingOptions ring_options{config_.ring_bytes, 0};
  tasks_ = std::make_unique<Ring>(ring_options, config_.interprocess);
  results_ = std::make_unique<Ring>(ring_options, config_.interprocess);
  control_segment_ = std::make_unique<SharedSegment>(
      SharedSegment::create(WorkerControl::bytes_for(static_cast<std::size_t>(config_.workers)), "procpool-pool"));
  control_ = new (control_segment_->data()) WorkerControl();
  control_->count = static_cast<std::uint32_t>(config_.workers);
  for (int i = 0; i < config_.workers; ++i) new (&control_->slot(static_cast<std::size_t>(i))) WorkerSlot();
  wakeup_ = std::make_unique<Wakeup>();
  if (config_.interprocess) spares_ = std::make_unique<SpareSegments>(kSpareSegmentBytes);
  pending_.reserve(512);  // an imap's look-ahead without rehashing
  // Two chunks per worker in flight, each way, keep every worker busy; a pool of many workers
  // uses more of the ring.
  inflight_cap_ = std::max(tasks_->warm_bytes() / 2, std::size_t{4} * static_cast<std::size_t>(config_.workers) * chunk_byte_budget());

  workers_.resize(static_cast<std::size_t>(config_.workers));
  try {
    for (std::size_t i = 0; i < workers_.size(); ++i) start_worker(i);
  } catch (...) {
    state_ = State::Terminate;
    tasks_->close();
    workers_.clear();
    throw;
  }
  handler_ = std::thread([this] { handler_loop(); });
  supervisor_ = std::thread([this] { supervisor_loop(); });
  // The feeder starts when a first task has to wait (start_feeder): a pool whose tasks always
  // fit the ring never pays for that thread.
}

PoolCore::~PoolCore() {
  // Only the owner destroys a core (BasicPool abandons a forked child's copy).
  shutdown();
}

void PoolCore::shutdown() noexcept {
  try {
    terminate();
    join();
  } catch (const std::exception& e) {
    logger().error("procpool: error while shutting a pool down: {}", e.what());
  }
}

void PoolEngine::abandon(std::shared_ptr<PoolEngine> core) noexcept {
  // Destroying the copy would terminate the owner's workers and close its shared rings, and
  // joining threads that exist only in the owner is undefined: keep it, reachable, instead.
  auto* node = new AbandonedCore{std::move(core), g_abandoned.load()};
  while (!g_abandoned.compare_exchange_weak(node->next, node)) {}
}

void PoolEngine::throw_not_owner() const {
  throw ProcessError("procpool: this pool belongs to process " + std::to_string(owner_pid_) + "; process " +
                     std::to_string(os::current_pid()) +
                     " (a forked child) cannot use it: create a Pool in the child instead");
}

void PoolCore::start_worker(std::size_t index) {
  const auto i = static_cast<std::uint32_t>(index);
  control_->slot(index).task_id.store(0);
  if (config_.interprocess) {
    if (worker_config_.empty()) {
      if (config_.start_method == StartMethod::Fork) {
        // A forked worker has our rings and control block mapped at the same addresses
        // already: it uses our objects instead of attaching (and unmapping) its own.
        encode_inherited_worker(worker_config_, *tasks_, *results_, *control_);
      } else {
        encode_attached_worker(worker_config_);
        tasks_->encode_handle(worker_config_);
        results_->encode_handle(worker_config_);
        codec::encode_to(worker_config_, control_segment_->handle());
      }
      encode_worker_config(worker_config_, config_.max_tasks_per_child, raw_addresses_, config_.initializer);
    }
    ProcessOptions options;
    options.name = next_worker_name(true, config_.start_method);
    options.daemon = true;
    options.start_method = config_.start_method;
    workers_[index] = start_process_worker(std::move(options), worker_config_, i);
  } else {
    workers_[index] =
        start_thread_worker(*tasks_, *results_, *control_, i, config_.max_tasks_per_child, config_.initializer);
  }
}

void PoolCore::encode_code(std::string& names, const void* address, std::uint64_t& field, std::uint32_t& name_len) {
  if (address == nullptr) {
    field = 0;
    name_len = 0;
    return;
  }
  if (raw_addresses_) {
    field = reinterpret_cast<std::uint64_t>(address);
    name_len = 0;
    return;
  }
  CodeRef ref;
  {
    std::lock_guard lock(code_cache_mutex_);
    auto it = code_cache_.find(address);
    if (it == code_cache_.end()) it = code_cache_.emplace(address, code_ref_of(address)).first;
    ref = it->second;
  }
  field = ref.offset;
  name_len = static_cast<std::uint32_t>(ref.object.size());
  names += ref.object;
}

void PoolCore::submit(const void* invoker, const void* function, std::span<const std::string_view> pieces,
                      std::shared_ptr<PendingTask> task, std::uint64_t stream) {
  check_owner();
  TaskHeader header{};
  header.task_id = next_task_id_.fetch_add(1);
  std::string names;
  encode_code(names, invoker, header.invoker, header.invoker_object_len);
  encode_code(names, function, header.function, header.function_object_len);
  std::size_t payload_size = 0;
  for (const std::string_view piece : pieces) payload_size += piece.size();
  std::size_t size = sizeof header + names.size() + payload_size;
  // A large payload goes out of band (one copy, into memory of its own): the record says where.
  std::shared_ptr<const void> out_of_band;
  std::string where;
  std::string_view where_piece;
  if (size > out_of_band_threshold()) {
    if (config_.interprocess) {
      auto segment = std::make_shared<SharedSegment>(spares_->write(pieces, "procpool-pool-item"));
      const SegmentHandle handle = segment->handle();
      where.assign(reinterpret_cast<const char*>(&handle), sizeof handle);
      header.payload_at = PayloadAt::Segment;
      out_of_band = std::move(segment);
    } else {
      auto bytes = std::make_shared<std::string>();
      bytes->reserve(payload_size);
      for (const std::string_view piece : pieces) bytes->append(piece);
      const OutOfBandMemory memory{bytes->data(), bytes->size()};
      where.assign(reinterpret_cast<const char*>(&memory), sizeof memory);
      header.payload_at = PayloadAt::Memory;
      out_of_band = std::move(bytes);
    }
    where_piece = where;
    pieces = std::span<const std::string_view>(&where_piece, 1);
    size = sizeof header + names.size() + where.size();
  }
  auto write_record = [&](std::byte* dst) {
    std::memcpy(dst, &header, sizeof header);
    dst += sizeof header;
    std::memcpy(dst, names.data(), names.size());
    dst += names.size();
    for (const std::string_view piece : pieces) {
      if (!piece.empty()) std::memcpy(dst, piece.data(), piece.size());
      dst += piece.size();
    }
  };

  std::lock_guard feed_lock(feed_mutex_);
  if (state_.load() != State::Run) [[unlikely]] {
    // After close(), only the open streams (imap iterations started before it) go on.
    if (stream == 0 || state_.load() != State::Close || !streams_.contains(stream))
      throw ValueError("procpool: Pool not running: no task can be submitted after close() or terminate()");
  }
  {
    std::lock_guard lock(pending_mutex_);
    pending_.emplace(header.task_id, Pending{std::move(task), size, std::move(out_of_band),
                                             header.payload_at == PayloadAt::Segment});
  }
  if (open_batch != nullptr && &open_batch->core_ == this && backlog_.empty()) {
    // Collected: the batch's end puts it in the ring with the others.
    const std::size_t offset = open_batch->buffer_.size();
    open_batch->buffer_.resize(offset + size);
    write_record(reinterpret_cast<std::byte*>(open_batch->buffer_.data() + offset));
    open_batch->records_.emplace_back(offset, size);
    return;
  }
  // Straight into the ring when it has room, the in-flight budget allows, and nothing queued
  // earlier is waiting (order). Counted before the push: the result may be handled at once.
  if (backlog_.empty() && fits_inflight(size)) {
    inflight_bytes_.fetch_add(size);
    if (tasks_->push_with(size, kRingNoWait, write_record) == RingStatus::Ok) return;
    inflight_bytes_.fetch_sub(size);  // the feeder waits for nothing: the backlog is empty
  }
  std::string record(size, '\0');
  write_record(reinterpret_cast<std::byte*>(record.data()));
  backlog_.push_back(std::move(record));
  start_feeder();
  feed_cv_.notify_one();
}

void PoolCore::start_feeder() {
  if (feeder_started_) return;
  try {
    feeder_ = std::thread([this] { feeder_loop(); });
  } catch (const std::system_error& e) {
    throw ProcessError(std::string("procpool: cannot start the pool's feeder thread: ") + e.what());
  }
  feeder_started_ = true;
}

namespace {
/// The buffers of this thread's last batch, kept for the next one: a look-ahead top-up every
/// few hundred results would otherwise regrow them (and make malloc consolidate) each time.
thread_local std::string spare_batch_buffer;
thread_local std::vector<std::pair<std::size_t, std::size_t>> spare_batch_records;
} // namespace

SubmitBatch::SubmitBatch(PoolEngine& core) : core_(core), outer_(open_batch) {
  buffer_.swap(spare_batch_buffer);
  records_.swap(spare_batch_records);
  open_batch = this;
}

SubmitBatch::~SubmitBatch() {
  open_batch = outer_;
  core_.flush_batch(*this);
  buffer_.clear();
  if (buffer_.capacity() <= kSpareBatchBytes) buffer_.swap(spare_batch_buffer);
  records_.clear();
  records_.swap(spare_batch_records);
}

void PoolCore::flush_batch(SubmitBatch& batch) noexcept {
  if (batch.records_.empty()) return;
  thread_local std::vector<std::string_view> records;
  records.clear();
  for (const auto& [offset, size] : batch.records_) records.emplace_back(batch.buffer_.data() + offset, size);
  batch.records_.clear();
  std::lock_guard feed_lock(feed_mutex_);
  if (state_.load() == State::Terminate) return;  // terminate() failed their tasks already
  std::size_t fit = 0;
  if (backlog_.empty()) {
    std::size_t bytes = 0;
    for (; fit < records.size() && (inflight_bytes_.load() + bytes == 0 || inflight_bytes_.load() + bytes + records[fit].size() <= inflight_cap_); ++fit)
      bytes += records[fit].size();
    inflight_bytes_.fetch_add(bytes);
    std::size_t pushed = 0;
    try {
      pushed = tasks_->push_many(std::span(records.data(), fit));
    } catch (const std::exception& e) {  // sizes were checked by submit(): not expected
      logger().error("procpool: cannot queue pool tasks: {}", e.what());
    }
    for (std::size_t i = pushed; i < fit; ++i) inflight_bytes_.fetch_sub(records[i].size());
    fit = pushed;
  }
  // The rest waits for the feeder, in order (a closed ring: terminate() fails them).
  for (std::size_t i = fit; i < records.size(); ++i) backlog_.emplace_back(records[i]);
  if (fit < records.size()) {
    try {
      start_feeder();
    } catch (const std::exception& e) {  // the tasks stay pending: terminate() or the pool's end fails them
      logger().error("{}", e.what());
    }
    feed_cv_.notify_one();
  }
}

namespace {
enum FeederWait : int { kFeederRuns = 0, kFeederWaitsHalf = 1, kFeederWaitsEmpty = 2 };
} // namespace

bool PoolCore::fits_inflight(std::size_t size) const noexcept {
  const std::size_t now = inflight_bytes_.load();
  return now == 0 || now + size <= inflight_cap_;
}

void PoolCore::release_inflight(std::size_t bytes) noexcept {
  const std::size_t after = inflight_bytes_.fetch_sub(bytes) - bytes;
  // Wake the feeder only at the level it waits for (half the budget, or nothing in flight
  // for a record bigger than half of it): one wake-up per refill, not per result.
  const int waits = feeder_waits_.load();
  if ((waits == kFeederWaitsHalf && after <= inflight_cap_ / 2) || (waits != kFeederRuns && after == 0)) {
    std::lock_guard lock(feed_mutex_);
    feed_cv_.notify_all();
  }
}

void PoolCore::feeder_loop() {
  std::unique_lock lock(feed_mutex_);
  for (;;) {
    feed_cv_.wait(lock, [&] {
      return !backlog_.empty() || (close_after_backlog_ && streams_.empty()) || state_.load() == State::Terminate;
    });
    if (state_.load() == State::Terminate) {
      backlog_.clear();
      break;
    }
    if (backlog_.empty()) {  // closed, every stream too, and everything submitted is in the ring
      tasks_->close();
      break;
    }
    if (const std::size_t size = backlog_.front().size(); !fits_inflight(size)) {
      // Announce what we wait for before looking again (release_inflight reads it after its
      // update: one of the two sees the other).
      const bool need_empty = size > inflight_cap_ / 2;
      feeder_waits_.store(need_empty ? kFeederWaitsEmpty : kFeederWaitsHalf);
      feed_cv_.wait(lock, [&] {
        const std::size_t now = inflight_bytes_.load();
        return state_.load() == State::Terminate || now == 0 || (!need_empty && now <= inflight_cap_ / 2);
      });
      feeder_waits_.store(kFeederRuns);
      continue;
    }
    inflight_bytes_.fetch_add(backlog_.front().size());
    std::string record = std::move(backlog_.front());
    backlog_.pop_front();
    lock.unlock();
    const RingStatus st =
        tasks_->push(std::span(reinterpret_cast<const std::byte*>(record.data()), record.size()), std::nullopt);
    lock.lock();
    if (st != RingStatus::Ok) {  // closed by terminate()
      backlog_.clear();
      break;
    }
  }
}

void PoolCore::handle_result(std::string_view record) {
  ResultHeader header;
  if (record.size() < sizeof header) return;
  std::memcpy(&header, record.data(), sizeof header);
  record.remove_prefix(sizeof header);
  // A thread worker's out-of-band result is ours to free, whatever becomes of its task.
  std::unique_ptr<std::string> owned_result;
  if (header.payload_at == PayloadAt::Memory && record.size() == sizeof(std::string*)) {
    std::string* body = nullptr;
    std::memcpy(&body, record.data(), sizeof body);
    owned_result.reset(body);
    record = *owned_result;
  }
  std::shared_ptr<PendingTask> task;
  std::size_t bytes = 0;
  std::shared_ptr<const void> argument;
  bool argument_is_segment = false;
  {
    std::lock_guard lock(pending_mutex_);
    auto it = pending_.find(header.task_id);
    if (it == pending_.end()) {  // already failed (terminate, or a lost worker's late twin)
      if (header.payload_at == PayloadAt::Segment) take_result_segment(header);
      return;
    }
    task = std::move(it->second.task);
    bytes = it->second.bytes;
    argument = std::move(it->second.payload);
    argument_is_segment = it->second.payload_is_segment;
    pending_.erase(it);
  }
  release_inflight(bytes);  // outside pending_mutex_: it may take feed_mutex_ (submit nests them the other way)
  // The worker that answered has unmapped its out-of-band argument: the memfd is reusable. (Not
  // after a lost worker: its twin may still read it.)
  if (argument_is_segment && header.kind != ResultKind::WorkerLost && argument.use_count() == 1)
    spares_->keep(std::move(*std::const_pointer_cast<SharedSegment>(std::static_pointer_cast<const SharedSegment>(argument))));
  argument.reset();  // freed outside the lock
  std::optional<SharedSegment> mapped;
  if (header.payload_at == PayloadAt::Segment) {
    SegmentHandle handle{};
    if (record.size() == sizeof handle) std::memcpy(&handle, record.data(), sizeof handle);
    try {
      mapped.emplace(SharedSegment::attach(handle, /*populate=*/true));
    } catch (const std::exception& e) {
      take_result_segment(header);
      task->fail(std::make_exception_ptr(ProcessError(
          "procpool: pool worker " + std::to_string(header.worker_index) + " (pid " + std::to_string(header.worker_pid) +
          ") ended before its result (" + std::to_string(handle.size) + " bytes) could be read: " + e.what())));
      return;
    }
    record = std::string_view(static_cast<const char*>(mapped->data()), handle.size);
  }
  // Once the result is decoded and unmapped, the worker may rewrite its segment for another.
  struct TakenAfterDecode {
    PoolCore& core;
    const ResultHeader& header;
    std::optional<SharedSegment>& mapped;
    ~TakenAfterDecode() {
      if (!mapped) return;
      mapped.reset();
      core.take_result_segment(header);
    }
  } taken_after_decode{*this, header, mapped};
  try {
    switch (header.kind) {
      case ResultKind::Ok: task->complete(record); break;
      case ResultKind::Error: task->fail(std::make_exception_ptr(decode_task_error(record))); break;
      case ResultKind::WorkerLost:
        // Once terminate() has begun, workers stop (or see the closed ring and leave) before it fails
        // the pending tasks: a worker lost now was stopped by it, and its task fails as every other.
        if (state_.load() == State::Terminate) {
          task->fail(std::make_exception_ptr(BrokenProcessPool(kTerminatedBeforeFinish)));
          break;
        }
        task->fail(std::make_exception_ptr(WorkerLostError(
            "procpool: pool worker " + std::to_string(header.worker_index) + " (pid " + std::to_string(header.worker_pid) +
            ") " + describe_exit(header.exit_status) + " while running this task; the pool replaced it")));
        break;
    }
  } catch (const std::exception& e) {
    // complete() could not decode the result: the task fails. (A callback's exception never
    // gets here: ResultState reports it and keeps the task's result.)
    try {
      task->fail(std::current_exception());
    } catch (...) {
      logger().error("procpool: a pool callback threw: {}", e.what());
    }
  }
}

void PoolCore::take_result_segment(const ResultHeader& header) noexcept {
  if (header.worker_index < control_->count)
    control_->slot(header.worker_index).result_taken.store(header.task_id, std::memory_order_release);
}

std::size_t PoolCore::out_of_band_threshold() const noexcept { return tasks_->max_record_size() / 4; }

int PoolCore::handle_available(int max) {
  // Completed in place, without copying the record out: the record stays valid until the
  // pop commits, and only the driver_mutex_ holder consumes results.
  const auto handle = [&](std::span<const std::byte> record) {
    handle_result(std::string_view(reinterpret_cast<const char*>(record.data()), record.size()));
  };
  int handled = 0;
  for (; handled < max; ++handled) {
    const RingStatus st = results_->pop_with(kRingNoWait, handle);
    if (st == RingStatus::Closed) return handled == 0 ? -1 : handled;
    if (st != RingStatus::Ok) break;
  }
  return handled;
}

namespace {
/// After a waiter stops handling results, the handler thread leaves the ring alone this long:
/// an imap consumer or a get() loop is usually back within microseconds, and a handler woken
/// by every push in between would cost a futex wake-up per result and a third busy thread.
/// Results nobody waits for (callbacks) are handled at most this much later meanwhile.
constexpr auto kHandlerGrace = std::chrono::milliseconds(1);

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(os::SteadyClock::now().time_since_epoch()).count();
}
} // namespace

void PoolCore::handler_loop() {
  thread_name_slot() = "PoolHandler";
  std::vector<std::shared_ptr<ResultWaiter>> deferred;
  handler_wakeups = &deferred;
  handling_core = this;
  for (;;) {
    // Read before looking: a push (or a waiter) after this point changes it, and then
    // wait_data() returns at once.
    const std::uint32_t epoch = results_->data_epoch();
    const std::int64_t quiet_for = steady_ns() - last_drive_end_ns_.load();
    const bool closed = results_->closed();
    static const long grace_ns = getenv("PP_GRACE_NS") ? atol(getenv("PP_GRACE_NS")) : std::chrono::nanoseconds(kHandlerGrace).count();
    if (drivers_.load() == 0 && (closed || quiet_for >= grace_ns)) {
      std::unique_lock lock(driver_mutex_, std::try_to_lock);
      if (lock.owns_lock()) {
        // Complete what is already waiting before waking imap consumers: one wake-up per batch.
        const int handled = handle_available(kHandlerBatch);
        lock.unlock();
        wake_deferred(deferred);
        if (handled < 0) break;  // closed by the supervisor once every worker ended, and drained
        if (handled > 0) continue;
        // Nothing there: sleep until a push (no spinning: waiters that care spin themselves).
        // Announced first, so that a waiter arriving now wakes us into the timed mode below.
        handler_idle_.store(true);
        if (drivers_.load() == 0 && results_->arm_data_wakeup()) results_->wait_data(epoch, std::nullopt);
        handler_idle_.store(false);
        continue;
      }
    }
    // Waiters handle results, now or a moment ago: look again after the grace period, not
    // registered with the ring, so that workers' pushes do not wake this thread.
    results_->wait_data(epoch, os::SteadyClock::now() + kHandlerGrace);
  }
  handler_wakeups = nullptr;  // from here on (terminate's failures), wake at once
  handling_core = nullptr;
  {
    std::lock_guard lock(driver_mutex_);  // a waiter still completing a result finishes first
  }
  fail_all_pending(kTerminatedBeforeFinish);
}

bool PoolCore::drive_until(bool (*ready)(const void*), const void* context, const os::Deadline& deadline) {
  if (ready(context)) return true;
  if (handling_core == this || !owned_here()) return false;
  // Only if nobody handles results now: otherwise that thread completes ours too (or, once it
  // has left, the handler does within its grace), and we wait on our own condition. Waiting for
  // the lock instead would tie a fast task's get() to another thread's slow one.
  std::unique_lock lock(driver_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return false;
  // Take an idle handler's armed wake-up away (pushes then wake nobody while we spin) and move
  // it to its timed look (it would not see the ring again otherwise). Within a stream of waits
  // the handler is already there: no system call.
  drivers_.fetch_add(1);
  if (handler_idle_.load()) {
    results_->disarm_data_wakeup();
    results_->wake_consumers();
  }
  std::vector<std::shared_ptr<ResultWaiter>> deferred;
  auto* const outer_wakeups = std::exchange(handler_wakeups, &deferred);
  const PoolCore* const outer_core = std::exchange(handling_core, this);
  struct Restore {
    PoolCore& core;
    std::unique_lock<std::mutex>& lock;
    std::vector<std::shared_ptr<ResultWaiter>>& deferred;
    std::vector<std::shared_ptr<ResultWaiter>>* outer_wakeups;
    const PoolCore* outer_core;
    ~Restore() {
      core.end_driving(lock);
      handler_wakeups = outer_wakeups;
      handling_core = outer_core;
      wake_deferred(deferred);
    }
  } restore{*this, lock, deferred, outer_wakeups, outer_core};

  const auto done = [&] { return ready(context); };
  while (!done()) {
    const std::uint32_t epoch = results_->data_epoch();
    const int handled = handle_available(kHandlerBatch);
    if (handled < 0) break;  // the results have ended: what is left comes from fail_all_pending
    if (handled > 0) {
      wake_deferred(deferred);
      continue;
    }
    if (deadline && os::SteadyClock::now() >= *deadline) break;
    // Nothing there yet: the one wait policy (spin, then sleep until a push wakes us; also
    // woken by terminate() and join(), whose completions do not come through the ring).
    (void)os::spin_then_sleep(&drive_spin_budget_, deadline, true,
                              [&] { return results_->has_data() || done(); },
                              [&] {
                                if (results_->arm_data_wakeup() && !done()) results_->wait_data(epoch, deadline);
                                return true;
                              });
  }
  return done();
}

void PoolCore::end_driving(std::unique_lock<std::mutex>& lock) noexcept {
  // Results arriving from now on are the handler's, after its grace period (kHandlerGrace),
  // unless another waiter comes first.
  last_drive_end_ns_.store(steady_ns());
  drivers_.fetch_sub(1);
  lock.unlock();
}

void PoolCore::fail_all_pending(const std::string& why) {
  std::unordered_map<std::uint64_t, Pending> orphans;
  {
    std::lock_guard lock(pending_mutex_);
    orphans.swap(pending_);
  }
  for (auto& [id, pending] : orphans) {
    try {
      pending.task->fail(std::make_exception_ptr(BrokenProcessPool(why)));
    } catch (const std::exception& e) {
      logger().error("procpool: a pool error callback threw: {}", e.what());
    }
  }
  // A thread worker may still be running one of these tasks (terminate() cannot stop a thread)
  // or may yet pop one from the ring: in-place tasks point into their task's memory, so it
  // stays alive until the workers are joined.
  if (!config_.interprocess) {
    std::lock_guard lock(pending_mutex_);
    for (auto& [id, pending] : orphans) retired_.push_back(std::move(pending));
  }
}

void PoolCore::supervisor_loop() {
  thread_name_slot() = "PoolSupervisor";
  for (;;) {
    std::vector<pollfd> fds;
    {
      std::lock_guard lock(workers_mutex_);
      for (const auto& w : workers_)
        if (w) fds.push_back({w->sentinel(), POLLIN, 0});
    }
    fds.push_back({wakeup_->fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
    wakeup_->drain();

    bool any_alive = false;
    std::lock_guard lock(workers_mutex_);
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      auto& w = workers_[i];
      if (!w) continue;
      if (w->alive()) {
        any_alive = true;
        continue;
      }
      const int status = w->exit_status();
      const int pid = w->pid();
      const std::uint64_t lost = control_->slot(i).task_id.exchange(0);
      w->join();
      w.reset();
      if (lost != 0) {
        logger().warn("pool worker {} (pid {}) {} while running task {}", i, pid, describe_exit(status), lost);
        ResultHeader header{lost, ResultKind::WorkerLost, pid, status, static_cast<std::uint32_t>(i), PayloadAt::Inline};
        (void)results_->push(std::span(reinterpret_cast<const std::byte*>(&header), sizeof header), std::nullopt);
      }
      // Streams first: a stream closes only after its last submission, so reading no open
      // stream and then no pending task means that nothing more will come.
      const bool has_streams = open_streams_.load() != 0;
      bool has_pending = false;
      {
        std::lock_guard pending_lock(pending_mutex_);
        has_pending = !pending_.empty();
      }
      const State state = state_.load();
      if (state == State::Run || (state == State::Close && (has_pending || has_streams))) {
        try {
          start_worker(i);
          any_alive = true;
        } catch (const std::exception& e) {
          logger().error("procpool: cannot replace pool worker {}: {}", i, e.what());
        }
      }
    }
    if (!any_alive && state_.load() != State::Run) break;
  }
  supervisor_done_ = true;
  results_->close();  // the handler drains what is left, then stops
}

std::uint64_t PoolCore::open_stream(std::weak_ptr<PoolStream> stream) {
  check_owner();
  std::lock_guard lock(feed_mutex_);
  if (state_.load() != State::Run)
    throw ValueError("procpool: Pool not running: imap needs a pool before close() or terminate()");
  const std::uint64_t id = next_stream_id_++;
  streams_.emplace(id, std::move(stream));
  open_streams_.store(streams_.size());
  return id;
}

void PoolCore::close_stream(std::uint64_t id) noexcept {
  if (!owned_here()) return;  // a forked child's copy: the owner's state is not ours
  // The stream's last records go into the ring before it counts as closed: the feeder closes
  // the ring once closed streams and an empty backlog say that nothing more will come.
  for (SubmitBatch* batch = open_batch; batch != nullptr; batch = batch->outer_)
    if (&batch->core_ == this) flush_batch(*batch);
  std::lock_guard lock(feed_mutex_);
  if (streams_.erase(id) == 0) return;
  open_streams_.store(streams_.size());
  if (streams_.empty() && close_after_backlog_) {
    if (!feeder_started_) tasks_->close();  // no feeder: no backlog either
    feed_cv_.notify_all();  // the feeder may close the task ring now
    wakeup_->notify();      // the supervisor may let exiting workers go
  }
}

bool PoolCore::accepts(std::uint64_t stream) {
  std::lock_guard lock(feed_mutex_);
  const State state = state_.load();
  return state == State::Run || (state == State::Close && stream != 0 && streams_.contains(stream));
}

void PoolCore::close() {
  check_owner();
  std::lock_guard lock(feed_mutex_);
  State expected = State::Run;
  if (!state_.compare_exchange_strong(expected, State::Close)) return;
  close_after_backlog_ = true;
  if (!feeder_started_ && streams_.empty()) tasks_->close();  // no feeder: no backlog either
  feed_cv_.notify_all();
  wakeup_->notify();
}

void PoolCore::terminate() {
  check_owner();
  {
    std::lock_guard lock(feed_mutex_);
    if (state_.exchange(State::Terminate) == State::Terminate) return;
    backlog_.clear();
    feed_cv_.notify_all();
  }
  control_->terminating.store(1);
  tasks_->close();
  fail_all_pending(kTerminatedBeforeFinish);
  results_->wake_consumers();  // waiters driving the ring look at their results again
  {
    std::lock_guard lock(workers_mutex_);
    for (auto& w : workers_)
      if (w) w->signal(SIGTERM);
  }
  // Give workers 200 ms to die of SIGTERM, then SIGKILL the rest.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  for (;;) {
    bool alive = false;
    {
      std::lock_guard lock(workers_mutex_);
      for (auto& w : workers_) alive = alive || (w && w->alive());
    }
    if (!alive || std::chrono::steady_clock::now() >= deadline || !config_.interprocess) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  {
    std::lock_guard lock(workers_mutex_);
    for (auto& w : workers_)
      if (w && w->alive()) w->signal(SIGKILL);
  }
  if (spares_) spares_->clear();
  wakeup_->notify();
}

void PoolCore::join() {
  check_owner();
  if (state_.load() == State::Run) throw ValueError("procpool: join() needs close() or terminate() first, as Python's Pool");
  if (joined_.exchange(true)) return;
  // Python's task handler reads the whole input of an imap started before close(); ours reads
  // lazily, so the streams still open submit the rest of their input now (their results wait
  // for their consumers). One pass: no stream opens after close().
  std::vector<std::shared_ptr<PoolStream>> open;
  {
    std::lock_guard lock(feed_mutex_);
    if (state_.load() == State::Close)
      for (const auto& [id, weak] : streams_)
        if (auto stream = weak.lock()) open.push_back(std::move(stream));
  }
  for (const auto& stream : open) stream->drain();
  open.clear();  // may destroy a stream whose consumer let it go meanwhile (it closes itself)
  results_->wake_consumers();  // a refused chunk of a drained stream does not come through the ring
  std::thread feeder;
  {
    std::lock_guard lock(feed_mutex_);
    feeder = std::move(feeder_);
  }
  if (feeder.joinable()) feeder.join();
  wakeup_->notify();
  if (supervisor_.joinable()) supervisor_.join();
  if (handler_.joinable()) handler_.join();
  if (spares_) spares_->clear();
  std::lock_guard lock(pending_mutex_);
  retired_.clear();  // the workers are gone: nothing runs these any more
}

std::size_t PoolCore::chunk_byte_budget() const noexcept { return tasks_->warm_bytes() / 8; }

std::vector<int> PoolCore::worker_pids() const {
  check_owner();
  std::vector<int> pids;
  std::lock_guard lock(workers_mutex_);
  for (const auto& w : workers_)
    if (w) pids.push_back(w->pid());
  return pids;
}

} // namespace procpool::detail
