# Shared by the area scripts (bench/<area>.sh): runs bench programs in fresh processes, keeps their
# `key<TAB>value` lines, and prints the area's one markdown table (bench/stats.py does the
# arithmetic: median, min-max, two modes). docs/benchmarks.md describes the method.
#
#   source "$(dirname "$0")/lib.sh"
#   bench_init AREA                   a work directory for this area (removed at exit)
#   bench_run SET CMD...              runs CMD once and appends its key<TAB>value lines to SET
#   bench_record SET KEY VALUE        appends one sample to SET
#   bench_row FIGURE IMPL ROLE SET:KEY UNIT [OPTION...]
#       ROLE: ours (the figure's procpool row, first of the figure), variant (another procpool
#       row), peer (procpool's speed over it is shown), limit (shown as a fraction: procpool at N%).
#       OPTION: lower (lower is better), target=TEXT, max=N / min=N (checks the median of an ours
#       row), ratio=N (on a peer row: procpool at least N× as fast, checked in every run).
#   bench_table TITLE [NOTE]           prints the table; writes the chart data when BENCH_CHART_DATA
#                                     (a directory, set by bench/run.sh) is set
#
# BENCH_RUNS (default 5) is the number of fresh-process runs of every program; an area script may
# take fewer only for a figure it documents as stable.
bench_runs=${BENCH_RUNS:-5}
bench_stats="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/stats.py"

bench_init() {
  bench_area=$1
  bench_work=$(mktemp -d)
  mkdir -p "$bench_work/samples"
  : > "$bench_work/rows.tsv"
  bench_load_before=$(cut -d' ' -f1 /proc/loadavg)
  trap 'rm -rf "$bench_work"' EXIT
}

bench_run() {
  local set=$1
  shift
  "$@" >> "$bench_work/samples/$set.tsv"
}

bench_record() {
  printf '%s\t%s\n' "$2" "$3" >> "$bench_work/samples/$1.tsv"
}

bench_row() {
  local IFS=$'\t'
  echo "$*" >> "$bench_work/rows.tsv"
}

bench_table() {
  local title=$1 note=${2:-}
  local chart=()
  [ -n "${BENCH_CHART_DATA:-}" ] && chart=("$BENCH_CHART_DATA/$bench_area.tsv")
  echo "#### $title"
  echo
  echo "\`${BENCH_COMMAND:-bench/$bench_area.sh}\` · $(date -u '+%Y-%m-%d %H:%M UTC') · $(nproc) cores, kernel $(uname -r)" \
    "· load average $bench_load_before before, $(cut -d' ' -f1 /proc/loadavg) after · $bench_runs runs in fresh processes"
  echo
  python3 "$bench_stats" table "$bench_work" "${chart[@]}"
  [ -z "$note" ] || printf '\n%s\n' "$note"
  echo
}
