"""Group reductions of per-sample losses: the MMEL weights and objective and their two limits.

Every function here takes a matrix of per-sample losses ``losses`` of shape ``[S, B]`` (one row per
original example x_i, one column per slot of its group B(x_i)) and a boolean ``mask`` of the same shape
that marks the slots that hold a real sample. Groups may have different sizes; padded slots may hold any
finite value and never influence the result or receive gradient. All arithmetic is done in float32 (or
float64 when the input is float64), so half-precision losses are safe.

The objective of Theorem 1 (Yi et al., ICLR 2021, Eq. 5 and 7) is

    R(x_i) = sum_z P*(z) l(z) - lambda_P * sum_z P*(z) log(|B(x_i)| P*(z)),
    P*(z)  = softmax_z(l(z) / lambda_P)                                   (Eq. 6)

which equals ``lambda_P * (logsumexp(l / lambda_P) - log|B(x_i)|)``. We evaluate that form shifted by
the group maximum m, ``m + lambda_P * log1p(mean(expm1((l - m) / lambda_P)))``, which is exact and
finite for lambda_P anywhere in [1e-4, 1e6]: the shift keeps ``exp`` from overflowing for small lambda_P,
and ``expm1``/``log1p`` avoid the cancellation of ``logsumexp - log|B|`` for large lambda_P. Its autograd
gradient with respect to l(z) is exactly P*(z) (the weights held fixed), as Theorem 1's envelope
argument says; ``tests/test_reweighting.py`` checks this numerically.

Examples:
    >>> import torch
    >>> losses = torch.tensor([[1.0, 2.0, 3.0], [0.5, 9.0, 0.0]])
    >>> mask = torch.tensor([[True, True, True], [True, False, False]])
    >>> mmel_weights(losses, mask, lambda_p=1.0).round(decimals=3)
    tensor([[0.0900, 0.2450, 0.6650],
            [1.0000, 0.0000, 0.0000]])
    >>> hard_objective(losses, mask, lambda_p=1e6)  # the uniform limit (DA+UNI)
    tensor([2.0000, 0.5000])
"""

from __future__ import annotations

import torch

__all__ = [
    "hard_objective",
    "max_objective",
    "mmel_weights",
    "uniform_objective",
    "weight_entropy",
]


def _as_float(losses: torch.Tensor) -> torch.Tensor:
    return losses if losses.dtype == torch.float64 else losses.float()


def _check(losses: torch.Tensor, mask: torch.Tensor) -> None:
    if losses.dim() != 2 or losses.shape != mask.shape:
        raise ValueError(
            f"losses and mask must both have shape [num_groups, group_size]; got {tuple(losses.shape)} "
            f"and {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")


def _check_lambda(lambda_p: float) -> None:
    if not lambda_p >= 0:  # also rejects NaN
        raise ValueError(f"lambda_p must be >= 0 (0 is the max limit, inf the uniform limit), got {lambda_p!r}")


def _shifted(losses: torch.Tensor, mask: torch.Tensor, lambda_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the group maxima m ``[S]`` and ``(l - m) / lambda_P`` (0 in padded slots), both in float."""
    losses = _as_float(losses)
    if losses.shape[1] == 0:  # groups with no slot at all, e.g. the augmented part of a size-1 group
        return losses.new_zeros(losses.shape[0]), losses
    group_max = losses.masked_fill(~mask, float("-inf")).amax(dim=1)
    group_max = torch.where(mask.any(dim=1), group_max, torch.zeros_like(group_max))
    scaled = torch.where(mask, (losses - group_max.unsqueeze(1)) / lambda_p, torch.zeros_like(losses))
    return group_max, scaled


def mmel_weights(losses: torch.Tensor, mask: torch.Tensor, lambda_p: float) -> torch.Tensor:
    """P* of Eq. 6 (Eq. 9 when given only the augmented slots): softmax of ``losses / lambda_p`` per group.

    ``lambda_p=inf`` gives the uniform weights 1/|B| and ``lambda_p=0`` puts all weight on the largest loss
    (shared equally between ties): the two limits of Eq. 6. Padded slots get weight 0; a group with no
    valid slot gets all zeros.
    """
    _check(losses, mask)
    _check_lambda(lambda_p)
    if lambda_p == float("inf"):
        unnormalised = mask.to(_as_float(losses).dtype)
    elif lambda_p == 0:
        group_max, _ = _shifted(losses, mask, 1.0)
        unnormalised = (mask & (_as_float(losses) == group_max.unsqueeze(1))).to(group_max.dtype)
    else:
        _, scaled = _shifted(losses, mask, lambda_p)
        unnormalised = torch.where(mask, scaled.exp(), torch.zeros_like(scaled))
    return unnormalised / unnormalised.sum(dim=1, keepdim=True).clamp_min(torch.finfo(unnormalised.dtype).tiny)


def hard_objective(losses: torch.Tensor, mask: torch.Tensor, lambda_p: float) -> torch.Tensor:
    """The maximal expected loss of Theorem 1 (Eq. 5 / Eq. 7) for each group, shape ``[S]``.

    ``sum_z P* l - lambda_P sum_z P* log(|B| P*)`` with ``|B|`` the group's own size. Empty groups give 0.
    The gradient with respect to ``losses`` is P* (Eq. 6). ``lambda_p=inf`` is the uniform limit
    (:func:`uniform_objective`) and ``lambda_p=0`` the max limit (:func:`max_objective`).
    """
    _check(losses, mask)
    _check_lambda(lambda_p)
    if lambda_p == float("inf"):
        return uniform_objective(losses, mask)
    if lambda_p == 0:
        return max_objective(losses, mask)
    group_max, scaled = _shifted(losses, mask, lambda_p)
    sizes = mask.sum(dim=1)
    # mean(exp(s)) - 1 over the valid slots, written with expm1 so that it stays exact when s is tiny.
    mean_expm1 = torch.where(mask, torch.expm1(scaled), torch.zeros_like(scaled)).sum(dim=1) / sizes.clamp_min(1)
    value = group_max + lambda_p * torch.log1p(mean_expm1)
    return torch.where(sizes > 0, value, torch.zeros_like(value))


def uniform_objective(losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The lambda_P -> infinity limit: the plain mean over each group (Eq. 1; DA+UNI / Batch Augmentation)."""
    _check(losses, mask)
    losses = _as_float(losses)
    total = torch.where(mask, losses, torch.zeros_like(losses)).sum(dim=1)
    return total / mask.sum(dim=1).clamp_min(1)


def max_objective(losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The lambda_P -> 0 limit: the largest loss in each group (MaxUp). Empty groups give 0."""
    _check(losses, mask)
    group_max, _ = _shifted(losses, mask, 1.0)
    return group_max


def weight_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each row of a weight matrix such as P*; padded slots (weight 0) contribute 0."""
    weights = _as_float(weights)
    return -(weights * torch.log(weights.clamp_min(torch.finfo(weights.dtype).tiny))).sum(dim=1)
