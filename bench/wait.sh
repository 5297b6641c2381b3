#!/usr/bin/env bash
# The one wait policy's constants (lib/procpool/detail/os/wait.hpp) against this machine (bench-wait):
# cost of a spin step, wake-up latency of a futex sleeper versus a spinner. BENCH_RUNS fresh
# processes. Prints the area's markdown table (bench/lib.sh).
set -euo pipefail
build_dir=${1:-build-bench}
source "$(dirname "$0")/lib.sh"
bench_init wait
for _ in $(seq "$bench_runs"); do
  bench_run wait "$build_dir/bench/bench-wait" "${PROCPOOL_BENCH_WAIT_ROUNDS:-2000}"
done
bench_row "one pause" "cpu_relax()" ours wait:pause ns lower
bench_row "one spin step (pause, sched_yield every 64)" "spin_step()" ours wait:spin_step ns lower
bench_row "wake-up latency, p50" "spinner sees the store" ours wait:spin_wake_p50 ns lower
bench_row "wake-up latency, p50" "futex sleeper woken" variant wait:futex_wake_p50 ns lower
bench_row "wake-up latency, p90" "spinner sees the store" ours wait:spin_wake_p90 ns lower
bench_row "wake-up latency, p90" "futex sleeper woken" variant wait:futex_wake_p90 ns lower
bench_row "spin steps in one futex wake-up (p50)" "steps" ours wait:steps_per_futex_wake steps
bench_row "policy: kSpinStart steps" "time" ours wait:policy_spin_start_time µs
bench_row "policy: kSpinMax steps" "time" ours wait:policy_spin_max_time µs
bench_table "Wait policy: spin step and wake-up latency (threads)" \
  "No peers: these are the measurements behind the policy's constants (docs/ARCHITECTURE.md, the wait policy)."
