"""``--augmenter eda``: the word edits of EDA (Wei & Zou, 2019) from nlpaug, the established library
(``pip install "mmel_hf[eda]"``): random swap and random deletion always, synonym replacement from WordNet where
``nltk`` and its WordNet lexicon are installed (a clear error otherwise).

Each sample is one operation applied to a share ``alpha`` of the words (EDA's α, 0.1 by default), the operations
taken in turn; nlpaug's random draws are seeded per (seed, row, column, sample) and the caller's random state is
restored after, so a text's samples are the same on any block, batch or process. Candidates equal to the original
or to each other are removed and counted (:class:`.generation.GeneratingAugmenter`). EDA's fourth operation,
random insertion of a synonym, is not in nlpaug (its insertions take a word-embedding or a BERT model instead),
so it is not offered.
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np

from ..tasks.sources import DataError
from .generation import GeneratingAugmenter, example_keys

__all__ = ["EDA_OPERATIONS", "EdaAugmenter"]

EDA_OPERATIONS = ("swap", "delete", "synonym")


@contextmanager
def _callers_random_state_kept():
    """Within it, ``random`` and numpy's global generator may be seeded at will: the caller's state returns after."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _reseed(seed: int) -> None:
    """nlpaug draws from both ``random`` and numpy's global generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _nlpaug_word():
    try:
        import nlpaug.augmenter.word as word
    except ImportError:
        raise DataError('--augmenter eda needs nlpaug: pip install "mmel_hf[eda]"') from None
    return word


def _synonyms(word_module, alpha: float):
    try:
        import nltk

        nltk.data.find("corpora/wordnet")
    except ImportError:
        raise DataError('--eda-operations synonym needs nltk: pip install "mmel_hf[eda]" nltk') from None
    except LookupError:
        raise DataError(
            "--eda-operations synonym needs the WordNet lexicon, which is not installed: run "
            "python -m nltk.downloader wordnet omw-1.4 (or leave synonym out: swap and delete need no lexicon)"
        ) from None
    return word_module.SynonymAug(aug_src="wordnet", aug_p=alpha, aug_min=1)


class EdaAugmenter(GeneratingAugmenter):
    """Args:
    operations: a sequence of ``swap``, ``delete``, ``synonym``; samples take them in turn.
    alpha: the share of words each operation changes (at least one word).
    num_augmented: |B|-1; num_candidates: edits made per text before de-duplication (default 2 x |B|-1)."""

    name = "eda"

    def __init__(
        self,
        operations=("swap", "delete"),
        alpha: float = 0.1,
        num_augmented: int = 4,
        seed: int = 0,
        num_candidates: int | None = None,
    ):
        super().__init__(num_augmented, seed)
        unknown = [op for op in operations if op not in EDA_OPERATIONS]
        if unknown or not operations:
            raise ValueError(f"--eda-operations {' '.join(operations)}: choose from {', '.join(EDA_OPERATIONS)}")
        if not 0 < alpha <= 1:
            raise ValueError(f"--eda-alpha {alpha}: must be in (0, 1]")
        word = _nlpaug_word()
        made = {
            "swap": lambda: word.RandomWordAug(action="swap", aug_p=alpha, aug_min=1),
            "delete": lambda: word.RandomWordAug(action="delete", aug_p=alpha, aug_min=1),
            "synonym": lambda: _synonyms(word, alpha),
        }
        self.operations, self.alpha = list(operations), alpha
        self._edits = [made[op]() for op in self.operations]
        self.num_candidates = num_candidates or 2 * num_augmented

    def candidates(self, texts, example_ids, segment):
        n = self.num_candidates
        keys = example_keys(self.seed, example_ids, n, segment)
        found = []
        with _callers_random_state_kept():
            for i, text in enumerate(texts):
                edits = []
                for j in range(n):
                    _reseed(keys[i * n + j])
                    result = self._edits[j % len(self._edits)].augment(text)
                    edits.append(result[0] if isinstance(result, list) else result)
                found.append(edits)
        return found

    def identity(self) -> dict:
        import nlpaug

        return {"nlpaug": nlpaug.__version__}  # the operations and alpha are options of the fingerprint

    def describe(self) -> dict:
        return {"augmenter": self.name, "operations": self.operations, "alpha": self.alpha,
                "candidates": self.num_candidates}  # fmt: skip
