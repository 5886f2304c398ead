"""One augmentation job: what :mod:`.pipeline`'s steps share, filled in as they run.

Each step reads the fields the steps before it set and sets its own, so a step takes the job and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..tasks.registry import TaskSpec
from ..utils.privacy import display_name
from .augment_config import AugmentConfig

if TYPE_CHECKING:
    import torch
    from accelerate import PartialState
    from datasets import DatasetDict

    from .transform import BlockBuilder

__all__ = ["AugmentJob"]


@dataclass
class AugmentJob:
    """The state of one ``run_augmentation`` call: set up (step 1), task and data (2), models (3), cache (4)."""

    config: AugmentConfig  # with the device's defaults resolved (step 1)
    state: PartialState  # this process under accelerate launch/torchrun, or the only one
    device: torch.device
    started: float  # time.perf_counter() at the start, for the summary's seconds
    spec: TaskSpec | None = None
    data: DatasetDict | None = None
    mlm_name: str | None = None  # the fill-mask model, for the fill-mask augmenter
    teacher_name: str | None = None
    builder: BlockBuilder | None = None  # computes one block: the augmenter and the teacher
    numerics: dict | None = None  # what this machine computes with (:func:`.numerics.describe_numerics`)
    cache_root: Path | None = None
    fingerprint: str | None = None

    @property
    def cache_path(self) -> Path:
        """The cache of these options as first named (a job may settle on a sibling: :func:`.cache.choose_cache`)."""
        return self.cache_root / self.fingerprint

    @property
    def train_rows(self) -> int:
        return len(self.data["train"])

    def model_names(self) -> dict:
        """The two models as a summary or card shows them: Hub ids, ``local:<folder name>``, never a local path."""
        return {
            "mlm_model": display_name(self.mlm_name) if self.mlm_name else None,
            "teacher": display_name(self.teacher_name) if self.teacher_name else None,
        }
