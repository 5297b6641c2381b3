#!/usr/bin/env bash
# Installs everything procpool needs to build, test and benchmark, from Debian 12 packages.
# Idempotent: skips apt-get entirely when every package is already present.
set -euo pipefail

packages=(
  # build
  g++ meson ninja-build pkg-config cmake
  # libraries
  libboost-dev libspdlog-dev libfmt-dev doctest-dev libcereal-dev libcli11-dev
  # procpool run --plus: Perl regexes in the bash-like replacement strings, as GNU parallel's
  libpcre2-dev
  # tests and benchmarks: peers, a terminal for the progress bar, process tools
  python3 parallel tmux procps findutils coreutils time
  # GNU parallel's --csv needs Text::CSV (tests/cli compare procpool run --csv with it)
  libtext-csv-perl
  # benchmarks: oneTBB (the thread backend's peer), gnuplot (bench/run.sh's charts)
  libtbb-dev gnuplot-nox
  # the broker (issue 13): hiredis to build `procpool worker`, a redis-server the tests start themselves
  redis-server libhiredis-dev iproute2 util-linux
  # the cluster Pool's bench (issue 14): RQ, the Python job queue on the same Redis, as a peer
  python3-rq
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "install-deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
