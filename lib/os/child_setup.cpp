#include "os/child_setup.hpp"

#include <sys/prctl.h>
#include <unistd.h>

namespace procpool::os {

void ChildSetup::apply() const noexcept {
  if (parent > 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // Armed only now: a parent that died before this line leaves the child orphaned for good.
    if (::getppid() != parent) ::_exit(kParentGoneExitCode);
  }
  if (new_process_group) ::setpgid(0, 0);
  if (default_signals == 0 && !default_caught_signals) return;
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG && sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    bool reset = (default_signals & signal_bit(sig)) != 0;
    if (!reset && default_caught_signals) {
      struct sigaction old {};
      reset = ::sigaction(sig, nullptr, &old) == 0 && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN;
    }
    if (reset) ::sigaction(sig, &dfl, nullptr);
  }
}

} // namespace procpool::os
