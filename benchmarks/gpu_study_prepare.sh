#!/usr/bin/env bash
# Prepares the one-call GPU study (benchmarks/gpu_study.sh) here, within the 64 MiB that travels to the GPU machine:
# - the four GLUE tasks of ../shared/glue (or $1), compressed, into .gpu_study/glue.tar.xz (ignored: never committed);
# - the wheels that machine lacks into .whl (benchmarks/gpu_check_wheels.sh), if not there yet;
# - the embedded teacher's weights moved out of the tree to .gpu_study-moved/ beside the repository (the study trains
#   its own teachers from the embedded fill-mask model, whose weights stay); put them back with --restore.
# Then: run(command="benchmarks/gpu_study.sh", carry=[".whl", ".gpu_study"], timeout_s=540).
set -euo pipefail
cd "$(dirname "$0")/.."
MOVED=../.gpu_study-moved
if [ "${1:-}" = "--restore" ]; then
  if [ -f "$MOVED/teacher-model.safetensors" ]; then
    mv "$MOVED/teacher-model.safetensors" mmel_hf/embedded/teacher/model.safetensors
  fi
  git status --short mmel_hf/embedded
  exit 0
fi
GLUE=${1:-../shared/glue}
for task in CoLA MRPC RTE STS-B; do
  for split in train dev; do
    [ -f "$GLUE/$task/$split.tsv" ] || { echo "gpu_study_prepare: $GLUE/$task/$split.tsv is missing" >&2; exit 1; }
  done
done
grep -qx '/.gpu_study/' .git/info/exclude 2>/dev/null || echo /.gpu_study/ >> .git/info/exclude
mkdir -p .gpu_study
tar -cJf .gpu_study/glue.tar.xz -C "$GLUE" CoLA MRPC RTE STS-B
ls .whl/*.whl >/dev/null 2>&1 || benchmarks/gpu_check_wheels.sh
if [ -f mmel_hf/embedded/teacher/model.safetensors ]; then
  mkdir -p "$MOVED"
  mv mmel_hf/embedded/teacher/model.safetensors "$MOVED/teacher-model.safetensors"
fi
# What travels: tracked and untracked-not-ignored files, and the carried folders.
tree=$( (git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null || true) | tail -1 | cut -f1)
carried=$(du -cb .whl .gpu_study | tail -1 | cut -f1)
total=$(( ${tree:-0} + carried ))
echo "gpu_study_prepare: $(( total / 1048576 )) MiB travel (limit 64): tree $(( ${tree:-0} / 1048576 )), .whl + .gpu_study $(( carried / 1048576 ))"
[ "$total" -le $(( 64 * 1048576 )) ] || { echo "gpu_study_prepare: over 64 MiB" >&2; exit 1; }
echo 'gpu_study_prepare: ready; afterwards: benchmarks/gpu_study_prepare.sh --restore'
