#!/usr/bin/env bash
# `make fuzz` (and a short run in `make test`): each cargo-fuzz target of the sidecar for
# SECONDS seconds (default 60), starting from the committed seeds. cargo fuzz passes
# nightly-only flags to rustc; RUSTC_BOOTSTRAP=1 lets the machine's stable toolchain
# take them (no other toolchain can be fetched here). No sanitizer: the code is safe
# Rust, and an ASan build takes far longer. A crash fails the run and leaves its input
# in risk-sidecar/fuzz/artifacts/; make it a regression test.
set -euo pipefail
cd "$(dirname "$0")/../risk-sidecar"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
export RUSTC_BOOTSTRAP=1
for target in parse pan; do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz: $target for ${seconds}s"
  log=fuzz/artifacts/$target.log
  mkdir -p fuzz/artifacts
  if ! cargo fuzz run -s none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $target FAILED (input in risk-sidecar/fuzz/artifacts/$target/)"
    exit 1
  fi
  grep -E '^Done' "$log"
done
