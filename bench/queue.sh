#!/usr/bin/env bash
# Queue throughput and round trip, 64-byte items, process -> process: procpool Queue and Pipe
# (bench-queue) vs Boost.Interprocess message_queue (bench-boost-mq) at the same depth in items,
# vs a Unix socketpair and a pipe(2) (bench-kernel-pipe), vs CPython multiprocessing
# (bench/mp_queue_bench.py), next to the two-process ping-pong limits (bench-limits). BENCH_RUNS
# runs of each, interleaved, every one a fresh process. Prints the area's markdown table (bench/lib.sh).
#
# Equal depth: Boost's queue holds at most DEPTH messages; procpool's bounded queue is
# Queue(maxsize = DEPTH), its unbounded one a Queue() whose ring holds at most DEPTH items (910 of
# 1024, 3640 of 4096: ring sizes are powers of two), so procpool never has more room than Boost.
set -euo pipefail
build_dir=${1:-build-bench}
here=$(dirname "$0")
source "$here/lib.sh"
items=${PROCPOOL_BENCH_QUEUE_ITEMS:-2000000}     # C++ throughput runs
py_items=${PROCPOOL_BENCH_QUEUE_PY_ITEMS:-200000}  # CPython throughput runs
depths=(1024 4096)
qb=$build_dir/bench/bench-queue
mq=$build_dir/bench/bench-boost-mq
kp=$build_dir/bench/bench-kernel-pipe
py=(python3 "$here/mp_queue_bench.py")
# Items a Queue() ring of at most DEPTH items holds: the largest power of two of bytes <= 72 x DEPTH.
ring_items() {
  local bytes=1
  while ((bytes * 2 <= $1 * 72)); do bytes=$((bytes * 2)); done
  echo $((bytes / 72))
}
bench_init queue
for _ in $(seq "$bench_runs"); do
  for d in "${depths[@]}"; do
    bench_run "bounded_$d" "$qb" queue "$items" bounded "$d"
    bench_run "ring_$d" "$qb" queue "$items" ring "$d"
    bench_run "boost_$d" "$mq" throughput "$items" "$d"
  done
  bench_run queue "$qb" queue "$items"
  bench_run py_queue "${py[@]}" queue "$py_items"
  bench_run pipe "$qb" pipe "$items"
  bench_run socketpair "$kp" socketpair "$items"
  bench_run pipe2 "$kp" pipe "$items"
  bench_run py_pipe "${py[@]}" pipe "$py_items"
  bench_run rtt "$qb" pingpong 100000
  bench_run boost_rtt "$mq" pingpong 100000
  bench_run py_rtt "${py[@]}" pingpong 20000
  bench_run limits "$build_dir/bench/bench-limits"
done

for d in "${depths[@]}"; do
  f="Queue(maxsize=$d) vs Boost, depth $d"
  bench_row "$f" "procpool Queue($d)" ours "bounded_$d:msgs_per_s" msgs/s
  bench_row "$f" "Boost.Interprocess message_queue, $d messages" peer "boost_$d:msgs_per_s" msgs/s ratio=1.5
  f="Queue() with a ring of at most $d items vs Boost, depth $d"
  bench_row "$f" "procpool Queue(), $(ring_items "$d") items" ours "ring_$d:msgs_per_s" msgs/s
  bench_row "$f" "Boost.Interprocess message_queue, $d messages" peer "boost_$d:msgs_per_s" msgs/s ratio=1.5
done
f="Queue() (default 4 MiB ring) vs CPython"
bench_row "$f" "procpool Queue()" ours queue:msgs_per_s msgs/s
bench_row "$f" "CPython multiprocessing.Queue" peer py_queue:msgs_per_s msgs/s ratio=50
f="Pipe, 64-byte messages"
bench_row "$f" "procpool Pipe" ours pipe:msgs_per_s msgs/s
bench_row "$f" "Unix socketpair (SOCK_STREAM)" peer socketpair:msgs_per_s msgs/s ratio=2
bench_row "$f" "pipe(2)" peer pipe2:msgs_per_s msgs/s
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
  "Throughput: $items items per C++ run, $py_items per CPython run, the clock started by the first item received. Depth: Boost's queue holds at most the depth in messages; procpool's bounded queue is \`Queue(maxsize)\` at the same depth, its unbounded one a \`Queue()\` whose ring (a power of two of bytes, 72 per item) holds no more than that (910 of 1024, 3640 of 4096). Pipe: one \`write(2)\` and one 64-byte read per message on the kernel's peers, blocking, default buffers. Round trip: 100000 rounds (CPython: 20000) after 1000 unmeasured. The limits are bench-limits' ping-pong on one shared word (see the Pool table)."
