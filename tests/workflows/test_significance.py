"""The study's verdicts: a paired bootstrap over seeds × evaluation examples, on synthetic cases with known answers.

Everything here is numpy integer/float arithmetic on fixed generators: the same on every machine.
"""

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from mmel_hf.workflows.significance import collapsed, metric_on_resamples, paired_bootstrap, seed_bootstrap


def runs(references, accuracy: float, seeds: int, generator) -> np.ndarray:
    """``seeds`` runs, each right on each example with probability ``accuracy`` (binary labels)."""
    right = generator.random((seeds, len(references))) < accuracy
    return np.where(right, references, 1 - references)


@pytest.mark.parametrize(
    "metric, reference",
    [
        ("accuracy", lambda t, p: float((t == p).mean())),
        ("f1", f1_score),
        ("matthews_correlation", matthews_corrcoef),
        ("pearson", lambda t, p: pearsonr(t, p)[0]),
        ("spearmanr", lambda t, p: spearmanr(t, p)[0]),
    ],
)
def test_the_vectorised_metrics_are_glues(metric, reference):
    generator = np.random.default_rng(7)
    classes = 3 if metric == "matthews_correlation" else 2
    truth = generator.integers(0, classes, 300)
    predictions = np.where(generator.random((2, 300)) < 0.7, truth, generator.integers(0, classes, (2, 300)))
    if metric in ("pearson", "spearmanr"):
        truth = np.round(generator.normal(size=300), 1)  # ties, as STS-B scores have
        predictions = np.round(truth + generator.normal(size=(2, 300)), 1)
    index = generator.integers(0, 300, (5, 300))
    found = metric_on_resamples(metric, predictions, truth, index)
    assert found.shape == (2, 5)
    for run in range(2):
        for replicate in range(5):
            chosen = index[replicate]
            assert found[run, replicate] == pytest.approx(reference(truth[chosen], predictions[run, chosen]), abs=1e-12)


def test_a_true_difference_is_found_and_its_interval_holds_it():
    generator = np.random.default_rng(0)
    truth = generator.integers(0, 2, 1000)
    better, worse = runs(truth, 0.85, 5, generator), runs(truth, 0.75, 5, generator)
    found = paired_bootstrap(better, worse, truth, "accuracy", comparisons=5)
    assert found["beyond_noise"] and found["inconclusive_because"] is None
    low, high = found["interval"]
    assert low < 0.10 < high and low > 0  # the true +10 points inside, 0 outside
    assert found["level"] == pytest.approx(0.99)  # Bonferroni: 5 intervals at 99% hold together at 95%
    assert paired_bootstrap(worse, better, truth, "accuracy")["interval"][1] < 0  # and the other way round


def test_no_true_difference_is_inconclusive_with_a_detectable_size():
    generator = np.random.default_rng(1)
    truth = generator.integers(0, 2, 1000)
    a, b = runs(truth, 0.8, 3, generator), runs(truth, 0.8, 3, generator)
    found = paired_bootstrap(a, b, truth, "accuracy")
    assert not found["beyond_noise"] and found["inconclusive_because"] == "the interval includes 0"
    assert found["interval"][0] < 0 < found["interval"][1]
    assert 0.01 < found["detectable"] < 0.10  # about 2.8 standard errors of a 1,000-example comparison


def test_false_alarms_stay_near_five_percent_under_no_difference():
    generator = np.random.default_rng(2)
    alarms = 0
    for _ in range(60):
        truth = generator.integers(0, 2, 200)
        a, b = runs(truth, 0.75, 3, generator), runs(truth, 0.75, 3, generator)
        alarms += paired_bootstrap(a, b, truth, "accuracy", resamples=500)["beyond_noise"]
    assert alarms <= 6  # 5% of 60 is 3; a test that called noise a win would be far above


def test_more_comparisons_widen_every_interval():
    generator = np.random.default_rng(3)
    truth = generator.integers(0, 2, 400)
    a, b = runs(truth, 0.8, 3, generator), runs(truth, 0.75, 3, generator)
    one, five = (paired_bootstrap(a, b, truth, "accuracy", comparisons=m)["interval"] for m in (1, 5))
    assert five[0] < one[0] and five[1] > one[1]


def test_zero_variance_and_too_few_seeds_are_never_certainty():
    truth = np.array([0, 1] * 50)
    a = np.stack([truth] * 3)
    b = a.copy()
    b[:, 0] = 1  # every seed of B wrong on the same one example: -1.00 point on every seed
    assert not paired_bootstrap(b, a, truth, "accuracy")["beyond_noise"]  # one example is not a finding
    two_seeds = paired_bootstrap(b[:2], a[:2], truth, "accuracy")
    assert two_seeds["per_seed"] == pytest.approx([-0.01, -0.01]) and not two_seeds["beyond_noise"]
    assert "2 seed(s) cannot measure seed-to-seed variation" in two_seeds["inconclusive_because"]
    one_seed = paired_bootstrap(b[:1], a[:1], truth, "accuracy")
    assert not one_seed["beyond_noise"] and "1 seed(s)" in one_seed["inconclusive_because"]
    same = paired_bootstrap(a, a, truth, "accuracy")  # identical predictions: nothing varies
    assert same["interval"] == [0.0, 0.0] and not same["beyond_noise"]
    assert "do not vary" in same["inconclusive_because"]
    scores = seed_bootstrap([0.70, 0.70, 0.70], [0.71, 0.71, 0.71])  # per-seed scores alone, all -1.00
    assert not scores["beyond_noise"] and scores["standard_error"] == 0


def test_the_reading_is_the_same_every_time():
    generator = np.random.default_rng(4)
    truth = generator.integers(0, 2, 300)
    a, b = runs(truth, 0.8, 3, generator), runs(truth, 0.78, 3, generator)
    assert paired_bootstrap(a, b, truth, "accuracy") == paired_bootstrap(a, b, truth, "accuracy")


def test_collapsed_runs():
    assert collapsed([1, 1, 1]) and not collapsed([1, 0, 1])
    assert collapsed([0.5, 0.5], is_regression=True) and not collapsed([0.5, 0.6], is_regression=True)
