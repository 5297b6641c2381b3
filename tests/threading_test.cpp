// procpool::threading: Thread, Timer, local, the module functions and exit/fork behaviour.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <procpool/log.hpp>
#include <procpool/procpool.hpp>

#include "run_program.hpp"

namespace threading = procpool::threading;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Keeps a thread busy until the test lets it go: no timing guesses.
class Gate {
public:
  void open() {
    open_.store(true);
    open_.notify_all();
  }
  void wait() const { open_.wait(false); }

private:
  std::atomic<bool> open_{false};
};

// N from "PrefixN", or -1 when `name` is not the prefix followed by digits only.
int number_after(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return -1;
  const std::string digits = name.substr(prefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return -1;
  return std::stoi(digits);
}

int thread_number(const std::string& name) {
  const int n = number_after(name, "Thread-");
  REQUIRE_MESSAGE(n > 0, "not a default thread name: ", name);
  return n;
}

bool contains(const std::vector<threading::ThreadHandle>& v, const threading::ThreadHandle& h) {
  return std::find(v.begin(), v.end(), h) != v.end();
}

// The test binary itself runs the helper cases below (skipped unless asked for by name).
testing::ProgramResult run_helper(const std::string& test_case) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  return testing::run_program({self, "--test-case=" + test_case, "--no-skip=true", "--no-version=true"}, "",
                              std::chrono::seconds(60));
}

} // namespace

// ---------------------------------------------------------------- Thread

TEST_CASE("Threading.Thread.StartJoinRunsTarget") {
  std::atomic<int> calls{0};
  threading::Thread t([&calls] { calls.fetch_add(1); });
  t.start();
  t.join();
  CHECK(calls.load() == 1);
  CHECK_FALSE(t.is_alive());
}

TEST_CASE("Threading.Thread.JoinTimeoutOnBlockedThread") {
  Gate gate;
  threading::Thread t([&gate] { gate.wait(); });
  t.start();
  const auto before = Clock::now();
  CHECK_FALSE(t.join(50ms));
  CHECK(Clock::now() - before >= 50ms);  // it did wait (lower bound only)
  CHECK(t.is_alive());
  gate.open();
  CHECK(t.join(30s));
  CHECK_FALSE(t.is_alive());
  CHECK(t.join(0s));  // joining a finished thread again is fine
}

TEST_CASE("Threading.Thread.IsAliveAndIdsBeforeDuringAfter") {
  Gate gate;
  std::atomic<std::uint64_t> inner_ident{0};
  std::atomic<pid_t> inner_tid{0};
  threading::Thread t([&] {
    inner_ident = threading::get_ident();
    inner_tid = threading::get_native_id();
    gate.wait();
  });
  CHECK_FALSE(t.is_alive());
  CHECK_FALSE(t.ident().has_value());
  CHECK_FALSE(t.native_id().has_value());
  t.start();
  CHECK(t.is_alive());  // start() returns once the thread runs
  REQUIRE(t.ident().has_value());
  REQUIRE(t.native_id().has_value());
  gate.open();
  t.join();
  CHECK_FALSE(t.is_alive());
  CHECK(*t.ident() == inner_ident.load());
  CHECK(*t.native_id() == inner_tid.load());
  CHECK(*t.native_id() != ::getpid());
  CHECK(*t.ident() != threading::get_ident());
  CHECK(threading::main_thread().native_id() == std::optional<pid_t>(::getpid()));
}

TEST_CASE("Threading.Thread.DefaultNamesCount") {
  threading::Thread a([] {});
  threading::Thread b([] {});
  threading::Thread c({.name = "custom"}, [] {});
  threading::Thread d([] {});
  const int na = thread_number(a.name());
  CHECK(thread_number(b.name()) == na + 1);
  CHECK(c.name() == "custom");
  CHECK(thread_number(d.name()) == na + 2);  // a custom name takes no number
}

TEST_CASE("Threading.Thread.NameSeenInsideAndInLogSlot") {
  std::string seen, slot, renamed_slot;
  threading::Thread t({.name = "alpha"}, [&] {
    seen = threading::current_thread().name();
    slot = procpool::detail::thread_name_slot();
    threading::current_thread().set_name("beta");
    renamed_slot = procpool::detail::thread_name_slot();
  });
  t.start();
  t.join();
  CHECK(seen == "alpha");
  CHECK(slot == "alpha");
  CHECK(renamed_slot == "beta");
  CHECK(t.name() == "beta");
  t.set_name("gamma");
  CHECK(t.name() == "gamma");
}

namespace {
class Summer : public threading::Thread {
public:
  Summer(int low, int high) : Thread({.name = "summer"}), low_(low), high_(high) {}
  ~Summer() override {
    if (is_alive()) join();
  }
  long total = 0;
  std::string run_name;

protected:
  void run() override {
    run_name = threading::current_thread().name();
    for (int i = low_; i < high_; ++i) total += i;
  }

private:
  int low_, high_;
};
} // namespace

TEST_CASE("Threading.Thread.SubclassRun") {
  Summer s(0, 1000);
  s.start();
  s.join();
  CHECK(s.total == 499500);
  CHECK(s.run_name == "summer");
}

TEST_CASE("Threading.Thread.ArgsByValueByRefAndMoveOnly") {
  std::string text = "original";
  int out = 0;
  auto owned = std::make_unique<int>(7);
  Gate gate;
  threading::Thread t(
      [&gate](std::string copy, int& result, std::unique_ptr<int> p) {
        gate.wait();
        result = static_cast<int>(copy.size()) + *p;
      },
      text, std::ref(out), std::move(owned));
  t.start();
  text = "changed after start, and longer";  // the thread holds its own copy
  gate.open();
  t.join();
  CHECK(out == 8 + 7);
}

TEST_CASE("Threading.Thread.WrongStateThrows") {
  threading::Thread t([] {});
  CHECK_THROWS_AS(t.join(), procpool::StateError);
  CHECK_THROWS_AS((void)t.join(1ms), procpool::StateError);
  t.start();
  CHECK_THROWS_AS(t.start(), procpool::StateError);
  CHECK_THROWS_AS(t.set_daemon(true), procpool::StateError);
  t.join();

  std::atomic<bool> self_join_threw{false};
  threading::Thread self([&self_join_threw] {
    try {
      threading::current_thread().join();
    } catch (const procpool::StateError&) {
      self_join_threw = true;
    }
  });
  self.start();
  self.join();
  CHECK(self_join_threw.load());
  CHECK_THROWS_AS(threading::current_thread().join(), procpool::StateError);
}

TEST_CASE("Threading.Thread.DaemonFlag") {
  threading::Thread plain([] {});
  CHECK_FALSE(plain.daemon());  // the main thread is not a daemon, and creators pass it on
  threading::Thread d({.daemon = true}, [] {});
  CHECK(d.daemon());
  plain.set_daemon(true);
  CHECK(plain.daemon());

  std::atomic<int> inherited{-1};
  threading::Thread parent({.daemon = true}, [&inherited] {
    threading::Thread child([] {});
    inherited = child.daemon() ? 1 : 0;
  });
  parent.start();
  parent.join();
  CHECK(inherited.load() == 1);  // Python: a thread inherits its creator's daemon flag
}

TEST_CASE("Threading.Thread.DestroyedWhileRunningKeepsRunning") {
  Gate gate;
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::optional<threading::ThreadHandle> handle;
  {
    threading::Thread t(
        [&gate](const std::shared_ptr<std::atomic<bool>>& flag) {
          gate.wait();
          *flag = true;
        },
        done);
    t.start();
    handle = t.handle();
  }  // the Thread object is gone; its thread is not
  CHECK(handle->is_alive());
  CHECK(contains(threading::enumerate(), *handle));
  gate.open();
  CHECK(handle->join(30s));
  CHECK(done->load());
  CHECK_FALSE(contains(threading::enumerate(), *handle));
}

// ---------------------------------------------------------------- Timer

TEST_CASE("Threading.Timer.Fires") {
  std::atomic<int> fired{0};
  const auto before = Clock::now();
  threading::Timer t(50ms, [&fired](int n) { fired += n; }, 3);
  t.start();
  CHECK(t.join(30s));
  CHECK(fired.load() == 3);
  CHECK(Clock::now() - before >= 50ms);
  CHECK(thread_number(t.name()) > 0);  // a Timer is a Thread: default name Thread-N
}

TEST_CASE("Threading.Timer.CancelPreventsCall") {
  std::atomic<bool> fired{false};
  threading::Timer t(1h, [&fired] { fired = true; });
  t.start();
  CHECK(t.is_alive());
  t.cancel();
  CHECK(t.join(30s));  // the hour-long wait ended at once
  CHECK_FALSE(fired.load());

  threading::Timer early(10ms, [&fired] { fired = true; });
  early.cancel();  // before start(): Python allows it too
  early.start();
  CHECK(early.join(30s));
  CHECK_FALSE(fired.load());
}

// ---------------------------------------------------------------- local

TEST_CASE("Threading.Local.IsolatedAcrossThreads") {
  threading::local<int> data;
  CHECK_FALSE(data.has_value());
  *data = 1000;
  CHECK(data.has_value());
  int seen_first = -1, seen_after = -1;
  threading::Thread t([&] {
    seen_first = *data;  // this thread's own, default-constructed value
    *data = 42;
    seen_after = data.get();
  });
  t.start();
  t.join();
  CHECK(seen_first == 0);
  CHECK(seen_after == 42);
  CHECK(*data == 1000);
  data.reset();
  CHECK_FALSE(data.has_value());
  CHECK(*data == 0);
}

TEST_CASE("Threading.Local.InitialValueAndFactoryPerThread") {
  threading::local<int> with_initial(1000);
  std::atomic<int> factory_calls{0};
  threading::local<std::string> with_factory([&factory_calls] {
    factory_calls.fetch_add(1);
    return "made for " + threading::current_thread().name();
  });
  CHECK(*with_initial == 1000);
  CHECK(*with_factory == "made for MainThread");
  *with_initial = 1;

  std::vector<std::unique_ptr<threading::Thread>> threads;
  std::vector<int> initial(3, -1);
  std::vector<std::string> made(3);
  for (std::size_t i = 0; i < 3; ++i) {
    threads.push_back(std::make_unique<threading::Thread>(
        threading::ThreadOptions{.name = "loc" + std::to_string(i)}, [&, i] {
          initial[i] = *with_initial;
          *with_initial = 7;
          made[i] = *with_factory;
          (void)with_factory->size();  // a second access reuses the value
        }));
    threads.back()->start();
  }
  for (auto& t : threads) t->join();
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(initial[i] == 1000);
    CHECK(made[i] == "made for loc" + std::to_string(i));
  }
  CHECK(factory_calls.load() == 4);  // once per thread, main included
  CHECK(*with_initial == 1);
}

namespace {
struct Counted {
  static inline std::atomic<int> alive{0};
  Counted() { alive.fetch_add(1); }
  Counted(const Counted&) { alive.fetch_add(1); }
  ~Counted() { alive.fetch_sub(1); }
};
} // namespace

TEST_CASE("Threading.Local.ValuesFreedAtThreadExitAndWithTheLocal") {
  REQUIRE(Counted::alive.load() == 0);
  {
    threading::local<Counted> data;
    threading::Thread t([&data] { (void)data.get(); });
    t.start();
    t.join();  // returns after the thread's values are destroyed
    CHECK(Counted::alive.load() == 0);

    Gate gate;
    std::atomic<bool> touched{false};
    threading::Thread holder([&] {
      (void)data.get();
      touched = true;
      touched.notify_all();
      gate.wait();
    });
    holder.start();
    touched.wait(false);
    (void)data.get();  // main's value too
    CHECK(Counted::alive.load() == 2);
    gate.open();
    holder.join();
    CHECK(Counted::alive.load() == 1);
  }  // the local goes: main's value goes with it
  CHECK(Counted::alive.load() == 0);
}

// ---------------------------------------------------------------- module functions

TEST_CASE("Threading.Module.CurrentAndMainThread") {
  CHECK(threading::current_thread() == threading::main_thread());
  CHECK(threading::main_thread().name() == "MainThread");
  CHECK_FALSE(threading::main_thread().daemon());
  CHECK(threading::main_thread().is_alive());

  std::optional<threading::ThreadHandle> inside;
  threading::Thread t([&inside] { inside = threading::current_thread(); });
  t.start();
  t.join();
  REQUIRE(inside.has_value());
  CHECK(*inside == t.handle());
  CHECK_FALSE(*inside == threading::main_thread());
}

TEST_CASE("Threading.Module.ForeignThreadIsDummy") {
  std::string name;
  bool daemon = false, listed = false, same_twice = false;
  const std::size_t before = threading::active_count();
  std::optional<threading::ThreadHandle> handle;
  std::thread foreign([&] {
    handle = threading::current_thread();
    name = handle->name();
    daemon = handle->daemon();
    listed = contains(threading::enumerate(), *handle);
    same_twice = threading::current_thread() == *handle;
  });
  foreign.join();
  CHECK(number_after(name, "Dummy-") > 0);
  CHECK(daemon);
  CHECK(listed);
  CHECK(same_twice);
  CHECK_FALSE(handle->is_alive());  // unregistered when the thread ended
  CHECK(threading::active_count() == before);
}

TEST_CASE("Threading.Module.EnumerateAndActiveCount") {
  const std::size_t before = threading::active_count();
  CHECK(before >= 1);
  CHECK(contains(threading::enumerate(), threading::main_thread()));
  Gate gate;
  std::vector<std::unique_ptr<threading::Thread>> threads;
  for (int i = 0; i < 3; ++i) {
    threads.push_back(std::make_unique<threading::Thread>([&gate] { gate.wait(); }));
    threads.back()->start();
  }
  CHECK(threading::active_count() == before + 3);
  const auto listed = threading::enumerate();
  CHECK(listed.size() == before + 3);
  for (const auto& t : threads) CHECK(contains(listed, t->handle()));
  CHECK(listed.front() == threading::main_thread());  // start order: main first
  gate.open();
  for (const auto& t : threads) t->join();
  CHECK(threading::active_count() == before);
}

TEST_CASE("Threading.Module.ForkedChildSeesOnlyItself") {
  Gate gate;
  threading::Thread busy([&gate] { gate.wait(); });  // non-daemon, alive across the fork
  busy.start();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Only the forking thread exists here: it is the one entry, and the parent's `busy` reads as
    // finished, so the at-exit join (which waits only for listed threads) cannot hang on it.
    // _exit: sanitizer leak checks are unreliable in a forked child of a threaded process.
    const bool ok = threading::active_count() == 1 && threading::enumerate().front() == threading::current_thread() &&
                    threading::current_thread() == threading::main_thread() && !busy.is_alive() &&
                    busy.join(0s);
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 300 && done == 0; ++i) {  // 30 s at most
    done = ::waitpid(pid, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(100ms);
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  gate.open();
  busy.join();
  REQUIRE(done == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("Threading.Module.ForkProcessChildFromAThread") {
  // A fork Process started from a procpool Thread while another Thread runs: the child's
  // threading module lists only its own (main) thread, and its exit does not wait for others.
  Gate gate;
  threading::Thread busy([&gate] { gate.wait(); });
  busy.start();
  std::optional<int> code;
  threading::Thread starter([&code] {
    procpool::Process p(procpool::ProcessOptions{.start_method = procpool::StartMethod::Fork}, [] {
      if (threading::active_count() != 1 || threading::current_thread() != threading::main_thread())
        throw std::runtime_error("the child sees threads it does not have");
    });
    p.start();
    p.join();
    code = p.exitcode();
  });
  starter.start();
  CHECK(starter.join(60s));
  gate.open();
  busy.join();
  CHECK(code == std::optional<int>(0));
}

// ---------------------------------------------------------------- exit and errors (helpers)

// Helpers: run in a child copy of this binary by the tests below, never on their own.
TEST_CASE("Threading.Helper.NonDaemonJoinedAtExit" * doctest::skip()) {
  // Returns at once; the threads (one started while exit already waits) finish afterwards.
  threading::Thread a([] {
    std::this_thread::sleep_for(200ms);
    threading::Thread b([] {
      std::this_thread::sleep_for(200ms);
      std::fputs("B finished\n", stdout);
    });
    b.start();
    std::fputs("A finished\n", stdout);
  });
  a.start();
  std::fputs("main returns\n", stdout);
}

TEST_CASE("Threading.Helper.DaemonAbandonedAtExit" * doctest::skip()) {
  static std::atomic<bool> started{false};  // static: the daemon outlives this scope
  threading::Thread d({.daemon = true}, [] {
    std::fputs("daemon started\n", stdout);
    std::fflush(stdout);
    started = true;
    started.notify_all();
    std::this_thread::sleep_for(30s);
    std::fputs("daemon finished\n", stdout);
  });
  d.start();
  started.wait(false);  // exit while the daemon sleeps, not before it printed
  std::fputs("main returns\n", stdout);
}

TEST_CASE("Threading.Helper.ExceptionsInThreads" * doctest::skip()) {
  threading::Thread t({.name = "Thrower"}, [] { throw std::runtime_error("boom"); });
  t.start();
  t.join();
  threading::Thread u([] { throw 42; });
  u.start();
  u.join();
  std::fputs("main continues\n", stdout);
}

TEST_CASE("Threading.Exit.NonDaemonJoinedAtExit") {
  const auto r = run_helper("Threading.Helper.NonDaemonJoinedAtExit");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("main returns\n") != std::string::npos);
  CHECK(r.out.find("A finished\n") != std::string::npos);
  CHECK(r.out.find("B finished\n") != std::string::npos);
}

TEST_CASE("Threading.Exit.DaemonAbandonedAtExit") {
  const auto r = run_helper("Threading.Helper.DaemonAbandonedAtExit");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("daemon started\n") != std::string::npos);
  CHECK(r.out.find("daemon finished") == std::string::npos);
  CHECK(r.elapsed < 25s);  // it did not wait out the daemon's 30 s sleep
}

TEST_CASE("Threading.Exit.ExceptionReportedAndProcessSurvives") {
  const auto r = run_helper("Threading.Helper.ExceptionsInThreads");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("main continues\n") != std::string::npos);
  CHECK(r.err.find("Exception in thread Thrower:\nstd::runtime_error: boom\n") != std::string::npos);
  const auto at = r.err.find("Exception in thread Thread-");
  REQUIRE(at != std::string::npos);
  const auto colon = r.err.find(":\n", at);
  REQUIRE(colon != std::string::npos);
  CHECK(number_after(r.err.substr(at + 20, colon - at - 20), "Thread-") > 0);
  CHECK(r.err.substr(colon, 6) == ":\nint\n");  // a non-std exception: its type
}
