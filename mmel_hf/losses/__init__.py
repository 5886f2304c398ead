"""Pure tensor functions for MMEL (Yi et al., ICLR 2021). Nothing here knows about a Trainer."""

from .hard import MMELLossOutput, mmel_hard_loss
from .reweighting import hard_objective, max_objective, mmel_weights, uniform_objective, weight_entropy
from .soft import mmel_soft_loss
from .targets import (
    gold_targets,
    hard_targets,
    sample_losses,
    soft_targets,
    teacher_disagreement,
    to_groups,
)

__all__ = [
    "MMELLossOutput",
    "gold_targets",
    "hard_objective",
    "hard_targets",
    "max_objective",
    "mmel_hard_loss",
    "mmel_soft_loss",
    "mmel_weights",
    "sample_losses",
    "soft_targets",
    "teacher_disagreement",
    "to_groups",
    "uniform_objective",
    "weight_entropy",
]
