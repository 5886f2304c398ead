"""The attention kernels of mmel_hf's own passes on CUDA: scaled-dot-product attention without cuDNN.

On torch >= 2.10 with a recent cuDNN, ``scaled_dot_product_attention`` prefers cuDNN attention on Hopper and
Blackwell whenever a padding mask is passed (flash attention takes no mask), and cuDNN builds an execution plan
for every new (batch, length) shape: tens to hundreds of milliseconds each (pytorch #162073, #171627;
transformers #48163). Algorithm 2 meets a new shape at almost every step (the active rows shrink), training and
evaluation at every new padded length, so the GPU idled ~80% of the time on an H200 (benchmarks/RESULTS.md). The
memory-efficient and flash kernels need no plans. So the fill-mask model, the teacher and MMELTrainer's training
and evaluation steps run inside :func:`without_cudnn_attention`: a scoped ``torch.nn.attention.sdpa_kernel``
(never a global switch left behind for the user's own code), on CUDA only. ``MMEL_HF_CUDNN_ATTENTION=1`` keeps
cuDNN in the list (the GPU check's A/B).

Examples:
    >>> attention_backends(torch.device("cpu")) is None  # the CPU has no cuDNN attention: nothing changes
    True
    >>> SDPBackend.CUDNN_ATTENTION in attention_backends(torch.device("cuda"))
    False
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["attention_backends", "without_cudnn_attention"]

KEEP_CUDNN = "MMEL_HF_CUDNN_ATTENTION"


def attention_backends(device) -> list | None:
    """The SDPA kernels our passes may use on ``device``, in torch's order of preference; None: torch's own choice
    (not CUDA, or cuDNN kept on purpose)."""
    if torch.device(device).type != "cuda" or os.environ.get(KEEP_CUDNN, "") == "1":
        return None
    return [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def without_cudnn_attention(device):
    """A context in which SDPA takes flash, memory-efficient or math attention, never cuDNN's per-shape plans; the
    previous settings come back when it ends. A no-op off CUDA."""
    backends = attention_backends(device)
    if backends is None:
        return nullcontext()

    return sdpa_kernel(backends)
