#!/usr/bin/env bash
# End-to-end: the sidecar (shipped model and policy, in-memory counters) and the shop
# (a fresh database, demo data) on free ports, then e2e/checkout.mjs in headless
# Chromium. Screenshots land in target/e2e/. Installs Chromium and playwright-core
# from the registries when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null || apt-get install -y -qq chromium >/dev/null
fi
(cd e2e && npm ci --no-audit --no-fund --silent)
cargo build --locked -q -p shop -p risk-sidecar -p testkit --bin sandbox-gateway

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
risk_port=$(free_port); shop_port=$(free_port); gateway_port=$(free_port)
db="shop_e2e_$(date +%s)"
admin_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
psql "$admin_url" -qc "create database $db"
mkdir -p target/e2e
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
            psql "$admin_url" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# The shipped model and rules, with the model's score bands moved out of the way
# (challenge from 0.5, never block): the path is then set by the velocity rules, which
# do not move when the model is retrained. The shipped bands block a new account's
# second card within minutes outright (see ml/REPORT.md).
policy=target/e2e/policy.yaml
sed 's/^version: .*/&\nthresholds: {challenge: 0.5, block: 1.0}/' risk-sidecar/configuration/policy.yaml >"$policy"
SANDBOX_GATEWAY_ADDR=127.0.0.1:$gateway_port ./target/debug/sandbox-gateway >target/e2e/gateway.log 2>&1 & pids+=($!)
RISK__POLICY__PATH=$policy RISK__SERVER__PORT=$risk_port RISK__REDIS__URL= RISK__SERVER__WORKERS=1 \
  ./target/debug/risk-sidecar >target/e2e/sidecar.log 2>&1 & pids+=($!)
SHOP__SERVER__PORT=$shop_port SHOP__DATABASE__URL="${admin_url%/*}/$db" SHOP__RISK__URL="http://127.0.0.1:$risk_port" \
  SHOP__GATEWAY__URL="http://127.0.0.1:$gateway_port" SHOP__DEV__ENABLED=true SHOP__DEV__DEMO_DATA=true SHOP__SERVER__WORKERS=2 \
  ./target/debug/shop >target/e2e/shop.log 2>&1 & pids+=($!)
for url in "http://127.0.0.1:$gateway_port/healthz" "http://127.0.0.1:$risk_port/readyz" "http://127.0.0.1:$shop_port/readyz"; do
  scripts/wait-ready.sh "$url" 60 || { tail -20 target/e2e/*.log; exit 1; }
done
SHOP_URL="http://localhost:$shop_port" OUT_DIR=target/e2e node e2e/checkout.mjs
