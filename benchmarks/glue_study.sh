#!/usr/bin/env bash
# The CPU study of benchmarks/RESULTS.md: the embedded task and the four GLUE tasks in ../shared/glue, every
# method of Tables 3-4 over seeds 0, 1, 2, and a lambda_P sweep on rt-polarity. Run by hand (about 1.5 hours
# on 2 CPU cores); every stage is cached and resumable, so rerunning finishes what is missing.
# Usage: benchmarks/glue_study.sh [OUTPUT_ROOT] [GLUE_ROOT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/study_output}
GLUE=${2:-../shared/glue}
MMEL_STUDY=${MMEL_STUDY:-.venv/bin/mmel-study}
# One set of settings for every task and method (nothing tuned per method or task): a 2-layer student of the
# embedded encoder, a teacher = the whole embedded encoder fine-tuned on the same examples, bf16 autocast.
COMMON=(--teacher-model embedded --teacher-epochs 3 --teacher-learning-rate 1e-4 --mlm-model embedded
        --student-model embedded --student-layers 2 --epochs 3 --learning-rate 1e-3 --batch-size 16
        --weight-decay 0.01 --warmup-ratio 0.1 --max-length 128 --precision bf16 --seeds 0 1 2
        --methods none long uniform hard soft hard-original)
# rt-polarity with exactly the main job's settings at 400 examples (its runs are reused when copied in).
"$MMEL_STUDY" --task rt-polarity --max-train-samples 400 --output-dir "$OUT/rt-polarity" "${COMMON[@]}" \
              --methods none long uniform hard soft hard-original hard@0.1 hard@10 --max-length 64
"$MMEL_STUDY" --task cola --data-dir "$GLUE/CoLA" --max-train-samples 300 --output-dir "$OUT/cola" "${COMMON[@]}"
"$MMEL_STUDY" --task stsb --data-dir "$GLUE/STS-B" --max-train-samples 200 --output-dir "$OUT/stsb" "${COMMON[@]}"
"$MMEL_STUDY" --task mrpc --data-dir "$GLUE/MRPC" --max-train-samples 200 --output-dir "$OUT/mrpc" "${COMMON[@]}"
"$MMEL_STUDY" --task rte --data-dir "$GLUE/RTE" --max-train-samples 200 --output-dir "$OUT/rte" "${COMMON[@]}"
