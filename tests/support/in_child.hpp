#pragma once
/// testing::in_child: runs a check in a forked child and reports it to the parent (a check inside a
/// child is lost unless the child reports it).
#include <cstdio>

#include <sys/wait.h>
#include <unistd.h>

namespace testing {

/// Runs `body` in a forked child; its return value is the child's exit code (98: it threw; 128 +
/// signal if the child was killed).
template <class Body>
int in_child(Body body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace testing
