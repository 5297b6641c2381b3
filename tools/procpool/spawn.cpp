#include "spawn.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace procpool::cli {
namespace {

// CLONE_VFORK suspends the parent until the child execs or exits, so one stack serves every spawn.
alignas(64) char child_stack[64 * 1024];

void write_message(const char* a, const char* b) {
  (void)!::write(STDERR_FILENO, a, std::strlen(a));
  (void)!::write(STDERR_FILENO, b, std::strlen(b));
  (void)!::write(STDERR_FILENO, "\n", 1);
}

int child_main(void* arg) {
  const auto& r = *static_cast<const SpawnRequest*>(arg);
  if (r.new_group) ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != r.parent) ::_exit(128 + SIGKILL);  // procpool died before prctl took effect
  if (r.group_slot != nullptr) r.group_slot->store(::getpid(), std::memory_order_release);
  // A program using select() breaks on descriptors above 1023: jobs get the limit procpool was given.
  if (r.nofile != nullptr) ::setrlimit(RLIMIT_NOFILE, r.nofile);
  // procpool ignores SIGPIPE and blocks the signals it reads through signalfd: undo both for the job.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (r.stdin_fd != STDIN_FILENO) ::dup2(r.stdin_fd, STDIN_FILENO);
  if (r.stdout_fd != STDOUT_FILENO) ::dup2(r.stdout_fd, STDOUT_FILENO);
  if (r.stderr_fd != STDERR_FILENO) ::dup2(r.stderr_fd, STDERR_FILENO);
  if (r.path != nullptr) ::execve(r.path, r.argv, r.envp);
  // Not found, not executable, or a script without #!: /bin/sh does exactly what it would have done.
  ::execve("/bin/sh", r.shell_argv, r.envp);
  write_message("procpool: cannot execute /bin/sh: ", std::strerror(errno));
  ::_exit(127);
}

} // namespace

pid_t spawn_job(const SpawnRequest& request) {
  const int pid = ::clone(child_main, child_stack + sizeof child_stack, CLONE_VM | CLONE_VFORK | SIGCHLD,
                          const_cast<SpawnRequest*>(&request));
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "clone");
  return pid;
}

Watchdog::Watchdog(unsigned slots) : slots_(slots) {
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
    if (DIR* dir = ::opendir("/proc/self/fd")) {  // hold nothing of procpool's open (pipes, joblog)
      const int dir_fd = ::dirfd(dir);
      while (const dirent* e = ::readdir(dir)) {
        const int fd = std::atoi(e->d_name);
        if (fd > STDERR_FILENO && fd != keep && fd != dir_fd) ::close(fd);
      }
      ::closedir(dir);
    }
    char byte;
    while (::read(keep, &byte, 1) < 0 && errno == EINTR) {}  // returns 0 once procpool is gone
    for (unsigned i = 0; i < slots; ++i) {
      const pid_t group = table_[i].load(std::memory_order_acquire);
      if (group > 0) ::kill(-group, SIGKILL);
    }
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
