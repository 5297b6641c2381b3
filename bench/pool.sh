#!/usr/bin/env bash
# Pool: procpool vs CPython multiprocessing.Pool, same run. Prints a markdown table.
set -euo pipefail
build_dir=${1:-build-bench}
ours=$("$build_dir/bench/bench-pool")
peer=$(python3 "$(dirname "$0")/pool.py")
value() { awk -F'\t' -v k="$2" '$1 == k { print $2 }' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" -v inv="${3:-0}" 'BEGIN { if (a == "" || b == "" || a == 0 || b == 0) print "-"; else printf "%.1f×", inv ? b / a : a / b }'; }
echo "### Pool (2 workers, fork)"
echo
echo "| figure | procpool | CPython | ratio | target |"
echo "|---|---|---|---|---|"
row() { # key label unit inverse target
  local a b
  a=$(value "$ours" "$1"); b=$(value "$peer" "$1")
  printf "| %s | %s %s | %s %s | %s | %s |\n" "$2" "$(printf %.4g "$a")" "$3" "${b:+$(printf %.4g "$b")}" "${b:+$3}" "$(ratio "$a" "$b" "$4")" "$5"
}
row map_tasks_per_s "map, 1M tiny tasks (median of 5)" tasks/s 0 "≥ 20×"
row map_first_call_tasks_per_s "map, 1M tiny tasks, first call on a fresh pool" tasks/s 0 ""
row imap_unordered_tasks_per_s "imap_unordered, chunksize 1 (median of 5)" tasks/s 0 "≥ 30×"
row apply_async_rtt_p50 "apply_async().get() p50" µs 1 "≤ 10 µs"
row apply_async_rtt_p99 "apply_async().get() p99" µs 1 ""
row pool2_start_stop_fork "Pool(2) start + stop" ms 1 "≤ 2 ms"
row cpu_speedup_process "CPU-bound, 2 workers vs serial" × 0 "≥ 1.9×"
echo "| CPU-bound speed-up, thread backend | $(printf %.3g "$(value "$ours" cpu_speedup_thread)") × | | | |"
echo "| map 1M tiny tasks, thread backend | $(printf %.4g "$(value "$ours" thread_map_tasks_per_s)") tasks/s | | | |"
echo "| per-worker RSS / private memory | $(printf %.3g "$(value "$ours" worker_rss)") / $(printf %.3g "$(value "$ours" worker_private)") MiB | | | ≤ 4 MiB |"
echo
