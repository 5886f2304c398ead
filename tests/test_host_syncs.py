"""Host synchronisations on an accelerator: O(1) per forward pass, whatever the number of search steps.

A dispatch mode counts the operations that make the host wait for the device on CUDA (reading a value back
with ``item``/``bool``, data-dependent shapes with ``nonzero``/boolean masks). On the CPU they cost nothing,
so the counts, not the times, are what can be checked here.
"""

import os
import traceback
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import mmel_hf
from mmel_hf.augment.fill_mask import FillMaskAugmenter
from mmel_hf.losses import to_groups

from builders import make_tiny_mlm

# The library's own files (a checkout's folder, or the virtual environment inside it, may be named mmel_hf too).
PACKAGE = str(Path(mmel_hf.__file__).resolve().parent) + os.sep
SYNCING = {"_local_scalar_dense", "is_nonzero", "nonzero", "item", "masked_select", "equal"}


class SyncCounter(TorchDispatchMode):
    """Records each syncing operation with the file that asked for it (the innermost frame outside torch)."""

    def __init__(self):
        super().__init__()
        self.syncs, self.origins = [], []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        boolean_index = name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else []) or []
        )
        if name in SYNCING or boolean_index:
            self.syncs.append(name)
            frames = [f.filename for f in traceback.extract_stack()[:-1]]
            self.origins.append(next((f for f in reversed(frames) if "/torch/" not in f), "?"))
        return func(*args, **kwargs)


def test_to_groups_needs_no_host_sync_on_a_device_and_matches_the_boolean_scatter():
    with SyncCounter() as counter:
        grouped = to_groups(torch.zeros(7, 3, device="meta"), torch.ones(3, 4, dtype=torch.bool, device="meta"))
    assert grouped.shape == (3, 4, 3) and counter.syncs == []
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):  # any mask, not only left-aligned groups
        mask = torch.rand(4, 5, generator=generator) < 0.6
        flat = torch.randn(int(mask.sum()), 2, generator=generator)
        expected = torch.zeros(4, 5, 2)
        expected[mask] = flat
        assert torch.equal(to_groups(flat, mask), expected)


def test_the_fill_mask_search_syncs_a_fixed_number_of_times_whatever_its_steps(tokenizer):
    augmenter = FillMaskAugmenter(make_tiny_mlm(tokenizer), tokenizer, num_augmented=3, ratio=0.5, batch_size=64)
    counts, forwards = {}, []
    augmenter.model.base_model.register_forward_hook(lambda *_: forwards.append(1))
    for name, texts in (
        ("short", ["a good film", "bad plot"]),
        (
            "long",
            [
                "a long and winding story of a film that never quite finds its feet or its heart",
                "the actors do what they can with a script that gives them very little to do",
            ],
        ),
    ):
        forwards.clear()
        with SyncCounter() as counter:
            augmenter.augment(texts)
        ours = [o for o in counter.origins if os.path.realpath(o).startswith(PACKAGE)]
        counts[name] = (len(ours), len(forwards), len(counter.syncs))
    # None from the search (it was two per step: at_start.any() and the active rows' nonzero); what is left is
    # transformers' own attention-mask check, at most one per forward pass.
    assert all(ours == 0 and total <= steps for ours, steps, total in counts.values()), counts
    assert counts["long"][1] > counts["short"][1]  # the long sentences took more search steps
