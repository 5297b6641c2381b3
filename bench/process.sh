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
  bench_run limits "$build_dir/bench/bench-limits" 20000 4000000 "$starts"
done
for method in fork forkserver spawn; do
  for p in p50 p90; do
    f="$method: start + join, $p"
    bench_row "$f" procpool ours "ours:${method}_$p" µs lower
    bench_row "$f" CPython peer "cpython:${method}_$p" µs lower
    if [ "$method" = spawn ]; then
      bench_row "$f" "vfork + exec /bin/true + waitpid" limit "limits:vfork_exec_$p" µs lower
    else
      bench_row "$f" "fork + _exit + waitpid" limit "limits:fork_exit_$p" µs lower
    fi
  done
done
bench_table "Process start + join ($starts starts per method and run; spawn: $((starts / 4)))" \
  "Limits (bench-limits, $starts starts per run): a bare \`fork\` whose child calls \`_exit(0)\`, waited for with \`waitpid\`, the least a forked or forkserver child costs; a bare \`vfork\` + \`execve(\"/bin/true\")\`, the least a new program image costs (spawn's image is procpool's own program, larger than /bin/true, and runs \`init()\` before the function)."

