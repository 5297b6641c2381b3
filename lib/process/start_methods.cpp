// How a child is started: fork, spawn (a fresh image of this program, started with os::spawn)
// and forkserver; the default start method; init(), where a fresh image becomes a child.
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "load_time.hpp"
#include "os/fd.hpp"
#include "os/liveness.hpp"
#include "os/spawn.hpp"
#include "process_internal.hpp"
#include "procpool/codec.hpp"
#include "procpool/errors.hpp"
#include "procpool/process.hpp"

namespace procpool {
namespace detail {
namespace {

struct InitState {
  bool initialized = false;
  std::string argv0;
};
// Never destroyed, built at load (below): a guarded function-local static could be copied
// mid-initialisation into a forked child (load_time.hpp).
constinit LoadTimeObject<InitState> g_init_state;
InitState& init_state() { return g_init_state.get(); }

[[gnu::constructor]] void build_init_state_at_load() noexcept { (void)g_init_state.get(); }

constexpr int kMethodUnset = -1;

/// The default start method; kMethodUnset until $PROCPOOL_START_METHOD has been read.
/// Constant-initialised at namespace scope: no guard, nothing to copy half-done into a child.
constinit std::atomic<int> g_default_method{kMethodUnset};

constexpr const char* kSpawnFlag = "--procpool-spawn";

pid_t parse_pid(const char* text) { return text != nullptr ? static_cast<pid_t>(std::atol(text)) : 0; }

void open_pidfd(ChildRecord& record) {
  record.wait_fd = os::pidfd_open(record.pid);
  if (record.wait_fd < 0) throw_errno("procpool: pidfd_open failed", errno);
}

/// A sealed, close-on-exec memfd holding a spawn payload. The child opens it through
/// /proc/<parent>/fd (launch_check.cpp): it is never inherited, so no other child (started by
/// another thread meanwhile) sees it, and the seals and the flag tell the child it is ours.
int write_spawn_payload(const std::string& bytes) {
  os::UniqueFd fd(::memfd_create(kSpawnPayloadName, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) throw_errno("procpool: memfd_create failed", errno);
  if (const int err = os::write_all(fd.get(), bytes); err != 0) throw_errno("procpool: cannot write spawn payload", err);
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    throw_errno("procpool: cannot seal spawn payload", errno);
  return fd.release();
}

} // namespace

void start_fork_child(ChildRecord& record, const ChildPayload& payload, pid_t parent, const std::function<void()>& body) {
  std::cout.flush();  // a copied, unflushed buffer would print twice
  std::fflush(nullptr);
  run_on_stable_thread([&] {
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("procpool: fork failed for process " + record.name, errno);
    if (pid == 0) {
      become_child(payload, parent);
      run_child_body(body);
    }
    record.pid = pid;
  });
  open_pidfd(record);
}

void start_spawn_child(ChildRecord& record, const std::string& payload_bytes, pid_t parent) {
  record.payload_fd = write_spawn_payload(payload_bytes);
  // `/proc/self/exe --procpool-spawn <payload_fd> <parent>` with descriptors 0-2 only (Python's
  // close_fds): the child attaches to everything else through /proc.
  std::string exe = "/proc/self/exe";
  std::string flag = kSpawnFlag;
  std::string fd_text = std::to_string(record.payload_fd);
  std::string parent_text = std::to_string(parent);
  char* argv[] = {exe.data(), flag.data(), fd_text.data(), parent_text.data(), nullptr};
  os::SpawnRequest request;
  request.path = exe.c_str();
  request.argv = argv;
  request.close_from = 3;
  request.setup.parent = parent;
  request.setup.default_caught_signals = true;  // the program's handlers must not run on our memory
  os::Spawned child;
  run_on_stable_thread([&] { child = os::spawn(request); });
  if (child.exec_error != 0) {
    ::waitpid(child.pid, nullptr, 0);
    throw ProcessError("procpool: cannot spawn process " + record.name + ": " + std::strerror(child.exec_error));
  }
  record.pid = child.pid;
  open_pidfd(record);
}

void start_forkserver_child(ChildRecord& record, const std::string& payload_bytes) {
  int status_fd = -1;
  record.pid = forkserver_launch(payload_bytes, status_fd);
  record.wait_fd = status_fd;
  record.via_forkserver = true;
}

int default_start_method() {
  int m = g_default_method.load();
  if (m != kMethodUnset) return m;
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
  g_default_method.compare_exchange_strong(m, static_cast<int>(parsed));
  return g_default_method.load();
}

const std::string& program_argv0() { return init_state().argv0; }

void set_default_start_method_in_child(int method) { g_default_method = method; }

} // namespace detail

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

void set_start_method(StartMethod method) { detail::g_default_method = static_cast<int>(method); }
void set_start_method(std::string_view name) { set_start_method(start_method_from_string(name)); }
StartMethod get_start_method() { return static_cast<StartMethod>(detail::default_start_method()); }
std::vector<std::string> get_all_start_methods() { return {"fork", "spawn", "forkserver"}; }

namespace detail {
namespace {
std::atomic<int (*)(int, char**)> g_cluster_worker_entry{nullptr};
} // namespace

bool enable_cluster_worker_entry(int (*entry)(int, char**)) noexcept {
  g_cluster_worker_entry.store(entry);
  return true;
}
} // namespace detail

void init(int argc, char** argv) {
  auto& state = detail::init_state();
  state.initialized = true;
  state.argv0 = argc > 0 && argv != nullptr && argv[0] != nullptr ? argv[0] : "";
  // A spawned child is started as `<exe> --procpool-spawn <payload fd> <parent pid>`, the fd
  // being the parent's. Whoever launches a program controls its argv, so child mode is only
  // entered once the parent is verified to be this program running procpool (launch_check.cpp);
  // otherwise the program stops here: it must never run code named by its arguments.
  if (argc >= 2 && argv[1] != nullptr && std::string_view(argv[1]) == detail::kSpawnFlag) {
    const pid_t parent = argc == 4 ? detail::parse_pid(argv[3]) : 0;
    std::string why;
    int fd = -1;
    if (argc != 4) why = "expected " + std::string(detail::kSpawnFlag) + " FD PID";
    else if (detail::verify_launcher(parent, why)) fd = detail::open_spawn_payload(parent, std::atoi(argv[2]), why);
    if (fd < 0) {
      std::fprintf(stderr,
                   "procpool: refusing to run as a spawned child: %s. '%s' is only for children that procpool "
                   "starts itself.\n",
                   why.c_str(), detail::kSpawnFlag);
      ::_exit(2);
    }
    const std::string bytes = os::read_all_from_start(fd);
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
  // `--procpool-worker URL`: only a program that includes procpool/cluster.hpp (it uses cluster
  // pools, and its workers are itself) becomes a worker; any other ignores the flag.
  if (argc >= 2 && argv != nullptr && argv[1] != nullptr && std::string_view(argv[1]) == "--procpool-worker") {
    if (auto* entry = detail::g_cluster_worker_entry.load()) std::exit(entry(argc, argv));
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

} // namespace procpool
