#!/usr/bin/env bash
# Deletes the keys that tests and benchmarks leave in the local Redis (each run works
# under its own prefix; counters carry a 31-day TTL, so without this they pile up).
#   purge-keys.sh 'test-*' 'bench-*'
set -euo pipefail
url=${REDIS_URL:-redis://127.0.0.1:6379}
command -v redis-cli >/dev/null || exit 0
for pattern in "$@"; do
  # One key a line: split on newlines only, so a key with spaces stays one argument.
  redis-cli -u "$url" --scan --pattern "$pattern" | xargs -r -d '\n' -n 1000 redis-cli -u "$url" unlink >/dev/null
done
# The store suite's Redis Cluster (REDIS_CLUSTER_URL), node by node; one key per UNLINK,
# as keys of different slots cannot share one.
if [ -n "${REDIS_CLUSTER_URL:-}" ]; then
  nodes=$(grep -oE '[0-9.]+:[0-9]+' <<<"$REDIS_CLUSTER_URL")
  for node in $nodes; do
    for pattern in "$@"; do
      redis-cli -h "${node%:*}" -p "${node##*:}" --scan --pattern "$pattern" 2>/dev/null |
        xargs -r -d '\n' -n 1 redis-cli -h "${node%:*}" -p "${node##*:}" unlink >/dev/null || true
    done
  done
fi
