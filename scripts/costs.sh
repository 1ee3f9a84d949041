# Costs per decision of one load run, for `make bench` and `make bench-log` (sourced).
# Needs: $base (the sidecar's URL), $redis_url, $pid (the sidecar's process), $clk.
# Costs that do not swing with the machine's speed: Redis commands and round trips per
# decision; and CPU per decision of the sidecar, Redis and the load generator.

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
redis_calls() { redis-cli -u "$redis_url" info commandstats | awk -F'[=,:]' '/^cmdstat_/ {n += $3} END {print n + 0}'; }
redis_cpu() { redis-cli -u "$redis_url" info cpu | awk -F: '/^used_cpu_(sys|user):/ {n += $2} END {printf "%.6f", n}'; }
decisions() { curl -s "$base/metrics" | awk '/^risk_decision_duration_seconds_count/ {n += $2} END {print n + 0}'; }
# Round trips the answer waits on (observe, store_decision, get_decision), and the
# decisions' writes sent without a wait (finish_decision).
round_trips() {
  curl -s "$base/metrics" | awk '/^risk_redis_round_trips_total/ {
    if ($0 ~ /op="(finish_decision|compact)"/) s += $2; else if ($0 !~ /op="labels"/) w += $2 } END {print w + 0, s + 0}'
}
# TreeSHAP's time and count so far ("seconds explanations"): excluded from the sidecar's
# CPU target, and its share depends on how many decisions the mix sends into a model band.
explains() {
  curl -s "$base/metrics" | awk '/^risk_model_explain_duration_seconds_sum/ {s = $2} /^risk_model_explain_duration_seconds_count/ {c = $2} END {print s + 0, c + 0}'
}
# Every PostgreSQL process's CPU (the writer's backends live through a run).
pg_ticks() { local n=0; for p in $(pgrep -x postgres || true); do n=$((n + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$n"; }

# measure LABEL WRK-ARGS...: one wrk run; prints "LABEL rps= p99_us= decisions= ..." with
# the costs per decision (the generator's per request).
measure() {
  local label=$1; shift
  local c0 r0 rc0 d0 p0 t0 x0 line c1 r1 rc1 d1 p1 t1 x1 n gen
  c0=$(cpu_ticks "$pid"); r0=$(redis_calls); rc0=$(redis_cpu); d0=$(decisions); p0=$(pg_ticks); t0=$(round_trips); x0=$(explains)
  gen=$(mktemp)
  line=$(/usr/bin/time -f "%U %S" -o "$gen" wrk -t1 --timeout 2s -d"${duration}s" "$@" | grep '^WRK')
  sleep 0.5 # the log writer's last batch, the unawaited writes
  c1=$(cpu_ticks "$pid"); r1=$(redis_calls); rc1=$(redis_cpu); d1=$(decisions); p1=$(pg_ticks); t1=$(round_trips); x1=$(explains)
  n=$((d1 - d0))
  python3 - "$label" "$line" "$n" "$c0" "$c1" "$clk" "$r0" "$r1" "$rc0" "$rc1" "$p0" "$p1" "$t0" "$t1" "$(cat "$gen")" "$x0" "$x1" <<'PY'
import sys
label, line, n, c0, c1, clk, r0, r1, rc0, rc1, p0, p1, t0, t1, gen, x0, x1 = sys.argv[1:]
kv = dict(p.split("=") for p in line.split()[1:])
n = max(int(n), 1)
(w0, s0), (w1, s1) = (map(float, t.split()) for t in (t0, t1))
gen_s = sum(float(x) for x in gen.split()[-2:])
requests = max(float(kv.get("requests", n)), 1)
(es0, ec0), (es1, ec1) = (x.split() for x in (x0, x1))
shap_us = (float(es1) - float(es0)) * 1e6 / n
cpu_us = (int(c1) - int(c0)) / int(clk) * 1e6 / n
print(f"{label} rps={kv['rps']} p99_us={kv['p99_us']} decisions={n} sidecar_cpu_us={(int(c1) - int(c0)) / int(clk) * 1e6 / n:.1f} "
      f"redis_cmds={(int(r1) - int(r0)) / n:.1f} redis_cpu_us={(float(rc1) - float(rc0)) * 1e6 / n:.1f} "
      f"round_trips={(w1 - w0) / n:.2f} unawaited_writes={(s1 - s0) / n:.2f} "
      f"generator_cpu_us={gen_s * 1e6 / requests:.1f} postgres_cpu_us={(int(p1) - int(p0)) / int(clk) * 1e6 / n:.1f} "
      f"explained={(float(ec1) - float(ec0)) / n:.3f} shap_us={shap_us:.1f} sidecar_cpu_ex_shap_us={cpu_us - shap_us:.1f}")
PY
  rm -f "$gen"
}
