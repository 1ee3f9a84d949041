#!/usr/bin/env bash
# Drops the databases the tests create (one per test: shop_test_<uuid>, shop_e2e_*, risk_test_<uuid>).
set -euo pipefail
url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
command -v psql >/dev/null || exit 0
psql "$url" -Atqc "select datname from pg_database where datname like 'shop\_test\_%' or datname like 'shop\_e2e\_%' or datname like 'risk\_test\_%'" |
  while read -r db; do psql "$url" -qc "drop database if exists \"$db\" with (force)" >/dev/null; done
