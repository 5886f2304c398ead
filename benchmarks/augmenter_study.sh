#!/usr/bin/env bash
# Issue 20's study across augmenters (CPU): on the embedded rt-polarity task, one teacher, MMEL-H vs DA+UNI over
# seeds 0 1 2 for each augmenter: fill-mask (Algorithm 2), eda (swap + delete, alpha 0.1) and file (the fill-mask
# samples written out and read back: it must give the same dataset, so the same results). The question: does
# reweighting matter more when the samples vary more in quality? Every stage is cached and resumable.
# Usage: benchmarks/augmenter_study.sh [OUTPUT_ROOT]; then python benchmarks/collect_study.py OUTPUT_ROOT
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/augmenter_study_output}
BIN=${BIN:-.venv/bin}
# The main job's settings (mmel-main), fp32; the same for every augmenter and method.
COMMON=(--task rt-polarity --max-train-samples 300 --mlm-model embedded --student-model embedded --student-layers 2
        --epochs 3 --learning-rate 1e-3 --batch-size 16 --weight-decay 0.01 --warmup-ratio 0.1 --max-length 64
        --precision fp32 --seeds 0 1 2 --methods uniform hard)
"$BIN/mmel-study" "${COMMON[@]}" --teacher-model embedded --teacher-epochs 3 --teacher-learning-rate 1e-4 \
                  --output-dir "$OUT/fill-mask"
TEACHER="$OUT/fill-mask/teacher"
"$BIN/mmel-study" "${COMMON[@]}" --teacher "$TEACHER" --augmenter eda --output-dir "$OUT/eda"
# The fill-mask samples, written out as a user would from another tool, read back by --augmenter file.
"$BIN/mmel-augment" --task rt-polarity --max-train-samples 300 --mlm-model embedded --teacher "$TEACHER" \
                    --max-length 64 --precision fp32 --no-progress --output-dir "$OUT/fill-mask-samples" >/dev/null
"$BIN/python" - "$OUT" <<'PY'
import json, sys
from datasets import load_from_disk
out = sys.argv[1]
train = load_from_disk(f"{out}/fill-mask-samples")["train"]
with open(f"{out}/fill-mask-samples.jsonl", "w") as handle:
    for row, samples in enumerate(train["augmented_sentence"]):
        handle.write(json.dumps({"row": row, "sentence": samples}) + "\n")
PY
"$BIN/mmel-study" "${COMMON[@]}" --teacher "$TEACHER" --augmenter file \
                  --augmented-file "$OUT/fill-mask-samples.jsonl" --output-dir "$OUT/file"
