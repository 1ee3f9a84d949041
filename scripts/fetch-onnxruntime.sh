#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library from its PyPI wheel (the only registry that
# carries it for this machine) and extracts the one member the sidecar loads.
# Pinned by hash, independent of the host's Python version.
set -euo pipefail
dest=${1:-.tools/onnxruntime}
lib=libonnxruntime.so.1.31.1
want=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$dest/$lib" ] && echo "$want  $dest/$lib" | sha256sum -c --status; then
  exit 0
fi
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
  --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
  -r "$here/ort-requirements.txt" -d "$tmp"
python3 - "$tmp" "$dest" "$lib" <<'PY'
import sys, zipfile, glob, shutil, os
tmp, dest, lib = sys.argv[1:]
whl = glob.glob(os.path.join(tmp, "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(whl) as z, z.open(f"onnxruntime/capi/{lib}") as src, open(os.path.join(dest, lib), "wb") as out:
    shutil.copyfileobj(src, out)
PY
echo "$want  $dest/$lib" | sha256sum -c --status || { echo "onnxruntime: checksum mismatch" >&2; exit 1; }
ln -sf "$lib" "$dest/libonnxruntime.so"
echo "onnxruntime: $dest/$lib"
