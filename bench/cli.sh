#!/usr/bin/env bash
# Benchmarks `procpool run` side by side with its peers, in one run, on the same batch files:
#   procpool run -j2            (default --group: output captured per job)
#   procpool run -j2 -u         (--ungroup: jobs write straight to stdout)
#   procpool run -j2 --shell    (every line through /bin/sh -c, like the shell limit: no direct exec)
#   xargs -P2 -n1 sh -c         (one `sh -c LINE` per line)
#   GNU parallel -j2
# and the two practical limits (bench/cli_raw_spawn.cpp, 2 in flight, nothing else):
#   raw vfork+exec              (vfork + execve of the line's words: a runner that execs directly)
#   raw posix_spawn sh -c       (posix_spawn `sh -c LINE`: a runner that goes through the shell)
# Workloads: CLI_BENCH_TRUE_JOBS (default 2000) `true` lines, CLI_BENCH_ECHO_JOBS (1000) `echo` lines;
# BENCH_RUNS rounds, the runners interleaved in each. Jobs/s from the wall time, peak RSS from GNU
# time's %M (the largest of the runner and its jobs). Then procpool's and GNU parallel's own peak RSS
# (VmHWM) on a 1M-line batch after CLI_BENCH_RSS_SECONDS (default 10): measured once, it is stable.
# Last, --pipe and --pipepart throughput (issue 15): a CLI_BENCH_PIPE_MB (default 1024) MiB file of
# numbers counted by `wc -l` jobs (-j2) through procpool run --pipe / --pipepart, GNU parallel's, and
# split -C 1M + xargs -P2 (bench/cli_pipe.sh prints the same comparison on its own, with wc alone).
# Usage: bench/cli.sh [BUILD_DIR]  (default: build; bench/run.sh passes its release build-bench)
# Needs GNU parallel and /usr/bin/time (scripts/install-deps.sh). Prints the area's markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
source bench/lib.sh
procpool=$build/tools/procpool/procpool
raw=$build/bench/bench-cli-raw-spawn
true_jobs=${CLI_BENCH_TRUE_JOBS:-2000}
echo_jobs=${CLI_BENCH_ECHO_JOBS:-1000}
rss_seconds=${CLI_BENCH_RSS_SECONDS:-10}
for tool in "$procpool" "$raw" /usr/bin/time parallel xargs; do
  command -v "$tool" >/dev/null || { echo "cli.sh: $tool is missing (build first; scripts/install-deps.sh)" >&2; exit 1; }
done
bench_init cli
work=$bench_work
for _ in $(seq "$true_jobs"); do echo true; done > "$work/true.txt"
for i in $(seq "$echo_jobs"); do echo "echo line $i of the echo batch"; done > "$work/echo.txt"

declare -A cmd
cmd[procpool]="$procpool run -j2 FILE"
cmd[procpool-u]="$procpool run -j2 -u FILE"
cmd[procpool-shell]="$procpool run -j2 --shell FILE"
cmd[xargs]="xargs -P2 -d '\n' -n1 sh -c < FILE"
cmd[parallel]="parallel --will-cite -j2 < FILE"
cmd[raw-direct]="$raw --direct 2 FILE"
cmd[raw-shell]="$raw 2 FILE"
tools=(raw-direct raw-shell procpool procpool-u procpool-shell xargs parallel)
declare -A label=(
  [procpool]="procpool run -j2" [procpool-u]="procpool run -j2 -u" [procpool-shell]="procpool run -j2 --shell"
  [xargs]="xargs -P2 sh -c" [parallel]="GNU parallel -j2"
  [raw-direct]="raw vfork + exec" [raw-shell]="raw posix_spawn sh -c")
declare -A role=(
  [procpool]=ours [procpool-u]=variant [procpool-shell]=variant [xargs]=peer [parallel]=peer
  [raw-direct]=limit [raw-shell]=limit)

# One timed run of TOOL on WORKLOAD: records jobs/s and peak RSS (MiB) in the set WORKLOAD.TOOL.
measure() {
  local tool=$1 workload=$2 jobs=$3 s m
  local command=${cmd[$tool]//FILE/$work/$workload.txt}
  /usr/bin/time -f "%e %M" -o "$work/time" bash -c "$command > /dev/null"
  read -r s m < "$work/time"
  bench_record "$workload.$tool" jobs_per_s "$(awk -v j="$jobs" -v s="$s" 'BEGIN { print j / s }')"
  bench_record "$workload.$tool" rss_mib "$(awk -v m="$m" 'BEGIN { print m / 1024 }')"
}

for _ in $(seq "$bench_runs"); do
  for tool in "${tools[@]}"; do
    measure "$tool" true "$true_jobs"
    measure "$tool" echo "$echo_jobs"
  done
done

# Memory on a 1M-line batch: the runner's own peak RSS (VmHWM) after a while, then stopped.
for _ in $(seq 1000000); do echo true; done > "$work/million.txt"
peak_rss() {  # the command execs the runner, so $! is the runner itself
  bash -c "$1" > /dev/null 2>&1 &
  local pid=$!
  sleep "$rss_seconds"
  awk '/VmHWM/ { print $2 / 1024 }' "/proc/$pid/status"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
bench_record million.procpool rss_mib "$(peak_rss "exec $procpool run -j2 $work/million.txt")"
bench_record million.parallel rss_mib "$(peak_rss "exec parallel --will-cite -j2 < $work/million.txt")"

# --pipe / --pipepart: MB/s, each runner's line counts checked against the file's.
pipe_mib=${CLI_BENCH_PIPE_MB:-1024}
(seq 1 200000000 || true) | head -c $((pipe_mib * 1024 * 1024)) | sed '$d' > "$work/big.txt"
pipe_bytes=$(stat -c %s "$work/big.txt")
pipe_lines=$(wc -l < "$work/big.txt")
declare -A pipe_cmd=(
  [procpool-pipe]="$procpool run -j2 --pipe wc -l < $work/big.txt"
  [procpool-pipepart]="$procpool run -j2 --pipepart -a $work/big.txt wc -l"
  [parallel-pipe]="parallel --will-cite -j2 --pipe wc -l < $work/big.txt"
  [parallel-pipepart]="parallel --will-cite -j2 --pipepart -a $work/big.txt wc -l"
  [split-xargs]="rm -rf $work/parts && mkdir $work/parts && split -C 1M $work/big.txt $work/parts/p. && ls $work/parts/p.* | xargs -P2 -n1 wc -l | awk '{print \$1}'")
pipe_tools=(procpool-pipe procpool-pipepart parallel-pipe parallel-pipepart split-xargs)
for _ in $(seq "$bench_runs"); do
  for tool in "${pipe_tools[@]}"; do
    start=$(date +%s.%N)
    counted=$(bash -c "${pipe_cmd[$tool]}" | awk '{s += $1} END {print s}')
    end=$(date +%s.%N)
    [[ $counted == "$pipe_lines" ]] || { echo "cli.sh: $tool counted $counted lines, not $pipe_lines" >&2; exit 1; }
    bench_record "pipe.$tool" mb_per_s "$(awk -v b="$pipe_bytes" -v s="$start" -v e="$end" 'BEGIN { print b / 1e6 / (e - s) }')"
  done
done
rm -rf "$work/parts" "$work/big.txt"

for workload in true echo; do
  jobs=$([ "$workload" = true ] && echo "$true_jobs" || echo "$echo_jobs")
  f="$jobs × \`$workload\`, jobs/s"
  for tool in procpool procpool-u procpool-shell raw-direct raw-shell xargs parallel; do
    bench_row "$f" "${label[$tool]}" "${role[$tool]}" "$workload.$tool:jobs_per_s" jobs/s
  done
done
f="peak RSS, $true_jobs × \`true\` (runner and jobs)"
for tool in procpool raw-direct xargs parallel; do
  bench_row "$f" "${label[$tool]}" "${role[$tool]}" "true.$tool:rss_mib" MiB lower
done
f="peak RSS of the runner, 1M-line batch after ${rss_seconds} s (one run)"
bench_row "$f" "procpool run -j2" ours million.procpool:rss_mib MiB lower
bench_row "$f" "GNU parallel -j2" peer million.parallel:rss_mib MiB lower
f="--pipe, ${pipe_mib} MiB of lines to \`wc -l\` jobs, MB/s"
bench_row "$f" "procpool run -j2 --pipe" ours pipe.procpool-pipe:mb_per_s MB/s
bench_row "$f" "GNU parallel -j2 --pipe" peer pipe.parallel-pipe:mb_per_s MB/s
bench_row "$f" "split -C 1M + xargs -P2" peer pipe.split-xargs:mb_per_s MB/s
f="--pipepart, the same file, MB/s"
bench_row "$f" "procpool run -j2 --pipepart" ours pipe.procpool-pipepart:mb_per_s MB/s
bench_row "$f" "GNU parallel -j2 --pipepart" peer pipe.parallel-pipepart:mb_per_s MB/s
bench_table "\`procpool run\` vs xargs and GNU parallel (-j2)" \
  "The limits are bench/cli_raw_spawn.cpp: 2 children in flight and nothing else, either \`vfork\` + \`execve\` of the line's words (the program looked up in \$PATH once) or \`posix_spawn\` of \`/bin/sh -c LINE\`. A limit row's \"procpool is\" is \`procpool run -j2\`'s job rate as a fraction of that limit's."
