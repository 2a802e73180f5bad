#!/usr/bin/env bash
# The GPU check, for a lent GPU machine (about 4 minutes on one GPU). Prepare its carry here
# first (bash scripts/gpu_carry.sh), then with the device tool:
#   run `bash scripts/gpu_check.sh`, carry [.whl, .gpu_data], timeout 540
# It writes into $OUT (default gpu_check/): gpu_check.json (every measurement), the overhead
# bench's summary.json and overhead.csv, the seq_mnist TCN's history.csv, and the log.
# Commit those files under results/gpu_check/<date>/ with this command line.
# On a machine without a GPU it refuses (exit 2) unless CONVREC_GPU_CHECK_CPU=1 (a dry run of
# the script itself, with each step cut to seconds).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-python3}"
# the wheels the GPU image lacks (scripts/gpu_carry.sh), where they are missing
if ! "$PYTHON" -c "import hydra, mlflow" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/convrec-site .whl/*.whl || exit 2
  export PYTHONPATH="/tmp/convrec-site"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CONVREC_DATA_MIRROR="${CONVREC_DATA_MIRROR:-$PWD/.gpu_data}"
"$PYTHON" scripts/gpu_check.py "$OUT" 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
