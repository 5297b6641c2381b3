#!/usr/bin/env bash
# Process start + join latency per start method: procpool (bench-process-start) vs CPython
# (bench/process_start.py). Each run starts PROCPOOL_BENCH_RUNS processes per method (spawn: a
# quarter) and reports their p50 and p90; BENCH_RUNS runs, interleaved, in fresh processes.
# Prints the area's markdown table (bench/lib.sh).
set -euo pipefail
build_dir=${1:-build-bench}
here=$(dirname "$0")
source "$here/lib.sh"
starts=${PROCPOOL_BENCH_RUNS:-200}
bench_init process
for _ in $(seq "$bench_runs"); do
  bench_run ours "$build_dir/bench/bench-process-start" "$starts"
  bench_run cpython python3 "$here/process_start.py" "$starts"
done
for method in fork forkserver spawn; do
  for p in p50 p90; do
    f="$method: start + join, $p"
    bench_row "$f" procpool ours "ours:${method}_$p" µs lower
    bench_row "$f" CPython peer "cpython:${method}_$p" µs lower
  done
done
bench_table "Process start + join ($starts starts per method and run; spawn: $((starts / 4)))"
