#!/usr/bin/env bash
# --pipe and --pipepart throughput (issue 15): a CLI_PIPE_MB (default 1024) MiB file of numbers, one per
# line, counted by `wc -l` jobs (-j2), through procpool run --pipe (stdin from the file, and from a
# pipe), procpool run --pipepart, GNU parallel's --pipe and --pipepart, and split + xargs -P2 (the
# file cut into 1 MiB files of whole lines, then one wc -l per file); `wc -l` on the whole file alone
# is the floor. --pipe runners use 1 MiB blocks (GNU's default); --pipepart runners their default
# (10 parts per job slot). Every runner's counts must add up to the file's line count. BENCH_RUNS
# rounds (default 3), the runners interleaved; prints the median wall time and MB/s as a markdown
# table. The file lives in a temporary directory, removed at exit.
# Usage: bench/cli_pipe.sh [BUILD_DIR]   (default: build). Needs GNU parallel.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
procpool=$(realpath "$build/tools/procpool/procpool")
mib=${CLI_PIPE_MB:-1024}
runs=${BENCH_RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
big=$work/big.txt
# Numbers from 1 up until the file holds CLI_PIPE_MB MiB (whole lines).
(seq 1 200000000 || true) | head -c $((mib * 1024 * 1024)) | sed '$d' > "$big"
bytes=$(stat -c %s "$big")
lines=$(wc -l < "$big")

declare -A cmd
cmd[procpool-pipe]="$procpool run -j2 --pipe wc -l < $big"
cmd[procpool-pipe-from-cat]="cat $big | $procpool run -j2 --pipe wc -l"
cmd[procpool-pipepart]="$procpool run -j2 --pipepart -a $big wc -l"
cmd[parallel-pipe]="parallel --will-cite -j2 --pipe wc -l < $big"
cmd[parallel-pipepart]="parallel --will-cite -j2 --pipepart -a $big wc -l"
cmd[split-xargs]="rm -rf $work/parts && mkdir $work/parts && split -C 1M $big $work/parts/p. && ls $work/parts/p.* | xargs -P2 -n1 wc -l | awk '{print \$1}'"
cmd[wc-alone]="wc -l < $big"
order=(procpool-pipe procpool-pipe-from-cat procpool-pipepart parallel-pipe parallel-pipepart split-xargs wc-alone)

declare -A times
for _ in $(seq "$runs"); do
  for name in "${order[@]}"; do
    start=$(date +%s.%N)
    total=$(eval "${cmd[$name]}" | awk '{s += $1} END {print s}')
    end=$(date +%s.%N)
    if [[ $total != "$lines" ]]; then
      echo "$name counted $total lines, not $lines" >&2
      exit 1
    fi
    times[$name]+="$(echo "$end - $start" | bc) "
  done
done
rm -rf "$work/parts"

echo "| runner ($((bytes / 1024 / 1024)) MiB, $lines lines, -j2, \`wc -l\`) | median s | MB/s | vs GNU --pipe |"
echo "|---|---:|---:|---:|"
median_of() { tr ' ' '\n' <<< "${times[$1]}" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
gnu=$(median_of parallel-pipe)
for name in "${order[@]}"; do
  median=$(median_of "$name")
  printf '| %s | %.2f | %.0f | %.1f× |\n' "$name" "$median" "$(echo "$bytes / 1000000 / $median" | bc -l)" \
    "$(echo "$gnu / $median" | bc -l)"
done
