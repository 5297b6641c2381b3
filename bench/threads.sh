#!/usr/bin/env bash
# The thread backend (procpool::dummy::Pool) against oneTBB and std::async (bench-threads,
# bench/thread_peers.cpp), 2 threads. BENCH_RUNS fresh processes. Prints the area's markdown
# table (bench/lib.sh).
set -euo pipefail
build_dir=${1:-build-bench}
source "$(dirname "$0")/lib.sh"
program=$build_dir/bench/bench-threads
[ -x "$program" ] || { echo "threads.sh: $program is missing: it needs oneTBB (libtbb-dev; scripts/install-deps.sh), then a new meson setup" >&2; exit 1; }
bench_init threads
for _ in $(seq "$bench_runs"); do
  bench_run threads "$program"
done

f="\`map\`, 1M tiny tasks (median of 5 calls per run)"
bench_row "$f" "procpool::dummy::Pool" ours threads:thread_map_tasks_per_s tasks/s
bench_row "$f" "oneTBB parallel_for, same grain" peer threads:tbb_map_tasks_per_s tasks/s ratio=0.667 "target=within 1.5× of TBB"
f="\`map\`, 1M tiny tasks, first call on a fresh pool"
bench_row "$f" "procpool::dummy::Pool" ours threads:thread_map_first_call_tasks_per_s tasks/s
bench_row "$f" "oneTBB parallel_for, same grain" peer threads:tbb_map_first_call_tasks_per_s tasks/s
f="one task's round trip, p50"
bench_row "$f" "dummy::Pool apply_async().get()" ours threads:thread_rtt_p50 µs lower
bench_row "$f" "std::async().get()" peer threads:async_rtt_p50 µs lower ratio=1 "target=ahead of std::async"
bench_row "$f" "oneTBB task_group run + wait" peer threads:tbb_rtt_p50 µs lower
f="one task's round trip, p99"
bench_row "$f" "dummy::Pool apply_async().get()" ours threads:thread_rtt_p99 µs lower
bench_row "$f" "std::async().get()" peer threads:async_rtt_p99 µs lower
bench_row "$f" "oneTBB task_group run + wait" peer threads:tbb_rtt_p99 µs lower
bench_table "Thread backend vs oneTBB and std::async (2 threads)" \
  "Same task everywhere: \`int tiny(int)\`, not inlined (the pool calls it through a pointer). TBB runs in a 2-thread \`task_arena\`; \`map\` and \`parallel_for\` (\`simple_partitioner\`) both get chunks of 32768 items, what the pool picks for 1M ints by itself since its chunks are capped by the task ring's warm zone. TBB's \`task_group::wait\` runs the task on the waiting thread itself, so its round trip has no hand-off between threads: a lower bound rather than a like-for-like peer. \`std::async(std::launch::async)\` starts a thread per task. The pool's round trips run in a pool of their own, not after its maps (what a pool did before trains its spin budgets)."
