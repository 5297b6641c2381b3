#!/usr/bin/env bash
# Queue throughput and round trip, 64-byte items, process -> process: procpool Queue and Pipe
# (bench-queue) vs Boost.Interprocess message_queue (bench-boost-mq) vs CPython multiprocessing
# (bench/mp_queue_bench.py), next to the two-process ping-pong limits (bench-limits). BENCH_RUNS
# runs of each, interleaved, every one a fresh process. Prints the area's markdown table (bench/lib.sh).
set -euo pipefail
build_dir=${1:-build-bench}
here=$(dirname "$0")
source "$here/lib.sh"
items=${PROCPOOL_BENCH_QUEUE_ITEMS:-2000000}     # C++ throughput runs
py_items=${PROCPOOL_BENCH_QUEUE_PY_ITEMS:-200000}  # CPython throughput runs
qb=$build_dir/bench/bench-queue
mq=$build_dir/bench/bench-boost-mq
py=(python3 "$here/mp_queue_bench.py")
bench_init queue
for _ in $(seq "$bench_runs"); do
  bench_run queue "$qb" queue "$items"
  bench_run pipe "$qb" pipe "$items"
  bench_run boost "$mq" throughput "$items"
  bench_run py_queue "${py[@]}" queue "$py_items"
  bench_run py_pipe "${py[@]}" pipe "$py_items"
  bench_run rtt "$qb" pingpong 100000
  bench_run boost_rtt "$mq" pingpong 100000
  bench_run py_rtt "${py[@]}" pingpong 20000
  bench_run limits "$build_dir/bench/bench-limits"
done

f="Queue, 64-byte items"
bench_row "$f" "procpool Queue" ours queue:msgs_per_s msgs/s
bench_row "$f" "Boost.Interprocess message_queue" peer boost:msgs_per_s msgs/s ratio=1.5
bench_row "$f" "CPython multiprocessing.Queue" peer py_queue:msgs_per_s msgs/s ratio=50
f="Pipe, 64-byte items"
bench_row "$f" "procpool Pipe" ours pipe:msgs_per_s msgs/s
bench_row "$f" "CPython multiprocessing.Pipe" peer py_pipe:msgs_per_s msgs/s
for p in p50 p99; do
  f="ping-pong round trip (64-byte item there and back), $p"
  opts=()
  [ "$p" = p50 ] && opts=(max=10)
  bench_row "$f" "procpool Queue pair" ours "rtt:rtt_$p" µs lower "${opts[@]}"
  bench_row "$f" "Boost message_queue pair" peer "boost_rtt:rtt_$p" µs lower
  bench_row "$f" "CPython Pipe" peer "py_rtt:rtt_$p" µs lower
  bench_row "$f" "2-process ping-pong, spin" limit "limits:spin_rtt_$p" µs lower
  bench_row "$f" "2-process ping-pong, futex" limit "limits:futex_rtt_$p" µs lower
done
bench_table "Queue: 64-byte items, process -> process" \
  "Throughput: $items items per C++ run, $py_items per CPython run, the clock started by the first item received. Round trip: 100000 rounds (CPython: 20000) after 1000 unmeasured. The limits are bench-limits' ping-pong on one shared word (see the Pool table)."
