#!/usr/bin/env bash
# Cluster Pool (procpool::cluster::Pool, docs/cluster.md): a redis-server of its own on a free port and 2
# remote workers (`bench-cluster-pool --procpool-worker URL -j 1`, on this host: the machine has 2 cores),
# against its peers measured in the same runs (BENCH_RUNS, each a fresh process):
#   map of 100,000 tiny tasks (default chunksize) vs CPython multiprocessing.Pool(2).map and local
#     procpool::Pool(2).map; map with chunksize 1 (a Redis record per task) vs RQ (python3-rq) on the same
#     Redis (300 tiny jobs, 2 burst workers: RQ forks once per job)
#   apply_async().get() round trip over TCP loopback (target p50 <= 1 ms)
#   CPU-bound: 16 tasks of ~250 ms on 2 workers vs the same work serially, before and after (target >= 1.8x)
# Prints the area's markdown table (bench/lib.sh).
set -euo pipefail
build_dir=${1:-build-bench}
here=$(dirname "$0")
source "$here/lib.sh"
prog=$(realpath "$build_dir/bench/bench-cluster-pool")
for tool in "$prog" redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "cluster_pool.sh: $tool is missing (build with hiredis; scripts/install-deps.sh)" >&2; exit 1; }
done
bench_init cluster_pool
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$bench_work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=redis://127.0.0.1:$port/0
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$bench_work" --logfile "$bench_work/redis.log" &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
for _ in 1 2; do
  "$prog" --procpool-worker "$url" -j 1 --queue bench 2>>"$bench_work/workers.err" &
  pids+=($!)
done
for _ in $(seq 100); do [ "$(redis-cli -p "$port" zcard 'pp:{bench}:pool:workers')" -ge 2 ] && break; sleep 0.05; done

# RQ: Debian's python3-rq runs on /usr/bin/python3.
rq_jobs=300
rq_run() {
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/python3 "$here/cluster_pool.py" rq-enqueue "$url" "$rq_jobs" "$bench_work"
  local workers=()
  for _ in 1 2; do
    (cd "$bench_work" && exec /usr/bin/python3 -m rq.cli worker --burst --quiet --url "$url" bench >/dev/null 2>&1) &
    workers+=($!)
  done
  for p in "${workers[@]}"; do wait "$p"; done
  t1=$(date +%s.%N)
  bench_record rq rq_tasks_per_s "$(python3 -c "print($rq_jobs / ($t1 - $t0))")"
}
have_rq=0
if /usr/bin/python3 -c 'import rq' 2>/dev/null; then
  have_rq=1
  printf 'def tiny(x):\n    return x * x\n' > "$bench_work/rq_tiny.py"
fi

for _ in $(seq "$bench_runs"); do
  bench_run ours "$prog" "$url" bench all
  bench_run local "$prog" - - local-map 100000
  bench_run cpython python3 "$here/cluster_pool.py" mp 100000
  ((have_rq)) && rq_run
done

f="\`map\`, 100,000 tiny tasks (default chunksize)"
bench_row "$f" "cluster::Pool, 2 remote workers" ours ours:map_tasks_per_s tasks/s
bench_row "$f" "CPython mp.Pool(2), one machine" peer cpython:map_tasks_per_s tasks/s
bench_row "$f" "procpool::Pool(2), one machine" peer local:local_map_tasks_per_s tasks/s
f="\`map\`, chunksize 1 (a Redis record per task)"
bench_row "$f" "cluster::Pool, 20,000 tasks" ours ours:map1_tasks_per_s tasks/s
if ((have_rq)); then
  bench_row "$f" "RQ 1.13, ${rq_jobs} jobs, 2 burst workers" peer rq:rq_tasks_per_s tasks/s
fi
f="\`apply_async().get()\` round trip, TCP loopback, p50"
bench_row "$f" cluster::Pool ours ours:rtt_p50_us µs lower max=1000 "target=≤ 1 ms"
f="\`apply_async().get()\` round trip, TCP loopback, p99"
bench_row "$f" cluster::Pool ours ours:rtt_p99_us µs lower
f="CPU-bound, 16 × ~250 ms, 2 workers vs serial"
bench_row "$f" cluster::Pool ours ours:cpu_speedup × min=1.8 "target=≥ 1.8×"
note="Redis and both workers run on this 2-core host (TCP loopback), so the owner, Redis and the workers share two cores."
((have_rq)) || note="$note RQ: not installed (apt-get install python3-rq)."
note="$note Ray and Dask are not packaged in Debian 12 and cannot be installed here; RQ is the peer on the same Redis."
bench_table "Cluster Pool (2 workers on this host, Redis on loopback)" "$note"
