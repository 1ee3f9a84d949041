-- wrk's one-line report, shared by the decision scripts (scripts/costs.sh reads it).
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("WRK rps=%.0f p50_us=%d p99_us=%d p999_us=%d requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.requests, summary.errors.status, errors))
end
