// The kernel's peers of procpool's Pipe: a Unix socketpair (SOCK_STREAM, what CPython's duplex
// Pipe uses) and a pipe(2), process -> process (fork), 64-byte messages, one write(2) per message
// and one read of exactly 64 bytes per message, both descriptors blocking, default buffer sizes.
// Usage: kernel_pipe_bench socketpair|pipe N -> "msgs_per_s<TAB>value<TAB>msgs/s"
// The first message starts the clock on the receiving side, as in bench/queue_bench.cpp.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/fd.hpp"
#include "pin.hpp"

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::size_t kMsg = 64;

int throughput(int rx, int tx, long n) {
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("fork");
    return 1;
  }
  if (child == 0) {
    bench::pin_producer();
    ::close(rx);
    char buf[kMsg] = {};
    for (long i = 0; i <= n; ++i) {
      std::memcpy(buf, &i, sizeof i);
      if (procpool::os::write_all(tx, buf, kMsg) != 0) ::_exit(1);
    }
    ::_exit(0);
  }
  ::close(tx);
  bench::pin_consumer();
  char buf[kMsg];
  long bad = 0;
  if (!procpool::os::read_exact(rx, buf, kMsg)) return 1;
  const auto t0 = Clock::now();
  for (long i = 1; i <= n; ++i) {
    if (!procpool::os::read_exact(rx, buf, kMsg)) return 1;
    long v = 0;
    std::memcpy(&v, buf, sizeof v);
    bad += v != i;
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::waitpid(child, nullptr, 0);
  if (bad != 0) {
    std::fprintf(stderr, "%ld messages out of order\n", bad);
    return 1;
  }
  std::printf("msgs_per_s\t%.0f\tmsgs/s\n", static_cast<double>(n) / s);
  return 0;
}
} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s socketpair|pipe N\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const long n = std::atol(argv[2]);
  int fds[2];
  if (mode == "socketpair") {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      std::perror("socketpair");
      return 1;
    }
  } else if (mode == "pipe") {
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      std::perror("pipe2");
      return 1;
    }
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  return throughput(fds[0], fds[1], n);
}
