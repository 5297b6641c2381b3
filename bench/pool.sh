#!/usr/bin/env bash
# Pool: procpool (bench-pool) vs CPython multiprocessing.Pool (bench/pool.py), 2 workers, fork,
# next to the practical limits (bench-limits: two-process ping-pong, memcpy). BENCH_RUNS runs of
# each, interleaved, every one a fresh process. Prints the area's markdown table (bench/lib.sh).
set -euo pipefail
build_dir=${1:-build-bench}
here=$(dirname "$0")
source "$here/lib.sh"
bench_init pool
for _ in $(seq "$bench_runs"); do
  bench_run ours "$build_dir/bench/bench-pool"
  bench_run cpython python3 "$here/pool.py"
  bench_run limits "$build_dir/bench/bench-limits"
done

f="\`map\`, 1M tiny tasks (median of 5 calls per run)"
bench_row "$f" procpool ours ours:map_tasks_per_s tasks/s
bench_row "$f" CPython peer cpython:map_tasks_per_s tasks/s ratio=20
f="\`map\`, 1M tiny tasks, first call on a fresh pool"
bench_row "$f" procpool ours ours:map_first_call_tasks_per_s tasks/s
bench_row "$f" CPython peer cpython:map_first_call_tasks_per_s tasks/s ratio=20
f="\`map\`'s argument bytes per second (4-byte ints)"
bench_row "$f" procpool ours ours:map_bytes_per_s B/s
bench_row "$f" "memcpy, one thread, 4 MB" limit limits:memcpy_bytes_per_s B/s
f="\`imap_unordered\`, chunksize 1 (median of 5 calls per run)"
bench_row "$f" procpool ours ours:imap_unordered_tasks_per_s tasks/s
bench_row "$f" CPython peer cpython:imap_unordered_tasks_per_s tasks/s ratio=30
f="\`apply_async().get()\` round trip, p50"
bench_row "$f" procpool ours ours:apply_async_rtt_p50 µs lower max=10
bench_row "$f" CPython peer cpython:apply_async_rtt_p50 µs lower
bench_row "$f" "2-process ping-pong, spin" limit limits:spin_rtt_p50 µs lower
bench_row "$f" "2-process ping-pong, futex" limit limits:futex_rtt_p50 µs lower
f="\`apply_async().get()\` round trip, p99"
bench_row "$f" procpool ours ours:apply_async_rtt_p99 µs lower
bench_row "$f" CPython peer cpython:apply_async_rtt_p99 µs lower
bench_row "$f" "2-process ping-pong, spin" limit limits:spin_rtt_p99 µs lower
bench_row "$f" "2-process ping-pong, futex" limit limits:futex_rtt_p99 µs lower
f="\`Pool(2)\` start + stop (p50 of 50 / 20 per run)"
bench_row "$f" procpool ours ours:pool2_start_stop_fork ms lower max=1
bench_row "$f" CPython peer cpython:pool2_start_stop_fork ms lower
f="CPU-bound, 2 workers vs serial"
bench_row "$f" procpool ours ours:cpu_speedup_process × min=1.9
bench_row "$f" "procpool, thread backend" variant ours:cpu_speedup_thread ×
bench_row "$f" CPython peer cpython:cpu_speedup_process ×
f="per-worker memory"
bench_row "$f" "procpool, RSS" ours ours:worker_rss MiB lower
bench_row "$f" "procpool, private" variant ours:worker_private MiB lower max=4 "target=private ≤ 4 MiB"
bench_table "Pool (2 workers, fork)" \
  "Limits are measured in the same runs by \`bench-limits\` (bench/limits.cpp): two processes hand a word on one shared cache line back and forth, spinning or sleeping on a futex; memcpy copies a warm 4 MB buffer on one thread. A limit row's \"procpool is\" is procpool's speed as a fraction of the limit's."
