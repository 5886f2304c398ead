"""Theorem 1, Eq. 5-7 and the limits, checked numerically on hand-made and random losses."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mmel_hf.losses import hard_objective, max_objective, mmel_weights, uniform_objective, weight_entropy


def eq5_reference(losses: np.ndarray, lambda_p: float) -> tuple[np.ndarray, float]:
    """Direct float64 transcription of Eq. 6 and Eq. 5 for one group."""
    scaled = losses / lambda_p
    weights = np.exp(scaled - scaled.max())
    weights /= weights.sum()
    value = float(np.sum(weights * losses) - lambda_p * np.sum(weights * np.log(len(losses) * weights)))
    return weights, value


def regularised_expected_loss(p: np.ndarray, losses: np.ndarray, lambda_p: float) -> float:
    """E_P[l] - lambda_P KL(P || U), the objective that Eq. 4 maximises over P (Eq. 3)."""
    p = np.clip(p, 1e-300, None)
    return float(np.sum(p * losses) - lambda_p * np.sum(p * np.log(len(losses) * p)))


@pytest.mark.parametrize("lambda_p", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_theorem1_weights_maximise_the_regularised_expected_loss(lambda_p, seed):
    rng = np.random.default_rng(seed)
    losses = rng.gamma(2.0, 1.0, size=6)
    n = len(losses)
    result = minimize(
        lambda p: -regularised_expected_loss(p, losses, lambda_p),
        x0=np.full(n, 1.0 / n),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1.0}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert result.success, result.message
    optimum = -result.fun

    t_losses = torch.tensor(losses, dtype=torch.float64).unsqueeze(0)
    mask = torch.ones_like(t_losses, dtype=torch.bool)
    weights = mmel_weights(t_losses, mask, lambda_p)[0].numpy()
    value = hard_objective(t_losses, mask, lambda_p)[0].item()

    np.testing.assert_allclose(weights, result.x, atol=1e-4)
    # P* attains the supremum: no point of the simplex the optimiser found does better ...
    assert regularised_expected_loss(weights, losses, lambda_p) >= optimum - 1e-9
    # ... and the closed form of Theorem 1 (Eq. 5) is the value at that supremum.
    assert value == pytest.approx(optimum, abs=1e-8)
    assert value == pytest.approx(eq5_reference(losses, lambda_p)[1], abs=1e-12)
    # Random points of the simplex never beat it.
    for p in rng.dirichlet(np.ones(n), size=200):
        assert regularised_expected_loss(p, losses, lambda_p) <= value + 1e-12


@pytest.mark.parametrize("lambda_p", [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 1e2, 1e3, 1e4, 1e5, 1e6])
def test_float32_objective_matches_float64_eq5_over_the_whole_lambda_range(lambda_p):
    rng = np.random.default_rng(7)
    losses = rng.gamma(2.0, 1.5, size=(4, 5))
    mask = torch.ones(4, 5, dtype=torch.bool)
    got = hard_objective(torch.tensor(losses, dtype=torch.float32), mask, lambda_p)
    assert torch.isfinite(got).all()
    for row, value in zip(losses, got.tolist()):
        # float64 logsumexp form as the reference (exact enough even for lambda_P = 1e6 in float64).
        scaled = row / lambda_p
        reference = lambda_p * (np.logaddexp.reduce(scaled) - math.log(len(row)))
        assert value == pytest.approx(reference, rel=2e-6, abs=2e-6)


def test_limits_uniform_and_max():
    losses = torch.tensor([[0.2, 1.5, 0.7, 3.1], [2.0, 0.1, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    uniform = uniform_objective(losses, mask)
    maximum = max_objective(losses, mask)
    torch.testing.assert_close(uniform, torch.tensor([5.5 / 4, 2.1 / 2]))
    torch.testing.assert_close(maximum, torch.tensor([3.1, 2.0]))
    # The hard loss tends to both limits numerically (Remark 1 and lambda_P -> 0).
    torch.testing.assert_close(hard_objective(losses, mask, 1e6), uniform, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hard_objective(losses, mask, 1e-4), maximum, rtol=1e-4, atol=1e-3)
    # and the named limits are the exact endpoints.
    torch.testing.assert_close(hard_objective(losses, mask, float("inf")), uniform)
    torch.testing.assert_close(hard_objective(losses, mask, 0.0), maximum)
    torch.testing.assert_close(mmel_weights(losses, mask, float("inf")), mask.float() / mask.sum(1, keepdim=True))
    torch.testing.assert_close(mmel_weights(losses, mask, 0.0), torch.tensor([[0.0, 0, 0, 1], [1, 0, 0, 0]]))
    torch.testing.assert_close(mmel_weights(losses, mask, 1e-4), mmel_weights(losses, mask, 0.0))
    # The objective decreases monotonically from the max to the mean as lambda_P grows (Remark 2).
    values = torch.stack([hard_objective(losses, mask, lam)[0] for lam in (1e-3, 0.1, 1.0, 10.0, 1e3)])
    assert (values[1:] <= values[:-1]).all()


@pytest.mark.parametrize("lambda_p", [1e-3, 0.5, 1.0, 3.0, 1e4])
def test_autograd_gradient_is_the_fixed_weight_gradient(lambda_p):
    torch.manual_seed(0)
    losses = (torch.rand(3, 5, dtype=torch.float64) * 4).requires_grad_()
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    hard_objective(losses, mask, lambda_p).sum().backward()
    expected = mmel_weights(losses.detach(), mask, lambda_p)
    torch.testing.assert_close(losses.grad, expected)
    assert (losses.grad[~mask] == 0).all()


def test_gradient_through_a_model_equals_the_p_star_weighted_gradient():
    """d/dtheta R_hard == sum_z P*(z) d/dtheta l(z) with P* held fixed (the E-step/M-step of Remark 3)."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 4).double()
    inputs = torch.randn(2, 4, 3, dtype=torch.float64)
    targets = torch.randint(0, 4, (2, 4))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)

    def per_sample():
        logits = layer(inputs)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 4), targets.reshape(-1), reduction="none").view(
            2, 4
        )

    hard_objective(per_sample(), mask, 0.7).sum().backward()
    autograd = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    losses = per_sample()
    weights = mmel_weights(losses.detach(), mask, 0.7)
    (weights * losses).sum().backward()
    for got, expected in zip(autograd, (p.grad for p in layer.parameters())):
        torch.testing.assert_close(got, expected)


def test_padding_never_matters_and_size_one_groups_are_their_own_loss():
    torch.manual_seed(1)
    ragged = [torch.rand(5) * 3, torch.rand(2) * 3, torch.rand(1) * 3]
    losses = torch.full((3, 5), 1e4)  # huge garbage in padded slots
    mask = torch.zeros(3, 5, dtype=torch.bool)
    for i, row in enumerate(ragged):
        losses[i, : len(row)] = row
        mask[i, : len(row)] = True
    for lambda_p in (1e-4, 1.0, 1e6):
        got = hard_objective(losses, mask, lambda_p)
        for i, row in enumerate(ragged):
            alone = hard_objective(row.unsqueeze(0), torch.ones(1, len(row), dtype=torch.bool), lambda_p)
            torch.testing.assert_close(got[i], alone[0])
        assert got[2] == pytest.approx(ragged[2].item(), abs=1e-6)  # |B| = 1: P* = 1, KL = 0
    empty = hard_objective(torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.bool), 1.0)
    torch.testing.assert_close(empty, torch.zeros(2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_losses_are_computed_in_float32(dtype):
    losses = torch.tensor([[0.1, 7.5, 3.3, 11.0]]).to(dtype)
    mask = torch.ones(1, 4, dtype=torch.bool)
    for lambda_p in (1e-4, 1.0, 1e6):
        value = hard_objective(losses, mask, lambda_p)
        assert value.dtype == torch.float32 and torch.isfinite(value).all()
        torch.testing.assert_close(value, hard_objective(losses.float(), mask, lambda_p))


def test_entropy_of_weights():
    weights = torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(weight_entropy(weights), torch.tensor([math.log(4), 0.0]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="lambda_p"):
        hard_objective(torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool), -1.0)
    with pytest.raises(ValueError, match="lambda_p"):
        mmel_weights(torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool), float("nan"))
    with pytest.raises(ValueError, match="shape"):
        hard_objective(torch.zeros(1, 2), torch.ones(1, 3, dtype=torch.bool), 1.0)
    with pytest.raises(TypeError, match="bool"):
        hard_objective(torch.zeros(1, 2), torch.ones(1, 2), 1.0)
