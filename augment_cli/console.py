"""What the CLIs share about the console."""

from __future__ import annotations

from mmel_hf.workflows.console import quiet_libraries  # noqa: F401  (the CLIs' import of it)


def build_parser(dataclass_types, prog: str, doc: str):
    """An ``HfArgumentParser`` over ``dataclass_types`` whose help starts with the CLI's docstring."""
    import argparse

    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_types)
    name_help_for_negations(parser)
    parser.prog = prog
    parser.description = doc
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    introduce(parser)
    return parser


def introduce(parser) -> None:
    """``--version`` (mmel_hf's, with torch's and transformers'), and usage errors in one line: an unknown or
    mistyped flag named with the closest valid one, instead of the whole usage before the line that matters."""
    import types

    import torch
    import transformers

    from mmel_hf import __version__

    parser.add_argument(
        "--version",
        action="version",
        version=f"{parser.prog} (mmel_hf) {__version__}; torch {torch.__version__}, transformers {transformers.__version__}",
        help="Print the version of mmel_hf (and of torch and transformers) and exit.",
    )
    parser.error = types.MethodType(_one_line_error, parser)
    group_help(parser)


# --help in groups, in this order; an option's group is found by its field name (dest).
HELP_GROUPS = {
    "task and data": """task text_columns label_column class_names num_labels label_range data_dir train_file
        validation_file dataset_path dataset_name dataset_config dataset_revision max_train_samples max_eval_samples
        keep_columns augmented train_examples eval_examples""",
    "augmenter": """augmenter augmented_file augmented_file_key allow_missing_samples translation_models
        source_language pivot_language generator_model prompt_template sampling temperature top_k num_candidates
        eda_operations eda_alpha drop_disagreeing""",
    "fill-mask (Algorithm 2)": "mlm_model mlm_revision group_size ratio search separate seed augment_seed",
    "teacher": """teacher teacher_revision label_source teacher_model teacher_layers teacher_epochs
        teacher_learning_rate""",
    "models": "model model_revision num_layers attn_implementation trust_remote_code student_model student_layers",
    "PEFT (LoRA)": "use_peft lora_r lora_alpha lora_dropout lora_target_modules lora_modules_to_save",
    "images": "dataset num_views original_first schedule image_size layer_type depth",
    "study": "methods seeds epochs learning_rate weight_decay warmup_ratio parallel_runs",
    "batching, precision and device": """max_length batch_size max_tokens_per_batch teacher_batch_size block_size
        precision device shard_size""",
    "output and cache": """output_dir cache_dir overwrite overwrite_output_dir save_model verify verify_atol
        progress""",
    "Hub": "push_to_hub hub_private license language",
}
_GROUP_OF = {name: title for title, names in HELP_GROUPS.items() for name in names.split()}


def group_help(parser) -> None:
    """Regroup ``parser``'s options by :data:`HELP_GROUPS` (Trainer's own in one group, MMEL's in another), so
    ``--help`` reads by topic instead of one flat list."""
    import dataclasses

    from transformers import TrainingArguments

    # Trainer's own options where the command takes them (mmel-train, mmel-train-vision), MMEL's beside them.
    training = any(action.dest == "mmel_loss" for action in parser._actions)
    trainer_fields = {f.name for f in dataclasses.fields(TrainingArguments)} if training else set()
    groups = {}
    for action in list(parser._actions):
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        if action.dest.startswith("mmel_"):
            title = "MMEL (MMELTrainingArguments)"
        elif action.dest in trainer_fields and action.dest != "output_dir":
            title = "training (transformers.TrainingArguments)"
        else:
            title = _GROUP_OF.get(action.dest, "other options")
        groups.setdefault(title, []).append(action)
    order = [*HELP_GROUPS, "MMEL (MMELTrainingArguments)", "training (transformers.TrainingArguments)", "other options"]
    for title in sorted(groups, key=order.index):
        group = parser.add_argument_group(title)
        for action in groups[title]:
            for container in parser._action_groups:
                if action in container._group_actions and container is not group:
                    container._group_actions.remove(action)
            group._group_actions.append(action)


def _one_line_error(parser, message: str) -> None:
    """argparse's ``error``, in one line (exit 2)."""
    import difflib
    import re
    import sys

    if "unrecognized arguments" in message or "not used by the HfArgumentParser" in message:
        flags = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
        unknown = [f for f in re.findall(r"(--?[A-Za-z][\w-]*)", message.split(":", 1)[-1])]
        named = []
        for flag in unknown:
            close = difflib.get_close_matches(flag.replace("_", "-"), flags, n=1, cutoff=0.6)
            named.append(f"{flag} (did you mean {close[0]}?)" if close else flag)
        if named:
            message = f"unknown option(s): {', '.join(named)}; {parser.prog} --help lists every option"
    sys.stderr.write(f"{parser.prog}: error: {' '.join(message.split())}\n")
    sys.exit(2)


def name_help_for_negations(parser) -> None:
    """HfArgumentParser gives ``--no-X`` the help of ``--X``; say what the negation does instead."""
    import argparse

    for action in parser._actions:
        negations = [o for o in action.option_strings if o.startswith("--no-")]
        if negations and isinstance(action, argparse._StoreFalseAction):
            action.help = f"Turn off --{negations[0][len('--no-') :]} (on by default)."


def parse_into_dataclasses(parser, argv: list[str]):
    """Flags, or one YAML/JSON config file; a field's own check (``__post_init__``) becomes a usage error."""
    try:
        if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
            return parser.parse_yaml_file(argv[0])
        if len(argv) == 1 and argv[0].endswith(".json"):
            return parser.parse_json_file(argv[0])
        _, unknown = parser.parse_known_args(argv)
        if unknown:  # before the dataclasses check their fields: a mistyped flag is the error to show
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        return parser.parse_args_into_dataclasses(args=argv)
    except ValueError as err:
        parser.error(str(err))


def run_or_report(prog: str, call, interrupted: str):
    """``(0, call())``, or ``(1, None)`` after one line for a user error, ``(130, None)`` after one for Ctrl-C."""
    import sys

    import torch

    from mmel_hf.errors import DataError

    try:
        result = _with_bars_ended(call)
    except torch.OutOfMemoryError as err:  # torch's message is a paragraph: its first line and what to change
        first = str(err).strip().splitlines()[0] if str(err).strip() else "out of memory"
        print(
            f"{prog}: error: the accelerator ran out of memory ({first}); lower the batch size (mmel-augment: "
            "--batch-size, --teacher-batch-size; mmel-train: --per-device-train-batch-size, or --mmel-chunk-size)",
            file=sys.stderr,
        )
        return 1, None
    except OSError as err:  # a read-only or full file system ...: what and where, in words ("[Errno 30] ..." is not)
        print(f"{prog}: error: {describe_os_error(err)}", file=sys.stderr)
        return 1, None
    except (DataError, ValueError, RuntimeError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1, None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {interrupted}", file=sys.stderr)
        return 130, None
    end_process_group()
    return 0, result


def _with_bars_ended(call):
    """``call()``; if it raises, the progress bars still open (a run stopped inside an epoch) are closed first, so
    that the error is printed on a line of its own, not after a bar's last frame."""
    try:
        return call()
    except BaseException:
        from tqdm import tqdm

        for bar in list(getattr(tqdm, "_instances", ())):
            bar.close()
        raise


def describe_os_error(err: OSError) -> str:
    """An ``OSError`` in one line without its errno prefix: the file, then what went wrong.

    Example:
        >>> describe_os_error(OSError(30, "Read-only file system", "/data/study"))
        'could not write /data/study: read-only file system'
        >>> describe_os_error(OSError("the disk is gone"))
        'the disk is gone'
    """
    if err.strerror is None:
        return str(err)
    reason = err.strerror[:1].lower() + err.strerror[1:]
    if err.filename is None:
        return reason
    import errno

    verb = "write" if err.errno in (errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EDQUOT) else "use"
    return f"could not {verb} {err.filename}: {reason}"


def end_process_group() -> None:
    """Destroy the process group a launcher's ranks opened (Trainer, accelerate), once the command's work is done.

    A process that exits with a gloo group alive can abort in its teardown ("terminate called without an active
    exception", SIGABRT), which torchrun reports as a failed job although every rank finished. Called only after
    success: after an error the other ranks may still be inside a collective, and destroying would hang.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no rank tears its group down while another still talks to it
        dist.destroy_process_group()


_RESUME_FLAGS = ("--resume-from-checkpoint", "--resume_from_checkpoint")


def expand_bare_resume(argv: list[str]) -> list[str]:
    """``--resume-from-checkpoint`` given without a path means the latest checkpoint (as in run_glue.py).

    Example:
        >>> expand_bare_resume(["--resume-from-checkpoint", "--seed", "1"])
        ['--resume-from-checkpoint', 'latest', '--seed', '1']
    """
    expanded = []
    for i, token in enumerate(argv):
        expanded.append(token)
        if token in _RESUME_FLAGS and (i + 1 == len(argv) or argv[i + 1].startswith("--")):
            expanded.append("latest")
    return expanded
