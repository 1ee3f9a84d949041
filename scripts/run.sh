#!/usr/bin/env bash
# `make run`: the risk sidecar and the shop (release builds), stopped together by Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
RISK__REDIS__URL=${REDIS_URL:-redis://127.0.0.1:6379} RISK__LOG__FORMAT=pretty ./target/release/risk-sidecar & pids+=($!)
SHOP__DEV__DEMO_DATA=true SHOP__LOG__FORMAT=pretty ./target/release/shop & pids+=($!)
scripts/wait-ready.sh http://127.0.0.1:8081/readyz 60
scripts/wait-ready.sh http://127.0.0.1:8080/readyz 60
cat <<MSG

  Shop:           http://localhost:8080        (demo shoppers: ada@example.com, grace@example.com;
                                                password: demo-password-1)
  Dev mailbox:    http://localhost:8080/dev/mailbox   (one-time codes of challenged payments)
  Risk sidecar:   http://127.0.0.1:8081        (POST /v1/decisions, /readyz, /metrics)
  Sandbox cards:  4242 4242 4242 4242 approved, 4000 0000 0000 0002 declined

  Ctrl-C stops both.
MSG
wait -n "${pids[@]}"
