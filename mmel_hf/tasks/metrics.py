"""GLUE metrics with scikit-learn and scipy behind the interface of ``evaluate.load("glue", task)``.

``evaluate``'s metric scripts live on the Hub, so ``evaluate.load`` fails offline; these give the same
keys and values (Matthews correlation for CoLA, Pearson/Spearman for STS-B, accuracy and F1 for MRPC and
QQP, accuracy elsewhere; Section 4.2) with no download. One difference: a constant STS-B prediction scores
correlation 0 (``evaluate`` gives NaN), as a constant classifier scores Matthews correlation 0.

Why not ``evaluate`` itself: its GLUE metric is a script fetched from the Hub at ``evaluate.load`` time, and what
it adds over these functions (``add_batch`` and a cache-file rendezvous between processes) Trainer already does:
it gathers every process's predictions before ``compute_metrics``. So mmel_hf does not depend on ``evaluate``.

Examples:
    >>> GlueMetric("mrpc").compute(predictions=[1, 0, 1, 1], references=[1, 0, 0, 1])
    {'accuracy': 0.75, 'f1': 0.8}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["GLUE_METRIC_TASKS", "GlueMetric", "glue_compute_metrics", "predicted_values"]

_ACCURACY_TASKS = ("sst2", "mnli", "mnli_matched", "mnli_mismatched", "qnli", "rte", "wnli", "hans", "ax")
GLUE_METRIC_TASKS = ("cola", "stsb", "mrpc", "qqp", *_ACCURACY_TASKS)


class GlueMetric:
    """``GlueMetric(task).compute(predictions=..., references=...)`` like ``evaluate.load("glue", task)``."""

    def __init__(self, task: str):
        if task not in GLUE_METRIC_TASKS:
            raise ValueError(f"unknown GLUE task {task!r}; expected one of {list(GLUE_METRIC_TASKS)}")
        self.task = task

    @property
    def is_regression(self) -> bool:
        return self.task == "stsb"

    def compute(self, *, predictions: Sequence, references: Sequence) -> dict[str, float]:
        from scipy.stats import pearsonr, spearmanr  # noqa: PLC0415  (import cost: 0.46 s, measured)
        from sklearn.metrics import f1_score, matthews_corrcoef  # noqa: PLC0415  (import cost: 0.85 s, measured)

        predictions, references = np.asarray(predictions), np.asarray(references)
        if predictions.shape != references.shape:
            raise ValueError(f"predictions {predictions.shape} and references {references.shape} differ in shape")
        if self.task == "stsb":
            if np.ptp(predictions) == 0 or np.ptp(references) == 0:
                # A constant prediction carries no information: correlation 0, as matthews_corrcoef reports for
                # a constant classifier (scipy would return NaN, which poisons means over seeds).
                return {"pearson": 0.0, "spearmanr": 0.0}
            return {
                "pearson": float(pearsonr(references, predictions)[0]),
                "spearmanr": float(spearmanr(references, predictions)[0]),
            }
        if self.task == "cola":
            return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
        accuracy = float((predictions == references).mean())
        if self.task in ("mrpc", "qqp"):
            return {"accuracy": accuracy, "f1": float(f1_score(references, predictions))}
        return {"accuracy": accuracy}


def predicted_values(prediction, is_regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """An ``EvalPrediction``'s (predicted class ids, or values for regression; references), one per example."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    logits = np.asarray(logits)
    predicted = logits.reshape(-1) if is_regression else logits.argmax(axis=-1)
    return predicted, np.asarray(prediction.label_ids).reshape(-1)


def glue_compute_metrics(task: str, keep: Callable | None = None) -> Callable:
    """A ``compute_metrics`` for (MMEL)Trainer: logits -> class ids (or values for STS-B) -> GLUE metrics.

    ``keep(predicted, references)``, if given, receives each evaluation's per-example predictions."""
    metric = GlueMetric(task)

    def compute_metrics(prediction) -> dict[str, float]:
        predicted, references = predicted_values(prediction, metric.is_regression)
        if keep is not None:
            keep(predicted, references)
        return metric.compute(predictions=predicted, references=references)

    return compute_metrics
