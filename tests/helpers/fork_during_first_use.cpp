// Started afresh many times by Sync.ForkInit (issue 10, item 6): one thread makes the
// process's first calls into procpool (a lock, a queue, current_process(), the logger,
// set_log_level, an exit handler) while the main thread forks. The child then makes the same
// calls; it must finish. Arguments:
//   argv[1] "raw" (default): the main thread calls ::fork() itself; "process": it starts a
//           procpool::Process (fork), whose child goes through become_child() (process
//           registry, identity, process name, logger rebuild) and run_child_body();
//   argv[2] "sync-first": the racing thread calls the lock and queue first; anything else
//           (default): current_process() and the logger first.
// Exit status: 0 fine, 2 child hung, 1 other.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <procpool/atexit.hpp>
#include <procpool/log.hpp>
#include <procpool/process.hpp>
#include <procpool/queue.hpp>
#include <procpool/sync.hpp>

namespace {

// Every path with process-wide state a child may reach: sync.cpp and ring.cpp (id caches),
// process.cpp (identity), log.cpp (logger state, process name, call_once), atexit.cpp.
// `sync_first`: which calls come first (the race is with whatever the thread does first).
void first_calls(procpool::Lock& lock, procpool::Queue<int>& queue, int item, bool sync_first) {
  if (sync_first) {
    lock.acquire();
    lock.release();
    queue.put(item);
  }
  const procpool::ProcessInfo me = procpool::current_process();
  procpool::set_log_level(spdlog::level::off);  // the default already; quiet either way
  procpool::logger().info("first use in {} ({})", me.name, me.pid);
  if (!sync_first) {
    lock.acquire();
    lock.release();
    queue.put(item);
  }
}

int run_raw(procpool::Lock& lock, procpool::Queue<int>& queue, std::atomic<bool>& go) {
  go.store(true, std::memory_order_release);
  const pid_t pid = ::fork();
  if (pid == 0) {
    first_calls(lock, queue, 2, true);
    (void)queue.get();
    procpool::atexit_register([] {});
    ::_exit(0);
  }
  if (pid < 0) return 1;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return 1;
  pollfd p{pidfd, POLLIN, 0};
  const bool ended = ::poll(&p, 1, 20'000) > 0;  // generous: the machine may be loaded
  if (!ended) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!ended) return 2;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int run_process(procpool::Lock& lock, procpool::Queue<int>& queue, std::atomic<bool>& go) {
  procpool::Process child(procpool::ProcessOptions{.start_method = procpool::StartMethod::Fork}, [&] {
    first_calls(lock, queue, 2, true);
    (void)queue.get();
    procpool::atexit_register([] {});
  });
  go.store(true, std::memory_order_release);
  child.start();
  if (!child.join(std::chrono::seconds(20))) {  // generous: the machine may be loaded
    child.kill();
    child.join();
    return 2;
  }
  return child.exitcode() == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  const bool process_mode = argc > 1 && std::strcmp(argv[1], "process") == 0;
  const bool sync_first = argc > 2 && std::strcmp(argv[2], "sync-first") == 0;
  procpool::Lock lock;  // construction touches neither the id caches nor their atfork hook
  procpool::Queue<int> queue(0, procpool::QueueOptions{4096});
  std::atomic<bool> go{false};
  std::thread first_use([&] {
    while (!go.load(std::memory_order_acquire)) {
    }
    first_calls(lock, queue, 1, sync_first);
    procpool::atexit_register([] {});
  });
  const int rc = process_mode ? run_process(lock, queue, go) : run_raw(lock, queue, go);
  first_use.join();
  return rc;
}
