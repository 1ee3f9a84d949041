#!/usr/bin/env bash
# Makes sure a three-node Redis Cluster answers on 127.0.0.1:7000-7002 (REDIS_CLUSTER_PORT,
# default 7000, and the two after it) for the store suite's cluster case: starts the
# nodes without persistence under build/redis-cluster and joins them when they do not
# answer. The node-failure test starts a cluster of its own (testkit::RedisCluster).
# Prints the URL the sidecar takes.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${REDIS_CLUSTER_PORT:-7000}
ports=("$base" $((base + 1)) $((base + 2)))
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  echo "ensure-redis-cluster: installing redis-server from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
}
url="redis-cluster://127.0.0.1:${ports[0]}?node=127.0.0.1:${ports[1]}&node=127.0.0.1:${ports[2]}"
if redis-cli -p "${ports[0]}" cluster info 2>/dev/null | grep -q cluster_state:ok; then
  echo "$url"; exit 0
fi
for p in "${ports[@]}"; do
  dir=build/redis-cluster/$p
  # A half-made cluster from an earlier try: start it again from nothing.
  if redis-cli -p "$p" ping >/dev/null 2>&1; then redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; sleep 0.2; fi
  rm -rf "$dir"; mkdir -p "$dir"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-node-timeout 500 --cluster-require-full-coverage no \
    --dir "$PWD/$dir" --logfile "$PWD/$dir/redis.log" --save "" --appendonly no >&2
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 1 100); do
  if redis-cli -p "${ports[0]}" cluster info | grep -q cluster_state:ok; then echo "$url"; exit 0; fi
  sleep 0.1
done
echo "ensure-redis-cluster: the cluster on ${ports[*]} did not reach cluster_state:ok" >&2
exit 1
