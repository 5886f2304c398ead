"""Offline augmentation for MMEL: any :class:`Augmenter` (Algorithm 2 with a fill-mask model, samples from a file,
or your own object), then a teacher.

This package never imports the trainer; both meet only in the dataset schema (:mod:`mmel_hf.schema`).
"""

from ..tasks.registry import GLUE_TASKS, TaskSpec, custom_task, get_task, known_tasks
from ..tasks.sources import DataError, load_task_data
from .augment_config import AugmentConfig
from .augmenter import Augmenter
from .file_source import FileAugmenter
from .fill_mask import FillMaskAugmenter, num_positions, sample_positions
from .pipeline import AugmentationResult, run_augmentation
from .teacher import TeacherLabeler

__all__ = [
    "GLUE_TASKS",
    "AugmentConfig",
    "AugmentationResult",
    "Augmenter",
    "DataError",
    "FileAugmenter",
    "FillMaskAugmenter",
    "TaskSpec",
    "TeacherLabeler",
    "custom_task",
    "get_task",
    "known_tasks",
    "load_task_data",
    "num_positions",
    "run_augmentation",
    "sample_positions",
]
