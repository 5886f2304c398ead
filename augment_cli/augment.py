"""mmel-augment: fill-mask augmentation (Algorithm 2 of Yi et al., ICLR 2021) and teacher labelling.

Examples:
    mmel-augment --task rte --teacher path/to/rte-teacher
    mmel-augment --task sst2 --data-dir glue_data/SST-2 --teacher ./teacher --mlm-model ./mlm --output-dir out
    mmel-augment --task reviews --train-file train.csv --text-columns review --label-column stars \\
        --class-names negative neutral positive --label-source original
    mmel-augment --task reviews --train-file train.csv --teacher reviews-teacher   # the teacher (made by
        mmel-train) records the task's columns and labels: no task flag needs repeating
    mmel-augment config.yaml        # the same options in a YAML or JSON file
    mmel-augment --task rte --teacher ./rte-teacher --verify 3   # recompute 3 random blocks of the cache, compare

Several processes (one per GPU, or several on one CPU machine) share the work shard by shard and give the
dataset of a single process (rows are batched within fixed blocks of --block-size rows, whatever the shards);
a second copy of the same command on the same cache shares it too:
    accelerate launch --multi_gpu --num_processes 4 $(which mmel-augment) --task mnli --teacher ./mnli-teacher
    OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 --no-python mmel-augment --task rt-polarity
"""

from __future__ import annotations

import json
import logging
import sys


def make_parser():
    from augment_cli.console import build_parser
    from mmel_hf.augment.augment_config import AugmentConfig

    return build_parser(AugmentConfig, "mmel-augment", __doc__)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from augment_cli.console import parse_into_dataclasses

    (config,) = parse_into_dataclasses(make_parser(), argv)

    from augment_cli.console import quiet_libraries, run_or_report
    from mmel_hf.augment.pipeline import run_augmentation

    quiet_libraries(config.progress, logging.INFO)
    code, result = run_or_report(
        "mmel-augment", lambda: run_augmentation(config), "rerun the same command to resume (finished blocks are kept)"
    )
    if code:
        return code
    if "verify" in result.summary:
        return _report_verification(result.summary["verify"])
    summary = result.summary
    if summary.get("process_index", 0) != 0:  # the other ranks of a distributed run: the main one reports
        return 0
    print(
        f"{summary['task']}: {summary['examples']} examples, {summary['augmented_samples']} augmented samples "
        f"(distinct {summary['distinct_ratio']:.1%}, {summary.get('original_duplicates', 0)} reproduce their original) "
        f"in {summary['seconds']:.1f}s"
        f"{' (cache hit)' if summary['cache_hit'] else ''}"
    )
    from mmel_hf.augment.card import label_safety_sentence

    safety = label_safety_sentence(summary)
    if safety:
        print(safety[0].upper() + safety[1:])
    print(f"cache: {summary['cache']}")
    if "saved_to" in summary:
        print(f"saved to: {summary['saved_to']}")
    if "pushed_to" in summary:
        print(f"pushed to: https://huggingface.co/datasets/{summary['pushed_to']}")
    print(json.dumps(summary))
    return 0


def _report_verification(found: dict) -> int:
    checked = ", ".join(map(str, found["blocks_checked"]))
    made_on = "; ".join(found["made_on"]) or "an unrecorded machine"
    verdict = "match" if found["matches"] else f"MISMATCH ({found['first_mismatch']})"
    print(
        f"{found['task']}: recomputed block(s) {checked} of {found['blocks']} on {found['checked_on']}: {verdict}; "
        f"text mismatches {found['text_mismatches']}, largest teacher-output difference "
        f"{found['max_abs_difference']:.3g} (tolerance {found['tolerance']:g})"
    )
    print(f"cache: {found['cache']} (made on {made_on})")
    print(json.dumps(found))
    return 0 if found["matches"] else 1


if __name__ == "__main__":
    sys.exit(main())
