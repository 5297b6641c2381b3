// Fork safety of lazy initialisation (issue 10, item 6): a fork while another thread makes
// the process's first lock call must not leave the child waiting on a half-initialised static.
// Only fresh processes have not yet initialised anything, so a helper is started many times.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

TEST_CASE("Sync.ForkInit.ForkDuringFirstLockCall") {
  const char* helper = std::getenv("PROCPOOL_FORK_HELPER");
  REQUIRE(helper != nullptr);
  // About 4 in 1,000 runs hung before the fix; two at a time to use both cores.
  constexpr int kRuns = 1500;
  int hung = 0, failed = 0;
  for (int i = 0; i < kRuns; i += 2) {
    pid_t pids[2] = {-1, -1};
    for (pid_t& pid : pids) {
      char* argv[] = {const_cast<char*>(helper), nullptr};
      REQUIRE(::posix_spawn(&pid, helper, nullptr, nullptr, argv, environ) == 0);
    }
    for (const pid_t pid : pids) {
      int status = 0;
      REQUIRE(::waitpid(pid, &status, 0) == pid);
      if (WIFEXITED(status) && WEXITSTATUS(status) == 2) ++hung;
      else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
    }
  }
  CHECK(hung == 0);
  CHECK(failed == 0);
}
