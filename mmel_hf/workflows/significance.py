"""Is method A better than method B? A paired bootstrap over seeds and evaluation examples.

A study's score for a method moves with two kinds of chance: the training seed, and which examples happen to
be in the evaluation set. A paired t-test over 3 seeds sees only the first, with 2 degrees of freedom, and
treats two identical differences as certainty (standard error 0). This module resamples both, as the
two-level (hierarchical) bootstrap does (Efron & Tibshirani 1993, ch. 8; for NLP comparisons Berg-Kirkpatrick
et al. 2012, Dror et al. 2018):

1. each replicate draws the seeds with replacement, and the evaluation examples with replacement;
2. both methods are scored on the *same* drawn examples for the *same* drawn seeds (paired: same seed, same
   data, same labels), with the task's own metric recomputed on the draw (accuracy, F1, Matthews,
   Pearson, Spearman: vectorised over replicates);
3. the difference of the two seed-means is one replicate; the interval is its percentile interval.

A reading is **beyond noise** only when that interval excludes 0 after the comparisons of one report are
accounted for (Bonferroni: each of ``m`` intervals at level ``1 - 0.05 / m``, so all hold together with 95%),
there are at least :data:`MIN_SEEDS` seeds (fewer cannot measure seed-to-seed variation), and the
replicates vary at all (no variation = too little data to see noise, not certainty). Otherwise it is
**inconclusive**, with the smallest difference this design would detect 80% of the time
(``(z_{1-alpha/2} + z_{0.8})`` standard errors). Replicates come from a fixed generator, so the same
predictions give the same reading on every machine.

Examples:
    >>> import numpy as np
    >>> references = np.array([0, 1] * 100)
    >>> good = np.stack([references] * 3)  # three seeds, all right
    >>> poor = good.copy(); poor[:, :40] = 1 - poor[:, :40]  # three seeds, 40 of 200 wrong
    >>> found = paired_bootstrap(good, poor, references, "accuracy")
    >>> round(found["mean"], 2), found["beyond_noise"]
    (0.2, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_SEEDS", "VECTORISED_METRICS", "collapsed", "metric_on_resamples", "paired_bootstrap", "seed_bootstrap"]

MIN_SEEDS = 3
VECTORISED_METRICS = ("accuracy", "f1", "matthews_correlation", "pearson", "spearmanr")
RESAMPLES = 2000
_POWER_Z = 0.8416212335729143  # z_{0.8}: 80% power


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm  # noqa: PLC0415  (import cost: 0.46 s, measured)

    return float(norm.ppf(p))


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis; 0 where either side is constant (as GlueMetric scores it)."""
    x = x - x.mean(-1, keepdims=True)
    y = y - y.mean(-1, keepdims=True)
    denominator = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x * y).sum(-1) / denominator
    return np.where(denominator > 0, r, 0.0)


def metric_on_resamples(metric: str, predictions: np.ndarray, references: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The metric of every run on every resample of the examples: ``[runs, replicates]``.

    Args:
        metric: one of :data:`VECTORISED_METRICS` (GLUE's definitions, as :class:`~mmel_hf.tasks.metrics.GlueMetric`).
        predictions: ``[runs, N]`` predicted class ids (or values, for correlations).
        references: ``[N]`` labels.
        index: ``[replicates, N]`` example indices of each resample.
    """
    predicted = np.asarray(predictions)[:, index]  # [R, B, N]
    truth = np.asarray(references)[index][None]  # [1, B, N]
    if metric == "accuracy":
        return (predicted == truth).mean(-1)
    if metric == "f1":  # binary, positive class 1 (GLUE's MRPC/QQP)
        tp = ((predicted == 1) & (truth == 1)).sum(-1)
        fp = ((predicted == 1) & (truth != 1)).sum(-1)
        fn = ((predicted != 1) & (truth == 1)).sum(-1)
        denominator = 2 * tp + fp + fn
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    if metric == "matthews_correlation":  # the multi-class form (Gorodkin 2004), as sklearn computes it
        classes = np.union1d(np.unique(predictions), np.unique(references))
        n = predicted.shape[-1]
        correct = (predicted == truth).sum(-1).astype(np.float64)
        p_counts = np.stack([(predicted == c).sum(-1) for c in classes], -1).astype(np.float64)
        t_counts = np.stack([(np.broadcast_to(truth, predicted.shape) == c).sum(-1) for c in classes], -1).astype(
            np.float64
        )
        covariance = correct * n - (p_counts * t_counts).sum(-1)
        denominator = np.sqrt((n * n - (p_counts**2).sum(-1)) * (n * n - (t_counts**2).sum(-1)))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 0, covariance / denominator, 0.0)
    if metric == "pearson":
        return _pearson_rows(predicted.astype(np.float64), np.broadcast_to(truth, predicted.shape).astype(np.float64))
    if metric == "spearmanr":
        from scipy.stats import rankdata  # noqa: PLC0415  (import cost: 0.46 s, measured)

        ranked_predictions = rankdata(predicted, axis=-1)
        ranked_truth = rankdata(np.broadcast_to(truth, predicted.shape), axis=-1)
        return _pearson_rows(ranked_predictions, ranked_truth)
    raise ValueError(f"no vectorised form of the metric {metric!r}; expected one of {list(VECTORISED_METRICS)}")


def _reading(replicates: np.ndarray, mean: float, seeds: int, comparisons: int, level: float) -> dict:
    alpha = (1 - level) / max(1, comparisons)
    low, high = (float(v) for v in np.quantile(replicates, [alpha / 2, 1 - alpha / 2]))
    spread = float(replicates.std(ddof=1)) if len(replicates) > 1 else 0.0
    detectable = (_normal_quantile(1 - alpha / 2) + _POWER_Z) * spread
    if seeds < MIN_SEEDS:
        why = f"{seeds} seed(s) cannot measure seed-to-seed variation ({MIN_SEEDS} or more are needed)"
    elif spread == 0:
        why = "the resamples do not vary: too few seeds or evaluation examples to measure noise, not certainty"
    elif low > 0 or high < 0:
        why = None
    else:
        why = "the interval includes 0"
    return {
        "mean": mean,
        "interval": [low, high],
        "level": 1 - alpha,
        "family_level": level,
        "comparisons": comparisons,
        "standard_error": spread,
        "detectable": detectable,
        "beyond_noise": why is None,
        "inconclusive_because": why,
        "seeds": seeds,
    }


def paired_bootstrap(
    predictions_a,
    predictions_b,
    references,
    metric: str,
    *,
    comparisons: int = 1,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict:
    """Mean paired difference A - B of ``metric`` over seeds, with a bootstrap interval over seeds × examples.

    Args:
        predictions_a: ``[seeds, N]`` per-example predictions of method A, row ``i`` from seed ``i``.
        predictions_b: the same of method B (row ``i`` from the same seed ``i``).
        references: ``[N]`` labels of the evaluation examples.
        comparisons: how many comparisons the report makes (Bonferroni: each interval at ``1 - (1-level)/m``).
    Returns:
        ``mean`` (difference of seed-means on the full set), ``interval``, ``level`` (per interval),
        ``standard_error`` (of the replicates), ``detectable`` (the smallest difference found with 80% power),
        ``beyond_noise``, ``inconclusive_because`` (None when beyond noise), ``per_seed`` differences.
    """
    a, b = np.asarray(predictions_a), np.asarray(predictions_b)
    references = np.asarray(references)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != len(references):
        raise ValueError(f"predictions {a.shape} and {b.shape} must both be [seeds, {len(references)}]")
    seeds, n = a.shape
    full = np.arange(n)[None]
    per_seed = (metric_on_resamples(metric, a, references, full) - metric_on_resamples(metric, b, references, full))[
        :, 0
    ]
    generator = np.random.default_rng(seed)
    replicates = np.empty(resamples)
    chunk = max(1, min(resamples, 4_000_000 // max(1, seeds * n)))  # bounded memory on large evaluation sets
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        examples = generator.integers(0, n, size=(size, n))
        drawn_seeds = generator.integers(0, seeds, size=(size, seeds))
        difference = metric_on_resamples(metric, a, references, examples) - metric_on_resamples(
            metric, b, references, examples
        )  # [S, size]
        replicates[start : start + size] = np.take_along_axis(difference.T, drawn_seeds, axis=1).mean(1)
    found = _reading(replicates, float(per_seed.mean()), seeds, comparisons, level)
    found.update(per_seed=[float(d) for d in per_seed], examples=n, resampled="seeds and evaluation examples")
    return found


def seed_bootstrap(
    values_a, values_b, *, comparisons: int = 1, level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0
) -> dict:
    """The same reading from per-seed scores alone, for runs without stored predictions: seeds are resampled,
    evaluation-example noise is not seen (so the interval is too narrow; the report says so)."""
    differences = np.asarray(values_a, dtype=np.float64) - np.asarray(values_b, dtype=np.float64)
    seeds = len(differences)
    if seeds == 0:
        raise ValueError("no paired seeds to compare")
    drawn = np.random.default_rng(seed).integers(0, seeds, size=(resamples, seeds))
    found = _reading(differences[drawn].mean(1), float(differences.mean()), seeds, comparisons, level)
    found.update(per_seed=[float(d) for d in differences], examples=None, resampled="seeds only")
    return found


def collapsed(predictions, is_regression: bool = False) -> bool:
    """Whether a run predicts one class for every example (a constant, for regression): a collapsed model."""
    values = np.asarray(predictions)
    if values.size == 0:
        return False
    return bool(np.ptp(values) == 0) if is_regression else len(np.unique(values)) == 1
