#!/usr/bin/env bash
# wait-ready.sh URL [SECONDS]: waits until URL answers 200 (python3, which every machine
# of this kind has; curl may be missing on a fresh one).
set -euo pipefail
python3 - "$1" "${2:-30}" <<'PY'
import sys, time, urllib.request
url, limit = sys.argv[1], float(sys.argv[2])
deadline = time.time() + limit
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
print(f"wait-ready: {url} did not answer 200 within {limit:.0f} s", file=sys.stderr)
sys.exit(1)
PY
