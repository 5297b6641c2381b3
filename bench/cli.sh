#!/usr/bin/env bash
# Benchmarks `procpool run` side by side with its peers, in one run, on the same batch files:
#   procpool run -j2            (default --group: output captured per job)
#   procpool run -j2 -u         (--ungroup: jobs write straight to stdout)
#   procpool run -j2 --shell    (every line through /bin/sh -c, like the raw loop: no direct exec)
#   xargs -P2 -n1 sh -c         (one `sh -c LINE` per line)
#   GNU parallel -j2
#   bench-cli-raw-spawn 2       (bench/cli_raw_spawn.cpp: posix_spawn `sh -c LINE`, nothing else; the limit)
# Workloads: 5000 `true` lines, 2000 `echo` lines. Prints a markdown table: median wall time of
# CLI_BENCH_RUNS runs (default 3, interleaved), jobs/s, ratios to the raw limit and to GNU parallel,
# peak RSS (GNU time's %M: the largest of the runner and its jobs). Then procpool's and GNU
# parallel's peak RSS on a 1M-line batch, sampled from /proc after CLI_BENCH_RSS_SECONDS (default 10).
# Usage: bench/cli.sh [BUILD_DIR]  (default: build; bench/run.sh passes its release build-bench)
# Needs GNU parallel and /usr/bin/time (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
procpool=$build/tools/procpool/procpool
raw=$build/bench/bench-cli-raw-spawn
runs=${CLI_BENCH_RUNS:-3}
rss_seconds=${CLI_BENCH_RSS_SECONDS:-10}
for tool in "$procpool" "$raw" /usr/bin/time parallel xargs; do
  command -v "$tool" >/dev/null || { echo "cli.sh: $tool is missing (build first; scripts/install-deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for _ in $(seq 5000); do echo true; done > "$work/true.txt"
for i in $(seq 2000); do echo "echo line $i of the echo batch"; done > "$work/echo.txt"

declare -A cmd
cmd[procpool]="$procpool run -j2 FILE"
cmd[procpool-u]="$procpool run -j2 -u FILE"
cmd[procpool-shell]="$procpool run -j2 --shell FILE"
cmd[xargs]="xargs -P2 -d '\n' -n1 sh -c < FILE"
cmd[parallel]="parallel --will-cite -j2 < FILE"
cmd[raw]="$raw 2 FILE"
tools=(raw procpool procpool-u procpool-shell xargs parallel)

# One timed run: prints "seconds maxrss_kib".
measure() {
  local command=${cmd[$1]//FILE/$2}
  /usr/bin/time -f "%e %M" -o "$work/time" bash -c "$command > /dev/null"
  cat "$work/time"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A secs rss
for workload in true echo; do
  file=$work/$workload.txt
  for run in $(seq "$runs"); do
    for tool in "${tools[@]}"; do
      read -r s m < <(measure "$tool" "$file")
      echo "$s" >> "$work/$workload.$tool.secs"
      echo "$m" >> "$work/$workload.$tool.rss"
    done
  done
  for tool in "${tools[@]}"; do
    secs[$workload.$tool]=$(median < "$work/$workload.$tool.secs")
    rss[$workload.$tool]=$(sort -g "$work/$workload.$tool.rss" | tail -n1)
  done
done

echo "| workload | runner | median s | jobs/s | vs raw spawn | vs GNU parallel | peak RSS |"
echo "|---|---|---:|---:|---:|---:|---:|"
for workload in true echo; do
  jobs=$([ "$workload" = true ] && echo 5000 || echo 2000)
  for tool in "${tools[@]}"; do
    awk -v w="$workload" -v jobs="$jobs" -v t="$tool" -v s="${secs[$workload.$tool]}" \
        -v raw="${secs[$workload.raw]}" -v par="${secs[$workload.parallel]}" -v m="${rss[$workload.$tool]}" \
        'BEGIN { printf "| %d × `%s` | %s | %.2f | %.0f | %.0f%% | %.1f× | %.1f MiB |\n",
                 jobs, w, t, s, jobs / s, 100 * raw / s, par / s, m / 1024 }'
  done
done

# Memory on a 1M-line batch: the runner's own peak RSS (VmHWM) after a while, then stopped.
for _ in $(seq 1000000); do echo true; done > "$work/million.txt"
peak_rss() {  # the command execs the runner, so $! is the runner itself
  bash -c "$1" > /dev/null 2>&1 &
  local pid=$!
  sleep "$rss_seconds"
  local kib
  kib=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$kib"
}
pp=$(peak_rss "exec $procpool run -j2 $work/million.txt")
gp=$(peak_rss "exec parallel --will-cite -j2 < $work/million.txt")
echo
echo "| 1M-line batch (\`true\`), -j2, after ${rss_seconds} s | peak RSS (VmHWM) |"
echo "|---|---:|"
awk -v k="$pp" 'BEGIN { printf "| procpool run | %.1f MiB |\n", k / 1024 }'
awk -v k="$gp" 'BEGIN { printf "| GNU parallel | %.1f MiB |\n", k / 1024 }'
