#!/usr/bin/env bash
# Checks that procpool works as a meson subproject: a throwaway parent project with this tree under
# subprojects/procpool (a symlink) gets `dependency('procpool')`, builds a program that starts a process
# and passes it a value through a Queue, and runs it. Also checks that the parent's build holds the
# library only: no examples, no command, no tests, no benchmarks (so no CLI11 or doctest needed; the library's build needs Boost's headers).
# Not a meson test: it compiles the library again (about 2 minutes of CPU). Usage: scripts/check-subproject.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/procpool-subproject-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/subprojects"
ln -s "$root" "$work/subprojects/procpool"

cat >"$work/meson.build" <<'MESON'
project('parent', 'cpp', default_options: ['cpp_std=c++20'])
procpool_dep = dependency('procpool', fallback: ['procpool'])
executable('parent', 'parent.cpp', dependencies: procpool_dep)
MESON

cat >"$work/parent.cpp" <<'CPP'
#include <procpool/procpool.hpp>
#include <procpool/version.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  procpool::init(argc, argv);
  procpool::Queue<int> queue;
  procpool::Process child([&queue] { queue.put(6 * 7); });
  child.start();
  const int value = queue.get();
  child.join();
  std::printf("procpool %s as a subproject: %d from the child, exit code %d\n", PROCPOOL_VERSION, value,
              child.exitcode().value_or(-1));
  return value == 42 && child.exitcode() == 0 ? 0 : 1;
}
CPP

cd "$work"
meson setup build >setup.log 2>&1 || { cat setup.log; exit 1; }
# Targets of the subproject other than the library (and its os layer) would be a regression.
extra=$(ninja -C build -t targets all | grep -E '^subprojects/procpool/(examples|tools|tests|bench)/' || true)
if [ -n "$extra" ]; then
  echo "check-subproject: the parent build has more than the library:" >&2
  echo "$extra" | head >&2
  exit 1
fi
ninja -C build >build.log 2>&1 || { tail -50 build.log; exit 1; }
./build/parent
echo "check-subproject: OK (library only; $(ninja -C build -t targets all | grep -c '^subprojects/procpool/') subproject targets)"
