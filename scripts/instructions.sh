#!/usr/bin/env bash
# Instructions per decision in the sidecar (all its threads: HTTP, parsing, the Redis
# client, features, the model, the policy), counted by callgrind: a figure that does not
# swing with the machine's speed. The sidecar starts under valgrind with counting off,
# is warmed up, then counts N decisions of the simulator's mix sent one at a time.
# Prints "INSTRUCTIONS per_decision=… decisions=…" (and the top functions to
# bench-results/callgrind-top.txt). Then the same for Redis: a private redis-server under
# callgrind (port REDIS_INSTR_PORT), the sidecar running normally against it, N decisions
# counted: "REDIS_INSTRUCTIONS per_decision=…" (top functions in
# bench-results/callgrind-redis-top.txt), the Redis CPU target's steady counterpart.
# INSTR_HOT=name: every request for one customer, card, device and IP (the hot customer:
# its 500 events fill the ring and fold the journal every 8th).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-results; mkdir -p "$out"
port=${INSTR_PORT:-18083}
base="http://127.0.0.1:$port"
n=${INSTR_DECISIONS:-400}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
prefix="bench-instr-$(date +%s)"
export HISTORY=${HISTORY:-build/history.jsonl}
dir=$(mktemp -d)
RISK__SERVER__PORT=$port RISK__SERVER__WORKERS=1 RISK__REDIS__URL=$redis_url RISK__REDIS__KEY_PREFIX=$prefix \
  RISK__DECISION__BUDGET_MS=2000 RISK__REDIS__COMMAND_TIMEOUT_MS=2000 RUST_LOG=warn \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.out" \
  "${SIDECAR_BINARY:-./target/release/risk-sidecar}" > "$dir/sidecar.log" 2>&1 &
vpid=$!
trap 'kill -TERM $vpid 2>/dev/null; wait $vpid 2>/dev/null || true; scripts/purge-keys.sh "$prefix*" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 600); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "$base/readyz" >/dev/null || { echo "sidecar under valgrind did not become ready"; tail "$dir/sidecar.log"; exit 1; }

send() { # $1: how many, $2: offset into the history [$3: the sidecar's URL]
  python3 - "${3:-$base}" "$HISTORY" "$1" "$2" <<'PY'
import http.client, json, os, sys, urllib.parse
base, path, n, skip = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
hot = os.environ.get("INSTR_HOT")
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
with open(path) as f:
    lines = [next(f) for _ in range(skip + n)][skip:]
bad = 0
for i, line in enumerate(lines):
    body = json.loads(line)
    body["transaction_id"] = f"instr-{skip}-{i}"
    if hot:
        # One customer, card, device and IP for every request: their history grows.
        body["customer"]["id"] = f"cus-{hot}"
        body["payment"]["card_fingerprint"] = f"card-{hot}"
        body["device"] = {**body.get("device", {}), "ip": "203.0.113.77", "id": f"dev-{hot}"}
    conn.request("POST", "/v1/decisions", json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse(); r.read()
    bad += r.status != 200
if bad:
    sys.exit(f"{bad} of {n} decisions failed")
PY
}
send 100 0
callgrind_control -i on "$vpid" >/dev/null 2>&1
callgrind_control -z "$vpid" >/dev/null 2>&1
send "$n" 100
callgrind_control -d "$vpid" >/dev/null 2>&1
callgrind_control -i off "$vpid" >/dev/null 2>&1
sleep 1
dump=$(ls -t "$dir"/cg.out* | head -1)
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}')
cp "$dump" "$out/callgrind.out"
callgrind_annotate --threshold=60 "$dump" 2>/dev/null | sed -n '1,60p' > "$out/callgrind-top.txt" || true
python3 -c "import sys; t, n = int(sys.argv[1]), int(sys.argv[2]); print(f'INSTRUCTIONS per_decision={t / n:.0f} decisions={n} (callgrind, one worker, sequential)')" "$total" "$n"

# Redis's side. Skipped when there is no local redis-server to run under valgrind.
command -v redis-server >/dev/null || { echo "REDIS_INSTRUCTIONS skipped (no redis-server here)"; exit 0; }
rport=${REDIS_INSTR_PORT:-16391}
sport=$((port + 1))
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/redis.out" \
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no > "$dir/redis.log" 2>&1 &
rpid=$!
RISK__SERVER__PORT=$sport RISK__SERVER__WORKERS=1 RISK__REDIS__URL="redis://127.0.0.1:$rport" RISK__REDIS__KEY_PREFIX=instr \
  RISK__DECISION__BUDGET_MS=2000 RISK__REDIS__COMMAND_TIMEOUT_MS=2000 RUST_LOG=warn \
  "${SIDECAR_BINARY:-./target/release/risk-sidecar}" > "$dir/sidecar-redis.log" 2>&1 &
spid=$!
trap 'kill -TERM $vpid $spid $rpid 2>/dev/null; wait $vpid $spid $rpid 2>/dev/null || true; scripts/purge-keys.sh "$prefix*" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$sport/readyz" | grep -q '"velocity_store":{[^}]*"connected"' && break; sleep 0.2; done
send 100 0 "http://127.0.0.1:$sport"
callgrind_control -i on "$rpid" >/dev/null 2>&1
callgrind_control -z "$rpid" >/dev/null 2>&1
send "$n" 100 "http://127.0.0.1:$sport"
callgrind_control -d "$rpid" >/dev/null 2>&1
callgrind_control -i off "$rpid" >/dev/null 2>&1
sleep 1
dump=$(ls -t "$dir"/redis.out* | head -1)
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}')
callgrind_annotate --threshold=60 "$dump" 2>/dev/null | sed -n '1,60p' > "$out/callgrind-redis-top.txt" || true
python3 -c "import sys; t, n = int(sys.argv[1]), int(sys.argv[2]); print(f'REDIS_INSTRUCTIONS per_decision={t / n:.0f} decisions={n} (callgrind on redis-server, the same requests)')" "$total" "$n"
