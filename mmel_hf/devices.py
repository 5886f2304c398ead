"""Where a job runs: an accelerator torch knows, or the CPU; and how many processes a launcher started."""

from __future__ import annotations

import os

__all__ = ["launched_processes", "runs_on_cpu"]


def runs_on_cpu(device: str | None) -> bool:
    """Whether this job runs on the CPU: asked for, or no accelerator (then several ranks use gloo)."""
    import torch

    if device is not None:
        return torch.device(device).type == "cpu"
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6 knows every kind of accelerator
    return not (accelerator.is_available() if accelerator is not None else torch.cuda.is_available())


def launched_processes() -> int:
    """How many processes ``torchrun`` / ``accelerate launch`` started for this job (1 without a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1
