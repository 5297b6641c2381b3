#!/usr/bin/env bash
# Benchmarks the cluster Pool (procpool::cluster::Pool, docs/cluster.md) with a redis-server of its own on a
# free port and 2 remote workers (`bench-cluster-pool --procpool-worker URL -j 1`, same host: the machine has
# 2 cores), in one run, against its peers measured in the same run:
#   map of 100,000 tiny tasks: the cluster Pool (default chunksize, and chunksize 1: one Redis record per task)
#     against CPython multiprocessing.Pool(2).map and procpool::Pool(2).map on this machine
#   RQ (python3-rq, Debian's) on the same Redis: 1,000 tiny jobs, 2 burst workers
#   apply_async().get() round trip over TCP loopback: p50/p99 (target p50 <= 1 ms)
#   CPU-bound speed-up with 2 workers: 8 tasks of ~250 ms against the same work serially (target >= 1.8x)
# Usage: bench/cluster_pool.sh [BUILD_DIR]  (default: build; bench/run.sh passes its release build-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
prog=$(realpath "$build/bench/bench-cluster-pool")
for tool in "$prog" redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "cluster_pool.sh: $tool is missing (build with hiredis; scripts/install-deps.sh)" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=redis://127.0.0.1:$port/0
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
rcli() { redis-cli -p "$port" "$@"; }
get() { awk -v k="$1" '$1 == k { print $2 }'; }
fmt() { python3 -c "print(f'{float($1):,.0f}')"; }

workers=()
for _ in 1 2; do
  "$prog" --procpool-worker "$url" -j 1 --queue bench 2>>"$work/workers.err" &
  workers+=($!)
  pids+=($!)
done
for _ in $(seq 100); do [ "$(rcli zcard 'pp:{bench}:pool:workers')" -ge 2 ] && break; sleep 0.05; done

n=100000
cluster_map=$("$prog" "$url" bench map "$n" | get tasks_per_s)
cluster_map1=$("$prog" "$url" bench map1 20000 | get tasks_per_s)
local_map=$("$prog" - - local-map "$n" | get tasks_per_s)
mp_map=$(python3 bench/cluster_pool.py mp "$n" | get tasks_per_s)
rtt=$("$prog" "$url" bench rtt 2000)
p50=$(echo "$rtt" | get p50_us)
p99=$(echo "$rtt" | get p99_us)
cpu=$("$prog" "$url" bench cpu 8 250)
serial=$(echo "$cpu" | get serial_s)
parallel=$(echo "$cpu" | get cluster_s)
for p in "${workers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${workers[@]}"; do wait "$p" 2>/dev/null || true; done

# RQ: Debian's python3-rq runs on /usr/bin/python3; its workers fork once per job.
rq_rate="not installed (apt-get install python3-rq)"
if /usr/bin/python3 -c 'import rq' 2>/dev/null; then
  printf 'def tiny(x):\n    return x * x\n' > "$work/rq_tiny.py"
  jobs=1000
  t0=$(date +%s.%N)
  /usr/bin/python3 bench/cluster_pool.py rq-enqueue "$url" "$jobs" "$work"
  rq_workers=()
  for _ in 1 2; do
    (cd "$work" && /usr/bin/python3 -m rq.cli worker --burst --quiet --url "$url" bench >/dev/null 2>&1) &
    rq_workers+=($!)
  done
  for p in "${rq_workers[@]}"; do wait "$p"; done
  t1=$(date +%s.%N)
  left=$(rcli llen rq:queue:bench)
  rq_rate="$(python3 -c "print(f'{$jobs / ($t1 - $t0):,.0f}')")/s (1,000 jobs, 2 burst workers, $left left)"
fi

ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }
echo "#### Cluster Pool ($(nproc) cores, 2 workers on this host, TCP loopback; a shared machine: other builds add noise)"
echo
echo "| figure | cluster::Pool | peers (same run) | target |"
echo "|---|---|---|---|"
echo "| map, 100,000 tiny tasks (default chunksize) | $(fmt "$cluster_map") tasks/s | CPython mp.Pool(2): $(fmt "$mp_map")/s ($(ratio "$cluster_map" "$mp_map")); procpool::Pool(2): $(fmt "$local_map")/s ($(ratio "$cluster_map" "$local_map")) | - |"
echo "| map, 20,000 tasks, chunksize 1 (a Redis record each) | $(fmt "$cluster_map1") tasks/s | RQ: $rq_rate | - |"
echo "| apply_async().get() round trip | p50 $(python3 -c "print(f'{$p50 / 1000:.2f}')") ms, p99 $(python3 -c "print(f'{$p99 / 1000:.2f}')") ms | - | p50 <= 1 ms |"
echo "| CPU-bound, 8 x ~250 ms, 2 workers | $(ratio "$serial" "$parallel") of serial (${serial} s -> ${parallel} s) | - | >= 1.8x |"
echo
echo "Produced by \`${BENCH_COMMAND:-bench/cluster_pool.sh}\`."
