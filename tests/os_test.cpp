// Core.Os: the os layer's ids and liveness checks (lib/os, lib/procpool/detail/os).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/liveness.hpp"
#include "procpool/detail/os/ids.hpp"
#include "procpool/detail/os/robust_lock.hpp"

using namespace std::chrono_literals;
namespace os = procpool::os;

namespace {
pid_t gettid_now() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

/// Polls `f` for up to 5 s: some state changes (a thread's exit) finish asynchronously.
template <class F>
bool eventually(F f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}
} // namespace

TEST_CASE("Core.Os.Ids.MatchTheKernel") {
  CHECK(os::current_pid() == ::getpid());
  CHECK(os::current_tid() == gettid_now());
  CHECK(os::is_main_thread());
  pid_t other = 0;
  bool other_main = true;
  std::thread t([&] {
    other = os::current_tid();
    other_main = os::is_main_thread();
    CHECK(other == gettid_now());
  });
  t.join();
  CHECK(other != os::current_tid());
  CHECK_FALSE(other_main);
}

TEST_CASE("Core.Os.Ids.RefreshedInAForkedChild") {
  (void)os::current_pid();  // both caches filled in the parent
  (void)os::current_tid();
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const bool ok = os::current_pid() == ::getpid() && os::current_tid() == gettid_now() && os::is_main_thread();
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("Core.Os.Liveness.ProcessEndedCountsZombies") {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    for (;;) ::pause();
  }
  CHECK_FALSE(os::process_ended(child));
  CHECK_FALSE(os::owner_ended(static_cast<std::uint32_t>(child), os::OwnerScope::None));
  CHECK_FALSE(os::owner_ended(static_cast<std::uint32_t>(child), os::OwnerScope::Process));
  REQUIRE(::kill(child, SIGKILL) == 0);
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) == 0);  // a zombie now
  CHECK(os::process_ended(child));
  CHECK(os::owner_ended(static_cast<std::uint32_t>(child), os::OwnerScope::Process));
  REQUIRE(::waitpid(child, nullptr, 0) == child);  // reaped: gone
  CHECK(os::process_ended(child));
  CHECK_FALSE(os::process_ended(::getpid()));
  CHECK_FALSE(os::owner_ended(static_cast<std::uint32_t>(::getpid()), os::OwnerScope::Process));
}

TEST_CASE("Core.Os.Liveness.ThreadEnded") {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> stop{false};
  std::thread t([&] {
    tid.store(gettid_now());
    while (!stop.load()) std::this_thread::sleep_for(1ms);
  });
  while (tid.load() == 0) std::this_thread::sleep_for(1ms);
  CHECK_FALSE(os::thread_ended(tid.load()));
  CHECK_FALSE(os::owner_ended(static_cast<std::uint32_t>(tid.load()), os::OwnerScope::Thread));
  CHECK_FALSE(os::owner_ended(static_cast<std::uint32_t>(os::current_tid()), os::OwnerScope::Thread));
  stop.store(true);
  t.join();
  CHECK(eventually([&] { return os::thread_ended(tid.load()); }));
  CHECK(eventually([&] { return os::owner_ended(static_cast<std::uint32_t>(tid.load()), os::OwnerScope::Thread); }));
}
