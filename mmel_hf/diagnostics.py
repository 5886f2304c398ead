"""Did the reweighting do anything in this run? The whole-run spread of P* and a plain warning when it did not.

MMEL reduces to DA+UNI (the plain mean over each group) when P* stays near uniform, which happens when
lambda_P is large against the spread of the samples' losses (Eq. 7: P*_ij ∝ exp(loss_ij / lambda_P)). Two
numbers say how far it moved, averaged over every group of the run (:class:`~mmel_hf.MMELTrainer` logs
them with its final ``train_runtime`` entry):

- the **normalised entropy** of P*: its entropy over ln(group size); 1 = uniform, 0 = one sample takes all;
- the **effective sample share**: Kish's effective sample size 1 / sum(P*^2) over the group size; 1 = every
  sample counts fully (uniform), 1/|B| = one sample.

A run whose share stays at or above :data:`NEAR_UNIFORM_SHARE` behaved like DA+UNI; :func:`summarise_weights`
says so in a sentence that names the knob.

Examples:
    >>> found = summarise_weights({"mmel/normalised_entropy": 0.99, "mmel/effective_share": 0.97,
    ...                            "mmel/effective_sample_size": 4.85, "mmel/max_weight": 0.24}, "hard", 1.0)
    >>> found["near_uniform"], found["warning"][:36]
    (True, 'MMEL-H behaved like DA+UNI here: its')
"""

from __future__ import annotations

import logging

__all__ = ["NEAR_UNIFORM_SHARE", "run_weights", "summarise_weights", "trainer_weights"]

logger = logging.getLogger(__name__)

NEAR_UNIFORM_SHARE = 0.95  # within 5% of uniform: the groups' weights are worth at least 95% of |B| equal samples
_NAMES = {"hard": "MMEL-H", "soft": "MMEL-S"}


def summarise_weights(final_log: dict, mode: str, lambda_p: float) -> dict | None:
    """The whole-run diagnostics of P* for an MMEL run (``mode`` hard or soft), or None for other modes (their
    weights are fixed: uniform for DA+UNI, one-hot for MaxUp) or when nothing was logged."""
    if mode not in _NAMES or "mmel/effective_share" not in final_log:
        return None
    share, entropy = float(final_log["mmel/effective_share"]), float(final_log["mmel/normalised_entropy"])
    near = share >= NEAR_UNIFORM_SHARE
    warning = None
    if near:
        gap = max(0.0, 100 * (1 - share))
        closeness = f"within {gap:.1f}% of uniform" if gap >= 0.05 else "uniform"
        warning = (
            f"{_NAMES[mode]} behaved like DA+UNI here: its weights stayed {closeness} (effective sample share "
            f"{share:.3f}, normalised entropy {entropy:.3f}); a smaller --mmel-lambda-p (now {lambda_p:g}) makes the "
            "weights sharper"
        )
    return {
        "normalised_entropy": entropy,
        "effective_share": share,
        "effective_sample_size": float(final_log.get("mmel/effective_sample_size", float("nan"))),
        "max_weight": float(final_log.get("mmel/max_weight", float("nan"))),
        "lambda_p": lambda_p,
        "near_uniform": near,
        "warning": warning,
    }


def trainer_weights(trainer) -> dict | None:
    """:func:`summarise_weights` of a trained :class:`~mmel_hf.MMELTrainer`: its final whole-run log entry."""
    final_log = next((e for e in reversed(trainer.state.log_history) if "train_runtime" in e), {})
    return summarise_weights(final_log, trainer.args.mmel_loss, trainer.args.effective_lambda_p)


def run_weights(trainer) -> dict | None:
    """:func:`trainer_weights`, its warning, if any, logged once (by the main process)."""
    weights = trainer_weights(trainer)
    if weights and weights["warning"] and trainer.is_world_process_zero():
        logger.warning(weights["warning"])
    return weights
