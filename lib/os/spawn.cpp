#include "os/spawn.hpp"

#include "os/child_syscalls.hpp"

#include <cerrno>
#include <csignal>
#include <system_error>

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>

extern char** environ;

namespace procpool::os {
namespace {

// Enough for the child's few raw system calls and the caller's in_child hook; it
// lives in the caller's frame, which the caller does not touch while CLONE_VFORK suspends it.
constexpr std::size_t kChildStackBytes = 64 * 1024;

struct ChildArgs {
  const SpawnRequest* request;
  char* const* envp;
  // The fd maps as a plain array: the child calls no (possibly instrumented) std::span member.
  const FdMap* fds;
  std::size_t fd_count;
  sigset_t parent_mask;  // the caller's mask, the child's own just before exec unless asked otherwise
  int* error_out;        // written by the child, read once clone() returns
};

#if defined(__SANITIZE_THREAD__)
// TSan keeps each thread's state in memory that a CLONE_VM child would share, and GCC still calls
// its function-entry hooks from no_sanitize code: under TSan the child gets its own copy of memory
// (still CLONE_VFORK: the caller waits until the exec) and reports an exec failure through a
// shared page. The in_child hook's writes then reach the caller only through MAP_SHARED memory.
constexpr int kCloneFlags = CLONE_VFORK | SIGCHLD;
constexpr bool kChildSharesMemory = false;
#else
constexpr int kCloneFlags = CLONE_VM | CLONE_VFORK | SIGCHLD;
constexpr bool kChildSharesMemory = true;
#endif

PROCPOOL_OS_CHILD_CODE void close_from(int first) noexcept {
  if (child::call(SYS_close_range, first, ~0U, 0) == 0) return;
  rlimit limit{};  // kernels before 5.9: close them one by one
  const long last = child::call(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, reinterpret_cast<long>(&limit)) == 0 &&
                            limit.rlim_cur != RLIM_INFINITY
                        ? static_cast<long>(limit.rlim_cur)
                        : 65536;
  for (long fd = first; fd < last; ++fd) child::call(SYS_close, fd);
}

[[noreturn]] PROCPOOL_OS_CHILD_CODE void fail(ChildArgs& args) noexcept {
  *args.error_out = errno;
  child::exit_now(127);
}

PROCPOOL_OS_CHILD_CODE int child_main(void* arg) noexcept {
  auto& args = *static_cast<ChildArgs*>(arg);
  const SpawnRequest& r = *args.request;
  r.setup.apply();
  if (r.in_child != nullptr) r.in_child(r.in_child_arg);
  for (std::size_t i = 0; i < args.fd_count; ++i) {
    const FdMap& m = args.fds[i];
    // dup3, not dup2 (which AArch64 lacks): it fails on from == to, where only the flag changes.
    const long rc = m.from == m.to ? child::call(SYS_fcntl, m.from, F_SETFD, 0) : child::call(SYS_dup3, m.from, m.to, 0);
    if (rc < 0) fail(args);
  }
  if (r.close_from >= 0) close_from(r.close_from);
  if (r.working_dir != nullptr && child::call(SYS_chdir, reinterpret_cast<long>(r.working_dir)) != 0) fail(args);
  const sigset_t* mask = r.signal_mask != nullptr ? r.signal_mask : &args.parent_mask;
  child::call(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(mask), 0, child::kKernelSigsetBytes);
  child::call(SYS_execve, reinterpret_cast<long>(r.path), reinterpret_cast<long>(r.argv), reinterpret_cast<long>(args.envp));
  if (r.fallback_path != nullptr)
    child::call(SYS_execve, reinterpret_cast<long>(r.fallback_path), reinterpret_cast<long>(r.fallback_argv),
                reinterpret_cast<long>(args.envp));
  fail(args);
}

} // namespace

Spawned spawn(const SpawnRequest& request) {
  alignas(64) char stack[kChildStackBytes];
  int error = 0;
  int* error_out = &error;
  if constexpr (!kChildSharesMemory) {
    void* page = ::mmap(nullptr, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
    error_out = static_cast<int*>(page);
    *error_out = 0;
  }
  ChildArgs args{&request, request.envp != nullptr ? request.envp : environ, request.fds.data(), request.fds.size(), {},
                 error_out};
  // Every signal blocked around the clone: no handler may run in the child while it shares our
  // memory (it unblocks only once setup has reset the handlers it was asked to, right before exec).
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &args.parent_mask);
  const int pid = ::clone(child_main, stack + sizeof stack, kCloneFlags, &args);
  const int clone_error = errno;
  ::pthread_sigmask(SIG_SETMASK, &args.parent_mask, nullptr);
  const int exec_error = *error_out;
  if constexpr (!kChildSharesMemory) ::munmap(error_out, sizeof(int));
  if (pid < 0) throw std::system_error(clone_error, std::generic_category(), "clone");
  return Spawned{pid, exec_error};
}

} // namespace procpool::os
