"""The augmenter interface: what turns a block's texts into each example's augmented samples (Section 3.3).

The paper's claim is that MMEL "can generally be applied on top of any data augmentation methods". An augmenter
is the one piece of ``mmel-augment`` that differs between methods; everything around it (the fixed blocks, the
shards shared by processes, the resumable cache, the teacher, the counts, the card and the push) is the same for
every augmenter. Two ship: ``fill-mask`` (Algorithm 2 or beam search, :class:`.fill_mask.FillMaskAugmenter`) and
``file`` (samples made anywhere, read from a file keyed by row or id, :class:`.file_source.FileAugmenter`).

An augmenter:

- ``augment_rows(columns, example_ids)``: for each example of a block, its augmented samples, each a tuple with one
  text per text column, in a fixed order; any number per example (groups may be ragged). ``example_ids`` are the
  rows' positions in the training split, so a row's samples never depend on the block or process it is in;
- ``identity()``: what determines its samples besides the data and the job's options (a model's file hashes, a
  file's digest): hashed into the cache fingerprint;
- ``describe()``: what the summary, the dataset's provenance and its card say made the samples (no local path);
- ``normalise(texts)``: the originals as the samples are written (a fill-mask tokenizer lower-cases), so the counts
  compare like with like;
- ``deterministic``: whether the same inputs give the same samples (a cache resumed by another process relies on it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

__all__ = ["AUGMENTERS", "Augmenter"]

AUGMENTERS = ("fill-mask", "file")  # --augmenter's choices


class Augmenter(ABC):
    """The interface every augmenter of ``mmel-augment`` implements (see the module's doc)."""

    name: str = ""
    deterministic: bool = True

    @abstractmethod
    def augment_rows(self, columns: Sequence[Sequence[str]], example_ids: Sequence[int]) -> list[list[tuple[str, ...]]]:
        """Per example, its augmented samples: tuples of ``len(columns)`` texts."""

    @abstractmethod
    def identity(self) -> dict:
        """What determines the samples besides the data and the job's options (hashed into the fingerprint)."""

    def describe(self) -> dict:
        """What made the samples, for the summary, the provenance and the card: no local path."""
        return {"augmenter": self.name}

    def take_counts(self) -> dict:
        """Counts of what the augmenter did since the last call (``removed_*``: candidates it left out), kept with
        each block and summed for the job."""
        return {}

    def normalise(self, texts: Sequence[str]) -> list[str]:
        """The originals as the samples are written (for the counts): as they are, unless an augmenter rewrites."""
        return list(texts)
