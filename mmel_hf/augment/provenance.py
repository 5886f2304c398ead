"""What made an augmented dataset, as stored in it and shown on cards: no local paths, no secrets."""

from __future__ import annotations

import json
from pathlib import Path

from ..tasks.registry import TaskSpec, describe_task, is_registered
from .augment_config import AugmentConfig


def provenance(
    spec: TaskSpec, config: AugmentConfig, mlm_name: str | None, teacher_name: str | None, made: dict | None = None
) -> dict:
    """What made an augmented dataset; stored in its ``info.description`` and read back by ``mmel-train``.
    ``made``: the augmenter's own description (:meth:`Augmenter.describe`)."""
    return {
        "mmel_hf_task": spec.name,
        "task": describe_task(spec),
        "num_labels": spec.num_labels,
        "augmenter": made or {"augmenter": config.augmenter_name},
        "mlm_model": display_name(mlm_name) if mlm_name else None,
        "teacher": display_name(teacher_name) if teacher_name else None,
        "label_source": config.label_source,
        "group_size": config.group_size,
        "ratio": config.ratio if config.augmenter_name == "fill-mask" else None,
        "search": config.search if config.augmenter_name == "fill-mask" else None,
    }


def read_provenance(dataset) -> dict:
    """The :func:`provenance` of an augmented split, or ``{}`` for data made elsewhere."""
    try:
        found = json.loads(dataset.info.description or "")
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) and "mmel_hf_task" in found else {}


def recorded_task(dataset) -> dict | None:
    """The task description an augmented split records (mmel-augment writes it), or None for data made elsewhere."""
    found = read_provenance(dataset)
    if isinstance(found.get("task"), dict):
        return found["task"]
    name = found.get("mmel_hf_task")  # made by an older mmel_hf: the name alone, enough for a registered task
    if name is not None and is_registered(name):
        return {"name": name}
    return None


def display_name(name: str) -> str:
    """Model names for cards and summaries: Hub ids as they are, the embedded models by name, no local paths
    (a folder, even one gone from this machine, is ``local:<last component>``).

    >>> display_name("google-bert/bert-base-uncased"), display_name("/home/me/runs/teacher")
    ('google-bert/bert-base-uncased', 'local:teacher')
    """
    from ..embedded import EMBEDDED_DIR

    path = Path(name)
    if path.is_dir():
        return f"mmel_hf embedded {path.name}" if path.resolve().parent == EMBEDDED_DIR else f"local:{path.name}"
    looks_like_a_path = path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name
    return f"local:{path.name}" if looks_like_a_path else name
