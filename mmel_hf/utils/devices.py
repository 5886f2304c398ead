"""Where a job runs: an accelerator torch knows, or the CPU; and how many processes a launcher started."""

from __future__ import annotations

import os

import torch

__all__ = [
    "cuda_with_fast_bf16",
    "fast_bf16_available",
    "launched_processes",
    "runs_on_cpu",
    "training_device_defaults",
]


def runs_on_cpu(device: str | None) -> bool:
    """Whether this job runs on the CPU: asked for, or no accelerator (then several ranks use gloo)."""

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


def fast_bf16_available() -> bool:
    """Whether bf16 runs natively here: a CUDA device with bf16, or a CPU with AVX512-BF16 or AMX (Linux flags).

    Elsewhere bf16 autocast works but is emulated and slower than fp32, so callers choosing a default pick fp32.
    """

    if torch.cuda.is_available():
        # torch.cuda.is_bf16_supported() is True on T4/V100 too (emulated, slower than fp32): bf16 tensor cores
        # start with compute capability 8.0 (A100, RTX 30xx, H100); ROCm reports its own support.
        if torch.version.hip:
            return torch.cuda.is_bf16_supported()
        return torch.cuda.get_device_capability() >= (8, 0)
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cuda_with_fast_bf16() -> bool:
    """A CUDA GPU with bf16 tensor cores (compute capability 8.0+): where the commands default to bf16."""

    return torch.cuda.is_available() and fast_bf16_available()


def training_device_defaults(given: dict) -> dict:
    """TrainingArguments defaults that fit the device, for the options the user did not give: bf16 mixed
    precision on a CUDA GPU with fast bf16; nothing on a CPU (its tested fp32 stays)."""
    if any(name in given for name in ("bf16", "fp16")) or given.get("use_cpu") in (True, "true", "True"):
        return {}
    return {"bf16": True} if cuda_with_fast_bf16() else {}
