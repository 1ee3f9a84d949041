#!/usr/bin/env bash
# Makes sure PostgreSQL answers at 127.0.0.1:5432 (trust auth, user postgres): if not,
# installs it from Debian's packages when missing and starts the cluster. A DATABASE_URL
# elsewhere is the caller's to provide.
set -euo pipefail
ping() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/5432" 2>/dev/null
}
ping && exit 0
if [ -n "${DATABASE_URL:-}" ] && [[ "$DATABASE_URL" != *"127.0.0.1:5432"* ]]; then
  echo "ensure-postgres: DATABASE_URL points elsewhere; start that server yourself" >&2
  exit 1
fi
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "ensure-postgres: installing postgresql from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  version=$(ls /etc/postgresql | head -1)
  # Trust on loopback, as on the project's machines: tests connect as postgres, no password.
  sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' \
    "/etc/postgresql/$version/main/pg_hba.conf"
fi
echo "ensure-postgres: starting the PostgreSQL cluster"
pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
for _ in $(seq 1 100); do ping && exit 0; sleep 0.1; done
echo "ensure-postgres: PostgreSQL did not answer on 127.0.0.1:5432" >&2
exit 1
