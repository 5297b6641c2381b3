// The Process API, the module functions, and a child's life: becoming a child and running its
// body to the end.
#include "procpool/process.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>

#include <unistd.h>

#include "load_time.hpp"
#include "os/child_setup.hpp"
#include "os/cpu.hpp"
#include "process_internal.hpp"
#include "procpool/atexit.hpp"
#include "procpool/codec.hpp"
#include "procpool/log.hpp"

namespace procpool {
namespace detail {

// ---------------------------------------------------------------------------------------------
// The calling process's identity.

namespace {

struct Identity {
  std::string name = "MainProcess";
  bool daemon = false;
  std::string identity;  // "" in the main process
  std::optional<ProcessInfo> parent;
  std::atomic<int> children_started{0};
};

// Never destroyed: used from exit handlers. Not a function-local static (see load_time.hpp):
// a child forked while another thread made the first call would wait on its guard forever.
constinit LoadTimeObject<Identity> g_identity;
Identity& self() { return g_identity.get(); }

[[gnu::constructor]] void build_identity_at_load() noexcept { (void)g_identity.get(); }

} // namespace

// ---------------------------------------------------------------------------------------------
// Becoming and running a child.

void become_child(const ChildPayload& who, pid_t expected_parent) {
  os::ChildSetup{.parent = expected_parent}.apply();
  // The parent's children, launcher thread and forkserver connection are not ours.
  registry_forget_after_fork();
  launcher_forget_after_fork();
  forkserver_forget_after_fork();
  Identity& me = self();
  me.parent = ProcessInfo{who.parent_name, who.parent_pid, me.daemon};
  me.name = who.name;
  me.daemon = who.daemon;
  me.identity = who.identity;
  me.children_started = 0;
  process_name_slot() = who.name;
  thread_name_slot() = "MainThread";
  rebuild_logger_after_fork();
}

void warn_reaped_elsewhere(const std::string& name, pid_t pid) {
  logger().warn("child {} (pid {}) was reaped outside procpool; its exit status is unknown", name, pid);
}

void run_child_body(const std::function<void()>& body, bool fresh_image) {
  int code = 0;
  try {
    body();
  } catch (const std::exception& e) {
    const std::string type = exception_type_name(e);
    std::fprintf(stderr, "Process %s:\n%s: %s\n", self().name.c_str(), type.c_str(), e.what());
    logger().error("process {} failed: {}: {}", self().name, type, e.what());
    code = 1;
  } catch (...) {
    std::fprintf(stderr, "Process %s:\nunknown exception\n", self().name.c_str());
    code = 1;
  }
  threading::detail::join_threads_before_process_exit();
  run_atexit_handlers();  // the child's own procpool::atexit_register handlers, as Python does
  join_children_at_exit();
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  // A fresh image (spawn, forkserver) owns every exit handler and static it has, so it ends
  // like a program: its own std::atexit handlers run. A forked child shares them with the
  // parent and must not run them a second time.
  if (fresh_image) std::exit(code);
  ::_exit(code);
}

void run_portable_child(const ChildPayload& payload, pid_t expected_parent) {
  become_child(payload, expected_parent);
  set_default_start_method_in_child(payload.start_method);
  set_log_level(static_cast<spdlog::level::level_enum>(payload.log_level));
  run_child_body([&] {
    check_same_objects(payload.objects);  // code found by offset (target, pool tasks) must be the parent's
    const auto invoker = reinterpret_cast<PortableInvoker>(const_cast<void*>(resolve_code_ref(payload.target.invoker)));
    const void* function = payload.target.has_function ? resolve_code_ref(payload.target.function) : nullptr;
    invoker(function, payload.target.args);
  }, true);
}

} // namespace detail

// -------------------------------------------------------------------------------------------------
// Process.

Process::Process(ProcessOptions options)
    : daemon_(options.daemon.value_or(detail::self().daemon)), start_method_(options.start_method) {
  detail::Identity& me = detail::self();
  const int n = ++me.children_started;
  const std::string suffix = me.identity.empty() ? std::to_string(n) : me.identity + ":" + std::to_string(n);
  name_ = options.name.empty() ? "Process-" + suffix : std::move(options.name);
  identity_ = suffix;
}

Process::~Process() {
  // A running child stays in the registry (reaped later); an ended one is dropped now.
  if (record_) detail::reap_finished();
}

void Process::run() {
  if (target_) target_();
}

StartMethod Process::start_method() const { return start_method_ ? *start_method_ : get_start_method(); }

void Process::set_daemon(bool daemon) {
  if (record_) throw StateError("procpool: cannot set daemon status of active process " + name_);
  daemon_ = daemon;
}

void Process::start() {
  if (closed_) throw ValueError("procpool: process object " + name_ + " is closed");
  if (record_) throw StateError("procpool: cannot start process " + name_ + " twice");
  detail::reap_finished();  // like Python's _cleanup(): collect ended children
  const StartMethod method = start_method();
  const pid_t parent = ::getpid();

  detail::ChildPayload payload;
  payload.name = name_;
  payload.daemon = daemon_;
  payload.identity = identity_;
  payload.parent_pid = parent;
  payload.parent_name = detail::self().name;
  payload.start_method = static_cast<int>(method);
  payload.log_level = static_cast<int>(logger().level());

  auto record = std::make_shared<detail::ChildRecord>();
  record->name = name_;
  record->daemon = daemon_;

  if (method == StartMethod::Fork) {
    detail::start_fork_child(*record, payload, parent, [this] { run(); });
  } else {
    if (!portable_) {
      throw ProcessError("procpool: process " + name_ + " cannot use the '" + std::string(to_string(method)) +
                         "' start method: its target must be a function or a captureless lambda with Sendable "
                         "arguments (a Process subclass or a capturing lambda needs 'fork')");
    }
    if (!initialized()) {
      throw ProcessError("procpool: the '" + std::string(to_string(method)) +
                         "' start method needs procpool::init(argc, argv) as the first line of main()");
    }
    payload.target = *portable_;
    payload.objects = detail::loaded_objects();
    const std::string bytes = codec::encode(payload);
    if (method == StartMethod::Spawn) detail::start_spawn_child(*record, bytes, parent);
    else detail::start_forkserver_child(*record, bytes);
  }
  record_ = record;
  detail::register_child(record);
  logger().debug("started {} (pid {}, {})", name_, record->pid, to_string(method));
}

std::shared_ptr<detail::ChildRecord> Process::record_checked(const char* what) const {
  if (closed_) throw ValueError("procpool: process object " + name_ + " is closed");
  if (!record_) throw StateError(std::string("procpool: can only ") + what + " a started process (" + name_ + ")");
  return record_;
}

void Process::join() { record_checked("join")->wait_until(std::nullopt); }

bool Process::join_until(std::chrono::steady_clock::time_point deadline) {
  return record_checked("join")->wait_until(deadline);
}

bool Process::is_alive() {
  if (closed_) throw ValueError("procpool: process object " + name_ + " is closed");
  if (!record_) return false;
  return !record_->wait_until(std::chrono::steady_clock::now());
}

void Process::terminate() { record_checked("terminate")->send_signal(SIGTERM); }
void Process::kill() { record_checked("kill")->send_signal(SIGKILL); }

int Process::sentinel() const {
  // Python raises ValueError("process not started") here, not the AssertionError of join().
  if (!closed_ && !record_) throw ValueError("procpool: process " + name_ + " not started: it has no sentinel yet");
  return record_checked("get the sentinel of")->wait_fd;
}

std::optional<pid_t> Process::pid() const noexcept {
  if (!record_) return std::nullopt;
  return record_->pid;
}

std::optional<int> Process::exitcode() {
  if (closed_) throw ValueError("procpool: process object " + name_ + " is closed");
  if (!record_) return std::nullopt;
  std::lock_guard lock(record_->mutex);
  record_->try_reap_locked();
  return record_->exitcode;
}

void Process::close() {
  if (closed_) return;
  if (record_ && !record_->wait_until(std::chrono::steady_clock::now()))
    throw ValueError("procpool: cannot close process " + name_ + " while it is still running; join() or terminate() it first");
  record_.reset();
  detail::reap_finished();
  target_ = nullptr;
  portable_.reset();
  closed_ = true;
}

// -------------------------------------------------------------------------------------------------
// Module-level functions.

ProcessInfo current_process() {
  const detail::Identity& me = detail::self();
  return ProcessInfo{me.name, ::getpid(), me.daemon};
}

std::optional<ProcessInfo> parent_process() { return detail::self().parent; }

std::vector<ProcessInfo> active_children() {
  std::vector<ProcessInfo> out;
  for (const auto& c : detail::reap_finished()) out.push_back(ProcessInfo{c->name, c->pid, c->daemon});
  return out;
}

int cpu_count() { return os::cpu_count(); }

} // namespace procpool
