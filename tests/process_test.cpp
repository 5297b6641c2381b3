#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <procpool/procpool.hpp>

#include "os/child_setup.hpp"

#include "run_program.hpp"
#include "start_methods.hpp"
#include "sanitizers.hpp"

using namespace std::chrono_literals;
using procpool::Process;
using procpool::ProcessOptions;
using procpool::StartMethod;

namespace {

// Targets: plain functions, so that every start method can run them.
void exit_with(int code) { ::_exit(code); }
void do_nothing() {}
void throw_runtime() { throw std::runtime_error("boom from the child"); }
void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
void check_args(std::string who, std::vector<int> numbers, double x) {
  const bool ok = who == "bob" && numbers == std::vector<int>{1, 2, 3} && x == 2.5;
  ::_exit(ok ? 42 : 1);
}
void check_identity(std::string expected_name, int expected_parent) {
  const auto me = procpool::current_process();
  const auto parent = procpool::parent_process();
  const bool ok = me.name == expected_name && me.pid == ::getpid() && parent && parent->pid == expected_parent &&
                  parent->name == "MainProcess";
  ::_exit(ok ? 0 : 3);
}

/// No zombie children of ours remain (after joins).
void check_no_zombies() { CHECK(testing::zombie_children(::getpid()).empty()); }

} // namespace

TEST_CASE_TEMPLATE("Process.ExitCode.Zero", M, ALL_START_METHODS) {
  Process p(testing::options<M>(), &do_nothing);
  CHECK_FALSE(p.is_alive());
  CHECK_FALSE(p.exitcode().has_value());
  CHECK_FALSE(p.pid().has_value());
  p.start();
  CHECK(p.pid().has_value());
  p.join();
  CHECK(p.exitcode() == 0);
  CHECK_FALSE(p.is_alive());
  check_no_zombies();
}

TEST_CASE_TEMPLATE("Process.ExitCode.ExplicitExit", M, ALL_START_METHODS) {
  Process p(testing::options<M>(), &exit_with, 7);
  p.start();
  p.join();
  CHECK(p.exitcode() == 7);
}

TEST_CASE_TEMPLATE("Process.ExitCode.ExceptionGivesOne", M, ALL_START_METHODS) {
  Process p(testing::options<M>(), &throw_runtime);
  p.start();
  p.join();
  CHECK(p.exitcode() == 1);
}

TEST_CASE_TEMPLATE("Process.ExitCode.KilledIsMinusSignal", M, ALL_START_METHODS) {
  Process p(testing::options<M>(), &sleep_ms, 30000);
  p.start();
  CHECK(p.is_alive());
  p.kill();
  CHECK(p.join(10s));
  CHECK(p.exitcode() == -SIGKILL);
  Process q(testing::options<M>(), &sleep_ms, 30000);
  q.start();
  q.terminate();
  CHECK(q.join(10s));
  CHECK(q.exitcode() == -SIGTERM);
  check_no_zombies();
}

TEST_CASE_TEMPLATE("Process.Join.Timeout", M, ALL_START_METHODS) {
  Process p(testing::options<M>(), &sleep_ms, 600);
  p.start();
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(p.join(100ms));
  CHECK(std::chrono::steady_clock::now() - t0 >= 100ms);
  CHECK(p.is_alive());
  CHECK_FALSE(p.exitcode().has_value());
  CHECK(p.join(20s));
  CHECK(p.exitcode() == 0);
}

TEST_CASE_TEMPLATE("Process.Args.Serialised", M, ALL_START_METHODS) {
  Process p(testing::options<M>(), &check_args, std::string("bob"), std::vector<int>{1, 2, 3}, 2.5);
  p.start();
  p.join();
  CHECK(p.exitcode() == 42);
}

TEST_CASE_TEMPLATE("Process.Args.CaptureLessLambda", M, ALL_START_METHODS) {
  Process p(testing::options<M>(), [](int a, int b) { ::_exit(a + b); }, 20, 22);
  p.start();
  p.join();
  CHECK(p.exitcode() == 42);
}

TEST_CASE_TEMPLATE("Process.Identity.CurrentAndParent", M, ALL_START_METHODS) {
  Process p(testing::options<M>("worker-x"), &check_identity, std::string("worker-x"), static_cast<int>(::getpid()));
  p.start();
  p.join();
  CHECK(p.exitcode() == 0);
}

TEST_CASE("Process.Names.DefaultNumbering") {
  Process a(&do_nothing);
  Process b(&do_nothing);
  const int na = std::stoi(a.name().substr(std::string("Process-").size()));
  const int nb = std::stoi(b.name().substr(std::string("Process-").size()));
  CHECK(a.name().rfind("Process-", 0) == 0);
  CHECK(nb == na + 1);
  Process c(ProcessOptions{.name = "custom"}, &do_nothing);
  CHECK(c.name() == "custom");
}

TEST_CASE("Process.Fork.CapturingLambda") {
  int captured = 5;
  std::string text = "abc";
  Process p([captured, text] { ::_exit(captured + static_cast<int>(text.size())); });
  p.start();
  p.join();
  CHECK(p.exitcode() == 8);
}

TEST_CASE("Process.Spawn.CapturingLambdaIsAClearError") {
  int captured = 5;
  Process p(ProcessOptions{.start_method = StartMethod::Spawn}, [captured] { ::_exit(captured); });
  try {
    p.start();
    FAIL("start() should have thrown");
  } catch (const procpool::ProcessError& e) {
    CHECK(std::string(e.what()).find("captureless lambda") != std::string::npos);
  }
  CHECK_FALSE(p.pid().has_value());
}

namespace {
class SubProcess : public Process {
public:
  explicit SubProcess(int interval_ms, StartMethod method = StartMethod::Fork)
      : Process(ProcessOptions{.start_method = method}), interval_ms_(interval_ms) {}
  void run() override {
    sleep_ms(interval_ms_);
    ::_exit(interval_ms_ == 50 && procpool::current_process().name == name() ? 11 : 1);
  }

private:
  int interval_ms_;
};
} // namespace

TEST_CASE("Process.Subclass.RunOverridden") {
  SubProcess p(50);
  p.start();
  p.join();
  CHECK(p.exitcode() == 11);
}

TEST_CASE("Process.Subclass.SpawnIsAClearError") {
  SubProcess p(50, StartMethod::Spawn);
  CHECK_THROWS_WITH_AS(p.start(), doctest::Contains("needs 'fork'"), procpool::ProcessError);
}

TEST_CASE("Process.State.Errors") {
  Process p(&do_nothing);
  CHECK_THROWS_AS(p.join(), procpool::StateError);
  CHECK_THROWS_WITH_AS((void)p.sentinel(), doctest::Contains("not started"), procpool::ValueError);  // as Python
  p.start();
  CHECK_THROWS_AS(p.start(), procpool::StateError);
  CHECK_THROWS_AS(p.set_daemon(true), procpool::StateError);
  p.join();
  p.close();
  CHECK_THROWS_AS((void)p.is_alive(), procpool::ValueError);
  Process q(&sleep_ms, 2000);
  q.start();
  CHECK_THROWS_AS(q.close(), procpool::ValueError);
  q.kill();
  q.join();
}

TEST_CASE("Process.StartMethod.Strings") {
  CHECK(procpool::start_method_from_string("spawn") == StartMethod::Spawn);
  CHECK(procpool::to_string(StartMethod::Forkserver) == "forkserver");
  CHECK_THROWS_AS(procpool::set_start_method("bogus"), procpool::ValueError);
  const auto before = procpool::get_start_method();
  procpool::set_start_method("forkserver");
  CHECK(procpool::get_start_method() == StartMethod::Forkserver);
  Process p(&exit_with, 9);
  CHECK(p.start_method() == StartMethod::Forkserver);
  p.start();
  p.join();
  CHECK(p.exitcode() == 9);
  procpool::set_start_method(before);
  CHECK(procpool::get_all_start_methods().size() == 3);
}

TEST_CASE_TEMPLATE("Process.ActiveChildren.ListsAndReaps", M, ALL_START_METHODS) {
  {
    Process p(testing::options<M>("short-lived"), &sleep_ms, 300);
    p.start();
    bool listed = false;
    for (const auto& c : procpool::active_children()) listed = listed || (c.name == "short-lived" && c.pid == *p.pid());
    CHECK(listed);
    // p is destroyed while its child still runs: no zombie must remain once it ends.
  }
  for (int i = 0; i < 100 && !procpool::active_children().empty(); ++i) std::this_thread::sleep_for(50ms);
  CHECK(procpool::active_children().empty());
  check_no_zombies();
}

TEST_CASE("Process.Forkserver.FromThreadedParent") {
  // Threads are running while we start children: forkserver never forks this process.
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int i = 0; i < 3; ++i)
    busy.emplace_back([&] {
      while (!stop) std::this_thread::sleep_for(1ms);
    });
  std::vector<std::unique_ptr<Process>> children;
  for (int i = 0; i < 4; ++i) {
    children.push_back(std::make_unique<Process>(testing::options<testing::Forkserver>(), &exit_with, 10 + i));
    children.back()->start();
  }
  for (int i = 0; i < 4; ++i) {
    children[static_cast<size_t>(i)]->join();
    CHECK(children[static_cast<size_t>(i)]->exitcode() == 10 + i);
  }
  stop = true;
  for (auto& t : busy) t.join();
}

TEST_CASE("Process.Fork.FromNonMainThread") {
  // Started from a short-lived thread, the child must outlive that thread (PDEATHSIG is per thread).
  std::unique_ptr<Process> p;
  std::thread([&] {
    p = std::make_unique<Process>(&sleep_ms, 400);
    p->start();
  }).join();
  std::this_thread::sleep_for(100ms);
  CHECK(p->is_alive());
  p->join();
  CHECK(p->exitcode() == 0);
}

namespace {
// A middle process starts a long-sleeping child, reports the child's pid, then waits forever.
void middle_process(int pid_slot_fd) {
  Process child(&sleep_ms, 60000);
  child.start();
  const pid_t pid = *child.pid();
  (void)::write(pid_slot_fd, &pid, sizeof pid);
  sleep_ms(60000);
}

bool process_gone_or_zombie(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  const auto zombies = testing::zombie_children(::getpid());
  return std::find(zombies.begin(), zombies.end(), pid) != zombies.end();
}
} // namespace

TEST_CASE("Process.ParentDeath.ChildExitsWithinASecond") {
  // Orphans are re-parented to us, so we can see them die and reap them.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  Process middle(&middle_process, fds[1]);
  middle.start();
  pid_t grandchild = 0;
  REQUIRE(::read(fds[0], &grandchild, sizeof grandchild) == sizeof grandchild);
  ::close(fds[0]);
  ::close(fds[1]);
  REQUIRE(::kill(grandchild, 0) == 0);
  middle.kill();
  CHECK(middle.join(5s));
  const auto t0 = std::chrono::steady_clock::now();
  while (!process_gone_or_zombie(grandchild) && std::chrono::steady_clock::now() - t0 < 5s) std::this_thread::sleep_for(10ms);
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(process_gone_or_zombie(grandchild));
  MESSAGE("grandchild gone after " << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count() << " ms");
  CHECK(waited < 1500ms);  // promise: within a second (slack for a loaded machine)
  // Reap it (it was re-parented to us). It died by SIGKILL, or exited with kParentGoneExitCode
  // if the parent was already gone before it armed PR_SET_PDEATHSIG.
  int status = 0;
  if (::waitpid(grandchild, &status, 0) == grandchild) {
    CAPTURE(status);
    CHECK((WIFSIGNALED(status) || WEXITSTATUS(status) == procpool::os::kParentGoneExitCode));
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_CASE("Process.CpuCount.Positive") {
  CHECK(procpool::cpu_count() >= 1);
  CHECK(procpool::cpu_count() <= static_cast<int>(std::thread::hardware_concurrency()) + 64);
}

TEST_CASE("Process.Exit.JoinsNonDaemonThreads" * doctest::skip(testing::kThreadSanitizer)) {
  // As Python's child (threading._shutdown): a non-daemon thread started by the target is
  // joined before the child exits; the parent sees its effect.
  auto* flag = static_cast<std::atomic<int>*>(
      ::mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(flag != MAP_FAILED);
  new (flag) std::atomic<int>(0);
  Process p([flag] {
    procpool::threading::Thread t([flag] {
      std::this_thread::sleep_for(200ms);
      flag->store(42);
    });
    t.start();
  });  // the target returns at once
  p.start();
  p.join();
  CHECK(p.exitcode() == 0);
  CHECK(flag->load() == 42);
  ::munmap(flag, sizeof(std::atomic<int>));
}
