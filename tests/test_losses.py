"""MMEL-H (Eq. 7) and MMEL-S (Eq. 8-9) against direct transcriptions, with the teacher rules of Section 3.3."""

import math

import pytest
import torch
import torch.nn.functional as F

from mmel_hf import MMELTrainingArguments
from mmel_hf.losses import (
    mmel_hard_loss,
    mmel_soft_loss,
    sample_losses,
    soft_targets,
    teacher_disagreement,
    to_groups,
)


def ce(logits, target_probs):
    return -(target_probs * F.log_softmax(logits.double(), -1)).sum().item()


def eq7(losses, lambda_p):
    """Direct transcription of Eq. 6-7 for one group (a Python list of losses)."""
    exps = [math.exp(v / lambda_p) for v in losses]
    weights = [e / sum(exps) for e in exps]
    n = len(losses)
    return sum(w * v - lambda_p * w * math.log(n * w) for w, v in zip(weights, losses)), weights


def ragged_batch(seed=0, num_labels=3):
    torch.manual_seed(seed)
    sizes = [4, 2, 1, 3]
    mask = torch.zeros(len(sizes), max(sizes), dtype=torch.bool)
    for i, n in enumerate(sizes):
        mask[i, :n] = True
    logits = torch.randn(len(sizes), max(sizes), num_labels, dtype=torch.float64) * 2
    logits[~mask] = 50.0  # garbage in padding
    teacher = torch.softmax(torch.randn(len(sizes), max(sizes), num_labels, dtype=torch.float64) * 3, -1)
    labels = torch.randint(0, num_labels, (len(sizes),))
    return sizes, mask, logits, teacher, labels


@pytest.mark.parametrize("use_teacher", [True, False])
def test_hard_loss_matches_eq7_transcription(use_teacher):
    sizes, mask, logits, teacher, labels = ragged_batch()
    out = mmel_hard_loss(logits, mask, labels, teacher if use_teacher else None, lambda_p=0.8)
    for i, n in enumerate(sizes):
        per_sample = []
        for j in range(n):
            if j == 0 or not use_teacher:
                target = F.one_hot(labels[i], 3).double()  # gold label for x_i (and for z: Table 4 "Original")
            else:
                target = teacher[i, j]  # the teacher's probabilities as y_z (Section 3.3)
            per_sample.append(ce(logits[i, j], target))
        value, weights = eq7(per_sample, 0.8)
        assert out.loss[i].item() == pytest.approx(value, rel=1e-5)
        torch.testing.assert_close(
            out.weights[i, :n].double(), torch.tensor(weights, dtype=torch.float64), rtol=1e-5, atol=1e-6
        )
        assert out.weights[i, n:].abs().sum() == 0


@pytest.mark.parametrize("detach", [True, False])
def test_soft_loss_matches_eq8_transcription(detach):
    sizes, mask, logits, teacher, labels = ragged_batch(1)
    lambda_p, lambda_t = 0.6, 1.7
    out = mmel_soft_loss(logits, mask, labels, teacher, lambda_p=lambda_p, lambda_t=lambda_t, detach_target=detach)
    for i, n in enumerate(sizes):
        first = ce(logits[i, 0], F.one_hot(labels[i], 3).double())
        original_probs = torch.softmax(logits[i, 0].double(), -1)
        teacher_class_x = teacher[i, 0].argmax()
        augmented = []
        for j in range(1, n):
            target = teacher[i, j] if teacher[i, j].argmax() != teacher_class_x else original_probs
            augmented.append(ce(logits[i, j], target))
        if augmented:
            # Eq. 9: P* over the augmented samples only; Eq. 8: log((|B|-1) P*).
            reweighted, weights = eq7(augmented, lambda_p)
            torch.testing.assert_close(
                out.weights[i, 1:n].double(), torch.tensor(weights, dtype=torch.float64), rtol=1e-5, atol=1e-6
            )
        else:
            reweighted = 0.0
        assert out.loss[i].item() == pytest.approx(first + lambda_t * reweighted, rel=1e-5)
        assert out.weights[i, 0] == 0


def test_soft_target_detach_controls_gradient_into_the_original():
    sizes, mask, logits, _, labels = ragged_batch(2)
    for detach, expect_extra in ((True, False), (False, True)):
        leaf = logits.clone().requires_grad_()
        mmel_soft_loss(leaf, mask, labels, None, detach_target=detach).loss.sum().backward()
        only_gold = logits[:, 0].clone().requires_grad_()
        F.cross_entropy(only_gold, labels, reduction="sum").backward()
        differs = not torch.allclose(leaf.grad[:, 0], only_gold.grad)
        # Group 2 has no augmented sample: its original only ever sees the gold label.
        torch.testing.assert_close(leaf.grad[2, 0], only_gold.grad[2])
        assert differs == expect_extra


def test_classification_teacher_replacement_rule():
    mask = torch.ones(1, 3, dtype=torch.bool)
    original_logits = torch.tensor([[2.0, 0.0]])
    teacher = torch.tensor([[[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]])  # z_2 flips the teacher's class
    targets = soft_targets(original_logits, mask, regression=False, teacher=teacher)
    own = torch.softmax(original_logits[0], -1)
    torch.testing.assert_close(targets[0, 0], own)  # same class: f(x_i)
    torch.testing.assert_close(targets[0, 1], teacher[0, 2])  # different class: the teacher's probabilities
    torch.testing.assert_close(teacher_disagreement(teacher, mask, regression=False), torch.tensor([[False, True]]))
    no_teacher = soft_targets(original_logits, mask, regression=False, teacher=None)
    torch.testing.assert_close(no_teacher[0, 1], own)


def test_regression_teacher_rules():
    mask = torch.tensor([[True, True, True, False]])
    logits = torch.tensor([[[2.0], [2.5], [1.0], [9.0]]])
    labels = torch.tensor([2.2])
    teacher = torch.tensor([[[2.1], [2.4], [3.0], [0.0]]])
    # Soft: f(x_i) = 2.0; teacher(z_1) = 2.4 is within 0.5, teacher(z_2) = 3.0 is not -> replaced.
    targets = soft_targets(logits[:, 0], mask, regression=True, teacher=teacher, regression_threshold=0.5)
    torch.testing.assert_close(targets[0, :2], torch.tensor([2.0, 3.0]))
    # Hard: y_z is the teacher's prediction for z, y_x the gold value; l = squared error.
    out = mmel_hard_loss(logits, mask, labels, teacher, lambda_p=1.0)
    value, _ = eq7([(2.0 - 2.2) ** 2, (2.5 - 2.4) ** 2, (1.0 - 3.0) ** 2], 1.0)
    assert out.loss.item() == pytest.approx(value, rel=1e-5)
    soft = mmel_soft_loss(logits, mask, labels, teacher, lambda_p=1.0, lambda_t=0.5)
    reweighted, _ = eq7([(2.5 - 2.0) ** 2, (1.0 - 3.0) ** 2], 1.0)
    assert soft.loss.item() == pytest.approx((2.0 - 2.2) ** 2 + 0.5 * reweighted, rel=1e-5)
    assert teacher_disagreement(teacher, mask, regression=True).tolist() == [[False, True, False]]


def test_hard_loss_limits_and_half_precision_logits():
    sizes, mask, logits, teacher, labels = ragged_batch(3)
    uniform = mmel_hard_loss(logits, mask, labels, teacher, lambda_p=float("inf")).loss
    maximum = mmel_hard_loss(logits, mask, labels, teacher, lambda_p=0.0).loss
    torch.testing.assert_close(
        mmel_hard_loss(logits, mask, labels, teacher, lambda_p=1e6).loss, uniform, rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(
        mmel_hard_loss(logits, mask, labels, teacher, lambda_p=1e-4).loss, maximum, rtol=1e-3, atol=1e-3
    )
    for dtype in (torch.float16, torch.bfloat16):
        half = mmel_hard_loss(logits.to(dtype), mask, labels, teacher.to(dtype), lambda_p=1.0)
        assert half.loss.dtype == torch.float32 and torch.isfinite(half.loss).all()
        soft = mmel_soft_loss(logits.to(dtype), mask, labels, teacher.to(dtype))
        assert torch.isfinite(soft.loss).all()


def test_to_groups_round_trip_and_gradient():
    mask = torch.tensor([[True, True, False], [True, False, False], [True, True, True]])
    flat = torch.arange(6.0).unsqueeze(1).requires_grad_()
    grouped = to_groups(flat, mask)
    assert grouped[..., 0].tolist() == [[0, 1, 0], [2, 0, 0], [3, 4, 5]]
    torch.testing.assert_close(grouped[mask], flat)
    grouped.sum().backward()
    torch.testing.assert_close(flat.grad, torch.ones(6, 1))
    with pytest.raises(ValueError, match="group_mask marks 6"):
        to_groups(torch.zeros(5, 1), mask)


def test_classification_labels_must_be_integers():
    mask = torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(TypeError, match="class ids"):
        mmel_hard_loss(torch.zeros(1, 2, 3), mask, torch.tensor([1.0]))


def test_soft_loss_weights_keep_one_slot_per_group_without_augmented_samples():
    out = mmel_soft_loss(torch.zeros(2, 1, 3), torch.ones(2, 1, dtype=torch.bool), torch.tensor([0, 2]))
    assert out.weights.shape == (2, 1) and out.loss.shape == (2,)
    assert torch.isfinite(out.loss).all()


def test_float64_logits_stay_float64_and_minus_inf_logits_are_finite():
    logits = torch.tensor([[[2.0, 0.0], [0.5, 0.1]]], dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    out = mmel_hard_loss(logits, mask, torch.tensor([0]))
    assert out.loss.dtype == torch.float64 and out.sample_losses.dtype == torch.float64
    minus_inf = torch.tensor([[3.0, -math.inf, 0.0]])
    loss = sample_losses(minus_inf, torch.tensor([[1.0, 0.0, 0.0]]), regression=False)
    expected = torch.nn.functional.cross_entropy(minus_inf, torch.tensor([0]), reduction="none")
    assert torch.isfinite(loss).all()
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("lambda_p", [1e39, 1e-46, 1e300])
def test_lambda_p_outside_float32_range_is_refused(lambda_p):
    with pytest.raises(ValueError, match="mmel_lambda_p"):
        MMELTrainingArguments(output_dir="x", mmel_loss="hard", mmel_lambda_p=lambda_p)


@pytest.mark.parametrize("lambda_p", [1e-30, 1e30])
def test_lambda_p_at_the_accepted_bounds_gives_finite_losses(lambda_p):
    MMELTrainingArguments(output_dir="x", mmel_loss="soft", mmel_lambda_p=lambda_p)
    logits = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(0))
    out = mmel_hard_loss(logits, torch.ones(3, 4, dtype=torch.bool), torch.tensor([0, 1, 0]), lambda_p=lambda_p)
    assert torch.isfinite(out.loss).all() and torch.isfinite(out.weights).all()
