#!/usr/bin/env bash
# Runs every benchmark side by side with its peers (CPython multiprocessing, Boost
# message_queue, xargs -P, GNU parallel) in one run, and prints markdown tables.
# Usage: bench/run.sh [area...]   (areas: the bench/<area>.sh scripts; default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build_dir=build-bench
[ -f "$build_dir/build.ninja" ] || meson setup "$build_dir" --buildtype=release -Dtests=false >/dev/null
ninja -C "$build_dir" >/dev/null
areas=("$@")
if ((${#areas[@]} == 0)); then
  for s in bench/*.sh; do
    name=$(basename "$s" .sh)
    [ "$name" = run ] || areas+=("$name")
  done
fi
echo "## procpool benchmarks ($(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d))"
echo
for area in "${areas[@]}"; do
  bash "bench/$area.sh" "$build_dir"
done
