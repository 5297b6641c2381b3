#!/usr/bin/env bash
# Runs every benchmark side by side with its peers (CPython multiprocessing, Boost message_queue,
# oneTBB, std::async, xargs -P, GNU parallel) and the practical limits, in one run; prints one
# markdown table per area, writes them into the README's Benchmarks section (one block per area,
# between <!-- bench:AREA --> markers, replacing that area's previous block) and draws one chart
# per area into docs/bench/AREA.svg. docs/benchmarks.md describes the method.
# Usage: bench/run.sh [--no-readme] [area...]
#   areas: the bench/<area>.sh scripts (default: all); --no-readme: print only (no README, no charts)
#   BENCH_RUNS (default 5): runs of every program, each in a fresh process
set -euo pipefail
cd "$(dirname "$0")/.."
readme=1
if [ "${1:-}" = --no-readme ]; then
  readme=0
  shift
fi
scripts/install-deps.sh
build_dir=build-bench
[ -f "$build_dir/build.ninja" ] || meson setup "$build_dir" --buildtype=release -Dtests=false >/dev/null
ninja -C "$build_dir" >/dev/null
areas=("$@")
if ((${#areas[@]} == 0)); then
  for s in bench/*.sh; do
    name=$(basename "$s" .sh)
    [ "$name" = run ] || [ "$name" = lib ] || areas+=("$name")
  done
fi
export BENCH_COMMAND="bench/run.sh${*:+ $*}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ((readme)); then export BENCH_CHART_DATA=$work; fi
echo "## procpool benchmarks ($(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d))"
echo
# An area that fails is reported and left out of the README; the others still run.
done_areas=() failed=()
for area in "${areas[@]}"; do
  if bash "bench/$area.sh" "$build_dir" | tee "$work/$area.md"; then
    done_areas+=("$area")
  else
    failed+=("$area")
    echo "run.sh: bench/$area.sh failed; its README block is left as it was" >&2
  fi
done
if ((readme)); then
  mkdir -p docs/bench
  for area in "${done_areas[@]}"; do
    if [ -f "$work/$area.tsv" ]; then
      title=$(sed -n 's/^#### //p' "$work/$area.md" | head -n1)
      python3 bench/stats.py chart "$work/$area.tsv" "docs/bench/$area.svg" "${title:-$area}"
      printf '![%s](docs/bench/%s.svg)\n' "${title:-$area} chart" "$area" >> "$work/$area.md"
    fi
    python3 bench/stats.py readme README.md "$area" "$work/$area.md"
  done
  ((${#done_areas[@]} == 0)) || echo "run.sh: wrote README.md's blocks for ${done_areas[*]} and their charts in docs/bench/" >&2
fi
((${#failed[@]} == 0)) || { echo "run.sh: failed: ${failed[*]}" >&2; exit 1; }
