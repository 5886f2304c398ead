"""Inference precision shared by the fill-mask model and the teacher."""

from __future__ import annotations

from contextlib import nullcontext

import torch

__all__ = ["PRECISIONS", "autocast", "fast_bf16_available"]

PRECISIONS = ("fp32", "bf16", "fp16")


def autocast(precision: str, device: torch.device):
    """A context that runs the models in ``precision``: nothing for fp32, ``torch.autocast`` otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} must be one of {list(PRECISIONS)}")
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


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
