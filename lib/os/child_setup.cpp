#include "os/child_setup.hpp"

#include <sys/prctl.h>

#include "os/child_syscalls.hpp"

namespace procpool::os {

PROCPOOL_OS_CHILD_CODE void ChildSetup::apply() const noexcept {
  if (parent > 0) {
    child::call(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
    // Armed only now: a parent that died before this line leaves the child orphaned for good.
    if (child::call(SYS_getppid) != parent) child::exit_now(kParentGoneExitCode);
  }
  if (new_process_group) child::call(SYS_setpgid, 0, 0);
  if (default_signals == 0 && !default_caught_signals) return;
  const child::KernelSigaction dfl{};
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    bool reset = ((default_signals >> (sig - 1)) & 1U) != 0;  // signal_bit(sig), without a call
    if (!reset && default_caught_signals) {
      child::KernelSigaction old{};
      reset = child::call(SYS_rt_sigaction, sig, 0, reinterpret_cast<long>(&old), child::kKernelSigsetBytes) == 0 &&
              old.handler != SIG_DFL && old.handler != SIG_IGN;
    }
    if (reset)
      child::call(SYS_rt_sigaction, sig, reinterpret_cast<long>(&dfl), 0, child::kKernelSigsetBytes);
  }
}

} // namespace procpool::os
