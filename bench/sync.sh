#!/usr/bin/env bash
# Value += 1 under its lock from 2 processes, and uncontended lock acquire/release:
# procpool vs CPython in the same run. Prints markdown tables.
set -euo pipefail
build_dir=${1:-build-bench}
ops=${PROCPOOL_BENCH_SYNC_OPS:-2000000}
py_ops=${PROCPOOL_BENCH_SYNC_PY_OPS:-200000}
runs=${PROCPOOL_BENCH_RUNS_SYNC:-5}
ours=$("$build_dir/bench/bench-sync" "$ops" "$runs")
peer=$(python3 "$(dirname "$0")/sync_bench.py" "$py_ops" "$runs")
get() { awk -F'\t' -v k="$2" '$1 == k { print $2 }' <<<"$1"; }
py_value=$(get "$peer" value_pystyle)
echo "### Value += 1 under its lock, 2 processes (median of $runs runs)"
echo
echo "| variant | procpool ops/s | CPython ops/s | speed-up |"
echo "|---|---|---|---|"
for v in value_pystyle value_direct; do
  label=$([ "$v" = value_pystyle ] && echo 'as Python: lock, then `set(value() + 1)`' || echo 'C++ idiom: lock, `++get_obj()`')
  awk -v l="$label" -v a="$(get "$ours" "$v")" -v b="$py_value" \
    'BEGIN { printf "| %s | %.2fM | %.0fk | %.0f× |\n", l, a / 1e6, b / 1e3, a / b }'
done
echo
echo "### Uncontended acquire + release (median of $runs runs)"
echo
echo "| lock | procpool ns | CPython ns |"
echo "|---|---|---|"
for k in lock_process lock_thread rlock_process std_mutex; do
  case $k in
    lock_process) label='`Lock` (processes) / `multiprocessing.Lock`' ;;
    lock_thread) label='`dummy::Lock` (threads) / `threading.Lock`' ;;
    rlock_process) label='`RLock` (processes) / `multiprocessing.RLock`' ;;
    std_mutex) label='`std::mutex` (reference)' ;;
  esac
  py=$(get "$peer" "$k")
  printf '| %s | %s | %s |\n' "$label" "$(get "$ours" "$k")" "${py:-n/a}"
done
echo
