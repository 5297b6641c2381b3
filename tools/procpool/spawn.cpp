#include "spawn.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include "os/fd.hpp"
#include "os/spawn.hpp"

namespace procpool::cli {
namespace {

// In the child, before exec: what os::spawn does not know about.
void job_child_steps(void* arg) noexcept {
  const auto& r = *static_cast<const SpawnRequest*>(arg);
  // Before exec, so that a procpool killed meanwhile (even by SIGKILL) leaves the watchdog the group.
  if (r.group_slot != nullptr) r.group_slot->store(::getpid(), std::memory_order_release);
  // A program using select() breaks on descriptors above 1023: jobs get the limit procpool was given.
  if (r.nofile != nullptr) ::setrlimit(RLIMIT_NOFILE, r.nofile);
  if (r.nice != nullptr) ::setpriority(PRIO_PROCESS, 0, *r.nice);  // GNU parallel's --nice: the job only
}

} // namespace

int run_shell_command(const std::string& command, const std::vector<std::string>& extra_env, bool null_stdin) {
  std::string line = command;
  char sh[] = "sh";
  char dash_c[] = "-c";
  char* argv[] = {sh, dash_c, line.data(), nullptr};
  std::vector<std::string> env_strings(extra_env);
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto same_name = [&](const std::string& extra) {
      return extra.compare(0, extra.find('=') + 1, entry.substr(0, entry.find('=') + 1)) == 0;
    };
    if (std::none_of(extra_env.begin(), extra_env.end(), same_name)) env_strings.emplace_back(entry);
  }
  std::vector<char*> envp;
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  os::UniqueFd dev_null;
  os::FdMap stdin_map[1];
  os::SpawnRequest request;
  request.path = "/bin/sh";
  request.argv = argv;
  request.envp = envp.data();
  request.signal_mask = &none;
  request.setup.default_signals = os::signal_bit(SIGPIPE);
  if (null_stdin) {
    dev_null.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (dev_null.get() < 0) throw std::system_error(errno, std::generic_category(), "open /dev/null");
    stdin_map[0] = {dev_null.get(), STDIN_FILENO};
    request.fds = stdin_map;
  }
  const os::Spawned child = os::spawn(request);
  int status = 0;
  while (::waitpid(child.pid, &status, 0) < 0)
    if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "waitpid");
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

pid_t spawn_job(const SpawnRequest& request) {
  char sh[] = "/bin/sh";
  const os::FdMap fds[] = {
      {request.stdin_fd, STDIN_FILENO}, {request.stdout_fd, STDOUT_FILENO}, {request.stderr_fd, STDERR_FILENO}};
  sigset_t none;
  sigemptyset(&none);
  os::SpawnRequest spawn;
  // Not found, not executable, or a script without #!: /bin/sh does exactly what it would have done.
  spawn.path = request.path != nullptr ? request.path : sh;
  spawn.argv = request.path != nullptr ? request.argv : request.shell_argv;
  spawn.fallback_path = request.path != nullptr ? sh : nullptr;
  spawn.fallback_argv = request.shell_argv;
  spawn.envp = request.envp;
  spawn.fds = fds;
  spawn.setup.parent = request.parent;
  spawn.setup.new_process_group = request.new_group;
  // procpool ignores SIGPIPE and blocks the signals it reads through signalfd: undo both for the
  // job. It installs no handler, so none needs resetting before the mask is cleared.
  spawn.setup.default_signals = os::signal_bit(SIGPIPE);
  spawn.signal_mask = &none;
  spawn.in_child = job_child_steps;
  spawn.in_child_arg = const_cast<SpawnRequest*>(&request);
  const os::Spawned child = os::spawn(spawn);
  if (child.exec_error != 0) {
    // The child has exited with 127; its stderr tells why, as /bin/sh's own message would.
    const std::string message = std::string("procpool: cannot execute /bin/sh: ") + std::strerror(child.exec_error) + "\n";
    (void)os::write_all(request.stderr_fd, message);
  }
  return child.pid;
}

Watchdog::Watchdog(unsigned slots, std::function<void()> after_kills) : slots_(slots) {
  void* mem = ::mmap(nullptr, sizeof(std::atomic<pid_t>) * slots, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
  table_ = static_cast<std::atomic<pid_t>*>(mem);  // zero-filled: every slot free
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  pid_ = ::fork();
  if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid_ == 0) {
    // The watchdog: outlives a Ctrl-C aimed at the terminal's process group, wakes when procpool's
    // write end closes, then kills what is left.
    ::prctl(PR_SET_NAME, "procpool-watch");
    for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGTSTP}) ::signal(sig, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int keep = fds[0];
    os::close_descriptors_except(keep);  // hold nothing of procpool's open (pipes, joblog)
    char byte;
    while (::read(keep, &byte, 1) < 0 && errno == EINTR) {}  // returns 0 once procpool is gone
    for (unsigned i = 0; i < slots; ++i) {
      const pid_t group = table_[i].load(std::memory_order_acquire);
      if (group > 0) ::kill(-group, SIGKILL);
    }
    if (after_kills) after_kills();
    ::_exit(0);
  }
  ::close(fds[0]);
  pipe_write_ = fds[1];
}

Watchdog::~Watchdog() {
  // All jobs are reaped by now (their slots are free): closing the pipe lets the watchdog exit.
  if (pipe_write_ >= 0) ::close(pipe_write_);
  if (table_ != nullptr) ::munmap(table_, sizeof(std::atomic<pid_t>) * slots_);
}

} // namespace procpool::cli
