// The os layer's process pieces (lib/os/): descriptors and whole reads and writes, the child's
// first steps, starting a program image, demangling, /proc facts.
#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/child_setup.hpp"
#include "os/demangle.hpp"
#include "os/fd.hpp"
#include "os/proc.hpp"
#include "os/spawn.hpp"

namespace os = procpool::os;

namespace {

/// A pipe whose ends close themselves.
struct Pipe {
  os::UniqueFd read, write;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

/// The raw wait status of `pid`, reaped.
int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return status;
}

/// Exit code, or -N after signal N.
int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status); }

char sh[] = "/bin/sh";
char dash_c[] = "-c";

/// Runs `/bin/sh -c script` with `request` and returns its exit code.
int run_sh(const char* script, os::SpawnRequest request = {}) {
  std::string text = script;
  char* argv[] = {sh, dash_c, text.data(), nullptr};
  request.path = sh;
  request.argv = argv;
  const os::Spawned child = os::spawn(request);
  REQUIRE(child.pid > 0);
  CHECK(child.exec_error == 0);
  return exit_code(wait_status(child.pid));
}

/// Makes `fd` refer to /dev/null, with or without FD_CLOEXEC.
void open_null_at(int fd, bool cloexec) {
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(null_fd >= 0);
  REQUIRE(::dup3(null_fd, fd, cloexec ? O_CLOEXEC : 0) == fd);
  ::close(null_fd);
}

constexpr int kProbeFd = 57;  // a descriptor number nothing else uses in a test

} // namespace

// ---------------------------------------------------------------------------------------------
// fd.hpp

TEST_CASE("Core.Os.UniqueFd.ClosesMovesAndReleases") {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(raw >= 0);
  {
    os::UniqueFd a(raw);
    os::UniqueFd b(std::move(a));
    CHECK_FALSE(a);
    CHECK(b.get() == raw);
    os::UniqueFd c;
    c = std::move(b);
    CHECK(c.get() == raw);
    CHECK(::fcntl(raw, F_GETFD) >= 0);
  }
  CHECK(::fcntl(raw, F_GETFD) == -1);  // closed with its last owner
  CHECK(errno == EBADF);

  raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  {
    os::UniqueFd d(raw);
    CHECK(d.release() == raw);
  }
  CHECK(::fcntl(raw, F_GETFD) >= 0);  // released: still open
  ::close(raw);
}

TEST_CASE("Core.Os.WriteAll.DeliversEverythingThroughAFullNonBlockingPipe") {
  Pipe p;
  REQUIRE(os::set_nonblocking(p.write.get()) == 0);
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  std::string got;
  std::thread reader([&] {
    char buf[4096];  // small, slow reads: the writer meets short writes and EAGAIN
    for (;;) {
      const ssize_t n = ::read(p.read.get(), buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  });
  CHECK(os::write_all(p.write.get(), data) == 0);
  p.write.reset();
  reader.join();
  CHECK(got.size() == data.size());
  CHECK(got == data);
}

TEST_CASE("Core.Os.WriteAll.StopsWhenFullOrWhenTheReaderIsGone") {
  Pipe p;
  REQUIRE(os::set_nonblocking(p.write.get()) == 0);
  const std::string data(1 << 20, 'x');  // more than a pipe holds
  CHECK(os::write_all(p.write.get(), data, os::WhenFull::Stop) == EAGAIN);

  Pipe q;
  q.read.reset();
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  CHECK(os::write_all(q.write.get(), "x") == EPIPE);
  ::sigaction(SIGPIPE, &old, nullptr);
}

TEST_CASE("Core.Os.ReadExact.ReportsEndOfFileApartFromErrors") {
  Pipe p;
  REQUIRE(os::write_all(p.write.get(), "abcdef") == 0);
  char buf[4] = {};
  CHECK(os::read_exact(p.read.get(), buf, 4));
  CHECK(std::string(buf, 4) == "abcd");
  p.write.reset();
  CHECK_FALSE(os::read_exact(p.read.get(), buf, 4));  // only "ef" left, then EOF
  CHECK(errno == 0);
  CHECK_FALSE(os::read_exact(-1, buf, 1));
  CHECK(errno == EBADF);
}

TEST_CASE("Core.Os.ReadFile.SmallFilesAndWholeDescriptors") {
  const auto status = os::read_file("/proc/self/status");
  REQUIRE(status.has_value());
  CHECK(status->find("Pid:\t" + std::to_string(::getpid()) + "\n") != std::string::npos);
  CHECK_FALSE(os::read_file("/proc/self/no-such-file").has_value());

  os::UniqueFd memfd(::memfd_create("os-test", MFD_CLOEXEC));
  REQUIRE(memfd);
  const std::string text(100000, 'q');
  REQUIRE(os::pwrite_all(memfd.get(), text, 0) == 0);
  REQUIRE(os::pwrite_all(memfd.get(), "end", text.size()) == 0);
  CHECK(os::read_all_from_start(memfd.get()) == text + "end");
  CHECK(::lseek(memfd.get(), 0, SEEK_CUR) == 0);  // pwrite/pread: the offset never moved
}

TEST_CASE("Core.Os.Flags.CloexecAndNonBlocking") {
  Pipe p;
  CHECK((::fcntl(p.read.get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(os::set_cloexec(p.read.get(), false) == 0);
  CHECK((::fcntl(p.read.get(), F_GETFD) & FD_CLOEXEC) == 0);
  CHECK(os::set_cloexec(p.read.get(), true) == 0);
  CHECK((::fcntl(p.read.get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(os::set_nonblocking(p.read.get()) == 0);
  CHECK((::fcntl(p.read.get(), F_GETFL) & O_NONBLOCK) != 0);
  CHECK(os::set_cloexec(-1, true) == EBADF);
}

TEST_CASE("Core.Os.CloseDescriptorsExcept.LeavesOnlyStdioAndTheKeptOne") {
  Pipe a, b, c;
  const int keep = b.read.get();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Exit code: 0 when only 0-2 and `keep` are left open, else the first descriptor still open.
    os::close_descriptors_except(keep);
    if (::fcntl(keep, F_GETFD) < 0) ::_exit(100);
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != keep && ::fcntl(fd, F_GETFD) >= 0) ::_exit(fd < 100 ? fd : 99);
    os::close_descriptors_except(-1);
    ::_exit(::fcntl(keep, F_GETFD) < 0 ? 0 : 101);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(::fcntl(a.write.get(), F_GETFD) >= 0);  // the parent's own are untouched
}

TEST_CASE("Core.Os.SendWithFd.PassesBytesAndADescriptor") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  os::UniqueFd a(sv[0]), b(sv[1]);
  Pipe p;
  const std::uint64_t sent_value = 0x1122334455667788ULL;
  REQUIRE(os::send_with_fd(a.get(), &sent_value, sizeof sent_value, p.write.get()) == 0);
  std::uint64_t got_value = 0;
  os::UniqueFd received(os::recv_with_fd(b.get(), &got_value, sizeof got_value));
  REQUIRE(received.get() >= 0);
  CHECK(got_value == sent_value);
  CHECK(received.get() != p.write.get());                              // a new descriptor...
  CHECK((::fcntl(received.get(), F_GETFD) & FD_CLOEXEC) != 0);        // ...close-on-exec
  REQUIRE(os::write_all(received.get(), std::string_view("via")) == 0);  // ...for the same pipe
  char buf[3];
  REQUIRE(os::read_exact(p.read.get(), buf, sizeof buf));
  CHECK(std::string(buf, 3) == "via");

  // Bytes without a descriptor are a protocol error; a closed peer is end of stream.
  REQUIRE(::write(a.get(), &sent_value, sizeof sent_value) == static_cast<ssize_t>(sizeof sent_value));
  errno = 0;
  CHECK(os::recv_with_fd(b.get(), &got_value, sizeof got_value) == -1);
  CHECK(errno == EPROTO);
  a.reset();
  errno = EINVAL;
  CHECK(os::recv_with_fd(b.get(), &got_value, sizeof got_value) == -1);
  CHECK(errno == 0);
  CHECK(os::send_with_fd(b.get(), &sent_value, sizeof sent_value, p.write.get()) == EPIPE);
}

// ---------------------------------------------------------------------------------------------
// demangle.hpp

TEST_CASE("Core.Os.Demangle.TypeNames") {
  CHECK(os::demangle(typeid(std::vector<int>).name()).rfind("std::vector<int", 0) == 0);
  CHECK(os::demangle(typeid(std::runtime_error).name()) == "std::runtime_error");
  CHECK(os::demangle("not a mangled name") == "not a mangled name");
}

// ---------------------------------------------------------------------------------------------
// child_setup.hpp

TEST_CASE("Core.Os.ChildSetup.TiesTheChildToItsParentAndResetsSignals") {
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  os::ChildSetup setup;
  setup.parent = ::getpid();
  setup.new_process_group = true;
  setup.default_signals = os::signal_bit(SIGPIPE);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setup.apply();
    int deathsig = 0;
    ::prctl(PR_GET_PDEATHSIG, &deathsig);
    struct sigaction now {};
    ::sigaction(SIGPIPE, nullptr, &now);
    int failed = 0;
    if (deathsig != SIGKILL) failed |= 1;
    if (::getpgrp() != ::getpid()) failed |= 2;
    if (now.sa_handler != SIG_DFL) failed |= 4;
    ::_exit(failed);
  }
  ::sigaction(SIGPIPE, &old, nullptr);
  CHECK(exit_code(wait_status(pid)) == 0);  // bits: 1 pdeathsig, 2 process group, 4 SIGPIPE
}

TEST_CASE("Core.Os.ChildSetup.ExitsWhenTheParentIsNotTheExpectedOne") {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    os::ChildSetup{.parent = ::getppid() + 1}.apply();  // "the parent died and we were adopted"
    ::_exit(0);
  }
  CHECK(exit_code(wait_status(pid)) == os::kParentGoneExitCode);
}

// ---------------------------------------------------------------------------------------------
// spawn.hpp

TEST_CASE("Core.Os.Spawn.RunsTheProgramWithItsArgumentsAndEnvironment") {
  CHECK(run_sh("exit 3") == 3);
  char foo[] = "FOO=bar";
  char* envp[] = {foo, nullptr};
  os::SpawnRequest request;
  request.envp = envp;
  CHECK(run_sh("test \"$FOO\" = bar && test -z \"$HOME\"", request) == 0);
  request = {};
  request.working_dir = "/";
  CHECK(run_sh("test \"$(pwd)\" = /", request) == 0);
}

TEST_CASE("Core.Os.Spawn.MapsAndClosesDescriptors") {
  Pipe out;
  const os::FdMap to_stdout[] = {{out.write.get(), STDOUT_FILENO}};
  os::SpawnRequest request;
  request.fds = to_stdout;
  CHECK(run_sh("echo hello", request) == 0);
  out.write.reset();
  char buf[16] = {};
  CHECK(::read(out.read.get(), buf, sizeof buf) == 6);
  CHECK(std::string(buf) == "hello\n");

  open_null_at(kProbeFd, /*cloexec=*/false);
  const std::string probe = "test -e /proc/self/fd/" + std::to_string(kProbeFd);
  CHECK(run_sh(probe.c_str()) == 0);  // inherited: it is not close-on-exec
  request = {};
  request.close_from = 3;
  CHECK(run_sh(probe.c_str(), request) == 1);  // closed by close_from

  open_null_at(kProbeFd, /*cloexec=*/true);
  CHECK(run_sh(probe.c_str()) == 1);  // close-on-exec: gone
  const os::FdMap keep[] = {{kProbeFd, kProbeFd}};
  request = {};
  request.fds = keep;
  CHECK(run_sh(probe.c_str(), request) == 0);  // from == to: passed on, the flag cleared in the child only
  CHECK((::fcntl(kProbeFd, F_GETFD) & FD_CLOEXEC) != 0);
  ::close(kProbeFd);
}

TEST_CASE("Core.Os.Spawn.ReportsAnExecFailureAndTriesTheFallback") {
  char missing[] = "/nonexistent/program";
  char* argv[] = {missing, nullptr};
  os::SpawnRequest request;
  request.path = missing;
  request.argv = argv;
  const os::Spawned failed = os::spawn(request);
  REQUIRE(failed.pid > 0);
  CHECK(failed.exec_error == ENOENT);
  CHECK(exit_code(wait_status(failed.pid)) == 127);

  char script[] = "exit 5";
  char* sh_argv[] = {sh, dash_c, script, nullptr};
  request.fallback_path = sh;
  request.fallback_argv = sh_argv;
  const os::Spawned fell_back = os::spawn(request);
  CHECK(fell_back.exec_error == 0);
  CHECK(exit_code(wait_status(fell_back.pid)) == 5);
}

namespace {
/// Runs grep (not through a shell: shells may reset their mask) on the program's own
/// /proc/self/status; true when `pattern` matches.
bool spawned_status_matches(const char* pattern, const sigset_t* mask) {
  char grep[] = "/bin/grep";
  char quiet[] = "-q";
  std::string pattern_text = pattern;
  char status[] = "/proc/self/status";
  char* argv[] = {grep, quiet, pattern_text.data(), status, nullptr};
  os::SpawnRequest request;
  request.path = grep;
  request.argv = argv;
  request.signal_mask = mask;
  const os::Spawned child = os::spawn(request);
  REQUIRE(child.exec_error == 0);
  return exit_code(wait_status(child.pid)) == 0;
}
} // namespace

TEST_CASE("Core.Os.Spawn.SignalMaskIsTheCallersUnlessGiven") {
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &usr1, &old);
  // SIGUSR1 is signal 10: bit 9 of SigBlk (hex), the "2" of its last three digits.
  CHECK(spawned_status_matches("^SigBlk:.*2[0-9a-f][0-9a-f]$", nullptr));
  sigset_t none;
  sigemptyset(&none);
  CHECK(spawned_status_matches("^SigBlk:[[:space:]]*0*$", &none));
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

namespace {
void record_child_pid(void* slot) noexcept {
  static_cast<std::atomic<pid_t>*>(slot)->store(::getpid(), std::memory_order_release);
}
} // namespace

TEST_CASE("Core.Os.Spawn.RunsTheHookInTheChildOnSharedMemory") {
  // A MAP_SHARED page, as the command's watchdog table: the hook's writes reach the caller through
  // it whether or not the child shares the caller's memory (it does not under TSan).
  void* page = ::mmap(nullptr, sizeof(std::atomic<pid_t>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(page != MAP_FAILED);
  auto* seen_in_child = new (page) std::atomic<pid_t>{0};
  os::SpawnRequest request;
  request.in_child = record_child_pid;
  request.in_child_arg = seen_in_child;
  char script[] = "exit 0";
  char* argv[] = {sh, dash_c, script, nullptr};
  request.path = sh;
  request.argv = argv;
  const os::Spawned child = os::spawn(request);
  CHECK(seen_in_child->load() == child.pid);  // written by the child before it exec'd
  CHECK(exit_code(wait_status(child.pid)) == 0);
  ::munmap(page, sizeof(std::atomic<pid_t>));
}

namespace {
void on_usr2(int) {}
void record_usr2_disposition(void* slot) noexcept {
  struct sigaction now {};
  ::sigaction(SIGUSR2, nullptr, &now);
  static_cast<std::atomic<int>*>(slot)->store(now.sa_handler == SIG_DFL ? 1 : 0);
}
} // namespace

TEST_CASE("Core.Os.Spawn.HandlersGoBackToDefaultInTheChildOnly") {
  struct sigaction handler {}, old {};
  handler.sa_handler = on_usr2;
  ::sigaction(SIGUSR2, &handler, &old);
  char script[] = "exit 0";
  char* argv[] = {sh, dash_c, script, nullptr};
  // The child reports through a MAP_SHARED page (under TSan it does not share our memory).
  void* page = ::mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(page != MAP_FAILED);
  auto* child_usr2_default = new (page) std::atomic<int>{-1};
  for (const bool reset : {false, true}) {
    CAPTURE(reset);
    os::SpawnRequest request;
    request.path = sh;
    request.argv = argv;
    request.setup.default_caught_signals = reset;
    request.in_child = record_usr2_disposition;  // runs after setup
    request.in_child_arg = child_usr2_default;
    const os::Spawned child = os::spawn(request);
    CHECK(exit_code(wait_status(child.pid)) == 0);
    CHECK(child_usr2_default->load() == (reset ? 1 : 0));
  }
  ::munmap(page, sizeof(std::atomic<int>));
  struct sigaction now {};
  ::sigaction(SIGUSR2, nullptr, &now);
  const bool kept = now.sa_handler == on_usr2;
  CHECK(kept);  // the parent's own handler stays
  ::sigaction(SIGUSR2, &old, nullptr);
}

TEST_CASE("Core.Os.Spawn.ManyThreadsAtOnce") {
  constexpr int kThreads = 4, kEach = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string script = "exit " + std::to_string((t * kEach + i) % 100);
        char* argv[] = {sh, dash_c, script.data(), nullptr};
        os::SpawnRequest request;
        request.path = sh;
        request.argv = argv;
        const os::Spawned child = os::spawn(request);
        if (child.exec_error == 0 && exit_code(wait_status(child.pid)) == (t * kEach + i) % 100) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok.load() == kThreads * kEach);
}

// ---------------------------------------------------------------------------------------------
// proc.hpp

TEST_CASE("Core.Os.Proc.MemoryAndKernelLimits") {
  const os::MemInfo mem = os::read_meminfo();
  REQUIRE(mem.total.has_value());
  REQUIRE(mem.available.has_value());
  CHECK(*mem.total > 0);
  CHECK(*mem.available <= *mem.total);
  const auto room = os::available_memory();
  REQUIRE(room.has_value());
  CHECK(*room > 0);
  const os::KernelLimits limits = os::read_kernel_limits();
  REQUIRE(limits.pid_max.has_value());
  CHECK(*limits.pid_max >= static_cast<std::uint64_t>(::getpid()));
  CHECK(limits.threads_max.value_or(1) > 0);
  CHECK(limits.max_map_count.value_or(1) > 0);
  const auto runnable = os::runnable_tasks();
  REQUIRE(runnable.has_value());
  CHECK(*runnable >= 1);  // this test is running
  CHECK_FALSE(os::cgroup_room("no-such-controller", "x.max", "x.current").has_value());
}

TEST_CASE("Core.Os.Proc.NumberFiles") {
  char path[] = "/tmp/procpool-os-test-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  const std::map<std::string, std::optional<std::uint64_t>> cases = {
      {"123\n", 123}, {"  42 extra\n", 42}, {"max\n", std::nullopt}, {"", std::nullopt},
      {"-1\n", std::nullopt}, {"99999999999999999999999\n", std::nullopt}};
  for (const auto& [text, expected] : cases) {
    CAPTURE(text);
    REQUIRE(::ftruncate(fd, 0) == 0);
    REQUIRE(os::pwrite_all(fd, text, 0) == 0);
    CHECK(os::read_number_file(path) == expected);
  }
  ::close(fd);
  ::unlink(path);
  CHECK_FALSE(os::read_number_file("/nonexistent/file").has_value());
}
