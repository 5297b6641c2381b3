#pragma once
/// @file os/child_syscalls.hpp
/// System calls for code that runs in a new child before exec (internal to lib/os). They go
/// straight to the kernel, never through a libc wrapper that a sanitizer intercepts: in a
/// CLONE_VM child an interceptor would update the parent's bookkeeping (TSan's handler table,
/// its descriptor table, its exit processing), because the child shares the parent's memory.
#include <cerrno>
#include <cstdint>

#include <sys/syscall.h>
#include <unistd.h>

/// Functions that run in such a child: not instrumented either (their shadow stack and shadow
/// memory would be the parent's).
#define PROCPOOL_OS_CHILD_CODE __attribute__((no_sanitize("address", "thread", "undefined")))

namespace procpool::os::child {

#if defined(__mips__)
#error "procpool::os: the kernel's struct sigaction starts with sa_flags on MIPS; adapt child_syscalls.hpp"
#endif

/// The kernel's struct sigaction, large enough for every layout whose first member is the
/// handler (x86-64, AArch64, RISC-V, PowerPC, s390): an all-zero one means SIG_DFL, no flags, nothing masked.
struct KernelSigaction {
  void (*handler)(int) = nullptr;
  unsigned long words[3] = {};
};
inline constexpr unsigned long kKernelSigsetBytes = 8;  // the kernel's sigset_t: 64 signals

PROCPOOL_OS_CHILD_CODE inline long call(long number, long a = 0, long b = 0, long c = 0, long d = 0) noexcept {
  return ::syscall(number, a, b, c, d);
}

[[noreturn]] PROCPOOL_OS_CHILD_CODE inline void exit_now(int code) noexcept {
  for (;;) ::syscall(SYS_exit_group, code);
}

} // namespace procpool::os::child
