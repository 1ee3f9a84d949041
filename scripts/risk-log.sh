#!/usr/bin/env bash
# `make export-history` / `make rebuild-counters`: risk-log with the sidecar's settings.
# The log's database defaults to the one `make run` uses; the local secrets file is read
# when there is one. Neither command hashes an address, but the sidecar's settings
# require the e-mail key with a log URL, so one is made up when none is set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .secrets/local.env ]; then set -a; . .secrets/local.env; set +a; fi
export RISK__DECISION_LOG__URL=${RISK__DECISION_LOG__URL:-postgres://postgres@127.0.0.1:5432/shop}
export RISK__REDIS__URL=${RISK__REDIS__URL:-${REDIS_URL:-redis://127.0.0.1:6379}}
export RISK__DECISION_LOG__EMAIL_HASH_KEY=${RISK__DECISION_LOG__EMAIL_HASH_KEY:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}
# Counting needs Redis to answer; a rebuild is not a decision with a 5 ms budget.
export RISK__REDIS__COMMAND_TIMEOUT_MS=${RISK__REDIS__COMMAND_TIMEOUT_MS:-2000}
exec ./target/release/risk-log "$@"
