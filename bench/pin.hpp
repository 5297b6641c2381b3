#pragma once
// Optional pinning for the two-process queue benchmarks (bench/queue.sh): on a 2-core machine the
// producer and the consumer share a core in some runs and not in others, and the two placements
// give two modes. PROCPOOL_BENCH_PRODUCER_CPU / PROCPOOL_BENCH_CONSUMER_CPU, if set, pin that side
// to that CPU, to measure one placement on purpose.
#include <cstdio>
#include <cstdlib>

#include <sched.h>

namespace bench {
inline void pin_from_env(const char* name) {
  const char* cpu = std::getenv(name);
  if (cpu == nullptr || *cpu == '\0') return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(std::atoi(cpu), &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) std::perror("sched_setaffinity");
}
inline void pin_producer() { pin_from_env("PROCPOOL_BENCH_PRODUCER_CPU"); }
inline void pin_consumer() { pin_from_env("PROCPOOL_BENCH_CONSUMER_CPU"); }
} // namespace bench
