#!/usr/bin/env bash
# The documented long runs of the reliability campaigns (RELIABILITY.md), one after another,
# each printing its summary line. The short versions of the same tests run in `cargo test`;
# the fuzzers' short run is `.ci/fuzz`. Takes about 75 minutes on 2 cores, an hour of it fuzzing
# (6 targets x 10 minutes, one at a time).
#
#   scripts/reliability-long.sh            # everything
#   scripts/reliability-long.sh damaged    # some campaigns: damaged cursors paging kill9 hostile
#                                          # fairshare fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
only=("$@")
run() { # name env... -- test filter
  local name=$1; shift
  if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $name "* ]]; then return; fi
  echo "== $name ($(date -u +%FT%TZ))"
  local start=$SECONDS log status=0
  log=$(mktemp)
  env "$@" --nocapture >"$log" 2>&1 || status=$?
  grep -E '^(damaged files|cursor tampering|pagination|kill -9|hostile|fair share|  [a-z]|test result)' "$log" \
    | grep -v '^  flip\|^  overwrite\|^  truncate' || true
  echo "== $name: $((SECONDS - start)) s, exit $status (full output: $log)"
  [ $status -eq 0 ] || failed=1
}
failed=0
run damaged ACTLOG_DAMAGE_RUNS=500 cargo test --test it damaged:: --
run cursors ACTLOG_CURSOR_FLIPS=10000 cargo test --test it cursors:: --
run paging ACTLOG_PAGING_SIZE=100000 cargo test --test it paging:: --
run kill9 ACTLOG_KILL9_ITERATIONS=200 cargo test --test it kill9:: --
run hostile cargo test --test it hostile:: --
run fairshare ACTLOG_FAIRSHARE_SECS=10 cargo test --test it fairshare:: --
if [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" fuzz "* ]]; then
  # One target at a time, so each gets a whole core for its ten minutes.
  for t in $(ls fuzz/fuzz_targets | sed 's/\.rs$//'); do
    FUZZ_SECONDS=600 .ci/fuzz "$t" || failed=1
  done
fi
exit $failed
