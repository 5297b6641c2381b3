#include "os/spawn.hpp"

#include <cerrno>
#include <csignal>
#include <system_error>

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char** environ;

namespace procpool::os {
namespace {

// Enough for the child's few system calls (the glibc wrappers, sigaction's structures); it
// lives in the caller's frame, which the caller does not touch while CLONE_VFORK suspends it.
constexpr std::size_t kChildStackBytes = 64 * 1024;

struct ChildArgs {
  const SpawnRequest* request;
  char* const* envp;
  sigset_t parent_mask;  // the caller's mask, the child's own just before exec unless asked otherwise
  int error = 0;         // written by the child (same memory), read once clone() returns
};

void close_from(int first) noexcept {
  if (::syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0) == 0) return;
  rlimit limit{};  // kernels before 5.9: close them one by one
  const long last = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                        ? static_cast<long>(limit.rlim_cur)
                        : 65536;
  for (long fd = first; fd < last; ++fd) ::close(static_cast<int>(fd));
}

[[noreturn]] void fail(ChildArgs& args) noexcept {
  args.error = errno;
  ::_exit(127);
}

int child_main(void* arg) noexcept {
  auto& args = *static_cast<ChildArgs*>(arg);
  const SpawnRequest& r = *args.request;
  r.setup.apply();
  if (r.in_child != nullptr) r.in_child(r.in_child_arg);
  for (const FdMap& m : r.fds) {
    if (m.from == m.to) {
      if (::fcntl(m.from, F_SETFD, 0) != 0) fail(args);
    } else if (::dup2(m.from, m.to) < 0) {
      fail(args);
    }
  }
  if (r.close_from >= 0) close_from(r.close_from);
  if (r.working_dir != nullptr && ::chdir(r.working_dir) != 0) fail(args);
  ::sigprocmask(SIG_SETMASK, r.signal_mask != nullptr ? r.signal_mask : &args.parent_mask, nullptr);
  ::execve(r.path, r.argv, args.envp);
  if (r.fallback_path != nullptr) ::execve(r.fallback_path, r.fallback_argv, args.envp);
  fail(args);
}

} // namespace

Spawned spawn(const SpawnRequest& request) {
  alignas(64) char stack[kChildStackBytes];
  ChildArgs args{&request, request.envp != nullptr ? request.envp : environ, {}, 0};
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
