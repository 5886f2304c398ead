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
