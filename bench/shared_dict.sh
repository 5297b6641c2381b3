#!/usr/bin/env bash
# shared::Dict get and set from 2 processes (bench-shared-dict) against CPython's Manager().dict()
# (bench/shared_dict.py) and against the limit, a std::unordered_map under a std::mutex in one
# thread. BENCH_RUNS runs of each, interleaved, every one a fresh process. Prints the area's
# markdown table (bench/lib.sh).
set -euo pipefail
build_dir=${1:-build-bench}
here=$(dirname "$0")
source "$here/lib.sh"
ops=${PROCPOOL_BENCH_DICT_OPS:-1000000}
py_ops=${PROCPOOL_BENCH_DICT_PY_OPS:-20000}
bench_init shared_dict
for _ in $(seq "$bench_runs"); do
  bench_run ours "$build_dir/bench/bench-shared-dict" "$ops" 3
  bench_run cpython python3 "$here/shared_dict.py" "$py_ops" 3
done
f="\`d[key]\` read, 2 processes (string keys, 10,000 of them)"
bench_row "$f" "procpool \`shared::Dict\` \`get\`" ours ours:dict_get ops/s
bench_row "$f" "CPython \`Manager().dict()\`" peer cpython:dict_get ops/s ratio=100 "target=≥ 100×"
bench_row "$f" "\`std::unordered_map\` under a \`std::mutex\`, one thread" limit ours:map_get ops/s
f="\`d[key] = value\`, 2 processes (string keys, 10,000 of them)"
bench_row "$f" "procpool \`shared::Dict\` \`set\`" ours ours:dict_set ops/s
bench_row "$f" "CPython \`Manager().dict()\`" peer cpython:dict_set ops/s ratio=100 "target=≥ 100×"
bench_row "$f" "\`std::unordered_map\` under a \`std::mutex\`, one thread" limit ours:map_set ops/s
bench_table "Shared dict (2 processes)" \
  "procpool: $ops operations per process, CPython: $py_ops (each a round trip to the manager's server process). A procpool \`set\` updates both copies of the dict (the crash guarantee, docs/shared_memory.md) under its robust lock; both processes contend for that one lock, where the limit runs in one thread with nobody to contend with."
