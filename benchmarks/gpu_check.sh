#!/usr/bin/env bash
# The prepared GPU check (issue 17), in one call on a machine with one NVIDIA GPU and no downloads:
#   here:   benchmarks/gpu_check_wheels.sh           # wheels for what that machine lacks, into .whl (ignored)
#           move mmel_hf/embedded/*/model.safetensors out of the tree (the check needs only the tokenizers)
#   there:  benchmarks/gpu_check.sh                  # carry .whl; writes $OUT/gpu_check.json (figures + card name)
# Installs the wheels only where the machine lacks them (datasets; transformers older than 5.19), then runs
# benchmarks/gpu_check.py. Budget: about 5 minutes on an H100-class card; each part is timed in the JSON.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-.}
needs=$("$PYTHON" - <<'PY'
import importlib.util
from packaging.version import Version
import transformers
missing = [] if importlib.util.find_spec("datasets") else ["datasets"]
print(" ".join(missing + (["transformers"] if Version(transformers.__version__).release[:2] < (5, 19) else [])))
PY
)
if [ -n "$needs" ]; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "gpu_check: this machine lacks: $needs; prepare wheels with benchmarks/gpu_check_wheels.sh and carry .whl" >&2
    exit 1
  fi
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
exec "$PYTHON" benchmarks/gpu_check.py --out "$OUT/gpu_check.json" "$@"
