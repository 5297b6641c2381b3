#!/bin/sh
# Usage: expect_compile_error.sh SOURCE EXPECTED_MESSAGE COMPILER [ARGS...]
# Passes when SOURCE compiles with -DCONTROL and fails without it, with EXPECTED_MESSAGE among
# the compiler's diagnostics.
set -u
source=$1
expected=$2
shift 2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "$@" -fsyntax-only -DCONTROL "$source" >"$log" 2>&1; then
  echo "FAIL: the control variant of $source does not compile:"
  cat "$log"
  exit 1
fi
if "$@" -fsyntax-only "$source" >"$log" 2>&1; then
  echo "FAIL: $source compiled, but it must be rejected"
  exit 1
fi
if ! grep -qF -- "$expected" "$log"; then
  echo "FAIL: $source was rejected, but without the message: $expected"
  cat "$log"
  exit 1
fi
echo "ok: rejected with: $expected"
