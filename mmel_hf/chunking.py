"""Memory-bounded groups: the flattened batch run in chunks under activation checkpointing (``mmel_chunk_size``).

Within :func:`chunked_forward`, ``model.forward`` runs its inputs in chunks and returns the logits. The forward pass
over the whole group keeps no activations; the losses, P* and the objective are computed from its outputs; the
backward pass recomputes one chunk at a time with the random state it had (same dropout masks, on every device),
so the gradients are the one-pass gradients and the peak activation memory is one chunk's.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

__all__ = ["chunked_forward", "flat_size", "logits_of", "refuse_batch_statistics"]


def logits_of(outputs) -> torch.Tensor:
    return outputs["logits"] if isinstance(outputs, dict) else outputs[0]


@contextmanager
def chunked_forward(model, chunk: int):
    """Within the block ``model.forward`` runs its inputs in chunks of ``chunk`` rows and returns the logits.

    With gradients, each chunk but the last is checkpointed: no activation is kept, and backward recomputes
    the chunk with the random state it had (same dropout masks) before differentiating it, one chunk at a
    time. Backward starts with the last chunk, so its activations are kept rather than recomputed.
    """
    original = model.forward  # the bound method: what recomputation calls, even after the block

    def logits(**part):
        return logits_of(original(**part))

    def forward(**inputs):
        size = flat_size(inputs)
        starts = range(0, size, chunk)
        pieces = []
        for start in starts:
            part = {k: v[start : start + chunk] if _is_per_sample(v, size) else v for k, v in inputs.items()}
            # The last chunk keeps its activations: backward starts with it, so it is never held beside another.
            recompute = torch.is_grad_enabled() and start != starts[-1]
            if recompute:
                # Positional tensors: non-reentrant checkpoint finds the devices whose random state it saves among
                # its positional arguments only (with keywords, CUDA dropout would be redrawn in backward).
                run = _replaying(logits, list(part), _unsaved_device_rng(part.values()))
                pieces.append(checkpoint(run, *part.values(), use_reentrant=False))
            else:
                pieces.append(logits(**part))
        return {"logits": torch.cat(pieces)}

    if model.training:
        refuse_batch_statistics(model)
    own = model.__dict__.get("forward")  # accelerate's mixed precision sets an instance forward: keep it
    model.forward = forward
    try:
        yield
    finally:
        if own is None:
            del model.forward  # the class's forward again
        else:
            model.forward = own


def _unsaved_device_rng(values):
    """The random-number module of the inputs' accelerator when torch's checkpoint does not save its state itself
    (it saves the CPU's, and a device's whose module is ``_initialized``, as CUDA's and XPU's; not MPS's)."""
    devices = {v.device.type for v in values if isinstance(v, torch.Tensor) and v.device.type not in ("cpu", "meta")}
    if len(devices) != 1:
        return None
    module = getattr(torch, devices.pop(), None)
    saved_by_torch = getattr(module, "_initialized", False)
    usable = hasattr(module, "get_rng_state") and hasattr(module, "set_rng_state")
    return module if usable and not saved_by_torch else None


def _replaying(function, names: list[str], rng=None):
    """``function(**dict(zip(names, values)))`` as a function of positional values (for checkpoint); with ``rng``
    (a module with ``get_rng_state``/``set_rng_state``), the recomputation replays the random state of the first
    call and leaves the generator where it was, so recomputed dropout masks are the forward pass's."""
    state = {}

    def run(*values):
        keywords = dict(zip(names, values))
        if rng is None:
            return function(**keywords)
        if "first" not in state:
            state["first"] = rng.get_rng_state()
            return function(**keywords)
        current = rng.get_rng_state()
        rng.set_rng_state(state["first"])
        try:
            return function(**keywords)
        finally:
            rng.set_rng_state(current)

    return run


def _is_per_sample(value, size: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == size


def flat_size(inputs: dict[str, Any]) -> int:
    """Rows of the flattened batch: the first dimension of the model inputs."""
    for value in inputs.values():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return value.shape[0]
    raise ValueError("the batch has no tensor model inputs")


def refuse_batch_statistics(model) -> None:
    norms = [
        name for name, module in model.named_modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
    ]
    if norms:
        raise ValueError(
            f"mmel_chunk_size: the model has BatchNorm layers ({norms[0]!r} ...), which normalise each chunk with its "
            "own statistics (and would update their running statistics twice per step), so the chunked loss would "
            "not be the one-pass loss. Leave mmel_chunk_size unset for this model, or lower the batch size instead"
        )
