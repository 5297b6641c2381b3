// The practical limits the Pool and Queue figures are read against (bench/pool.sh, bench/queue.sh):
//   - a two-process ping-pong on one shared cache line, both sides spinning (the wait policy's step),
//     each on its own CPU: the fastest a round trip between two processes can be on this machine;
//   - the same ping-pong where each side sleeps on a futex until the other wakes it, both on one CPU:
//     the round trip of a waiter that does not spin;
//   - single-thread memcpy bandwidth over a buffer of map's size (1M ints, 4 MB by default), to read
//     map's bytes per second against;
//   - a bare process start + wait (bench/process.sh): fork + _exit(0) + waitpid, the least a forked
//     Process costs, and vfork + execve("/bin/true") + waitpid, the least a new program image costs.
// Prints "name<TAB>value<TAB>unit" lines. Usage: bench-limits [rounds] [bytes] [starts]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <procpool/detail/os/futex.hpp>
#include <procpool/detail/os/wait.hpp>

namespace {

using Clock = std::chrono::steady_clock;
namespace os = procpool::os;

double percentile(std::vector<double> xs, double p) {
  std::sort(xs.begin(), xs.end());
  return xs[static_cast<std::size_t>(p * static_cast<double>(xs.size() - 1))];
}

// One word, alone on its cache line, in a mapping both processes share after fork. The parent
// stores odd values, the child answers with the next even one.
struct alignas(64) Line {
  std::atomic<std::uint32_t> word{0};
};

enum class Wait { Spin, Futex };

void wait_for(std::atomic<std::uint32_t>& word, std::uint32_t want, Wait how) {
  if (how == Wait::Spin) {
    // os::spin_step: a pause, and a sched_yield every 64 steps, so that on a busy machine the two
    // spinners do not hold each other off a shared core for a whole time slice.
    for (std::uint32_t i = 1; word.load(std::memory_order_acquire) != want; ++i) os::spin_step(i);
    return;
  }
  for (std::uint32_t seen; (seen = word.load(std::memory_order_acquire)) != want;) os::futex::wait(word, seen, true);
}

void post(std::atomic<std::uint32_t>& word, std::uint32_t value, Wait how) {
  word.store(value, std::memory_order_release);
  if (how == Wait::Futex) os::futex::wake(word, true);
}

// The first two CPUs this process may run on, or {-1, -1} when it may use only one.
std::pair<int, int> two_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return {-1, -1};
  int found[2] = {-1, -1};
  for (int cpu = 0, n = 0; cpu < CPU_SETSIZE && n < 2; ++cpu)
    if (CPU_ISSET(cpu, &set)) found[n++] = cpu;
  return found[1] < 0 ? std::pair{-1, -1} : std::pair{found[0], found[1]};
}

void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)::sched_setaffinity(0, sizeof set, &set);
}

// Round-trip times in µs of `rounds` ping-pongs (after 1000 unmeasured ones). Where each side runs
// decides the figure, so it is fixed, to the faster placement for each: spinners on two CPUs
// (spinning needs a core each; on one core a spinner waits for its time slice), futex sleepers both
// on one CPU, where a wake-up is a direct switch (on this machine 4-5x faster than waking a sleeper
// on the other, idle, core; left to the scheduler the figure flips between the two).
std::vector<double> pingpong(Wait how, int rounds) {
  auto [parent_cpu, child_cpu] = two_cpus();
  if (how == Wait::Futex) child_cpu = parent_cpu;
  void* mem = ::mmap(nullptr, sizeof(Line), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) std::abort();
  auto* line = new (mem) Line;
  constexpr int kWarmUp = 1000;
  const auto total = static_cast<std::uint32_t>(rounds + kWarmUp);
  const pid_t child = ::fork();
  if (child < 0) std::abort();
  if (child == 0) {
    pin_to(child_cpu);
    for (std::uint32_t r = 0; r < total; ++r) {
      wait_for(line->word, 2 * r + 1, how);
      post(line->word, 2 * r + 2, how);
    }
    ::_exit(0);
  }
  cpu_set_t before;
  const bool restore = ::sched_getaffinity(0, sizeof before, &before) == 0;
  pin_to(parent_cpu);
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(rounds));
  for (std::uint32_t r = 0; r < total; ++r) {
    const auto t0 = Clock::now();
    post(line->word, 2 * r + 1, how);
    wait_for(line->word, 2 * r + 2, how);
    if (r >= kWarmUp) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  if (restore) (void)::sched_setaffinity(0, sizeof before, &before);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::munmap(mem, sizeof(Line));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::abort();
  return us;
}

// Bytes per second of one thread copying `bytes` from one warm buffer to another (median of 21).
double memcpy_bytes_per_s(std::size_t bytes) {
  std::vector<char> from(bytes, 1), to(bytes, 0);  // both written once: no page faults while timed
  std::vector<double> rates;
  for (int r = 0; r < 21; ++r) {
    from[static_cast<std::size_t>(r) % bytes] = static_cast<char>(r);
    const auto t0 = Clock::now();
    std::memcpy(to.data(), from.data(), bytes);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    asm volatile("" : : "r"(to.data()) : "memory");  // the copy is used
    rates.push_back(static_cast<double>(bytes) / s);
  }
  return percentile(rates, 0.5);
}

enum class Start { Fork, VforkExec };

// One bare child: it exits at once, or execs /bin/true. A function of its own, so that no caller's
// variable lives across the vfork.
[[gnu::noinline]] pid_t start_child(Start how) {
  static char true_path[] = "/bin/true";
  static char* const argv[] = {true_path, nullptr};
  static char* const envp[] = {nullptr};
  const pid_t child = how == Start::Fork ? ::fork() : ::vfork();
  if (child == 0) {
    if (how == Start::VforkExec) ::execve(true_path, argv, envp);
    ::_exit(how == Start::Fork ? 0 : 127);
  }
  return child;
}

// Start + wait times in µs of `runs` bare children (after 3 unmeasured ones).
std::vector<double> start_wait(Start how, int runs) {
  std::vector<double> us;
  for (int i = -3; i < runs; ++i) {
    const auto t0 = Clock::now();
    const pid_t child = start_child(how);
    if (child < 0) std::abort();
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::abort();
    if (i >= 0) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return us;
}

} // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 20'000;
  const auto bytes = static_cast<std::size_t>(argc > 2 ? std::atoll(argv[2]) : 4'000'000);
  const auto spin = pingpong(Wait::Spin, rounds);
  std::printf("spin_rtt_p50\t%.3f\tus\n", percentile(spin, 0.5));
  std::printf("spin_rtt_p99\t%.3f\tus\n", percentile(spin, 0.99));
  const auto futex = pingpong(Wait::Futex, rounds);
  std::printf("futex_rtt_p50\t%.3f\tus\n", percentile(futex, 0.5));
  std::printf("futex_rtt_p99\t%.3f\tus\n", percentile(futex, 0.99));
  std::printf("memcpy_bytes_per_s\t%.0f\tB/s\n", memcpy_bytes_per_s(bytes));
  const int starts = argc > 3 ? std::atoi(argv[3]) : 200;
  const auto forks = start_wait(Start::Fork, starts);
  std::printf("fork_exit_p50\t%.1f\tus\nfork_exit_p90\t%.1f\tus\n", percentile(forks, 0.5), percentile(forks, 0.9));
  const auto execs = start_wait(Start::VforkExec, starts);
  std::printf("vfork_exec_p50\t%.1f\tus\nvfork_exec_p90\t%.1f\tus\n", percentile(execs, 0.5), percentile(execs, 0.9));
  return 0;
}
