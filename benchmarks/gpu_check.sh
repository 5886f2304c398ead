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
source benchmarks/gpu_env.sh || exit 1
exec "$PYTHON" benchmarks/gpu_check.py --out "$OUT/gpu_check.json" "$@"
