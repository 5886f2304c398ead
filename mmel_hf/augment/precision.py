"""Inference precision shared by the fill-mask model and the teacher."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from ..utils.devices import fast_bf16_available  # noqa: F401  (where the augmentation looks for it)

__all__ = ["PRECISIONS", "autocast", "fast_bf16_available"]

PRECISIONS = ("fp32", "bf16", "fp16")


def autocast(precision: str, device: torch.device):
    """A context that runs the models in ``precision``: nothing for fp32, ``torch.autocast`` otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} must be one of {list(PRECISIONS)}")
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
