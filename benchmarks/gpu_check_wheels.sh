#!/usr/bin/env bash
# Wheels that the GPU machine lacks (its image, 2026-11: torch 2.11, transformers 5.17, no datasets; Python
# 3.12), downloaded here into .whl for benchmarks/gpu_check.sh: datasets and the two needs its image does not
# hold (dill, multiprocess), and transformers >= 5.19 (MMELTrainer's floor). About 13 MiB in all.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
mkdir -p .whl
for wheel in datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 transformers==5.24.0; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "$wheel"
done
du -sh .whl
