#include "os/spawn.hpp"

#include "os/child_syscalls.hpp"

#include <cerrno>
#include <csignal>
#include <system_error>

#include <fcntl.h>
#include <sched.h>
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
  int error = 0;         // written by the child (same memory), read once clone() returns
};

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
  args.error = errno;
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
  ChildArgs args{&request, request.envp != nullptr ? request.envp : environ, request.fds.data(), request.fds.size(), {}, 0};
  // Every signal blocked around the clone: no handler may run in the child while it shares our
  // memory (it unblocks only once setup has reset the handlers it was asked to, right before exec).
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &args.parent_mask);
  const int pid = ::clone(child_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  const int clone_error = errno;
  ::pthread_sigmask(SIG_SETMASK, &args.parent_mask, nullptr);
  if (pid < 0) throw std::system_error(clone_error, std::generic_category(), "clone");
  return Spawned{pid, args.error};
}

} // namespace procpool::os
