"""Kept for one reason: ``training_args.bin`` files written before the 2026-12-03 layout name this module, and
``Trainer`` unpickles them on resume. The class lives in :mod:`mmel_hf.training_args`. Removed in 0.2.0."""

import warnings

from .training_args import MMELTrainingArguments

__all__ = ["MMELTrainingArguments"]
REMOVED_IN = "0.2.0"

warnings.warn(
    f"mmel_hf.mmel_config is kept only to unpickle old training_args.bin files and goes away in {REMOVED_IN}; "
    "import MMELTrainingArguments from mmel_hf",
    DeprecationWarning,
    stacklevel=2,
)
