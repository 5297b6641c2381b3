#!/usr/bin/env bash
# Queue throughput and round trip: procpool vs Boost.Interprocess message_queue vs CPython
# multiprocessing, same run. Prints markdown tables (bench/queue_bench.py does the work).
set -euo pipefail
build_dir=${1:-build-bench}
echo "### Queue: 64-byte items, process -> process"
echo
python3 "$(dirname "$0")/queue_bench.py" "$build_dir" --runs "${PROCPOOL_BENCH_QUEUE_RUNS:-3}"
echo
