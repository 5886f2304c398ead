"""Algorithm 2 of the paper (Appendix C), batched: fill-mask augmentation by greedy or beam search.

For every sentence x (its word pieces, special tokens excluded, length L):

1. k = round(ratio * L) positions p_1..p_k are drawn once, in random order, from a generator seeded by
   ``(seed, example id, segment)``; all |B|-1 augmented samples of x share them. Ties round half up
   (``floor(ratio * L + 0.5)``) and k is at least 1, so a one-piece sentence still gets one position.
2. **Greedy** (Algorithm 2): every position is masked; sample i takes the i-th most likely token at p_1,
   then each later p_j takes the most likely token from a new forward pass over the partially filled
   sample. **Beam** (Yang et al., 2018): beam search over the same order with width |B|-1, keeping the
   |B|-1 best completions by summed log-probability (distinct by construction).
3. Special tokens, ``[UNK]`` and bracketed vocabulary entries (``[unused0]``) are never predicted, nor a
   ``##`` continuation at the start of a sentence, so decoded text is clean.

Samples are rendered from the original's characters (``render="original"``): unchanged pieces keep the
original's case, accents, punctuation and spacing, so ``couldn't`` stays ``couldn't`` and a cased original
stays cased where nothing changed; only the replaced pieces are written as the model's tokens. The search
itself works on the pieces and is the same either way (``render="decode"`` gives the tokenizer's decode).

Sentences longer than ``max_length - 2`` pieces are augmented in their first ``max_length - 2`` pieces;
the rest is kept as it is. Pairs are augmented sentence by sentence (the paper's choice) or concatenated
as one sequence (``[CLS] a [SEP] b [SEP]``, positions drawn over both).

The work is batched: sentences are sorted by length, each forward pass takes up to ``batch_size``
sequences (all augmented samples of several sentences at the same step), sentences with fewer positions
drop out as they finish, and the vocabulary projection runs only on the hidden state of the position
being filled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from tqdm.auto import tqdm

from ..utils.attention import without_cudnn_attention
from .augmenter import Augmenter
from .precision import PRECISIONS, autocast

__all__ = ["FillMaskAugmenter", "num_positions", "sample_positions"]

_BRACKETED = re.compile(r"^\[.*\]$")


def num_positions(length: int, ratio: float) -> int:
    """k of Algorithm 2: ``round(ratio * length)``, ties up, at least 1 and at most ``length``.

    Computed in exact arithmetic on the ratio as written (0.35 is 7/20, not the nearest binary float), so a
    tie such as 0.35 * 90 = 31.5 always rounds up to 32.
    """
    exact = Fraction(repr(float(ratio))) * length
    return min(length, max(1, math.floor(exact + Fraction(1, 2))))


def sample_positions(length: int, ratio: float, seed: int, example_id: int, segment: int = 0) -> np.ndarray:
    """The fill order p_1..p_k for one sentence; depends only on its arguments (not on batching)."""
    rng = np.random.default_rng([seed, example_id, segment])
    return rng.permutation(length)[: num_positions(length, ratio)]


BAND = 0.8  # a batch's sentences are at least this share of its longest one's length (padding <= 20%)
LENGTH_MULTIPLE = 8  # bucketed sequence lengths (shape_buckets): multiples of 8, as tensor cores like them


def padded_length(length: int, multiple: int = 1, limit: int | None = None) -> int:
    """``length`` rounded up to a multiple of ``multiple``, never past ``limit`` (nor below ``length``).

    >>> padded_length(13, 8), padded_length(13, 8, limit=14), padded_length(13)
    (16, 14, 13)
    """
    rounded = -(-length // multiple) * multiple
    return rounded if limit is None else min(rounded, max(length, limit))


def length_bands(
    lengths: list[int], rows: int, max_tokens: int | None = None, width: int = 1, multiple: int = 1
) -> list[list[int]]:
    """Batches of the positions of ``lengths`` (sorted longest first). A new batch starts where the current one
    holds ``rows`` entries, where a length falls below :data:`BAND` of its batch's longest (so short sentences are
    not padded to long ones: a third of the tokens were padding at 1024-row batches), and where one more entry
    would take the batch past ``max_tokens`` tokens, counted as entries x ``width`` sequences each x the longest
    length rounded up to ``multiple``. A batch holds at least one entry. The bands add few batches: about
    log(longest / shortest) / log(1 / BAND), a dozen from 128 pieces down to 8.

    >>> length_bands([40, 38, 35, 20, 19, 18, 17, 5], rows=4)
    [[0, 1, 2], [3, 4, 5, 6], [7]]
    >>> length_bands([40, 38, 35, 20, 19, 18, 17, 5], rows=4, max_tokens=80)
    [[0, 1], [2], [3, 4, 5, 6], [7]]
    """
    bands: list[list[int]] = []
    for position, length in enumerate(lengths):
        if bands:
            band, longest = bands[-1], lengths[bands[-1][0]]
            over = max_tokens is not None and (len(band) + 1) * width * padded_length(longest, multiple) > max_tokens
            if len(band) < rows and length >= BAND * longest and not over:
                band.append(position)
                continue
        bands.append([position])
    return bands


def row_bucket(count: int) -> int:
    """``count`` rounded up to a multiple of an eighth of its power of two: at most 8 sizes per octave, at most
    12.5% more rows (counts up to 8 stay as they are).

    >>> [row_bucket(c) for c in (5, 8, 9, 17, 100, 1000)]
    [5, 8, 9, 18, 104, 1024]
    """
    if count <= 8:
        return count
    step = 1 << (count.bit_length() - 4)
    return -(-count // step) * step


@dataclass
class _Item:
    """One sequence to augment: its ids, the indices of content pieces, and where to put the tail back."""

    input_ids: list[int]
    token_type_ids: list[int]
    fill_order: list[int]  # indices into input_ids
    segment_starts: tuple[int, ...]  # first content index of each segment (no ## there)
    separator: int | None  # index of the [SEP] between a pair, None for one sentence
    tails: tuple[list[int], ...]  # pieces cut by max_length, per segment


class _Launched:
    """A band's search queued on the device: its ``[n, W, T]`` ids are copied back asynchronously (into pinned
    memory on CUDA, an event marking the copy's end), so waiting for them waits for this band's work alone, not for
    bands queued after it."""

    def __init__(self, ids: torch.Tensor, lengths: list[int]):
        self.lengths = lengths
        self.event = None
        if ids.device.type == "cuda":
            self.host = torch.empty(ids.shape, dtype=ids.dtype, pin_memory=True)
            self.host.copy_(ids, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        else:
            self.host = ids.cpu()

    def collect(self) -> list[list[list[int]]]:
        if self.event is not None:
            self.event.synchronize()
        filled = self.host.tolist()  # one copy to the host per band, not one per sample
        return [[sample[:length] for sample in rows] for rows, length in zip(filled, self.lengths)]


@contextmanager
def _encoder_output_at(encoder, positions: torch.Tensor):
    """Within the block the encoder returns its last hidden state at one position per row (``[rows, 1, H]``), so
    a masked-LM head of any shape (it is applied position by position) computes ``[rows, 1, V]`` logits."""
    original = encoder.forward
    rows = torch.arange(len(positions), device=positions.device)

    def forward(*args, **kwargs):
        output = original(*args, **kwargs)
        output.last_hidden_state = output.last_hidden_state[rows, positions].unsqueeze(1)
        return output

    own = encoder.__dict__.get("forward")
    encoder.forward = forward
    try:
        yield
    finally:
        if own is None:
            del encoder.forward
        else:
            encoder.forward = own


class FillMaskAugmenter(Augmenter):
    """Augment sentences with a masked language model by Algorithm 2 (greedy) or beam search (``--augmenter
    fill-mask``, the default).

    Args:
        model: any ``AutoModelForMaskedLM``; its head runs only at the positions being filled (``[rows, V]``
            logits, not ``[rows, T, V]``): directly when it is a ``cls``, ``lm_head`` or ``predictions`` module,
            otherwise (DistilBERT, ELECTRA, ModernBERT ...) through the model's own forward with the encoder's
            output cut to those positions.
        tokenizer: its tokenizer.
        num_augmented: |B|-1, the augmented samples per sentence.
        ratio: fraction of word pieces to replace (0.4 in the paper).
        search: ``"greedy"`` or ``"beam"``.
        seed: seeds the positions (with each example's id).
        max_length: the longest sequence the model sees, special tokens included.
        batch_size: most sequences per forward pass.
        max_tokens: most tokens per forward pass (sequences x padded length), beside ``batch_size``; None: no
            token budget. A pass holds at least one sentence's samples.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; fp16 only on GPU).
        show_progress: a tqdm bar over sentences.
        separate: for pairs in :meth:`augment_rows`, augment each sentence on its own (the paper's choice) or both
            together.
        shape_buckets: bound the forward shapes a run meets (default: on CUDA only, where each new shape costs
            kernel choices): lengths padded to a multiple of 8, the rows of a step topped up to
            :func:`row_bucket` (copies whose outputs are dropped). The CPU keeps exact shapes.
    """

    def __init__(  # noqa: PLR0913  (a public constructor: each option is one of Algorithm 2's settings)
        self,
        model,
        tokenizer,
        num_augmented: int = 4,
        ratio: float = 0.4,
        search: str = "greedy",
        seed: int = 0,
        max_length: int = 128,
        batch_size: int = 256,
        precision: str = "fp32",
        show_progress: bool = False,
        render: str = "original",
        shape_buckets: bool | None = None,
        max_tokens: int | None = None,
        separate: bool = True,
    ):
        if render not in ("original", "decode"):
            raise ValueError(f"render={render!r} must be 'original' or 'decode'")
        if num_augmented < 1:
            raise ValueError(f"num_augmented={num_augmented}: need at least one augmented sample (|B| >= 2)")
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio={ratio} must be in (0, 1]")
        if search not in ("greedy", "beam"):
            raise ValueError(f"search={search!r} must be 'greedy' or 'beam'")
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r} must be one of {list(PRECISIONS)}")
        if tokenizer.mask_token_id is None:
            raise ValueError(f"{type(tokenizer).__name__} has no mask token: a fill-mask model is needed")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.num_augmented = num_augmented
        self.ratio = ratio
        self.search = search
        self.seed = seed
        self.max_length = max_length
        self.batch_size = max(batch_size, num_augmented)
        self.max_tokens = max_tokens
        self.separate = separate
        self.precision = precision
        self.show_progress = show_progress
        # Rendering samples from the original's characters needs character offsets (a fast tokenizer) and
        # WordPiece's "##" continuations; other tokenizers render by decoding the pieces.
        self.render = render if getattr(tokenizer, "is_fast", False) else "decode"
        self.device = next(model.parameters()).device
        # On CUDA every new (rows, length) shape costs kernel choices and launches; bucketed shapes repeat.
        self.shape_buckets = self.device.type == "cuda" if shape_buckets is None else shape_buckets
        self._encoder, self._head = self._split_model(model)
        self._vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self._banned, self._banned_at_start, has_continuations = self._banned_tokens(model, tokenizer, self._vocab)
        if not has_continuations:
            self.render = "decode"
        allowed = int((~self._banned_at_start).sum())  # the first piece of a sentence has the fewest choices
        if allowed < num_augmented:
            raise ValueError(
                f"the fill-mask vocabulary has {allowed} token(s) that may start a sentence (special, [UNK], "
                f"bracketed and ## tokens are never predicted), fewer than the {num_augmented} augmented samples "
                f"asked for (|B| - 1): use a larger vocabulary or a smaller --group-size"
            )

    def _banned_tokens(self, model, tokenizer, vocab: list) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """The tokens never predicted (bracketed and special tokens, [UNK], the padding of a vocabulary padded to a
        multiple of 8), those never predicted first (the same and the ``##`` continuations), and whether the
        vocabulary has continuations at all (WordPiece's; else samples render by decoding)."""
        banned = torch.zeros(len(tokenizer), dtype=torch.bool)
        banned[[i for i, t in enumerate(vocab) if t is not None and _BRACKETED.match(t)]] = True
        banned[[i for i in tokenizer.all_special_ids if i < len(banned)]] = True
        if tokenizer.unk_token_id is not None:
            banned[tokenizer.unk_token_id] = True
        continuation = torch.tensor([t is not None and t.startswith("##") for t in vocab])
        output = model.get_output_embeddings()
        num_logits = output.weight.shape[0] if output is not None else len(banned)
        pad = max(0, num_logits - len(banned))  # vocabularies padded to a multiple of 8 ...
        never = torch.cat([banned, torch.ones(pad, dtype=torch.bool)]).to(self.device)
        never_first = never | torch.cat([continuation, torch.zeros(pad, dtype=torch.bool)]).to(self.device)
        return never, never_first, bool(continuation.any())

    @staticmethod
    def _split_model(model):
        for name in ("cls", "lm_head", "predictions"):
            head = getattr(model, name, None)
            if isinstance(head, torch.nn.Module):
                return model.base_model, head
        return None, None

    # -- Building sequences -------------------------------------------------------------------------

    def _pieces(self, texts: Sequence[str]) -> list[list[int]]:
        """Word pieces of many texts in one batched tokenizer call."""
        return self._encode(texts)[0]

    def _encode(self, texts: Sequence[str]) -> tuple[list[list[int]], list]:
        """Word pieces of many texts in one batched call, and what rendering needs: (text, offsets, pieces)."""
        texts = list(texts)
        if self.render == "decode":
            pieces = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
            return pieces, [(None, None, p) for p in pieces]
        encoded = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        pieces = encoded["input_ids"]
        return pieces, [(t, o, p) for t, o, p in zip(texts, encoded["offset_mapping"], pieces)]

    def _render(self, source, new: list[int]) -> str:
        """A sample as text. ``render="original"``: every unchanged piece keeps the original's characters (case,
        accents, spacing, ``couldn't``) and the original's spacing between pieces; a new piece is written as its
        token, glued to the previous one when it is a ``##`` continuation, and after a space when it starts a word
        where the original continued one. ``render="decode"`` (or spans that overlap): the tokenizer's decode."""
        text, offsets, original = source
        if (
            text is None
            or len(offsets) != len(original)
            or len(new) != len(original)
            or any(offsets[i][0] < offsets[i - 1][1] for i in range(1, len(offsets)))
        ):
            return self.tokenizer.decode(new, skip_special_tokens=True).strip()
        parts: list[str] = []

        def glued(piece: str) -> bool:  # two words would run together without a space
            before = parts[-1][-1:] if parts else ""
            return bool(before) and piece[:1].isalnum() and (before.isalnum() or before in ".,;:!?)")

        for i, (old_id, new_id) in enumerate(zip(original, new)):
            start, end = offsets[i]
            gap = text[offsets[i - 1][1] : start] if i else ""
            continues = self._vocab[old_id].startswith("##")
            if old_id == new_id:
                piece = text[start:end]
                changed_before = i > 0 and original[i - 1] != new[i - 1]
                parts.append((" " if gap == "" and changed_before and not continues and glued(piece) else gap) + piece)
                continue
            token = self._vocab[new_id]
            if token.startswith("##"):
                parts.append(token[2:])  # continues the previous piece's word
            else:
                parts.append((" " if gap == "" and (continues or glued(token)) else gap) + token)
        return "".join(parts).strip()

    def _single(self, pieces: list[int], example_id: int, segment: int) -> _Item:
        if not pieces:
            raise ValueError(f"example {example_id}: empty text cannot be augmented")
        budget = self.max_length - 2
        head, tail = pieces[:budget], pieces[budget:]
        order = sample_positions(len(head), self.ratio, self.seed, example_id, segment) + 1
        ids = [self.tokenizer.cls_token_id, *head, self.tokenizer.sep_token_id]
        return _Item(ids, [0] * len(ids), order.tolist(), (1,), None, (tail,))

    def _pair(self, a: list[int], b: list[int], example_id: int) -> _Item:
        if not a or not b:
            raise ValueError(f"example {example_id}: empty text cannot be augmented")
        budget = self.max_length - 3
        keep_a = min(len(a), max(budget // 2, budget - len(b)))
        keep_b = min(len(b), budget - keep_a)
        (a, tail_a), (b, tail_b) = (a[:keep_a], a[keep_a:]), (b[:keep_b], b[keep_b:])
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        ids = [cls, *a, sep, *b, sep]
        types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        content = np.array([*range(1, len(a) + 1), *range(len(a) + 2, len(a) + 2 + len(b))])
        order = content[sample_positions(len(content), self.ratio, self.seed, example_id, 0)]
        return _Item(ids, types, order.tolist(), (1, len(a) + 2), len(a) + 1, (tail_a, tail_b))

    # -- The augmenter interface (mmel_hf.augment.augmenter) ----------------------------------------

    name = "fill-mask"

    def augment_rows(self, columns, example_ids):
        return self.augment(columns[0], example_ids, columns[1] if len(columns) > 1 else None, self.separate)

    def identity(self) -> dict:
        return {}  # the model's identity and every option are in the fingerprint already

    def describe(self) -> dict:
        return {"augmenter": self.name, "search": self.search, "ratio": self.ratio, "separate": self.separate}

    def normalise(self, texts):
        return self.round_trip(texts)

    # -- Public API ---------------------------------------------------------------------------------

    def augment(
        self,
        texts: Sequence[str],
        example_ids: Sequence[int] | None = None,
        texts_pair: Sequence[str] | None = None,
        separate: bool = True,
    ) -> list[list[tuple[str, ...]]]:
        """Augment single sentences or sentence pairs.

        Args:
            texts: the (first) sentences.
            example_ids: each example's identity for seeding (default: its index in ``texts``).
            texts_pair: second sentences of pairs, or None.
            separate: for pairs, augment each sentence on its own (the paper's choice) or both together.
        Returns:
            For each example, ``num_augmented`` tuples of texts (one text, or a pair).
        """
        example_ids = list(range(len(texts))) if example_ids is None else list(example_ids)
        if len(example_ids) != len(texts) or (texts_pair is not None and len(texts_pair) != len(texts)):
            raise ValueError("texts, texts_pair and example_ids must have the same length")
        pieces, sources = self._encode(texts)
        if texts_pair is None:
            filled = self._run([self._single(p, i, 0) for p, i in zip(pieces, example_ids)], sources)
            return [[(s,) for s in samples] for samples in filled]
        pieces_pair, sources_pair = self._encode(texts_pair)
        if separate:
            first = self._run([self._single(p, i, 0) for p, i in zip(pieces, example_ids)], sources)
            second = self._run([self._single(p, i, 1) for p, i in zip(pieces_pair, example_ids)], sources_pair)
            return [list(zip(a, b)) for a, b in zip(first, second)]
        items = [self._pair(a, b, i) for a, b, i in zip(pieces, pieces_pair, example_ids)]
        return self._run(items, list(zip(sources, sources_pair)), pairs=True)

    def round_trip(self, texts: Sequence[str]) -> list[str]:
        """``texts`` as a sample that changes nothing would read (rendered as the samples are)."""
        _, sources = self._encode(texts)
        return [self._render(source, source[2]) for source in sources]

    # -- The search ---------------------------------------------------------------------------------

    def _run(self, items: list[_Item], sources: list, pairs: bool = False) -> list[list]:

        results: list[list | None] = [None] * len(items)
        # Longest first: similar lengths share a batch, and the progress bar's ETA errs on the long side.
        order = sorted(range(len(items)), key=lambda i: (-len(items[i].input_ids), -len(items[i].fill_order)))
        per_chunk = max(1, self.batch_size // self.num_augmented)
        # Counted in positions filled (one per sentence and forward pass), so the bar moves at every pass, not
        # once per chunk of sentences (minutes apart on long texts).
        bar = tqdm(
            total=sum(len(it.fill_order) for it in items),
            desc=f"Augmenting ({self.search})",
            unit=" positions",
            disable=not self.show_progress,
            leave=False,
        )
        multiple = LENGTH_MULTIPLE if self.shape_buckets else 1
        bands = length_bands(
            [len(items[i].input_ids) for i in order], per_chunk, self.max_tokens, self.num_augmented, multiple
        )
        # Pipelined: a band's search is queued on the device before the band before it is read back and rendered,
        # so on a GPU the host renders while the device computes (on a CPU the order of work is the same as without).
        pending = None
        for band in bands:
            band = [order[i] for i in band]
            launched = (band, self._search([items[i] for i in band], progress=bar.update))
            if pending is not None:
                self._finish(*pending, items, sources, pairs, results)
            pending = launched
        if pending is not None:
            self._finish(*pending, items, sources, pairs, results)
        bar.close()
        return results

    def _finish(self, band: list[int], search: _Launched, items, sources, pairs: bool, results: list) -> None:
        """Reads a band's samples back (waiting for its device work only) and renders them into ``results``."""
        for index, rows in zip(band, search.collect()):
            results[index] = [self._decode(items[index], ids, sources[index], pairs) for ids in rows]

    def _decode(self, item: _Item, ids: list[int], source, pairs: bool):
        if not pairs:
            return self._render(source, ids[1:-1] + item.tails[0])
        a, b = ids[1 : item.separator], ids[item.separator + 1 : -1]
        return self._render(source[0], a + item.tails[0]), self._render(source[1], b + item.tails[1])

    def _scores(self, input_ids, token_type_ids, attention_mask, positions, at_start) -> torch.Tensor:
        """Scores ``[rows, V]`` at one position per row, banned tokens at -inf.

        Greedy search only ranks tokens, so the scores are the logits; beam search sums them over steps,
        so they are log-probabilities.
        """
        with autocast(self.precision, self.device), without_cudnn_attention(self.device):
            if self._encoder is not None:
                hidden = self._encoder(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state
                rows = torch.arange(len(positions), device=self.device)
                logits = self._head(hidden[rows, positions])
            else:
                with _encoder_output_at(self.model.base_model, positions):
                    logits = self.model(
                        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                    ).logits[:, 0]
        # One mask for every row (no host sync on `at_start.any()`, no boolean-mask copy): rows at a segment start
        # also ban the "##" continuations.
        banned = self._banned | (at_start.unsqueeze(1) & self._banned_at_start)
        logits = logits.float().masked_fill_(banned, float("-inf"))
        return torch.log_softmax(logits, dim=-1) if self.search == "beam" else logits

    def _band_on_device(self, items: list[_Item]):
        """One band's masked sentences as padded tensors on the device (one pinned copy on CUDA), with the rows still
        filling at each step after the first (known on the host; all steps' indices go over in the same copy)."""
        n = len(items)
        length = max(len(it.input_ids) for it in items)
        if self.shape_buckets:  # a multiple of 8 (never past --max-length): a bounded set of lengths
            length = padded_length(length, LENGTH_MULTIPLE, self.max_length)
        steps = max(len(it.fill_order) for it in items)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((n, length), pad, dtype=torch.long)
        types = torch.zeros((n, length), dtype=torch.long)
        attention = torch.zeros((n, length), dtype=torch.long)
        order = torch.zeros((n, steps), dtype=torch.long)
        starts = torch.zeros((n, length), dtype=torch.bool)
        num_steps = [len(it.fill_order) for it in items]
        mask_id = self.tokenizer.mask_token_id
        for row, it in enumerate(items):
            masked = list(it.input_ids)
            for position in it.fill_order:
                masked[position] = mask_id
            ids[row, : len(masked)] = torch.tensor(masked)
            types[row, : len(it.token_type_ids)] = torch.tensor(it.token_type_ids)
            attention[row, : len(masked)] = 1
            # Pad the order with p_1: entries past k_i are never used (the sentence is inactive by then).
            order[row] = torch.tensor(it.fill_order + [it.fill_order[0]] * (steps - len(it.fill_order)))
            starts[row, list(it.segment_starts)] = True
        actives = [[r for r in range(n) if num_steps[r] > step] for step in range(1, steps)]
        active_all = torch.tensor([r for active in actives for r in active], dtype=torch.long)
        host = (ids, types, attention, order, starts, active_all)
        if self.device.type == "cuda":  # pinned: the copies overlap with the first forward pass
            host = tuple(t.pin_memory() for t in host)
        return (*(t.to(self.device, non_blocking=True) for t in host), actives)

    @torch.inference_mode()
    def _search(self, items: list[_Item], progress=None) -> _Launched:
        """Queues the search of one band on the device; :meth:`_Launched.collect` reads its samples back."""
        n, width, device = len(items), self.num_augmented, self.device
        ids, types, attention, order, starts, active_all, actives = self._band_on_device(items)
        length = ids.shape[1]
        rows = torch.arange(n, device=device)

        # Step 1, shared by every sample of a sentence: the |B|-1 most likely tokens at p_1.
        first = order[:, 0]
        scores, tokens = self._scores(ids, types, attention, first, starts[rows, first]).topk(width, dim=-1)  # [n, W]
        ids = ids.unsqueeze(1).repeat(1, width, 1)  # [n, W, T]
        ids[rows, :, first] = tokens
        types_w = types.unsqueeze(1).expand(-1, width, -1)
        attention_w = attention.unsqueeze(1).expand(-1, width, -1)
        if progress is not None:
            progress(n)

        offset = 0
        for step, count in enumerate(map(len, actives), start=1):
            if count == 0:
                break
            active, offset = active_all[offset : offset + count], offset + count
            if progress is not None:
                progress(count)
            position = order[active, step]
            # Bucketed: the batch is topped up with copies of its first row (their outputs are dropped), so a run
            # meets at most 8 row counts per power of two, at most 12.5% more rows.
            padded = row_bucket(count) if self.shape_buckets else count
            batch = torch.cat([active, active[:1].expand(padded - count)]) if padded > count else active
            at = order[batch, step]
            step_scores = self._scores(
                ids[batch].reshape(-1, length),
                types_w[batch].reshape(-1, length),
                attention_w[batch].reshape(-1, length),
                at.repeat_interleave(width),
                starts[batch, at].repeat_interleave(width),
            ).view(padded, width, -1)[:count]
            if self.search == "greedy":
                best = step_scores.argmax(dim=-1)  # [a, W]
                ids[active.unsqueeze(1), torch.arange(width, device=device), position.unsqueeze(1)] = best
            else:
                vocab = step_scores.shape[-1]
                candidates = (scores[active].unsqueeze(-1) + step_scores).reshape(count, -1)
                best_scores, best = candidates.topk(width, dim=-1)
                parent, token = best // vocab, best % vocab
                chosen = ids[active.unsqueeze(1), parent]  # [a, W, T]: the surviving beams' sequences
                chosen.scatter_(2, position.view(-1, 1, 1).expand(-1, width, 1), token.unsqueeze(-1))
                ids[active] = chosen
                scores[active] = best_scores
        return _Launched(ids, [len(it.input_ids) for it in items])
