"""MMEL-H: the hard reweighted loss of Eq. 7 with the weights of Eq. 6, and its two limits.

``lambda_p`` controls how far P* may move from uniform (Remark 2): ``lambda_p=inf`` is DA+UNI (the plain
mean over each group, Eq. 1) and ``lambda_p=0`` is MaxUp (the largest loss in each group).

Examples:
    >>> import torch
    >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0]]])      # S=1 group: x_1 and one augmented z
    >>> mask = torch.tensor([[True, True]])
    >>> labels = torch.tensor([0])
    >>> out = mmel_hard_loss(logits, mask, labels, lambda_p=1.0)  # y_z = y_x (no teacher)
    >>> out.weights                                               # the misclassified z gets more weight
    tensor([[0.1192, 0.8808]])
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .reweighting import hard_objective, mmel_weights
from .targets import hard_targets, sample_losses

__all__ = ["MMELLossOutput", "mmel_hard_loss"]


class MMELLossOutput(NamedTuple):
    """What an MMEL loss returns.

    Attributes:
        loss: ``[S]`` the objective of each group (average it, or sum and normalise, to train).
        weights: ``[S, B]`` P* (detached); slots outside the reweighted set (padding, and x_i in the
            soft loss) are 0.
        sample_losses: ``[S, B]`` the detached per-sample losses the weights were computed from.
    """

    loss: torch.Tensor
    weights: torch.Tensor
    sample_losses: torch.Tensor


def mmel_hard_loss(
    logits: torch.Tensor,
    group_mask: torch.Tensor,
    labels: torch.Tensor,
    teacher: torch.Tensor | None = None,
    lambda_p: float = 1.0,
) -> MMELLossOutput:
    """R^hard of Eq. 7 for each group.

    Args:
        logits: ``[S, B, C]`` grouped model outputs (``C == 1``: regression with squared error).
        group_mask: ``[S, B]`` bool, True for real samples; slot 0 must be the original x_i.
        labels: ``[S]`` gold labels of the originals (class ids, or floats for regression).
        teacher: ``[S, B, C]`` teacher outputs used as y_z for the augmented samples (Section 3.3), or
            None to give every augmented sample the original's label (Table 4, "Original").
        lambda_p: the KL coefficient lambda_P of Eq. 3; ``inf`` for uniform weights, 0 for the max.
    """
    regression = logits.shape[-1] == 1
    targets = hard_targets(labels, group_mask, logits.shape[-1], regression, teacher)
    losses = sample_losses(logits, targets, regression)
    detached = losses.detach()
    return MMELLossOutput(
        loss=hard_objective(losses, group_mask, lambda_p),
        weights=mmel_weights(detached, group_mask, lambda_p),
        sample_losses=detached,
    )
