"""GLUE metrics computed offline, checked against hand-computed values."""

import math

import numpy as np
import pytest
from transformers import EvalPrediction

from mmel_hf.tasks.metrics import GlueMetric, glue_compute_metrics


def test_values_match_their_definitions():
    predictions, references = [1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 1, 1]
    tp, tn, fp, fn = 2, 2, 1, 1
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert GlueMetric("cola").compute(predictions=predictions, references=references) == pytest.approx(
        {"matthews_correlation": mcc}
    )
    assert GlueMetric("qqp").compute(predictions=predictions, references=references) == pytest.approx(
        {"accuracy": 4 / 6, "f1": 2 * tp / (2 * tp + fp + fn)}
    )
    assert GlueMetric("rte").compute(predictions=predictions, references=references) == {"accuracy": 4 / 6}
    stsb = GlueMetric("stsb").compute(predictions=[0.1, 0.4, 0.3, 0.9], references=[0.0, 1.0, 2.0, 3.0])
    assert stsb["spearmanr"] == pytest.approx(0.8)
    assert stsb["pearson"] == pytest.approx(np.corrcoef([0.1, 0.4, 0.3, 0.9], [0, 1, 2, 3])[0, 1])


def test_compute_metrics_for_trainer():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0], [0.0, 1.0, 0.0]])
    result = glue_compute_metrics("mnli")(EvalPrediction(predictions=logits, label_ids=np.array([0, 2, 2])))
    assert result == {"accuracy": pytest.approx(2 / 3)}
    regression = glue_compute_metrics("stsb")(
        EvalPrediction(predictions=np.array([[1.0], [2.0], [2.5]]), label_ids=np.array([1.0, 2.0, 3.0]))
    )
    assert regression["pearson"] > 0.9


def test_unknown_task_and_bad_shapes():
    with pytest.raises(ValueError, match="unknown GLUE task 'sts'"):
        GlueMetric("sts")
    with pytest.raises(ValueError, match="differ in shape"):
        GlueMetric("rte").compute(predictions=[1, 0], references=[1])


def test_constant_stsb_predictions_score_zero_not_nan():
    from mmel_hf.tasks.metrics import GlueMetric

    assert GlueMetric("stsb").compute(predictions=[2.5, 2.5, 2.5], references=[1.0, 3.0, 4.0]) == {
        "pearson": 0.0,
        "spearmanr": 0.0,
    }
