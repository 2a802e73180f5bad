#!/usr/bin/env bash
# Make, here, what the GPU check carries to the GPU machine (nothing else reaches it):
# - .whl/: the wheels its image lacks (it has torch, lightning, torchmetrics, pandas,
#   matplotlib, rich), at the versions uv.lock pins, for its Python 3.12 (~22 MB);
# - .gpu_data/MNIST/raw: MNIST's four files from $CONVREC_DATA_MIRROR (default ../shared/data),
#   which the check prepares there (mnist, seq_mnist; adding is generated).
# Both are git-ignored (.git/info/exclude). Then, with the device tool:
#   run `bash scripts/gpu_check.sh`, carry [.whl, .gpu_data]
set -euo pipefail
cd "$(dirname "$0")/.."
for ignored in /.whl/ /.gpu_data/; do
  grep -qx "$ignored" .git/info/exclude 2>/dev/null || echo "$ignored" >> .git/info/exclude
done
mirror="${CONVREC_DATA_MIRROR:-../shared/data}"
rm -rf .gpu_data && mkdir -p .gpu_data/MNIST/raw && cp "$mirror"/MNIST/raw/*.gz .gpu_data/MNIST/raw/
NAMES=(hydra-core omegaconf antlr4-python3-runtime mlflow-skinny mlflow-tracing sqlalchemy
       alembic mako sqlparse cachetools opentelemetry-api opentelemetry-sdk
       opentelemetry-semantic-conventions opentelemetry-proto pydantic pydantic-core
       annotated-types typing-inspection python-dotenv gitpython gitdb smmap importlib-metadata
       databricks-sdk google-auth pyasn1-modules pyasn1 fastapi starlette uvicorn
       cryptography cffi pycparser torchinfo seqeval mnist1d)
rm -rf .whl && mkdir .whl
for name in "${NAMES[@]}"; do
  version=$(awk -v n="$name" '$0 == "name = \"" n "\"" {getline; gsub(/version = |"/, ""); print; exit}' uv.lock)
  [ -n "$version" ] || { echo "gpu_wheels: $name is not in uv.lock" >&2; exit 2; }
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d .whl "$name==$version" 2>/dev/null ||
    python3 -m pip wheel -q --no-deps -w .whl "$name==$version"  # sdist only: pure Python
done
du -sh .whl .gpu_data
