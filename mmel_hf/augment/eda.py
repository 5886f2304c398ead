"""``--augmenter eda``: the word edits of EDA (Wei & Zou, 2019) from nlpaug, the established library
(``pip install "mmel_hf[eda]"``): random swap and random deletion always; synonym replacement and random insertion
of a synonym from WordNet where ``nltk`` and its WordNet lexicon are installed (a clear error otherwise).

Each sample is one operation applied to a share ``alpha`` of the words (EDA's α, 0.1 by default), the operations
taken in turn; nlpaug's random draws are seeded per (seed, row, column, sample) and the caller's random state is
restored after, so a text's samples are the same on any block, batch or process. Candidates equal to the original
or to each other are removed and counted (:class:`.generation.GeneratingAugmenter`). nlpaug has no synonym
insertion (its insertions take a word-embedding or a BERT model), so ``insert`` is EDA's own rule written here over
nlpaug's WordNet lexicon: a synonym of a random word of the text, at a random position, ``alpha`` of the words times.
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np

from ..tasks.sources import DataError
from .generation import GeneratingAugmenter, example_keys

__all__ = ["EDA_OPERATIONS", "EdaAugmenter"]

EDA_OPERATIONS = ("swap", "delete", "synonym", "insert")


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
        import nlpaug.augmenter.word as word  # noqa: PLC0415  (optional dependency (the eda extra))
    except ImportError:
        raise DataError('--augmenter eda needs nlpaug: pip install "mmel_hf[eda]"') from None
    return word


def _check_wordnet(operation: str) -> None:
    try:
        import nltk  # noqa: PLC0415  (optional dependency (the eda extra))

        nltk.data.find("corpora/wordnet")
    except ImportError:
        raise DataError(f'--eda-operations {operation} needs nltk: pip install "mmel_hf[eda]" nltk') from None
    except LookupError:
        raise DataError(
            f"--eda-operations {operation} needs the WordNet lexicon, which is not installed: run "
            f"python -m nltk.downloader wordnet omw-1.4 (or leave {operation} out: swap and delete need no lexicon)"
        ) from None


def _synonyms(word_module, alpha: float):
    _check_wordnet("synonym")
    return word_module.SynonymAug(aug_src="wordnet", aug_p=alpha, aug_min=1)


class SynonymInsertion:
    """EDA's random insertion: ``max(1, round(alpha * words))`` times, a synonym of a random word of the text (one
    that has one) inserted at a random position; synonyms from nlpaug's WordNet lexicon, draws from ``random``."""

    def __init__(self, alpha: float, lexicon=None):
        if lexicon is None:
            _check_wordnet("insert")
            from nlpaug.model.word_dict import WordNet  # noqa: PLC0415  (optional dependency (the eda extra))

            lexicon = WordNet(lang="eng", is_synonym=True)
        self.alpha, self.lexicon = alpha, lexicon

    def augment(self, text: str) -> str:
        words = text.split()
        for _ in range(max(1, round(self.alpha * len(words)))):
            candidates = [w for w in dict.fromkeys(words) if w.isalpha()]
            random.shuffle(candidates)
            for word in candidates:
                synonyms = sorted({s.replace("_", " ") for s in self.lexicon.predict(word) or []} - {word})
                if synonyms:
                    words.insert(random.randint(0, len(words)), random.choice(synonyms))
                    break
        return " ".join(words)


class EdaAugmenter(GeneratingAugmenter):
    """Args:
    operations: a sequence of ``swap``, ``delete``, ``synonym``, ``insert``; samples take them in turn.
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
            "insert": lambda: SynonymInsertion(alpha),
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
        import nlpaug  # noqa: PLC0415  (optional dependency (the eda extra))

        return {"nlpaug": nlpaug.__version__}  # the operations and alpha are options of the fingerprint

    def describe(self) -> dict:
        return {"augmenter": self.name, "operations": self.operations, "alpha": self.alpha,
                "candidates": self.num_candidates}  # fmt: skip
