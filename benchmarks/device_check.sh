#!/usr/bin/env bash
# The GPU device check in one line, on the device machine (carry .device, made by `make device-wheels`):
#
#     bash benchmarks/device_check.sh [device_check.py options]
#
# Installs the carried wheels (.device/wheels/*.whl: mmcv-lite, mmdet, mmengine, pycocotools and the
# small deps the machine's own Python lacks) with --no-index --no-deps into a --target folder put on
# PYTHONPATH, puts visrc (this tree) on PYTHONPATH, then runs benchmarks/device_check.py, which writes
# $OUT/device_check.json; the whole log goes to $OUT/device_check.log.
#
# DRY_RUN=1 (or --dry-run): tiny sizes on CPU, nothing installed (the Python in use must already have
# visrc's dependencies: `DRY_RUN=1 PYTHON=.venv/bin/python bash benchmarks/device_check.sh`).
# PYTHON: the interpreter (default python3, the machine's own); DEVICE_SITE: the --target folder.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
REPO=$(pwd)
DRY=${DRY_RUN:-0}
ARGS=()
for a in "$@"; do
  case "$a" in
    --dry-run) DRY=1 ;;
    *) ARGS+=("$a") ;;
  esac
done
PY=${PYTHON:-python3}
OUTDIR=${OUT:-$REPO/.device/out}
mkdir -p "$OUTDIR" || exit 2
export PYTHONUNBUFFERED=1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

if [ "$DRY" = 1 ]; then
  exec "$PY" benchmarks/device_check.py --dry-run --out "$OUTDIR" ${ARGS[@]+"${ARGS[@]}"}
fi

SITE=${DEVICE_SITE:-/tmp/visrc-site}
shopt -s nullglob
WHEELS=(.device/wheels/*.whl)
if [ ${#WHEELS[@]} -eq 0 ]; then
  echo "device_check: no wheels in .device/wheels: run 'make device-wheels' here and carry .device" >&2
  exit 2
fi
{
  echo "# $(date -Is) $("$PY" -V 2>&1) at $(command -v "$PY"); ${#WHEELS[@]} wheels -> $SITE"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${WHEELS[@]}" \
    || { echo "device_check: pip install of the wheels failed" >&2; exit 3; }
  export PYTHONPATH="$SITE:$PYTHONPATH"
  "$PY" -c "import visrc, mmdet, mmengine, mmcv.ops, pycocotools, shapely
print('# imports ok: mmdet', mmdet.__version__, 'mmcv', mmcv.__version__, 'mmengine', mmengine.__version__)" \
    || echo "device_check: the installed packages do not import (the stages will record the errors)" >&2
  "$PY" benchmarks/device_check.py --out "$OUTDIR" ${ARGS[@]+"${ARGS[@]}"}
} 2>&1 | tee "$OUTDIR/device_check.log"
exit "${PIPESTATUS[0]}"
