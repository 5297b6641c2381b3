#!/usr/bin/env bash
# Process start + join latency: procpool vs CPython, same run. Prints a markdown table.
set -euo pipefail
build_dir=${1:-build-bench}
runs=${PROCPOOL_BENCH_RUNS:-200}
ours=$("$build_dir/bench/bench-process-start" "$runs")
peer=$(python3 "$(dirname "$0")/process_start.py" "$runs")
echo "### Process start + join (median of $runs runs; spawn: $((runs / 4)))"
echo
echo "| start method | procpool µs (p50 / p90) | CPython µs (p50 / p90) | speed-up |"
echo "|---|---|---|---|"
join -t $'\t' <(sort <<<"$ours") <(sort <<<"$peer") | sort -t $'\t' -k1,1r |
  awk -F'\t' '{ printf "| %s | %.0f / %.0f | %.0f / %.0f | %.1f× |\n", $1, $2, $3, $5, $6, $5 / $2 }'
echo
