"""What a block's numbers depend on besides the data, the models and the options: the machine that ran them.

Within one machine, software and thread count, the same block gives the same bits (same shapes, same
batch-mates: see :mod:`.shards`). Across CPU kinds (AVX2, AVX-512, AMX), GPU models, library versions or
thread counts, kernels differ and the teacher's outputs agree to float tolerance only; a near-tied argmax of
Algorithm 2 may even flip. So each block records :func:`describe_numerics`, and a job that finds blocks
made elsewhere recomputes one to compare (:func:`compare_blocks`) before it completes their cache.

Examples:
    >>> import torch
    >>> describe_numerics(torch.device("cpu"))["device"]
    'cpu'
"""

from __future__ import annotations

import hashlib
import json
import platform

import numpy as np
import torch

__all__ = ["compare_blocks", "describe_numerics", "numerics_key", "short_description"]

_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_fp16")


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    try:
        with open("/proc/cpuinfo") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return model, sorted(set(flags) & set(_ISA_FLAGS))


def describe_numerics(device: torch.device) -> dict:
    """The machine facts that decide a block's rounding: device kind and model, instruction sets, torch, threads."""
    described = {"device": device.type, "torch": torch.__version__}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        described.update(
            name=torch.cuda.get_device_name(index),
            capability=".".join(map(str, torch.cuda.get_device_capability(index))),
            cuda=torch.version.cuda,
            tf32=bool(torch.backends.cuda.matmul.allow_tf32),
        )
    elif device.type == "cpu":
        model, flags = _cpu_model_and_flags()
        described.update(name=model, isa=flags, threads=torch.get_num_threads())
    else:
        described.update(name=device.type)
    return described


def numerics_key(described: dict) -> str:
    """A short stable hash of :func:`describe_numerics` (names a cache begun on other hardware)."""
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:12]


def short_description(described: dict | None) -> str:
    """One line for messages: ``cpu 'AMD EPYC 7B13' (avx2, 2 threads, torch 2.13.0)``."""
    if not described:
        return "an unrecorded machine"
    extra = [
        ", ".join(described.get("isa") or []) or None,
        f"{described['threads']} threads" if "threads" in described else None,
        f"capability {described['capability']}" if "capability" in described else None,
        f"torch {described.get('torch')}",
    ]
    return f"{described.get('device')} {described.get('name')!r} ({', '.join(e for e in extra if e)})"


def compare_blocks(stored, recomputed, text_columns: list[str], tolerance: float) -> dict:
    """Compare a block read back from a cache with the same block computed again.

    Text columns must be equal string for string (the design makes them bitwise reproducible on one kind of
    machine); numeric columns (the teacher's outputs) may differ by at most ``tolerance``. Both arguments are
    mappings of column -> list (Datasets or dicts). Returns ``{"matches", "rows", "text_mismatches",
    "max_abs_difference", "first_mismatch"}``.
    """
    rows = len(recomputed[text_columns[0]]) if text_columns else 0
    text_mismatches, first = 0, None
    for column in text_columns:
        for row, (old, new) in enumerate(zip(stored[column], recomputed[column])):
            if old != new:
                text_mismatches += 1
                first = first or f"row {row} of the block, column {column!r}"
    largest = 0.0
    for column in recomputed.column_names if hasattr(recomputed, "column_names") else recomputed:
        if column in text_columns:
            continue
        old = np.asarray(stored[column], dtype=np.float64)
        new = np.asarray(recomputed[column], dtype=np.float64)
        if old.shape != new.shape:
            return {
                "matches": False,
                "rows": rows,
                "text_mismatches": text_mismatches,
                "max_abs_difference": float("inf"),
                "first_mismatch": f"column {column!r}: shape {old.shape} against {new.shape}",
            }
        if old.size:
            difference = float(np.max(np.abs(old - new)))
            if not np.isfinite(difference):
                difference = float("inf")
            if difference > tolerance and first is None:
                first = f"column {column!r} differs by {difference:.3g}"
            largest = max(largest, difference)
    return {
        "matches": text_mismatches == 0 and largest <= tolerance,
        "rows": rows,
        "text_mismatches": text_mismatches,
        "max_abs_difference": largest,
        "first_mismatch": first,
    }
