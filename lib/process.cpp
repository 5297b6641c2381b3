#include "procpool/process.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procpool/atexit.hpp"
#include "procpool/codec.hpp"
#include "procpool/detail/os/deadline.hpp"
#include "os/cpu.hpp"
#include "procpool/log.hpp"
#include "load_time.hpp"
#include "process_internal.hpp"

extern char** environ;

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

pid_t gettid_() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Child records: one per started child, kept in a registry until reaped.

struct ChildRecord {
  pid_t pid = 0;
  std::string name;
  bool daemon = false;
  bool via_forkserver = false;
  int wait_fd = -1;  // pidfd of our own child, or the forkserver's status socket
  // A spawned child reads its payload from this memfd through /proc/<our pid>/fd, so it stays
  // open until the child has ended (the child may start reading late).
  int payload_fd = -1;
  std::mutex mutex;
  std::optional<int> exitcode;

  ChildRecord() = default;
  ChildRecord(const ChildRecord&) = delete;
  ChildRecord& operator=(const ChildRecord&) = delete;
  ~ChildRecord() {
    if (wait_fd >= 0) ::close(wait_fd);
    if (payload_fd >= 0) ::close(payload_fd);
  }

  void release_payload_locked() {
    if (payload_fd >= 0) ::close(payload_fd);
    payload_fd = -1;
  }

  // Collects the exit status if the child has ended. Caller holds `mutex`.
  void try_reap_locked() {
    if (exitcode) return;
    if (via_forkserver) {
      pollfd p{wait_fd, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) return;
      int status = 0;
      const ssize_t n = ::read(wait_fd, &status, sizeof status);
      // No status means the forkserver itself died, which kills its children (PDEATHSIG).
      exitcode = n == static_cast<ssize_t>(sizeof status) ? decode_wait_status(status) : -SIGKILL;
      return;
    }
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      exitcode = decode_wait_status(status);
      release_payload_locked();
    } else if (r < 0 && errno == ECHILD) {
      // Someone else reaped it (SIGCHLD ignored, or a waitpid(-1) elsewhere): status unknown.
      logger().warn("child {} (pid {}) was reaped outside procpool; its exit status is unknown", name, pid);
      exitcode = 255;
      release_payload_locked();
    }
  }

  /// Waits until the child ends or `deadline` passes (time_point::max(): never); true when it
  /// has ended.
  bool wait_until(const std::optional<std::chrono::steady_clock::time_point>& deadline) {
    const bool forever = !deadline || os::is_never(*deadline);
    const auto until = forever ? std::chrono::steady_clock::time_point::max() : *deadline;
    for (;;) {
      {
        std::lock_guard lock(mutex);
        try_reap_locked();
        if (exitcode) return true;
      }
      int timeout_ms = -1;
      if (!forever) {
        // Compared first: `until - now` overflows for a deadline far in the past (time_point::min()).
        const auto now = std::chrono::steady_clock::now();
        if (until <= now) return false;
        const auto left = until - now;
        // poll() takes an int: wait at most a day at a time, then look again.
        const auto capped = std::min<std::chrono::steady_clock::duration>(left, std::chrono::hours(24));
        timeout_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(capped).count());
      }
      pollfd p{wait_fd, POLLIN, 0};
      const int rc = ::poll(&p, 1, timeout_ms);
      if (rc < 0 && errno != EINTR) throw_errno("procpool: waiting for process " + name + " failed", errno);
    }
  }

  void send_signal(int sig) {
    std::lock_guard lock(mutex);
    try_reap_locked();
    if (exitcode) return;  // ended: the pid may belong to someone else now
    if (!via_forkserver) {
      if (::syscall(SYS_pidfd_send_signal, wait_fd, sig, nullptr, 0) == 0) return;
    }
    ::kill(pid, sig);
  }
};

namespace {

struct Registry {
  std::mutex mutex;
  std::vector<std::shared_ptr<ChildRecord>> children;
  pid_t owner = ::getpid();
  bool exit_handler_installed = false;
};

// Never destroyed: the exit handler uses it. Built at load (below), not a guarded
// function-local static: see load_time.hpp.
constinit LoadTimeObject<Registry> g_registry;
Registry& registry() { return g_registry.get(); }

/// Drops the records of children that have ended; returns the rest.
std::vector<std::shared_ptr<ChildRecord>> reap_finished() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::shared_ptr<ChildRecord>> live;
  std::erase_if(r.children, [&](const std::shared_ptr<ChildRecord>& c) {
    std::lock_guard child_lock(c->mutex);
    c->try_reap_locked();
    if (!c->exitcode) live.push_back(c);
    return c->exitcode.has_value();
  });
  return live;
}

/// Python's multiprocessing exit function: terminate daemon children, join the others.
void join_children_at_exit() noexcept {
  try {
    if (registry().owner != ::getpid()) return;
    auto live = reap_finished();
    for (auto& c : live) {
      if (!c->daemon) continue;
      c->send_signal(SIGTERM);
      if (!c->wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(1))) {
        c->send_signal(SIGKILL);
        c->wait_until(std::nullopt);
      }
    }
    for (auto& c : live) c->wait_until(std::nullopt);
    reap_finished();
  } catch (...) {
    // Nothing sensible to do while exiting.
  }
}

void register_child(const std::shared_ptr<ChildRecord>& record) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (!r.exit_handler_installed) {
    std::atexit(join_children_at_exit);
    r.exit_handler_installed = true;
  }
  r.children.push_back(record);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// The stable launcher thread.

namespace {

class Launcher {
public:
  Launcher() { std::thread([this] { loop(); }).detach(); }
  void run(const std::function<void()>& fn) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return job_ == nullptr; });
    std::exception_ptr error;
    bool done = false;
    job_ = [&] {
      try {
        fn();
      } catch (...) {
        error = std::current_exception();
      }
    };
    done_flag_ = &done;
    cv_.notify_all();
    cv_.wait(lock, [&] { return done; });
    if (error) std::rethrow_exception(error);
  }

private:
  void loop() {
    thread_name_slot() = "procpool-launcher";
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return job_ != nullptr; });
      auto job = std::move(job_);
      lock.unlock();
      job();
      lock.lock();
      job_ = nullptr;
      *done_flag_ = true;
      cv_.notify_all();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool* done_flag_ = nullptr;
};

// Constant-initialised (no guard): a plain pointer, reset in a child by become_child().
constinit Launcher* g_launcher = nullptr;
Launcher*& launcher_slot() { return g_launcher; }
std::mutex launcher_mutex;

} // namespace

void run_on_stable_thread(const std::function<void()>& fn) {
  if (gettid_() == ::getpid()) {
    fn();
    return;
  }
  Launcher* launcher = nullptr;
  {
    std::lock_guard lock(launcher_mutex);
    if (launcher_slot() == nullptr) launcher_slot() = new Launcher();  // lives as long as the process
    launcher = launcher_slot();
  }
  launcher->run(fn);
}

// ---------------------------------------------------------------------------------------------
// Becoming and running a child.

void become_child(const ChildPayload& who, pid_t expected_parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != expected_parent) ::_exit(1);  // the parent died before PDEATHSIG was armed
  // The parent's children, launcher thread and forkserver connection are not ours.
  new (&registry()) Registry();  // the old one's mutex may be held by a vanished thread
  launcher_slot() = nullptr;
  new (&launcher_mutex) std::mutex();  // may have been held by another thread (it starts the launcher)
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

namespace {

struct InitState {
  bool initialized = false;
  std::string argv0;
};
// Never destroyed, built at load (below): a guarded function-local static could be copied
// mid-initialisation into a forked child (load_time.hpp).
constinit LoadTimeObject<InitState> g_init_state;
InitState& init_state() { return g_init_state.get(); }

constexpr int method_unset = -1;

/// The default start method; method_unset until $PROCPOOL_START_METHOD has been read.
/// Constant-initialised at namespace scope: no guard, nothing to copy half-done into a child.
constinit std::atomic<int> g_default_method{method_unset};
std::atomic<int>& default_method() { return g_default_method; }

// Builds the process-wide objects of this file while the library loads, before any thread
// can fork (the LoadTimeObjects also build themselves if another static initialiser runs first).
[[gnu::constructor]] void build_process_state_at_load() noexcept {
  (void)g_identity.get();
  (void)g_registry.get();
  (void)g_init_state.get();
}

StartMethod read_default_method() {
  int m = default_method().load();
  if (m != method_unset) return static_cast<StartMethod>(m);
  const char* env = std::getenv("PROCPOOL_START_METHOD");
  StartMethod parsed = StartMethod::Fork;
  if (env != nullptr && *env != '\0') {
    try {
      parsed = start_method_from_string(env);
    } catch (const ValueError& e) {
      // Left unset: every call reports it until set_start_method() chooses one.
      throw ValueError(std::string("procpool: $PROCPOOL_START_METHOD: ") + e.what());
    }
  }
  default_method().compare_exchange_strong(m, static_cast<int>(parsed));
  return static_cast<StartMethod>(default_method().load());
}

/// Reads a whole fd from offset 0.
std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

constexpr const char* spawn_flag = "--procpool-spawn";

pid_t parse_pid(const char* text) { return text != nullptr ? static_cast<pid_t>(std::atol(text)) : 0; }

/// A sealed, close-on-exec memfd holding a spawn payload. The child opens it through
/// /proc/<parent>/fd (launch_check.cpp): it is never inherited, so no other child (started by
/// another thread meanwhile) sees it, and the seals and the flag tell the child it is ours.
int write_spawn_payload(const std::string& bytes) {
  const int fd = ::memfd_create(spawn_payload_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw_errno("procpool: memfd_create failed", errno);
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw_errno("procpool: cannot write spawn payload", err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    const int err = errno;
    ::close(fd);
    throw_errno("procpool: cannot seal spawn payload", err);
  }
  return fd;
}

/// Starts `/proc/self/exe --procpool-spawn <payload_fd> <parent>` with descriptors 0-2 only
/// (Python's close_fds): the child attaches to everything else through /proc.
pid_t spawn_child(int payload_fd, pid_t parent, const std::string& name) {
  std::string exe = "/proc/self/exe";
  std::string flag = spawn_flag;
  std::string fd_text = std::to_string(payload_fd);
  std::string parent_text = std::to_string(parent);
  char* argv[] = {exe.data(), flag.data(), fd_text.data(), parent_text.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = 0;
  int rc = 0;
  run_on_stable_thread([&] { rc = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, environ); });
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw ProcessError("procpool: cannot spawn process " + name + ": " + std::strerror(rc));
  return pid;
}

} // namespace

const std::string& program_argv0() { return init_state().argv0; }

void set_default_start_method_in_child(int method) { default_method() = method; }

} // namespace detail

// -------------------------------------------------------------------------------------------------
// Start methods and init().

std::string_view to_string(StartMethod method) noexcept {
  switch (method) {
    case StartMethod::Fork: return "fork";
    case StartMethod::Spawn: return "spawn";
    case StartMethod::Forkserver: return "forkserver";
  }
  return "fork";
}

StartMethod start_method_from_string(std::string_view name) {
  if (name == "fork") return StartMethod::Fork;
  if (name == "spawn") return StartMethod::Spawn;
  if (name == "forkserver") return StartMethod::Forkserver;
  throw ValueError("procpool: cannot find context for '" + std::string(name) +
                   "': the start method must be \"fork\", \"spawn\" or \"forkserver\"");
}

void set_start_method(StartMethod method) { detail::default_method() = static_cast<int>(method); }
void set_start_method(std::string_view name) { set_start_method(start_method_from_string(name)); }
StartMethod get_start_method() { return detail::read_default_method(); }
std::vector<std::string> get_all_start_methods() { return {"fork", "spawn", "forkserver"}; }

void init(int argc, char** argv) {
  auto& state = detail::init_state();
  state.initialized = true;
  state.argv0 = argc > 0 && argv != nullptr && argv[0] != nullptr ? argv[0] : "";
  // A spawned child is started as `<exe> --procpool-spawn <payload fd> <parent pid>`, the fd
  // being the parent's. Whoever launches a program controls its argv, so child mode is only
  // entered once the parent is verified to be this program running procpool (launch_check.cpp);
  // otherwise the program stops here: it must never run code named by its arguments.
  if (argc >= 2 && argv[1] != nullptr && std::string_view(argv[1]) == detail::spawn_flag) {
    const pid_t parent = argc == 4 ? detail::parse_pid(argv[3]) : 0;
    std::string why;
    int fd = -1;
    if (argc != 4) why = "expected " + std::string(detail::spawn_flag) + " FD PID";
    else if (detail::verify_launcher(parent, why)) fd = detail::open_spawn_payload(parent, std::atoi(argv[2]), why);
    if (fd < 0) {
      std::fprintf(stderr,
                   "procpool: refusing to run as a spawned child: %s. '%s' is only for children that procpool "
                   "starts itself.\n",
                   why.c_str(), detail::spawn_flag);
      ::_exit(2);
    }
    const std::string bytes = detail::read_all(fd);
    ::close(fd);
    detail::ChildPayload payload;
    try {
      payload = codec::decode<detail::ChildPayload>(bytes);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "procpool: spawned child cannot read its task: %s\n", e.what());
      ::_exit(1);
    }
    detail::run_portable_child(payload, parent);
  }
  if (const char* fd_text = std::getenv("PROCPOOL_FORKSERVER_FD")) {
    const int fd = std::atoi(fd_text);
    const pid_t parent = detail::parse_pid(std::getenv("PROCPOOL_PARENT_PID"));
    ::unsetenv("PROCPOOL_FORKSERVER_FD");  // not for this program's own children either way
    ::unsetenv("PROCPOOL_PARENT_PID");
    std::string why;
    if (detail::verify_launcher(parent, why) && detail::verify_forkserver_socket(fd, parent, why))
      detail::forkserver_main(fd, parent);
    // A stray variable (inherited from a shell, say) must not change what the program does.
    std::fprintf(stderr, "procpool: ignoring PROCPOOL_FORKSERVER_FD: %s\n", why.c_str());
  }
}

bool initialized() noexcept { return detail::init_state().initialized; }

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
    std::cout.flush();  // a copied, unflushed buffer would print twice
    std::fflush(nullptr);
    detail::run_on_stable_thread([&] {
      const pid_t pid = ::fork();
      if (pid < 0) detail::throw_errno("procpool: fork failed for process " + name_, errno);
      if (pid == 0) {
        detail::become_child(payload, parent);
        detail::run_child_body([this] { run(); });
      }
      record->pid = pid;
    });
    record->wait_fd = static_cast<int>(::syscall(SYS_pidfd_open, record->pid, 0));
    if (record->wait_fd < 0) detail::throw_errno("procpool: pidfd_open failed", errno);
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
    if (method == StartMethod::Spawn) {
      record->payload_fd = detail::write_spawn_payload(bytes);
      record->pid = detail::spawn_child(record->payload_fd, parent, name_);
      record->wait_fd = static_cast<int>(::syscall(SYS_pidfd_open, record->pid, 0));
      if (record->wait_fd < 0) detail::throw_errno("procpool: pidfd_open failed", errno);
    } else {
      int status_fd = -1;
      record->pid = detail::forkserver_launch(bytes, status_fd);
      record->wait_fd = status_fd;
      record->via_forkserver = true;
    }
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
