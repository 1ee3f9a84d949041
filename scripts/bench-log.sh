#!/usr/bin/env bash
# The decision log's and the label counters' cost, in `make bench`: the same sidecar
# build without the log (`off`), with it (`on`), and with it but without reading the
# label and decline counters (`nolabels`, RISK__DECISION__LABEL_COUNTERS=false),
# alternated twice so that a drift of this shared machine falls on all, each a
# saturation run (wrk, 32 connections) and a paced run (2,000/s). The log's cost is
# on / off, the label counters' on / nolabels. Per decision: the sidecar's CPU (its process time over the run), Redis
# commands (INFO commandstats), Redis CPU (INFO cpu) and PostgreSQL's CPU (its
# processes' time). Prints a table, writes
# bench-results/log-cost.md, and the ratios on / off. With BEFORE_BINARY set (an older
# build of the sidecar), that build runs a third mode, `before` (no log), and the
# ratios off / before say what this build's hot path costs against it. BEFORE_DIR (a
# checkout of that build) gives it its own model and policy, when the feature list changed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-results; mkdir -p "$out"
duration=${BENCH_LOG_SECONDS:-10}
port=${BENCH_LOG_PORT:-18082}
base="http://127.0.0.1:$port"
redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
admin=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db="bench_log_$(date +%s)"
psql "$admin" -qc "create database $db"
log_url="${admin%/*}/$db"
spool=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
  psql "$admin" -qc "drop database if exists $db with (force)" || true
  rm -rf "$spool"
  scripts/purge-keys.sh "bench-log-*" >/dev/null 2>&1 || true
}
trap cleanup EXIT
clk=$(getconf CLK_TCK)

# shellcheck source=costs.sh
. scripts/costs.sh

start() { # $1: on | off | nolabels | before
  local extra=() binary=./target/release/risk-sidecar
  [ "$1" = before ] && binary=$BEFORE_BINARY
  [ "$1" = before ] && [ -n "${BEFORE_DIR:-}" ] && extra=(RISK__MODEL__DIR="$BEFORE_DIR/models/lgbm"
    RISK__POLICY__PATH="$BEFORE_DIR/risk-sidecar/configuration/policy.yaml")
  case "$1" in on | nolabels) extra=(RISK__DECISION_LOG__URL="$log_url" RISK__DECISION_LOG__SPOOL_DIR="$spool"
    RISK__DECISION_LOG__EMAIL_HASH_KEY="bench-email-hash-key-0123456789abcdef") ;; esac
  [ "$1" = nolabels ] && extra+=(RISK__DECISION__LABEL_COUNTERS=false)
  env RISK__SERVER__PORT="$port" RISK__REDIS__URL="$redis_url" RISK__REDIS__KEY_PREFIX="bench-log-$1-$RANDOM" \
    RISK__LOG__FORMAT=json RUST_LOG=warn "${extra[@]}" "$binary" >> "$out/sidecar-log-bench.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && return; sleep 0.1; done
  echo "sidecar ($1) did not become ready"; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

# MODES and ROUNDS narrow a run (e.g. MODES=off ROUNDS=4 with BEFORE_BINARY: an A/B).
read -ra modes <<< "${MODES:-off on nolabels}"
[ -n "${BEFORE_BINARY:-}" ] && modes+=(before)
results=()
for round in $(seq 1 "${ROUNDS:-2}"); do
  for mode in "${modes[@]}"; do
    start "$mode"
    wrk -t1 -c8 -d2s -s loadtest/mix.lua "$base/v1/decisions" >/dev/null
    results+=("$(measure "saturation/$mode/$round" -c32 -s loadtest/mix.lua "$base/v1/decisions")")
    stop
    # The paced run on fresh keys: after saturation most of the mix is in the model's
    # band and TreeSHAP would be most of its CPU (see bench.sh).
    start "$mode"
    wrk -t1 -c1 -d1s -s loadtest/mix.lua "$base/v1/decisions" >/dev/null
    results+=("$(RATE=2000 CONNS=20 measure "paced/$mode/$round" -c20 -s loadtest/mix-paced.lua "$base/v1/decisions")")
    echo "${results[-2]}"; echo "${results[-1]}"
    stop
  done
done
logged=$(psql "$log_url" -Atqc "select count(*) from risk.decisions" 2>/dev/null || echo "none (no log-on run)")
summary=$(printf '%s\n' "${results[@]}" | python3 -c '
import sys, collections
rows = collections.defaultdict(list)
for line in sys.stdin:
    parts = line.split()
    run, mode, _ = parts[0].split("/")
    rows[(run, mode)].append({k: float(v) for k, v in (p.split("=") for p in parts[1:])})
def mean(run, mode, key):
    v = [r[key] for r in rows[(run, mode)]]
    return sum(v) / len(v) if v else float("nan")
for run in ("saturation", "paced"):
    cells = []
    for key in ("rps", "p99_us", "sidecar_cpu_us", "sidecar_cpu_ex_shap_us", "explained", "redis_cmds", "redis_cpu_us",
                "round_trips", "postgres_cpu_us"):
        off, on, bare = mean(run, "off", key), mean(run, "on", key), mean(run, "nolabels", key)
        ratio = on / off if off else float("nan")
        labels = on / bare if bare else float("nan")
        cell = f"{key} off={off:.1f} on={on:.1f} nolabels={bare:.1f} on/off={ratio:.3f} on/nolabels={labels:.3f}"
        if rows[(run, "before")]:
            before = mean(run, "before", key)
            vs = off / before if before else float("nan")
            cell += f" before={before:.1f} off/before={vs:.3f}"
        cells.append(cell)
    print(f"{run}: " + "; ".join(cells))
')
echo "$summary"
{
  echo "# Decision log on / off, label counters on / off (nolabels), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${duration}s per run, modes ${modes[*]}, ${ROUNDS:-2} rounds"
  echo; echo '```'; printf '%s\n' "${results[@]}"; echo; echo "$summary"
  echo "rows in risk.decisions after the log-on runs: $logged"; echo '```'
} > "$out/log-cost.md"
echo "== written to $out/log-cost.md"
