#!/usr/bin/env bash
# Creates .venv with the pinned stack and detectron2 (sal-detectron2 wheel, hash-checked).
# Called by `make install`; Make's stamp makes a second run a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.installed
D2_WHEEL=sal_detectron2-0.7.2-cp310-none-any.whl
D2_SHA256=491af0c7f79bdb2d178e46f6cb16a97c4ac968d45c41ea3f6b6435d59bbee561
WHEELS=.cache/wheels

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
[ -n "$PYTHON" ] || { echo "install: no python3.11 on PATH; set PYTHON=/path/to/python3.11" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "install: $PYTHON is $("$PYTHON" -V 2>&1); mask3d-bench pins Python 3.11 (set PYTHON=...)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  venv_args=()
  # A detectron2 the user built from source lives in their interpreter: let the venv see it.
  if "$PYTHON" -c 'import detectron2' 2>/dev/null; then
    echo "install: using the detectron2 already importable from $PYTHON"
    venv_args+=(--system-site-packages)
  fi
  "$PYTHON" -m venv "${venv_args[@]}" "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

echo "install: pinned requirements (first run takes a few minutes: torch is large)"
"${PIP[@]}" install -q -r requirements.txt

if "$VENV/bin/python" -c 'import detectron2' 2>/dev/null; then
  echo "install: keeping the detectron2 already installed ($("$VENV/bin/python" -c 'import detectron2; print(detectron2.__version__, detectron2.__file__)'))"
else
  mkdir -p "$WHEELS"
  if [ ! -f "$WHEELS/$D2_WHEEL" ]; then
    # The wheel is tagged cp310 but is pure Python for our purposes (its compiled _C is unused).
    "${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version 3.10 --implementation cp \
      --abi none --platform any -d "$WHEELS" sal-detectron2==0.7.2
  fi
  got=$(sha256sum "$WHEELS/$D2_WHEEL" | cut -d' ' -f1)
  if [ "$got" != "$D2_SHA256" ]; then
    rm -f "$WHEELS/$D2_WHEEL"
    echo "install: $WHEELS/$D2_WHEEL has sha256 $got, expected $D2_SHA256; deleted it, run make install again" >&2
    exit 1
  fi
  cp "$WHEELS/$D2_WHEEL" "$WHEELS/sal_detectron2-0.7.2-py3-none-any.whl"
  "${PIP[@]}" install -q --no-deps "$WHEELS/sal_detectron2-0.7.2-py3-none-any.whl"
fi

"$VENV/bin/python" -c 'from detectron2.modeling.backbone.vit import ViT, SimpleFeaturePyramid' \
  || { echo "install: detectron2 does not import; see the messages above" >&2; exit 1; }
date -u +%FT%TZ > "$STAMP"
echo "install: done ($VENV)"
