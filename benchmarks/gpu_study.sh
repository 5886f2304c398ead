#!/usr/bin/env bash
# The paper's study at full size in one GPU call (issue 32): benchmarks/gpu_study.py on the four GLUE tasks.
#   here:   benchmarks/gpu_study_prepare.sh          # the GLUE files into .gpu_study (ignored), the wheels into .whl,
#                                                     # the embedded teacher's weights out of the tree (64 MiB cap)
#   there:  benchmarks/gpu_study.sh [ARGS]           # carry .whl and .gpu_study; writes $OUT/gpu_study.{json,md}
# Unpacks the GLUE files, installs the wheels only where the machine lacks them (as gpu_check.sh), then runs the
# study within --budget-s (default 420 s; its plan is printed first). Extra arguments go to gpu_study.py.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-.}
if [ ! -f .gpu_study/glue.tar.xz ]; then
  echo "gpu_study: .gpu_study/glue.tar.xz is missing; run benchmarks/gpu_study_prepare.sh here and carry .gpu_study" >&2
  exit 1
fi
if [ ! -f mmel_hf/embedded/mlm/model.safetensors ]; then
  echo "gpu_study: the embedded fill-mask model's weights are missing (mmel_hf/embedded/mlm/model.safetensors)" >&2
  exit 1
fi
source benchmarks/gpu_env.sh || exit 1
GLUE=$(mktemp -d /tmp/gpu-study-glue.XXXXXX)
tar -xJf .gpu_study/glue.tar.xz -C "$GLUE" || exit 1
exec "$PYTHON" benchmarks/gpu_study.py --glue-dir "$GLUE" --out "$OUT" --work-dir /tmp/gpu-study-work "$@"
