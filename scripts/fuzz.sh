#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time: `scripts/fuzz.sh [SECONDS] [TARGET...]`
# (default 60 s each, all targets). Not part of every CI run.
#
# cargo-fuzz drives libFuzzer with coverage instrumentation and AddressSanitizer, which need
# rustc's `-Z` flags. Only the stable toolchain is assumed: RUSTC_BOOTSTRAP=1 lets stable rustc
# accept them (its sanitizer runtimes ship with the standard library), so no nightly is needed.
#
# A crash leaves its input in fuzz/artifacts/<target>/. Fix the bug, then copy the input into
# fuzz/regressions/<target>/ (named for what it caught): the regression tests replay every file
# there in the ordinary test suite (crates/*/tests/fuzz_regressions.rs), and the fuzzer starts
# from them too.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then TARGETS=(template query expr readers); fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${QTASK_FUZZ_TARGET_DIR:-$HOME/.cache/qtask/target-fuzz}"

for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/regressions/$t"
  echo "== fuzzing $t for ${SECS}s"
  # Corpus first (new inputs are written there), regressions as read-only seeds.
  cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/regressions/$t" -- \
    -max_total_time="$SECS" -max_len=8192 -rss_limit_mb=2048 -timeout=10
done
