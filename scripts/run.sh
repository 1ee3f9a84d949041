#!/usr/bin/env bash
# `make run`: the sandbox payment gateway, the risk sidecar and the shop (release
# builds) in development mode, stopped together by Ctrl-C. Local secrets are made once
# and kept in .secrets/local.env (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
secrets=.secrets/local.env
if [ ! -f "$secrets" ]; then
  mkdir -p .secrets && chmod 700 .secrets
  key() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }
  (umask 077; printf 'SHOP__AUTH__ACCESS_TOKEN_SECRET=%s\nSHOP__AUTH__CSRF_SECRET=%s\nSANDBOX_GATEWAY_FINGERPRINT_KEY=%s\n' \
    "$(key)" "$(key)" "$(key)" >"$secrets")
  echo "Made local secrets in $secrets."
fi
# Keys added since a secrets file was made are appended to it.
grep -q '^RISK__DECISION_LOG__EMAIL_HASH_KEY=' "$secrets" ||
  (umask 077; printf 'RISK__DECISION_LOG__EMAIL_HASH_KEY=%s\n' "$(python3 -c 'import secrets; print(secrets.token_hex(32))')" >>"$secrets")
set -a; . "$secrets"; set +a
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
SANDBOX_GATEWAY_ADDR=127.0.0.1:8090 ./target/release/sandbox-gateway & pids+=($!)
# One database for both services: the shop's tables, and the sidecar's decision log in schema risk.
RISK__REDIS__URL=${REDIS_URL:-redis://127.0.0.1:6379} RISK__DECISION_LOG__URL=${SHOP__DATABASE__URL:-postgres://postgres@127.0.0.1:5432/shop} \
  RISK__LOG__FORMAT=pretty ./target/release/risk-sidecar & pids+=($!)
SHOP__DEV__ENABLED=true SHOP__DEV__DEMO_DATA=true SHOP__LOG__FORMAT=pretty ./target/release/shop & pids+=($!)
scripts/wait-ready.sh http://127.0.0.1:8090/healthz 60
scripts/wait-ready.sh http://127.0.0.1:8081/readyz 60
scripts/wait-ready.sh http://127.0.0.1:8080/readyz 60
cat <<MSG

  Shop:           http://localhost:8080        (demo shoppers: ada@example.com, grace@example.com;
                                                password: demo-password-1)
  Dev mailbox:    http://localhost:8080/dev/mailbox   (one-time codes of challenged payments)
  Risk sidecar:   http://127.0.0.1:8081        (POST /v1/decisions, /readyz, /metrics)
  Decision log:   psql postgres://postgres@127.0.0.1:5432/shop -c "select * from risk.decisions"
  Sandbox gateway: http://127.0.0.1:8090     (4242 4242 4242 4242 approved, 4000 0000 0000 0002 declined)

  Development mode: the mailbox is on. Secrets: .secrets/local.env.
  Ctrl-C stops all three.
MSG
wait -n "${pids[@]}"
