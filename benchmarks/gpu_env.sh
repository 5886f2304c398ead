# Sourced by benchmarks/gpu_check.sh and benchmarks/gpu_study.sh on the GPU machine: installs the wheels that
# benchmarks/gpu_check_wheels.sh prepared here (carried as .whl) where the machine lacks them (datasets;
# transformers older than 5.19), and sets the environment of an offline run. Needs PYTHON; returns 1 when a
# needed wheel was not carried.
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
    echo "$(basename "$0"): this machine lacks: $needs; prepare wheels with benchmarks/gpu_check_wheels.sh and carry .whl" >&2
    return 1
  fi
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
