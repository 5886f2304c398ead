"""The group layout, the per-sample loss l(f(z), y_z) and the teacher rules of Section 3.3.

A batch of S original examples, each with a group B(x_i) of up to B samples (the original x_i in slot 0,
then its augmented samples), is held in the *grouped* layout: tensors of shape ``[S, B, ...]`` with a
boolean ``group_mask`` ``[S, B]`` that marks real samples. A model sees the *flat* layout: the real
samples only, group after group, in row-major order of ``group_mask`` (this is what
:class:`mmel_hf.MMELDataCollator` produces). :func:`to_groups` goes from flat to grouped.

Targets are always float tensors: class-probability vectors ``[..., C]`` for classification (a gold
label is its one-hot vector, so cross-entropy against it is the usual cross-entropy) and values
``[...]`` for regression (``num_labels == 1``, STS-B, Section 4.2).

Examples:
    >>> import torch
    >>> mask = torch.tensor([[True, True], [True, False]])
    >>> to_groups(torch.tensor([[1.0], [2.0], [3.0]]), mask)[..., 0]
    tensor([[1., 2.],
            [3., 0.]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "gold_targets",
    "hard_targets",
    "sample_losses",
    "soft_targets",
    "teacher_disagreement",
    "to_groups",
]


def to_groups(flat: torch.Tensor, group_mask: torch.Tensor) -> torch.Tensor:
    """Scatter a flat ``[N, ...]`` tensor into the grouped layout ``[S, B, ...]`` (zeros where padded).

    The samples fill the ``True`` slots of ``group_mask`` in row-major order. No host synchronisation on an
    accelerator: the slots come from ``nonzero_static`` (N is the flat batch's length) and the size check is an
    asynchronous device assertion; on the CPU, where checking costs nothing, a mismatch is a ``ValueError``.

    >>> to_groups(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([[True, True], [True, False]]))
    tensor([[1., 2.],
            [3., 0.]])
    """
    size = flat.shape[0]
    message = (
        f"the flat batch has {size} samples but group_mask marks another number; the model inputs and the "
        "group layout do not describe the same batch"
    )
    if group_mask.device.type == "cpu":
        if int(group_mask.sum()) != size:
            raise ValueError(message.replace("another number", f"{int(group_mask.sum())}"))
    elif group_mask.device.type == "mps":  # no nonzero_static there: the boolean scatter (two host syncs)
        grouped = flat.new_zeros((*group_mask.shape, *flat.shape[1:]))
        grouped[group_mask] = flat
        return grouped
    else:
        torch._assert_async(group_mask.sum() == size, message)
    slots = torch.nonzero_static(group_mask.flatten(), size=size).squeeze(1)
    grouped = flat.new_zeros((group_mask.numel(), *flat.shape[1:])).index_copy(0, slots, flat)
    return grouped.view(*group_mask.shape, *flat.shape[1:])


def sample_losses(logits: torch.Tensor, targets: torch.Tensor, regression: bool) -> torch.Tensor:
    """l(f(z), y_z) for every sample: cross-entropy against a probability vector, or squared error.

    Args:
        logits: ``[..., C]`` model outputs (``C == 1`` for regression); computed in float32 (float64 stays
            float64).
        targets: ``[..., C]`` probabilities (classification) or ``[...]`` values (regression).
    Returns:
        ``[...]`` per-sample losses in float32 (float64 for float64 logits).

    A class with zero target probability contributes nothing, even where its logit is ``-inf`` (as
    ``F.cross_entropy`` does; a plain ``0 * -inf`` would be NaN).
    """
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    logits = logits.to(dtype)
    targets = targets.to(dtype)
    if regression:
        return (logits.squeeze(-1) - targets) ** 2
    products = targets * F.log_softmax(logits, dim=-1)
    return -torch.where(targets == 0, torch.zeros_like(products), products).sum(dim=-1)


def gold_targets(labels: torch.Tensor, num_labels: int, regression: bool) -> torch.Tensor:
    """The originals' gold labels as targets: one-hot ``[S, C]`` or values ``[S]``."""
    if regression:
        return labels.float().reshape(-1)
    if labels.dtype.is_floating_point:
        raise TypeError(f"classification labels must be integer class ids, got {labels.dtype}")
    return F.one_hot(labels.long().reshape(-1), num_labels).float()


def hard_targets(
    labels: torch.Tensor,
    group_mask: torch.Tensor,
    num_labels: int,
    regression: bool,
    teacher: torch.Tensor | None = None,
) -> torch.Tensor:
    """y_z for the hard loss (Eq. 7, Section 3.3): the gold label for x_i, the teacher's output for z.

    With ``teacher=None`` every sample gets the original's gold label (the "Original" rows of Table 4).
    Args:
        labels: ``[S]`` gold labels of the originals.
        teacher: ``[S, B, C]`` teacher probabilities (``[S, B, 1]`` predictions for regression), or None.
    Returns:
        ``[S, B, C]`` (classification) or ``[S, B]`` (regression) targets.
    """
    gold = gold_targets(labels, num_labels, regression)
    targets = gold.unsqueeze(1).expand(group_mask.shape[0], group_mask.shape[1], *gold.shape[1:]).clone()
    if teacher is not None:
        teacher = teacher.float().squeeze(-1) if regression else teacher.float()
        targets[:, 1:] = teacher[:, 1:]
    return targets


def teacher_disagreement(
    teacher: torch.Tensor, group_mask: torch.Tensor, regression: bool, threshold: float = 0.5
) -> torch.Tensor:
    """``[S, B-1]`` bool: augmented samples whose teacher output disagrees with the original's.

    Classification: the teacher's predicted class for z differs from its class for x_i (Section 3.3).
    Regression: the teacher's predictions differ by more than ``threshold``. Padded slots are False.
    """
    if regression:
        values = teacher.float().squeeze(-1)
        differs = (values[:, 1:] - values[:, :1]).abs() > threshold
    else:
        classes = teacher.argmax(dim=-1)
        differs = classes[:, 1:] != classes[:, :1]
    return differs & group_mask[:, 1:]


def soft_targets(
    original_logits: torch.Tensor,
    group_mask: torch.Tensor,
    regression: bool,
    teacher: torch.Tensor | None = None,
    detach: bool = True,
    regression_threshold: float = 0.5,
) -> torch.Tensor:
    """The target of each augmented sample in the soft loss (Eq. 8 and Section 3.3 / 4.2).

    By default the target is f(x_i), the model's own prediction for the original. With a teacher:
    - classification: where the teacher's class for z differs from its class for x_i, the target is the
      teacher's probabilities for z instead;
    - regression: where f(x_i) and the teacher's prediction for z differ by more than
      ``regression_threshold`` (0.5 in the paper), the target is the teacher's prediction for z.
    ``detach=True`` treats f(x_i) as a fixed target (as UDA does): the augmented term then pulls f(z)
    towards f(x_i) and never the other way, so noisy augmentations cannot drag the prediction on the
    clean original, which is trained only by its gold label.

    Args:
        original_logits: ``[S, C]`` logits of the originals (slot 0 of every group).
        teacher: ``[S, B, C]`` teacher outputs for every slot, or None.
    Returns:
        ``[S, B-1, C]`` probabilities or ``[S, B-1]`` values for the augmented slots.
    """
    num_augmented = group_mask.shape[1] - 1
    original_logits = original_logits.float()
    if detach:
        original_logits = original_logits.detach()
    if regression:
        prediction = original_logits.squeeze(-1)
        targets = prediction.unsqueeze(1).expand(-1, num_augmented)
        if teacher is not None:
            teacher_values = teacher.float().squeeze(-1)[:, 1:]
            replace = (prediction.detach().unsqueeze(1) - teacher_values).abs() > regression_threshold
            targets = torch.where(replace, teacher_values, targets)
        return targets
    probabilities = original_logits.softmax(dim=-1)
    targets = probabilities.unsqueeze(1).expand(-1, num_augmented, -1)
    if teacher is not None:
        replace = teacher_disagreement(teacher, group_mask, regression=False)
        targets = torch.where(replace.unsqueeze(-1), teacher.float()[:, 1:], targets)
    return targets
