"""Modules that moved in the 2026-12-03 layout, and the aliases that keep their old paths working for one release.

An old module file holds two lines, ``from mmel_hf._moved import alias`` and ``alias(__name__)``: importing it
warns (``DeprecationWarning``) and hands back the new module itself, so attributes, patches and ``isinstance``
behave as before.
"""

import importlib
import sys
import warnings

MOVED = {
    "mmel_hf.train": "mmel_hf.workflows.train",
    "mmel_hf.train_config": "mmel_hf.workflows.train_config",
    "mmel_hf.study": "mmel_hf.workflows.study",
    "mmel_hf.study_report": "mmel_hf.workflows.study_report",
    "mmel_hf.main_job": "mmel_hf.workflows.main_job",
    "mmel_hf.vision.train": "mmel_hf.workflows.train_vision",
    "mmel_hf.augment.tasks": "mmel_hf.tasks.registry",
    "mmel_hf.augment.sources": "mmel_hf.tasks.sources",
    "mmel_hf.metrics": "mmel_hf.tasks.metrics",
    "mmel_hf.mmel_trainer": "mmel_hf.trainer",
    "mmel_hf.mmel_config": "mmel_hf.training_args",
    "mmel_hf.long_data": "mmel_hf.da_long",
}


def alias(old: str) -> None:
    """Make the module being imported as ``old`` the module it moved to."""
    new = MOVED[old]
    warnings.warn(f"{old} moved to {new}; the old path goes away in the next release", DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
