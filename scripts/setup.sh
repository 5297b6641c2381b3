#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running procpool:
# install the dependencies, build, then run the bundled example batch on 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
exec build/tools/procpool/procpool run -j 2 --tag examples/batch.txt
