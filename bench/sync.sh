#!/usr/bin/env bash
# Value += 1 under its lock from 2 processes, and uncontended lock acquire + release: procpool
# (bench-sync) vs CPython (bench/sync_bench.py). BENCH_RUNS runs of each, interleaved, every one a
# fresh process measuring once. Prints the area's markdown table (bench/lib.sh).
set -euo pipefail
build_dir=${1:-build-bench}
here=$(dirname "$0")
source "$here/lib.sh"
ops=${PROCPOOL_BENCH_SYNC_OPS:-2000000}
py_ops=${PROCPOOL_BENCH_SYNC_PY_OPS:-200000}
bench_init sync
for _ in $(seq "$bench_runs"); do
  bench_run ours "$build_dir/bench/bench-sync" "$ops" 1
  bench_run cpython python3 "$here/sync_bench.py" "$py_ops" 1
done
f="\`Value\` += 1 under its lock, 2 processes"
bench_row "$f" "procpool, as Python: lock, then \`set(value() + 1)\`" ours ours:value_pystyle ops/s
bench_row "$f" "procpool, C++ idiom: lock, \`++get_obj()\`" variant ours:value_direct ops/s
bench_row "$f" "CPython, \`with v.get_lock(): v.value += 1\`" peer cpython:value_pystyle ops/s
f="uncontended acquire + release, process lock"
bench_row "$f" "procpool \`Lock\`" ours ours:lock_process ns lower
bench_row "$f" "CPython \`multiprocessing.Lock\`" peer cpython:lock_process ns lower
f="uncontended acquire + release, thread lock"
bench_row "$f" "procpool \`dummy::Lock\`" ours ours:lock_thread ns lower
bench_row "$f" "CPython \`threading.Lock\`" peer cpython:lock_thread ns lower
bench_row "$f" "\`std::mutex\`" limit ours:std_mutex ns lower
f="uncontended acquire + release, recursive lock"
bench_row "$f" "procpool \`RLock\`" ours ours:rlock_process ns lower
bench_row "$f" "CPython \`multiprocessing.RLock\`" peer cpython:rlock_process ns lower
bench_table "Value and locks (2 processes; uncontended: one thread)" \
  "Value: $ops increments per procpool process, $py_ops per CPython process. Locks: thread CPU time per acquire + release (not wall time: on a busy 2-core machine the wall clock mostly measures the scheduler), with a second, idle thread in the C++ process (glibc's \`std::mutex\` takes a non-atomic shortcut in a single-threaded process)."
