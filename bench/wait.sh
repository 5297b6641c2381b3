#!/usr/bin/env bash
# The one wait policy's constants (lib/procpool/detail/os/wait.hpp) against this machine: cost
# of a spin step, wake-up latency of a futex sleeper versus a spinner. Prints a markdown table.
set -euo pipefail
build_dir=${1:-build-bench}
out=$("$build_dir/bench/bench-wait" "${PROCPOOL_BENCH_WAIT_ROUNDS:-2000}")
get() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' <<<"$out"; }
echo "### Wait policy: spin step and wake-up latency (threads)"
echo
echo "| measure | value |"
echo "|---|---:|"
echo "| one pause | $(get pause) ns |"
echo "| one spin step (pause, sched_yield every 64) | $(get spin_step) ns |"
echo "| futex sleeper woken: p50 / p90 | $(get futex_wake_p50) / $(get futex_wake_p90) ns |"
echo "| spinner sees the store: p50 / p90 | $(get spin_wake_p50) / $(get spin_wake_p90) ns |"
echo "| spin steps in one futex wake-up (p50) | $(get steps_per_futex_wake) |"
echo "| policy: kSpinStart = $(get policy_spin_start) steps | $(get policy_spin_start_time) µs |"
echo "| policy: kSpinMax | $(get policy_spin_max_time) µs |"
echo
