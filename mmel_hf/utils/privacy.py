"""What may leave the machine: option dictionaries without secrets or local paths.

Every file that is written for others to read (``metrics.json``, ``results.json``, ``study_config.json``, model
and dataset cards, ``training_args.bin``) passes its options through here.

Examples:
    >>> public_options({"model": "/home/me/models/teacher", "seed": 1, "hub_token": "hf_x"})
    {'model': 'local:teacher', 'seed': 1, 'hub_token': None}
"""

from __future__ import annotations

import os
from pathlib import Path

from ..embedded import EMBEDDED_DIR

__all__ = ["is_secret_key", "public_options", "public_value", "shareable_state"]


def is_secret_key(key: str) -> bool:
    """Fields that hold credentials (``hub_token``, ``push_to_hub_token`` ...)."""
    return key == "token" or key.endswith("_token")


def public_value(value):
    """A local path (absolute, or one that exists here) as ``local:<last component>``; lists element-wise."""
    if isinstance(value, (list, tuple)):
        return [public_value(v) for v in value]
    if isinstance(value, str) and value and (os.path.isabs(value) or Path(value).exists()):
        return f"local:{Path(value).name}"
    return value


def public_options(options: dict) -> dict:
    """``options`` with secrets removed (None) and local paths shown by their last component."""
    return {k: None if is_secret_key(k) else public_value(v) for k, v in options.items()}


def shareable_state(state: dict) -> dict:
    """``state`` without secrets (``*_token`` fields -> None) and with absolute paths cut to their last component:
    what a pickled ``MMELTrainingArguments`` (``training_args.bin``) holds, still usable as relative paths.

    Examples:
        >>> shareable_state({"hub_token": "hf_x", "output_dir": "/home/me/run", "seed": 1})
        {'hub_token': None, 'output_dir': 'run', 'seed': 1}
    """

    def clean(key, value):
        if is_secret_key(key):
            return None
        if isinstance(value, str) and os.path.isabs(value):
            return os.path.basename(value.rstrip(os.sep)) or value
        return value

    return {key: clean(key, value) for key, value in state.items()}


def display_name(name: str) -> str:
    """Model names for cards and summaries: Hub ids as they are, the embedded models by name, no local paths
    (a folder, even one gone from this machine, is ``local:<last component>``).

    >>> display_name("google-bert/bert-base-uncased"), display_name("/home/me/runs/teacher")
    ('google-bert/bert-base-uncased', 'local:teacher')
    """

    path = Path(name)
    if path.is_dir():
        return f"mmel_hf embedded {path.name}" if path.resolve().parent == EMBEDDED_DIR else f"local:{path.name}"
    looks_like_a_path = path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name
    return f"local:{path.name}" if looks_like_a_path else name
