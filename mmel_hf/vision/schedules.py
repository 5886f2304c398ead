"""The paper's optimisation schedules (Section 4.1 and Appendix B), as an (optimizer, scheduler) pair.

- ``cifar``: SGD, momentum 0.9, lr 0.1, weight decay 5e-4, batch 128, learning rate x0.2 at epochs 60, 120
  and 160 of 200 (He et al., 2016).
- ``imagenet``: 100 epochs, decays at 30, 60 and 90, batch 256; "the other settings follow Section 4.1",
  so the same SGD, lr, weight decay and x0.2 factor.
Shorter runs keep the milestones at the same fractions of training (60/200 ...), counted in optimizer
steps, so a 20-epoch run decays at epochs 6, 12 and 16 and a 2-epoch run after 30%, 60% and 80% of its
steps (never all at step 0).

Examples:
    >>> model = torch.nn.Linear(2, 2)
    >>> optimizer, scheduler = paper_optimizer_and_scheduler(model, "cifar", steps_per_epoch=10, epochs=200)
    >>> [round(scheduler.lr_lambdas[0](epoch * 10), 4) for epoch in (0, 59, 60, 120, 160, 199)]
    [1.0, 1.0, 0.2, 0.04, 0.008, 0.008]
"""

from __future__ import annotations

import math

import torch

__all__ = ["PAPER_SCHEDULES", "paper_optimizer_and_scheduler"]

PAPER_SCHEDULES = {
    "cifar": {
        "epochs": 200,
        "milestones": (60, 120, 160),
        "gamma": 0.2,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "batch_size": 128,
    },
    "imagenet": {
        "epochs": 100,
        "milestones": (30, 60, 90),
        "gamma": 0.2,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "batch_size": 256,
    },
}


def paper_optimizer_and_scheduler(
    model: torch.nn.Module,
    schedule: str,
    steps_per_epoch: int,
    epochs: float,
    lr: float | None = None,
    weight_decay: float | None = None,
):
    """SGD with momentum and a step-wise multi-step decay, the milestones scaled to ``epochs``.

    ``lr`` and ``weight_decay`` default to the paper's (0.1 and 5e-4); ``steps_per_epoch`` counts optimizer
    steps of the whole run (all processes and accumulation included).
    """
    if schedule not in PAPER_SCHEDULES:
        raise ValueError(f"schedule={schedule!r} must be one of {list(PAPER_SCHEDULES)}")
    spec = PAPER_SCHEDULES[schedule]
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=spec["lr"] if lr is None else lr,
        momentum=spec["momentum"],
        weight_decay=spec["weight_decay"] if weight_decay is None else weight_decay,
    )
    fractions = [m / spec["epochs"] for m in spec["milestones"]]
    total = epochs * steps_per_epoch
    milestones = [max(1, math.floor(f * total + 1e-9)) for f in fractions]

    def factor(step: int) -> float:
        return spec["gamma"] ** sum(step >= m for m in milestones)

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
