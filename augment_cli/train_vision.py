"""mmel-train-vision: MMEL on CIFAR-10/100 or image folders with the paper's ResNets and schedules.

Examples:
    mmel-train-vision --dataset cifar10 --model resnet20 --mmel-loss hard --num-views 10
    mmel-train-vision --dataset cifar100 --data-dir cifar-100-python --model resnet56 --mmel-loss soft \\
        --mmel-lambda-t 1.0 --output-dir out
    mmel-train-vision --dataset imagefolder --data-dir imagenet --model resnet50 --num-train-epochs 100 \\
        --per-device-train-batch-size 32 --gradient-accumulation-steps 8

Defaults follow Section 4.1: |B| = 10, lambda_P = 1, SGD (momentum 0.9, lr 0.1, weight decay 5e-4),
batch 128, 200 epochs with the learning rate x0.2 at epochs 60, 120, 160. Views keep the image's label,
so no teacher is needed (--mmel-label-source original).
"""

from __future__ import annotations

import argparse
import json
import sys


def make_parser():
    from transformers import HfArgumentParser

    from augment_cli.console import introduce, name_help_for_negations
    from mmel_hf.training_args import MMELTrainingArguments
    from mmel_hf.workflows.train_vision import VisionConfig

    parser = HfArgumentParser((VisionConfig, MMELTrainingArguments))
    name_help_for_negations(parser)
    parser.prog = "mmel-train-vision"
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    introduce(parser)
    # Text-only options are hidden (and refused if given); the modes' help says what each does with images.
    from mmel_hf.workflows.train_vision import TEXT_ONLY_OPTIONS

    for action in parser._actions:
        if action.dest in TEXT_ONLY_OPTIONS:
            action.help = argparse.SUPPRESS
        elif action.dest == "mmel_loss":
            action.help = (
                "none: Baseline(DA), one random crop+flip view per image (--num-views not used); uniform (DA+UNI), "
                "max (MaxUp), hard (MMEL-H) and soft (MMEL-S) over --num-views views of each image (long is for text)."
            )
    # The paper's CIFAR settings as defaults; every one can still be given on the command line.
    parser.set_defaults(
        mmel_label_source="original",
        num_train_epochs=200,
        per_device_train_batch_size=128,
        learning_rate=0.1,
        weight_decay=5e-4,
        output_dir="mmel_vision_output",
        report_to="none",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        logging_steps=50,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from augment_cli.console import expand_bare_resume

    parser = make_parser()
    try:
        config, args = parser.parse_args_into_dataclasses(
            args=expand_bare_resume(sys.argv[1:] if argv is None else argv)
        )
    except ValueError as err:
        parser.error(str(err))
    from augment_cli.console import run_or_report
    from mmel_hf.workflows.train_vision import train_vision

    code, metrics = run_or_report(
        "mmel-train-vision",
        lambda: train_vision(config, args),
        "checkpoints written so far are kept (--resume-from-checkpoint)",
    )
    if code:
        return code
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
