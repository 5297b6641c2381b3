#!/usr/bin/env bash
# Several arguments per job (issue 15): how fast `procpool run` gets through many small arguments with
# -N 100 and -X, against GNU parallel's same options and xargs -P2 -n 100 / -P2 (one fill per job).
# Each runner gets CLI_ARGS_COUNT (default 50000) arguments from a file, -j2, `true` as the command;
# BENCH_RUNS rounds (default 3), the runners interleaved; prints the median wall time, arguments/s and
# jobs/s (the jobs each runner started, counted from a joblog or the -n size) as a markdown table.
# Usage: bench/cli_args.sh [BUILD_DIR]   (default: build). Needs GNU parallel.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
procpool=$build/tools/procpool/procpool
count=${CLI_ARGS_COUNT:-50000}
runs=${BENCH_RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seq "$count" > "$work/args.txt"

declare -A cmd
cmd[procpool-N100]="$procpool run -j2 -N 100 --joblog JOBLOG true :::: $work/args.txt"
cmd[parallel-N100]="parallel --will-cite -j2 -N 100 --joblog JOBLOG true :::: $work/args.txt"
cmd[xargs-n100]="xargs -P2 -n 100 true < $work/args.txt"
cmd[procpool-X]="$procpool run -j2 -X --joblog JOBLOG true :::: $work/args.txt"
cmd[parallel-X]="parallel --will-cite -j2 -X --joblog JOBLOG true :::: $work/args.txt"
cmd[xargs-P2]="xargs -P2 true < $work/args.txt"
order=(procpool-N100 parallel-N100 xargs-n100 procpool-X parallel-X xargs-P2)

declare -A times jobs
for _ in $(seq "$runs"); do
  for name in "${order[@]}"; do
    rm -f "$work/log"
    line=${cmd[$name]//JOBLOG/$work/log}
    start=$(date +%s.%N)
    eval "$line" > /dev/null
    end=$(date +%s.%N)
    times[$name]+="$(echo "$end - $start" | bc) "
    if [[ -f $work/log ]]; then jobs[$name]=$(($(wc -l < "$work/log") - 1)); fi
  done
done
jobs[xargs-n100]=$(( (count + 99) / 100 ))
jobs[xargs-P2]="?"

echo "| runner ($count arguments, -j2, \`true\`) | median s | arguments/s | jobs | jobs/s |"
echo "|---|---:|---:|---:|---:|"
for name in "${order[@]}"; do
  median=$(tr ' ' '\n' <<< "${times[$name]}" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  rate=$(echo "$count / $median" | bc)
  if [[ ${jobs[$name]} == "?" ]]; then jobrate="?"; else jobrate=$(echo "${jobs[$name]} / $median" | bc); fi
  printf '| %s | %.2f | %s | %s | %s |\n' "$name" "$median" "$rate" "${jobs[$name]}" "$jobrate"
done
