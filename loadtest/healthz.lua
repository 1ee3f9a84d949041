-- wrk against GET /healthz: the load generator's own ceiling on this machine.
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("WRK rps=%.0f p50_us=%d p99_us=%d p999_us=%d requests=%d non2xx=%d socket_errors=0\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.requests, summary.errors.status))
end
