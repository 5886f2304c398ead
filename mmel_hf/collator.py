"""The grouped data collator: S groups B(x_i) in, one padded batch of sum |B(x_i)| sequences out.

Rows follow the schema of :mod:`mmel_hf.schema`. For each row the collator lays out the original first,
then its augmented samples, group after group, and tokenizes (or pads, for pre-tokenized rows) all of
them in one call. The batch it returns holds the model inputs for the flat batch plus

- ``labels``: ``[S]`` gold labels of the originals (long for classification, float for regression);
- ``mmel_group_mask``: ``[S, max |B|]`` bool, True where a group has a sample (row-major = flat order);
- ``mmel_teacher``: ``[sum |B|, C]`` float teacher outputs for every flat sample, when the rows have them.

Rows of a flattened DA+Long dataset (:mod:`mmel_hf.da_long`) carry their own target vector, which comes
out as ``mmel_target`` ``[S, C]`` beside a plain batch.

Rows without augmented samples (evaluation and prediction sets, or ``include_augmented=False``) give
a plain batch, exactly as :class:`transformers.DataCollatorWithPadding` would.

Examples:
    >>> collator = MMELDataCollator(tokenizer)  # any tokenizer, e.g. AutoTokenizer.from_pretrained("bert-base-uncased")
    >>> batch = collator([
    ...     {"sentence": "a fine film", "label": 1, "augmented_sentence": ["a great film", "a fine movie"]},
    ...     {"sentence": "dull", "label": 0, "augmented_sentence": ["boring"]},
    ... ])
    >>> batch["input_ids"].shape[0], batch["mmel_group_mask"].tolist()
    (5, [[True, True, True], [True, True, False]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase
from transformers.data.data_collator import DataCollatorMixin

from .da_long import TARGET_COLUMN
from .schema import (
    LABEL_COLUMNS,
    TEACHER_AUGMENTED_COLUMN,
    TEACHER_ORIGINAL_COLUMN,
    SchemaError,
    augmented_column,
    find_sample_columns,
)

__all__ = ["GROUP_MASK_KEY", "TARGET_KEY", "TEACHER_KEY", "MMELDataCollator"]

GROUP_MASK_KEY = "mmel_group_mask"
TEACHER_KEY = "mmel_teacher"
TARGET_KEY = TARGET_COLUMN  # per-row target vectors of DA+Long rows
TOKENIZED_COLUMNS = ("input_ids", "token_type_ids", "attention_mask")


def _labels_tensor(labels: list, column: str) -> torch.Tensor:
    """Labels as ints, floats, NumPy scalars or 0-d tensors -> long (class ids) or float32 (regression)."""
    try:
        values = np.asarray([v.item() if hasattr(v, "item") else v for v in labels])
    except (TypeError, ValueError) as err:
        raise SchemaError(f"column '{column}': labels must be numbers, got {labels[:3]!r} ({err})") from None
    if values.dtype.kind == "f":
        return torch.from_numpy(values.astype(np.float32))
    if values.dtype.kind in "iub":
        return torch.from_numpy(values.astype(np.int64))
    raise SchemaError(
        f"column '{column}': labels must be numbers (class ids, or floats for regression), got {labels[:3]!r}"
    )


@dataclass
class MMELDataCollator(DataCollatorMixin):
    """Flattens groups of original + augmented samples into one padded batch.

    Args:
        tokenizer: the tokenizer that encodes text rows and pads pre-tokenized ones.
        text_columns: the text columns, in the order the model takes them (at most two: a sentence or a
            sentence pair). ``None`` infers them from the ``augmented_*`` columns of each batch, which
            plain (evaluation) rows do not have, so give them when those rows are raw text.
        max_length: truncate every sequence to this many tokens (``None``: the tokenizer's maximum).
        pad_to_multiple_of: pad the batch length to a multiple of this (useful on tensor cores).
        include_augmented: False drops the augmented samples (``mmel_loss="none"``).
    """

    tokenizer: PreTrainedTokenizerBase
    text_columns: Sequence[str] | None = None
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    include_augmented: bool = True
    return_tensors: str = "pt"

    @property
    def signature_columns(self) -> list[str]:
        """Dataset columns this collator reads; the trainer keeps them when pruning unused columns."""
        base = [*(self.text_columns or ()), *TOKENIZED_COLUMNS]
        return [
            *base,
            *(augmented_column(c) for c in base),
            TEACHER_ORIGINAL_COLUMN,
            TEACHER_AUGMENTED_COLUMN,
            TARGET_KEY,
        ]

    def _sample_columns(self, row: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
        """The columns that make up one sample in ``row`` and whether they are text."""
        if "input_ids" in row:
            return tuple(c for c in TOKENIZED_COLUMNS if c in row), False
        columns = tuple(c for c in self.text_columns if c in row) if self.text_columns else ()
        if not columns:
            columns = find_sample_columns(list(row))
        if not columns:
            expected = list(self.text_columns) if self.text_columns else "text columns with 'augmented_*' companions"
            raise SchemaError(
                f"a row has neither 'input_ids' nor the text columns {expected}; its columns are {sorted(row)}. "
                "Tokenize the dataset or pass text_columns=..."
            )
        if len(columns) > 2:
            raise SchemaError(
                f"at most two text columns (a sentence pair) can be encoded together, got {list(columns)}"
            )
        return columns, True

    def lengths(self, dataset, batch_size: int = 1000) -> list[int]:
        """Per row, the tokens of its longest sample as this collator encodes it (truncated to ``max_length``).

        What length-grouped sampling needs (``train_sampling_strategy="group_by_length"``): a grouped batch pads
        every sample of every group to the longest one, so a group is as long as its longest sample. Rows
        without augmented samples (or ``include_augmented=False``) measure the original alone. One batched
        tokenizer call per ``batch_size`` rows; nothing is padded.

        Examples:
            >>> from datasets import Dataset
            >>> rows = Dataset.from_list([{"sentence": "a fine film", "label": 1,
            ...                            "augmented_sentence": ["a truly great film", "good"]}])
            >>> MMELDataCollator(tokenizer).lengths(rows)  # [CLS] a truly great film [SEP]
            [6]
        """
        lengths: list[int] = []
        for start in range(0, len(dataset), batch_size):
            rows = dataset[start : start + batch_size]  # columns -> values of these rows
            first = {name: values[0] for name, values in rows.items()}
            columns, is_text = self._sample_columns(first)
            augmented = [augmented_column(c) for c in columns]
            count = len(rows[columns[0]])
            sizes = np.ones(count, dtype=np.int64)
            flat: dict[str, list] = {c: list(rows[c]) for c in columns}
            if self.include_augmented and all(a in rows for a in augmented):
                extra = [[samples or [] for samples in rows[a]] for a in augmented]
                sizes += np.array([len(samples) for samples in extra[0]], dtype=np.int64)
                for column, per_row in zip(columns, extra):
                    flat[column].extend(sample for samples in per_row for sample in samples)
            if is_text:
                encoded = self.tokenizer(*(flat[c] for c in columns), truncation=True, max_length=self.max_length)
                measured = np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)
            else:
                measured = np.array([len(ids) for ids in flat["input_ids"]], dtype=np.int64)
            # flat holds the originals first, then every row's samples in row order: map each sample to its row.
            owner = np.concatenate([np.arange(count), np.repeat(np.arange(count), sizes - 1)])
            longest = np.zeros(count, dtype=np.int64)
            np.maximum.at(longest, owner, measured)
            lengths.extend(longest.tolist())
        return lengths

    def torch_call(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        columns, is_text = self._sample_columns(rows[0])
        augmented = [augmented_column(c) for c in columns]
        grouped = self.include_augmented and any(a in row for row in rows for a in augmented)

        sizes = []
        flat: dict[str, list] = {c: [] for c in columns}
        for index, row in enumerate(rows):
            extra = [row.get(a) or [] for a in augmented] if grouped else [[] for _ in columns]
            if len({len(e) for e in extra}) > 1:
                raise SchemaError(
                    f"row {index} of the batch: the augmented columns {augmented} list different numbers of samples "
                    f"({[len(e) for e in extra]})"
                )
            sizes.append(1 + len(extra[0]))
            for column, samples in zip(columns, extra):
                flat[column].append(row[column])
                flat[column].extend(samples)

        if is_text:
            batch = dict(
                self.tokenizer(
                    *(flat[c] for c in columns),
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    pad_to_multiple_of=self.pad_to_multiple_of,
                    return_tensors="pt",
                )
            )
        else:
            features = [dict(zip(columns, values)) for values in zip(*(flat[c] for c in columns))]
            batch = dict(
                self.tokenizer.pad(
                    features, padding=True, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt"
                )
            )

        label_column = next((c for c in (*LABEL_COLUMNS, "label_ids") if c in rows[0]), None)
        if label_column is not None:
            batch["labels"] = _labels_tensor([row[label_column] for row in rows], label_column)
        if all(TARGET_KEY in row for row in rows):
            batch[TARGET_KEY] = torch.tensor([row[TARGET_KEY] for row in rows], dtype=torch.float32)
        if not grouped:
            return batch
        if label_column is None:
            raise SchemaError(f"augmented rows need a gold label column, one of {list(LABEL_COLUMNS)}")

        sizes_tensor = torch.tensor(sizes)
        batch[GROUP_MASK_KEY] = torch.arange(int(sizes_tensor.max())) < sizes_tensor.unsqueeze(1)
        if all(TEACHER_ORIGINAL_COLUMN in row and TEACHER_AUGMENTED_COLUMN in row for row in rows):
            teacher = []
            for row in rows:
                teacher.append(row[TEACHER_ORIGINAL_COLUMN])
                teacher.extend(row[TEACHER_AUGMENTED_COLUMN])
            batch[TEACHER_KEY] = torch.tensor(teacher, dtype=torch.float32)
        return batch
