#!/usr/bin/env bash
# Makes sure a Redis answers at REDIS_URL (default redis://127.0.0.1:6379): if the
# default local one does not answer, installs redis-server from Debian's packages when
# it is missing and starts it without persistence. A non-default REDIS_URL is the
# caller's to provide.
set -euo pipefail
url=${REDIS_URL:-redis://127.0.0.1:6379}
hostport=${url#redis://}; hostport=${hostport%%/*}
host=${hostport%:*}; port=${hostport##*:}

ping() {
  # Plain bash, so it works before redis-cli is installed.
  timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port && printf 'PING\r\n' >&3 && IFS= read -r line <&3 && [[ \$line == +PONG* ]]" 2>/dev/null
}

ping && exit 0
if [ "$url" != "redis://127.0.0.1:6379" ]; then
  echo "ensure-redis: nothing answers at $url (REDIS_URL); start it, or unset REDIS_URL" >&2
  exit 1
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "ensure-redis: installing redis-server from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi
echo "ensure-redis: starting redis-server on 127.0.0.1:6379"
mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
  --dir /var/lib/redis --logfile /var/log/redis/ci.log
for _ in $(seq 1 50); do ping && exit 0; sleep 0.1; done
echo "ensure-redis: redis-server did not answer on 127.0.0.1:6379" >&2
exit 1
