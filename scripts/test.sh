#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs `meson test`.
# Extra arguments go to `meson test` (e.g. a suite name or --repeat).
# PROCPOOL_BUILD_DIR and PROCPOOL_MESON_ARGS select another build, e.g. a sanitizer one.
# A new build directory is set up with warnings as errors (CI, .ci/run, runs this on a fresh checkout);
# PROCPOOL_MESON_ARGS comes after, so -Dwerror=false there turns it off.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build_dir=${PROCPOOL_BUILD_DIR:-build}
# shellcheck disable=SC2086
[ -f "$build_dir/build.ninja" ] || meson setup "$build_dir" -Dwerror=true ${PROCPOOL_MESON_ARGS:-}
ninja -C "$build_dir"
meson test -C "$build_dir" --print-errorlogs --num-processes 2 "$@"
