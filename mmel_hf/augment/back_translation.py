"""``--augmenter back-translation``: each text translated to a pivot language and back (Sennrich et al., 2016; UDA's
augmentation), with any pair of transformers translation models (``AutoModelForSeq2SeqLM``: Marian, NLLB, M2M100).

Several pivots per text (seeded sampling, or beam search's best ``num_candidates``), each translated back by beam
search; candidates equal to the original or to each other are removed and counted, the first |B|-1 kept
(:class:`.generation.GeneratingAugmenter`). Batched, longest first, within the token budget; the samples of a text
depend only on (seed, row, column), whatever the batch or process.
"""

from __future__ import annotations

from .generation import GeneratingAugmenter, GenerationSettings, example_keys

__all__ = ["BackTranslationAugmenter"]


def language_token(tokenizer, code: str | None, flag: str) -> int | None:
    """The id of a language code's token (NLLB ``deu_Latn``, M2M100 ``__de__``), or None without a code."""
    if code is None:
        return None
    found = tokenizer.convert_tokens_to_ids(code)
    if found is None or found == tokenizer.unk_token_id:
        raise ValueError(f"{flag} {code!r}: not a language token of this tokenizer (NLLB: deu_Latn; M2M100: __de__)")
    return found


class BackTranslationAugmenter(GeneratingAugmenter):
    """Args:
    forward, backward: ``(tokenizer, model)`` of the two translation models (source -> pivot, pivot -> source).
    num_augmented: |B|-1, the samples kept per text. num_candidates: pivots made per text (default 2 x that).
    sampling: seeded sampling of the pivots (at the settings' temperature and top-k); False: beam search.
    settings: how ``generate`` runs (:class:`GenerationSettings`).
    source_language, pivot_language: language codes for multilingual models (NLLB, M2M100); None for Marian.
    identity: what the fingerprint hashes of the models (their file hashes or Hub commits)."""

    name = "back-translation"

    def __init__(  # noqa: PLR0913  (a public constructor: each option is one of the augmenter's settings)
        self,
        forward,
        backward,
        num_augmented: int = 4,
        seed: int = 0,
        num_candidates: int | None = None,
        sampling: bool = True,
        settings: GenerationSettings | None = None,
        source_language: str | None = None,
        pivot_language: str | None = None,
        identity: dict | None = None,
    ):
        super().__init__(num_augmented, seed)
        self.forward, self.backward = forward, backward
        self.num_candidates = num_candidates or 2 * num_augmented
        self.sampling, self.settings = sampling, settings or GenerationSettings()
        self._identity = identity or {}
        self.languages = (source_language, pivot_language)
        if source_language is not None:
            forward[0].src_lang, backward[0].src_lang = source_language, pivot_language
        self._to_pivot = language_token(forward[0], pivot_language, "--pivot-language")
        self._to_source = language_token(backward[0], source_language, "--source-language")

    def _generate(self, pair, prompts, keys, beams, returned, bos):
        options = {"generate_options": {"forced_bos_token_id": bos}} if bos is not None else {}
        return self.settings.generate(pair, prompts, keys, beams, returned, **options)

    def candidates(self, texts, example_ids, segment):
        n = self.num_candidates
        if self.sampling:
            prompts = [text for text in texts for _ in range(n)]
            keys = example_keys(self.seed, example_ids, n, segment)
            pivots = [found[0] for found in self._generate(self.forward, prompts, keys, 1, 1, self._to_pivot)]
        else:
            pivots = [p for found in self._generate(self.forward, texts, None, n, n, self._to_pivot) for p in found]
        back = [found[0] for found in self._generate(self.backward, pivots, None, 2, 1, self._to_source)]
        return [back[i * n : (i + 1) * n] for i in range(len(texts))]

    def identity(self) -> dict:
        return dict(self._identity)

    def describe(self) -> dict:
        return {
            "augmenter": self.name,
            "models": [self._identity.get("forward_name"), self._identity.get("backward_name")],
            "sampling": "seeded sampling" if self.sampling else "beam search",
            "candidates": self.num_candidates,
            "languages": list(self.languages) if self.languages[0] else None,
        }
