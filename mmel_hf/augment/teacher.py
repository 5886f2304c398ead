"""Teacher labelling (Section 3.3): a sequence classifier's outputs for originals and augmented samples.

Classification teachers give class probabilities (softmax of the logits); regression teachers
(``num_labels == 1``) give their prediction. Inputs are sorted by length and run in batches of similar
length (the length bands of Algorithm 2's batches, within a token budget) under ``torch.inference_mode``, so
little compute goes to padding.

How to get a teacher: fine-tune any ``AutoModelForSequenceClassification`` on the task's original
training data with this project's own training path in plain mode,
``MMELTrainer(..., args=MMELTrainingArguments(mmel_loss="none", mmel_text_columns=[...], ...))``, and save it with
``trainer.save_model(path)``; then pass ``--teacher path``. The paper's teacher is a fine-tuned BERT-base.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..utils.attention import without_cudnn_attention
from .fill_mask import LENGTH_MULTIPLE, length_bands, padded_length, row_bucket
from .precision import autocast

__all__ = ["TeacherLabeler"]


class TeacherLabeler:
    """Batched inference of a sequence-classification teacher.

    Args:
        model: an ``AutoModelForSequenceClassification``.
        tokenizer: its tokenizer.
        batch_size: most sequences per forward pass.
        max_length: truncation length (special tokens included).
        max_tokens: most tokens per forward pass (sequences x padded width), beside ``batch_size``; None: none.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast).
        show_progress: a tqdm bar over batches.
        shape_buckets: pad each batch to a multiple of 8 positions and its rows to :func:`row_bucket` (copies
            whose outputs are dropped; default: on CUDA only), so a run meets a bounded set of shapes.
    """

    def __init__(
        self,
        model,
        tokenizer,
        batch_size: int = 256,
        max_length: int = 128,
        precision: str = "fp32",
        show_progress: bool = False,
        shape_buckets: bool | None = None,
        max_tokens: int | None = None,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.max_length = max_length
        self.precision = precision
        self.show_progress = show_progress
        self.device = next(model.parameters()).device
        # Widths padded to a multiple of 8 on CUDA (see FillMaskAugmenter's shape_buckets); the CPU keeps exact ones.
        self.shape_buckets = self.device.type == "cuda" if shape_buckets is None else shape_buckets

    @property
    def num_outputs(self) -> int:
        return self.model.config.num_labels

    @torch.inference_mode()
    def predict(self, texts: Sequence[str], texts_pair: Sequence[str] | None = None) -> np.ndarray:
        """``[N, C]`` float32: class probabilities, or ``[N, 1]`` predictions for a regression teacher."""

        args = (list(texts),) if texts_pair is None else (list(texts), list(texts_pair))
        encoded = self.tokenizer(*args, truncation=True, max_length=self.max_length)  # one batched Rust call
        keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in encoded]
        lengths = np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int64, count=len(args[0]))
        order = np.argsort(-lengths, kind="stable")
        pad_id = self.tokenizer.pad_token_id or 0
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        outputs = np.empty((len(lengths), self.num_outputs), dtype=np.float32)
        multiple = LENGTH_MULTIPLE if self.shape_buckets else 1
        bands = length_bands(lengths[order].tolist(), self.batch_size, self.max_tokens, 1, multiple)
        kept = []
        for band in tqdm(bands, desc="Teacher labelling", unit="batch", disable=not self.show_progress, leave=False):
            index = order[band]
            width = int(lengths[index[0]])  # sorted: the first row is the longest
            if self.shape_buckets:  # bounded shapes on CUDA: widths in multiples of 8, rows in buckets (copies)
                width = padded_length(width, multiple, self.max_length)
                index = np.concatenate([index, np.repeat(index[:1], row_bucket(len(index)) - len(index))])
            batch = {}
            for key in keys:
                padded = np.full((len(index), width), pad_id if key == "input_ids" else 0, dtype=np.int64)
                for row, i in enumerate(index):
                    values = encoded[key][i]
                    if left:
                        padded[row, width - len(values) :] = values
                    else:
                        padded[row, : len(values)] = values
                host = torch.from_numpy(padded)
                # Pinned and asynchronous on CUDA: the next batch's copies overlap with this batch's forward pass.
                host = host.pin_memory() if self.device.type == "cuda" else host
                batch[key] = host.to(self.device, non_blocking=True)
            with autocast(self.precision, self.device), without_cudnn_attention(self.device):
                logits = self.model(**batch).logits[: len(band)].float()
            kept.append(logits if self.num_outputs == 1 else logits.softmax(dim=-1))
        if kept:  # one copy back to the host at the end, not one wait per batch
            outputs[order] = torch.cat(kept).cpu().numpy()
        return outputs
