#!/usr/bin/env bash
# `make helm-check`: the chart linted strictly, rendered with its default values and
# with a production-like file, and every rendered manifest validated against the
# Kubernetes 1.37 schemas (kubernetes-validate --strict). The ServiceMonitor (the
# Prometheus Operator's CRD, not in those schemas) is skipped by name, and said so.
# Then what must fail does: a secret or a chart-fixed setting in values, a value of the
# wrong type (values.schema.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-helm.sh >/dev/null
scripts/ensure-python-venv.sh .venv-deploy charts/requirements.txt
helm=.tools/helm/helm
chart=charts/shop
out=build/helm; rm -rf "$out"; mkdir -p "$out"
for variant in default production; do
  args=()
  [ "$variant" = production ] && args=(-f "$chart/ci/production-values.yaml")
  "$helm" lint --strict "$chart" "${args[@]}"
  "$helm" template check "$chart" "${args[@]}" > "$out/$variant.yaml"
  .venv-deploy/bin/python - "$out/$variant.yaml" "$out/$variant" <<'PY'
import os, sys, yaml
src, dest = sys.argv[1:]
os.makedirs(dest, exist_ok=True)
skip = {"ServiceMonitor"}
for i, doc in enumerate(d for d in yaml.safe_load_all(open(src)) if d):
    kind = doc["kind"]
    if kind in skip:
        print(f"helm-check: skipped {kind} {doc['metadata']['name']} (a CRD: no schema among Kubernetes' own)")
        continue
    with open(f"{dest}/{i:02d}-{kind}.yaml", "w") as f:
        yaml.safe_dump(doc, f)
PY
  .venv-deploy/bin/kubernetes-validate --strict --quiet "$out/$variant"/*.yaml
  echo "helm-check: $variant values: $(ls "$out/$variant" | wc -l) manifests valid"
done
must_fail() { # $1: what, rest: helm template arguments
  local what=$1; shift
  if "$helm" template check "$chart" "$@" > /dev/null 2> "$out/refused.txt"; then
    echo "helm-check: rendered although $what" >&2; exit 1
  fi
  echo "helm-check: refused, as it must: $what: $(grep -m1 -E "execution error|got |not allowed" "$out/refused.txt" | sed "s/.*): //" | cut -c1-100)"
}
must_fail "a secret in values" --set-json 'sidecar.settings={"decision_log.url":"postgres://x"}'
must_fail "development mode in values" --set-json 'shop.settings={"dev.enabled":true}'
must_fail "a listen address in values" --set-json 'sidecar.settings={"server.host":"0.0.0.0"}'
must_fail "a port that is not a number" --set sidecar.opsPort=metrics
must_fail "an unknown top-level value" --set surprise=1
echo "helm-check: OK"
