"""What made an augmented dataset, as stored in it and shown on cards: no local paths, no secrets.

Reading it back is the dataset contract's (:func:`mmel_hf.schema.read_provenance`, used by the trainer too);
model and file names go through :func:`mmel_hf.utils.privacy.display_name`."""

from __future__ import annotations

from ..tasks.registry import TaskSpec, describe_task
from ..utils.privacy import display_name
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
