#!/usr/bin/env bash
# A 256 MiB std::vector<double> between two processes: procpool's Queue (into a new vector, and as
# a view of the shared pages) and Pool.apply_async (argument and result), against CPython
# (multiprocessing.Queue with a 256 MiB bytes; shared_memory + a memoryview copy) and against one
# single-threaded memcpy of the same size (bench-bigdata, bench/bigdata.py). BENCH_RUNS runs of
# each, interleaved, every one a fresh process. Prints the area's markdown table (bench/lib.sh).
set -euo pipefail
build_dir=${1:-build-bench}
here=$(dirname "$0")
source "$here/lib.sh"
bench_init bigdata
for _ in $(seq "$bench_runs"); do
  bench_run ours "$build_dir/bench/bench-bigdata"
  bench_run cpython python3 "$here/bigdata.py"
done
f="256 MiB, put in one process, \`get()\` in another"
bench_row "$f" "procpool \`Queue\`, \`get()\` into a new \`std::vector\`" ours ours:queue_vector GB/s
bench_row "$f" "CPython \`multiprocessing.Queue\`, \`bytes\`" peer cpython:queue_bytes GB/s
bench_row "$f" "CPython \`shared_memory\` + \`memoryview\` copy in and out" peer cpython:shm_copy GB/s
bench_row "$f" "one \`memcpy\` into a freshly allocated buffer" limit ours:memcpy_fresh GB/s ratio=0.5 "target=≥ 50%"
bench_row "$f" "one \`memcpy\` into a pre-faulted buffer" limit ours:memcpy_prefaulted GB/s
f="256 MiB, received as a view (\`get_view()\`: the shared pages, no copy)"
bench_row "$f" "procpool \`Queue\`, \`get_view()\`" ours ours:queue_view GB/s
bench_row "$f" "one \`memcpy\` into a freshly allocated buffer" limit ours:memcpy_fresh GB/s ratio=1 "target=ahead of it"
f="\`Pool(1).apply_async(echo, v).get()\`, 256 MiB there and back"
bench_row "$f" "procpool (GB/s of the 512 MiB moved)" ours ours:pool_apply GB/s
bench_row "$f" "one \`memcpy\` into a freshly allocated buffer" limit ours:memcpy_fresh GB/s ratio=0.5 "target=≥ 50%"
bench_table "Big data (256 MiB std::vector<double>, 2 processes)" \
  "Each figure is the median of 3 transfers after a warm-up, timed from the sender's first instruction to the receiver's return. A \`get()\` into a new vector pays the sender's copy into a reused segment (pages that exist) and the receiver's copy into fresh pages (the page faults of a new buffer are the fresh-\`memcpy\` limit); \`get_view()\` maps the segment and copies nothing on the receiving side. The pool's round trip pays two copies into reused segments and two into fresh vectors (the worker's argument, the caller's result)."
