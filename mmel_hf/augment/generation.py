"""What the augmenters that generate text share: batched, seeded ``generate`` calls and de-duplicated candidates.

``back-translation`` (:mod:`.back_translation`) and ``generate`` (:mod:`.paraphrase`) run transformers' own
``generate`` over many texts at once: sorted by length and cut into batches of similar lengths within a token
budget (the length bands of Algorithm 2), under ``torch.inference_mode`` and the models' inference precision.

**Seeded sampling.** ``generate``'s sampling draws from one random stream for the whole batch, so a text's samples
would depend on its batch-mates and the batch size. Here sampling is the Gumbel-max trick (argmax of the scores
plus Gumbel noise is a draw from their softmax) with noise that is a hash of (seed, example, sample, step, token):
each sample is a draw that depends only on those, on any batch, device or process. Greedy decoding with
:class:`SeededGumbel` is then sampling at ``temperature`` (after an optional top-k cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessorList

from ..utils.attention import without_cudnn_attention
from .augmenter import Augmenter
from .fill_mask import length_bands
from .precision import autocast

__all__ = ["GeneratingAugmenter", "GenerationSettings", "SeededGumbel", "generate_texts", "hash_uniform"]

MASK32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (lowbias32), in int64 so that no product overflows."""
    x = x & MASK32
    x = ((x ^ (x >> 16)) * 0x7FEB352D) & MASK32
    x = ((x ^ (x >> 15)) * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def hash_uniform(keys: torch.Tensor, step: int, vocab: int) -> torch.Tensor:
    """``[rows, vocab]`` numbers in (0, 1), a hash of (each row's key, ``step``, token id): the same on any batch.

    >>> a = hash_uniform(torch.tensor([7, 9]), 3, 5)
    >>> bool(torch.equal(a[1], hash_uniform(torch.tensor([9]), 3, 5)[0])), bool(((a > 0) & (a < 1)).all())
    (True, True)
    """
    tokens = torch.arange(vocab, device=keys.device, dtype=torch.int64)
    mixed = _mix32(_mix32(keys.to(torch.int64).unsqueeze(1) ^ (step * 0x9E3779B9)) ^ tokens.unsqueeze(0))
    return (mixed.double() + 0.5) / 2.0**32


def example_keys(seed: int, example_ids: Sequence[int], samples: int, segment: int) -> list[int]:
    """One key per (example, sample) of a segment, in row-major order: a hash of (seed, example, segment, sample),
    computed for all at once.

    >>> example_keys(0, [5, 6], 2, 0)[2:] == example_keys(0, [6], 2, 0)
    True
    """
    ids = torch.as_tensor(list(example_ids), dtype=torch.int64)
    base = _mix32(_mix32(_mix32(torch.tensor(seed, dtype=torch.int64)) ^ ids) ^ segment)
    sample = torch.arange(1, samples + 1, dtype=torch.int64)
    return _mix32(base.unsqueeze(1) ^ _mix32(sample).unsqueeze(0)).flatten().tolist()


class SeededGumbel:
    """A ``LogitsProcessor`` that turns greedy decoding into sampling at ``temperature`` whose draws depend only on
    each row's key, the step and the token (see the module's doc); ``top_k`` keeps the k best tokens first.
    ``start``: the width of the batch's prompt (the steps are counted from there)."""

    def __init__(self, keys: torch.Tensor, start: int, temperature: float = 1.0, top_k: int | None = None):
        self.keys, self.start, self.temperature, self.top_k = keys, start, temperature, top_k

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float() / self.temperature
        if self.top_k is not None and self.top_k < scores.shape[-1]:
            kth = scores.topk(self.top_k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        uniform = hash_uniform(self.keys.to(scores.device), input_ids.shape[1] - self.start, scores.shape[-1])
        gumbel = -torch.log(-torch.log(uniform)).to(scores.dtype)
        return scores + gumbel


@torch.inference_mode()
def generate_texts(  # noqa: PLR0913  (keyword options of generation, as generate() takes them)
    model,
    tokenizer,
    prompts: Sequence[str],
    keys: Sequence[int] | None,
    num_beams: int = 1,
    num_return: int = 1,
    max_new_tokens: int = 64,
    batch_size: int = 64,
    max_tokens: int | None = None,
    precision: str = "fp32",
    temperature: float = 1.0,
    top_k: int | None = None,
    generate_options: dict | None = None,
    add_special_tokens: bool | None = None,
) -> list[list[str]]:
    """Per prompt, ``num_return`` generated texts (special tokens and the prompt left out).

    ``keys`` (one per prompt): sample with :class:`SeededGumbel` (one text per prompt: give a prompt once per
    sample, each with its own key); None: beam search with ``num_beams`` beams, ``num_return`` of them returned.
    Prompts run longest first in batches of similar length (at most ``batch_size`` prompts and ``max_tokens``
    tokens a batch); a causal model's prompts are padded on the left."""

    device = next(model.parameters()).device
    decoder_only = not model.config.is_encoder_decoder
    if decoder_only:
        tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if add_special_tokens is None:  # a seq2seq encoder's own ([CLS] ... </s>); a causal model's BOS where it has one
        add_special_tokens = not decoder_only or tokenizer.bos_token is not None
    encoded = tokenizer(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]
    lengths = [len(ids) for ids in encoded]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    width = num_beams if keys is None else 1
    bands = length_bands([lengths[i] for i in order], max(1, batch_size // width), max_tokens, width)
    results: list[list[str]] = [[] for _ in prompts]
    for band in bands:
        rows = [order[i] for i in band]
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt").to(device)
        options = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **(generate_options or {}))
        if keys is None:
            options.update(num_beams=num_beams, num_return_sequences=num_return, do_sample=False, early_stopping=True)
        else:
            start = batch["input_ids"].shape[1] if decoder_only else 1
            sampler = SeededGumbel(torch.tensor([keys[i] for i in rows]), start, temperature, top_k)
            options.update(do_sample=False, num_beams=1, logits_processor=LogitsProcessorList([sampler]))
        with autocast(precision, device), without_cudnn_attention(device):
            output = model.generate(**batch, **options)
        if decoder_only:
            output = output[:, batch["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(output, skip_special_tokens=True)
        per = num_return if keys is None else 1
        for position, row in enumerate(rows):
            results[row] = texts[position * per : (position + 1) * per]
    return results


@dataclass
class GenerationSettings:
    """How a model-based augmenter runs ``generate``: sampling temperature and top-k, the batching (most prompts and
    tokens a batch), the longest answer, the precision."""

    temperature: float = 1.0
    top_k: int | None = None
    batch_size: int = 64
    max_tokens: int | None = None
    max_length: int = 128
    precision: str = "fp32"

    def generate(self, pair, prompts, keys, num_beams=1, num_return=1, **options) -> list[list[str]]:
        """:func:`generate_texts` with these settings, for ``pair`` = (tokenizer, model)."""
        tokenizer, model = pair
        return generate_texts(
            model,
            tokenizer,
            prompts,
            keys,
            num_beams=num_beams,
            num_return=num_return,
            max_new_tokens=self.max_length,
            batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            precision=self.precision,
            temperature=self.temperature,
            top_k=self.top_k,
            **options,
        )


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


class GeneratingAugmenter(Augmenter):
    """The shared shell of the generating augmenters: each text column on its own (:meth:`candidates` gives a
    segment's candidates), candidates equal to the original or to an earlier candidate removed (case and spacing
    aside) and counted, the first ``num_augmented`` kept. Pairs zip their columns' samples; a column with fewer
    keeps the original's text in the others' extra samples."""

    def __init__(self, num_augmented: int, seed: int):
        self.num_augmented, self.seed = num_augmented, seed
        self.removed = {"same_as_original": 0, "repeated": 0, "empty": 0}

    def candidates(self, texts: Sequence[str], example_ids: Sequence[int], segment: int) -> list[list[str]]:
        raise NotImplementedError

    def augment_rows(self, columns, example_ids):
        per_column = []
        for segment, texts in enumerate(columns):
            kept = []
            for original, found in zip(texts, self.candidates(texts, example_ids, segment)):
                seen, chosen = {_normalised(original)}, []
                for text in (t.strip() for t in found):
                    key = _normalised(text)
                    if not key:
                        self.removed["empty"] += 1
                    elif key == _normalised(original):
                        self.removed["same_as_original"] += 1
                    elif key in seen:
                        self.removed["repeated"] += 1
                    elif len(chosen) < self.num_augmented:
                        chosen.append(text)
                    seen.add(key)
                kept.append(chosen)
            per_column.append(kept)
        rows = []
        for i in range(len(example_ids)):
            count = max(len(column[i]) for column in per_column)
            rows.append([
                tuple(column[i][j] if j < len(column[i]) else columns[c][i] for c, column in enumerate(per_column))
                for j in range(count)
            ])  # fmt: skip
        return rows

    def take_counts(self) -> dict:
        """The candidates removed since the last call (per block: the block's counts keep them)."""
        found = {f"removed_{k}": v for k, v in self.removed.items()}
        self.removed = dict.fromkeys(self.removed, 0)
        return found
