// Started afresh many times by Sync.ForkInit (issue 10, item 6): one thread makes the
// process's first lock call and first queue operation while the main thread forks. The child
// then makes its own first calls; it must finish. Exit status: 0 fine, 2 child hung, 1 other.
#include <atomic>
#include <csignal>
#include <thread>

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <procpool/queue.hpp>
#include <procpool/sync.hpp>

int main() {
  procpool::Lock lock;  // construction touches neither the id caches nor their atfork hook
  procpool::Queue<int> queue(0, procpool::QueueOptions{4096});
  std::atomic<bool> go{false};
  std::thread first_use([&] {
    while (!go.load(std::memory_order_acquire)) {
    }
    lock.acquire();
    lock.release();
    queue.put(1);
  });
  go.store(true, std::memory_order_release);
  const pid_t pid = ::fork();
  if (pid == 0) {
    lock.acquire();
    lock.release();
    queue.put(2);
    (void)queue.get();
    ::_exit(0);
  }
  first_use.join();
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
