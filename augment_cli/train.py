"""mmel-train: fine-tune a teacher, or train a student with MMEL or one of the paper's baselines.

Examples:
    mmel-train --task rte --data-dir glue/RTE --model bert-base-uncased --mmel-loss none --output-dir rte-teacher
    mmel-augment --task rte --data-dir glue/RTE --teacher rte-teacher --output-dir rte-augmented
    mmel-train --task rte --augmented rte-augmented --model bert-base-uncased --mmel-loss hard --output-dir rte-mmel-h
    mmel-train --task rte --augmented rte-augmented --model embedded --num-layers 2 --mmel-loss soft \\
        --mmel-label-source original --output-dir rte-small
    mmel-train config.yaml          # the same options in a YAML or JSON file

Modes (--mmel-loss): none (Baseline), long (Baseline(DA+Long)), uniform (Baseline(DA+UNI)), max (MaxUp),
hard (MMEL-H), soft (MMEL-S); --mmel-label-source original is the ablation of Table 4. Defaults are the
paper's (Appendix D): AdamW, lr 3e-5, batch 32, no weight decay, linear decay without warm-up, 3 epochs for
MNLI/QQP and 10 for the other tasks, lambda_P = lambda_T = 1; any flag or config-file key overrides them.
Every option of transformers' TrainingArguments is accepted.
"""

from __future__ import annotations

import argparse
import sys


def make_parser():
    from augment_cli.console import build_parser
    from mmel_hf.training_args import MMELTrainingArguments
    from mmel_hf.workflows.train_config import TrainConfig

    parser = build_parser((TrainConfig, MMELTrainingArguments), "mmel-train", __doc__)
    parser.set_defaults(
        output_dir="mmel_train_output",
        report_to="none",
        save_strategy="no",
        eval_strategy="epoch",
        logging_steps=50,
        per_device_eval_batch_size=64,  # evaluation has no gradients to hold: Trainer's 8 leaves a GPU idle
    )
    return parser


def given_options(parser, argv: list[str]) -> dict:
    """The options the user typed (argparse fills in every default, which would hide the paper's)."""
    import yaml

    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
        with open(argv[0]) as handle:
            values = yaml.safe_load(handle)  # JSON is YAML
        if not isinstance(values, dict):
            raise ValueError(f"{argv[0]}: expected a mapping of option names to values")
        return values
    quiet = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            quiet._add_action(copy_action(action))
    namespace, unknown = quiet.parse_known_args(argv)
    if unknown:
        parser.parse_args(argv)  # the full parser reports the unknown option and exits 2
    return vars(namespace)


def copy_action(action):
    import copy

    clone = copy.copy(action)
    clone.default = argparse.SUPPRESS
    clone.required = False
    return clone


def parse(argv: list[str]):
    """(TrainConfig, MMELTrainingArguments) with the paper's defaults under the user's options."""
    from augment_cli.console import expand_bare_resume
    from mmel_hf.utils.devices import training_device_defaults
    from mmel_hf.workflows.train_config import paper_defaults

    argv = expand_bare_resume(argv)
    parser = make_parser()
    if "-h" in argv or "--help" in argv:
        parser.parse_args(argv)  # prints the help and exits
    try:
        given = given_options(parser, argv)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    task = given.get("task")
    if task is None and given.get("augmented") is not None:  # the augmented dataset records its task
        task = _recorded_task_name(parser, str(given["augmented"]))
    if task is None:
        parser.error("the following arguments are required: --task (optional only with --augmented)")
    defaults = {key: value for key, value in vars(parser.parse_args(["--task", str(task)])).items()}
    # The paper's settings, then what fits the device (bf16 on a CUDA GPU with fast bf16), then the user's own.
    values = {**defaults, **paper_defaults(str(task)), **training_device_defaults(given), **given}
    values["task"] = given.get("task")  # None when read from the dataset: then nothing is checked against it
    try:
        return parser.parse_dict(values)
    except (ValueError, TypeError) as err:  # a field's own check names the option and the fix
        parser.error(str(err))


def _recorded_task_name(parser, augmented: str) -> str:
    from mmel_hf.errors import DataError
    from mmel_hf.workflows.train import load_augmented, recorded_task

    try:
        recorded = recorded_task(load_augmented(augmented)["train"])
    except DataError as err:
        print(f"mmel-train: error: {err}", file=sys.stderr)
        sys.exit(1)
    if recorded is None:
        parser.error(
            f"--augmented {augmented} does not record its task (made elsewhere): give --task and, for a "
            "custom task, --text-columns/--label-column/--class-names"
        )
    return recorded["name"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config, args = parse(argv)
    import json
    import logging

    from augment_cli.console import run_or_report
    from mmel_hf.workflows.train import run_training

    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if args.disable_tqdm:  # also the bars of transformers (loading, writing weights) and datasets
        import datasets
        import transformers

        transformers.logging.disable_progress_bar()
        datasets.disable_progress_bars()
    code, result = run_or_report(
        "mmel-train",
        lambda: run_training(config, args),
        "checkpoints written so far are kept (--resume-from-checkpoint)",
    )
    if code:
        return code
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under torchrun/accelerate, one process reports
        return 0
    for split, metrics in result.metrics.items():
        print(
            f"{split}: "
            + ", ".join(
                f"{k.split('_', 1)[1]} {v:.4f}"
                for k, v in metrics.items()
                if isinstance(v, float) and not k.endswith(("runtime", "per_second"))
            )
        )
    if result.weights:
        w = result.weights
        print(
            f"weights P*: normalised entropy {w['normalised_entropy']:.3f}, effective sample share "
            f"{w['effective_share']:.3f} ({w['effective_sample_size']:.2f} samples per group; 1 = uniform)"
            + (f" — {w['warning']}" if w["warning"] else "")
        )
    print(f"trained in {result.train_seconds:.0f}s -> {result.output_dir.resolve()} (metrics.json)")
    print(json.dumps(result.metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
