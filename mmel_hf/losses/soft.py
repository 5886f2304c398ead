"""MMEL-S: the soft reweighted loss of Eq. 8 with the weights of Eq. 9.

    R^soft(x_i) = l(f(x_i), y_i)
                  + lambda_T * [ sum_{z != x_i} P*(z) l(f(z), t_z) - lambda_P sum_{z != x_i} P*(z) log((|B|-1) P*(z)) ]

where P* is the softmax of ``l(f(z), t_z) / lambda_P`` over the augmented samples only (Eq. 9) and the
target t_z is f(x_i) or, where the teacher disagrees, the teacher's output (see
:func:`mmel_hf.losses.targets.soft_targets`). The bracket is the Theorem 1 objective over the |B|-1
augmented samples, so it is computed by the same stable :func:`hard_objective`. A group with no augmented
sample contributes only its first term.

Examples:
    >>> import torch
    >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]])
    >>> mask = torch.tensor([[True, True, True]])
    >>> out = mmel_soft_loss(logits, mask, torch.tensor([0]), lambda_p=1.0, lambda_t=1.0)
    >>> out.weights[0, 0].item()  # x_i itself is not reweighted in Eq. 9
    0.0
"""

from __future__ import annotations

import torch

from .hard import MMELLossOutput
from .reweighting import hard_objective, mmel_weights
from .targets import gold_targets, sample_losses, soft_targets

__all__ = ["mmel_soft_loss"]


def mmel_soft_loss(
    logits: torch.Tensor,
    group_mask: torch.Tensor,
    labels: torch.Tensor,
    teacher: torch.Tensor | None = None,
    lambda_p: float = 1.0,
    lambda_t: float = 1.0,
    detach_target: bool = True,
    regression_threshold: float = 0.5,
) -> MMELLossOutput:
    """R^soft of Eq. 8 for each group.

    Args:
        logits: ``[S, B, C]`` grouped model outputs (``C == 1``: regression with squared error).
        group_mask: ``[S, B]`` bool, True for real samples; slot 0 must be the original x_i.
        labels: ``[S]`` gold labels of the originals.
        teacher: ``[S, B, C]`` teacher outputs for every slot (enables the replacement rules of Section
            3.3 and 4.2), or None.
        lambda_p: lambda_P of Eq. 8-9; ``inf`` for uniform weights, 0 for the max.
        lambda_t: lambda_T of Eq. 8, the weight of the augmented term.
        detach_target: treat f(x_i) as a constant target (default, as in UDA).
        regression_threshold: the 0.5 of Section 4.2 for regression targets.
    """
    regression = logits.shape[-1] == 1
    original_logits = logits[:, 0]
    original_loss = sample_losses(original_logits, gold_targets(labels, logits.shape[-1], regression), regression)

    targets = soft_targets(original_logits, group_mask, regression, teacher, detach_target, regression_threshold)
    augmented_mask = group_mask[:, 1:]
    augmented_losses = sample_losses(logits[:, 1:], targets, regression)
    reweighted = hard_objective(augmented_losses, augmented_mask, lambda_p)

    detached = torch.cat([original_loss.detach().unsqueeze(1), augmented_losses.detach()], dim=1)
    weights = mmel_weights(augmented_losses.detach(), augmented_mask, lambda_p)
    return MMELLossOutput(
        loss=original_loss + lambda_t * reweighted,
        # x_i's slot holds weight 0 (it is not reweighted); built from the shape, so groups without augmented
        # samples still give [S, 1] weights.
        weights=torch.cat([weights.new_zeros((weights.shape[0], 1)), weights], dim=1),
        sample_losses=detached,
    )
