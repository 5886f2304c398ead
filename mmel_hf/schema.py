"""The augmented-dataset schema, written down once, and its validator.

An augmented training set has **one row per original example** x_i:

=============================  ==========================================================================
column                         content
=============================  ==========================================================================
``label``                      the original's gold label: an integer class id (``int`` or ``ClassLabel``)
                               or a float for regression (STS-B). ``labels`` is accepted as well.
``<text column>``              the original's text, one string column per input, in the model's order:
                               ``sentence`` for single-sentence tasks, ``sentence1``/``sentence2``,
                               ``question``/``sentence``, ``premise``/``hypothesis`` ... for pairs.
``augmented_<text column>``    list of strings: the |B|-1 augmented samples of that text column. Every
                               text column has one, and within a row all of them have the same length
                               (which may differ between rows: groups may be ragged).
``teacher_original``           list of floats: the teacher's class probabilities for x_i (length =
                               number of labels), or ``[prediction]`` for regression.
``teacher_augmented``          list of lists of floats: the teacher's output for every augmented sample,
                               in the order of the ``augmented_*`` lists.
=============================  ==========================================================================

The teacher columns are required when the trainer uses teacher targets (``mmel_label_source="teacher"``,
the paper's setting, Section 3.3) and optional otherwise. Pre-tokenized data follows the same rule: an
``input_ids`` column (list of ints) with ``augmented_input_ids`` (list of lists of ints), and likewise
for ``token_type_ids``/``attention_mask``. Any other column (``idx`` ...) is ignored.

`mmel-augment` produces exactly this schema.

Examples:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({
    ...     "sentence": ["a fine film"], "label": [1],
    ...     "augmented_sentence": [["a great film", "a fine movie"]],
    ...     "teacher_original": [[0.1, 0.9]], "teacher_augmented": [[[0.2, 0.8], [0.3, 0.7]]],
    ... })
    >>> validate_augmented_dataset(ds)
    AugmentedSchema(sample_columns=('sentence',), label_column='label', has_teacher=True, teacher_width=2)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict

__all__ = [
    "AUGMENTED_PREFIX",
    "LABEL_COLUMNS",
    "TEACHER_AUGMENTED_COLUMN",
    "TEACHER_ORIGINAL_COLUMN",
    "AugmentedSchema",
    "SchemaError",
    "augmented_column",
    "find_sample_columns",
    "label_column_named_label",
    "validate_augmented_dataset",
    "validate_labels",
]

AUGMENTED_PREFIX = "augmented_"
TEACHER_ORIGINAL_COLUMN = "teacher_original"
TEACHER_AUGMENTED_COLUMN = "teacher_augmented"
LABEL_COLUMNS = ("label", "labels")


class SchemaError(ValueError):
    """A dataset does not follow the augmented-dataset schema; the message says what is missing."""


@dataclass(frozen=True)
class AugmentedSchema:
    """What the validator learnt about a dataset.

    Attributes:
        sample_columns: the columns that make up one sample (text columns, or ``input_ids`` ...), in order.
        label_column: ``label`` or ``labels``.
        has_teacher: whether both teacher columns are present.
        teacher_width: length of the teacher vectors (number of labels; 1 for regression), or None.
    """

    sample_columns: tuple[str, ...]
    label_column: str
    has_teacher: bool
    teacher_width: int | None


def augmented_column(column: str) -> str:
    """The name of the column holding the augmented samples of ``column``."""
    return AUGMENTED_PREFIX + column


def find_sample_columns(column_names: list[str]) -> tuple[str, ...]:
    """The columns X (in dataset order) that have an ``augmented_X`` companion."""
    names = set(column_names)
    return tuple(c for c in column_names if not c.startswith(AUGMENTED_PREFIX) and augmented_column(c) in names)


def label_column_named_label(dataset, label_column: str):
    """``dataset`` with the task's label column (``stars`` ...) renamed ``label``, the name the trainer and the
    collator read; a ``label``/``labels`` column beside it (which would clash) is dropped. A dataset without
    that column, or whose label column already is ``label``, is returned as it is.

    >>> from datasets import Dataset
    >>> label_column_named_label(Dataset.from_dict({"review": ["fine"], "stars": [2]}), "stars").column_names
    ['review', 'label']
    """
    if label_column in LABEL_COLUMNS or label_column not in (getattr(dataset, "column_names", None) or ()):
        return dataset
    clashing = [c for c in LABEL_COLUMNS if c in dataset.column_names]
    return dataset.remove_columns(clashing).rename_column(label_column, "label")


def _first_bad_row(mask: pa.ChunkedArray | pa.Array) -> int | None:
    bad = pc.indices_nonzero(pc.fill_null(pc.invert(mask), True))
    return None if len(bad) == 0 else bad[0].as_py()


def validate_augmented_dataset(dataset, require_teacher: bool = True, num_labels: int | None = None) -> AugmentedSchema:
    """Check ``dataset`` against the schema above and return what it found.

    The checks run on the Arrow table (no Python loop over rows). Errors name the column and, for
    per-row problems, the first offending row.

    Args:
        dataset: a ``datasets.Dataset`` (one split).
        require_teacher: demand the teacher columns (needed for teacher targets).
        num_labels: if given, the teacher vectors must have this length.
    Raises:
        SchemaError: with a message that says what is missing and how to fix it.
    """
    label_column, sample_columns = _check_columns(dataset)
    table = dataset.data.table if hasattr(dataset.data, "table") else dataset.data
    if dataset._indices is not None:  # a selected/shuffled view: validate what the user will train on
        table = dataset.flatten_indices().data.table
    lengths = _sample_counts(table, sample_columns)
    columns = dataset.column_names
    has_teacher = TEACHER_ORIGINAL_COLUMN in columns and TEACHER_AUGMENTED_COLUMN in columns
    if require_teacher and not has_teacher:
        missing = [c for c in (TEACHER_ORIGINAL_COLUMN, TEACHER_AUGMENTED_COLUMN) if c not in columns]
        raise SchemaError(
            f"missing teacher column(s) {missing}: teacher targets (mmel_label_source='teacher', Section 3.3) "
            "need the teacher's outputs for every sample. Label the dataset with `mmel-augment --teacher ...`, "
            "or train with mmel_label_source='original'."
        )
    teacher_width = _check_teacher_columns(table, lengths, num_labels) if has_teacher else None
    if num_labels is not None:
        validate_labels(dataset, num_labels, label_column)
    return AugmentedSchema(sample_columns, label_column, has_teacher, teacher_width)


def _check_columns(dataset) -> tuple[str, list[str]]:
    """One non-empty split with a label column and an ``augmented_<column>`` beside each text column it augments:
    the label column and the augmented text columns."""
    if isinstance(dataset, DatasetDict):
        raise SchemaError(
            f"expected one split but got a DatasetDict with splits {list(dataset)}; did you mean dataset['train']?"
        )
    if not isinstance(dataset, Dataset):
        raise SchemaError(f"expected a datasets.Dataset, got {type(dataset).__name__}")
    columns = list(dataset.column_names)
    if len(dataset) == 0:
        raise SchemaError("the augmented dataset is empty")
    label_column = next((c for c in LABEL_COLUMNS if c in columns), None)
    if label_column is None:
        raise SchemaError(f"no label column: expected one of {list(LABEL_COLUMNS)}, found columns {columns}")
    orphans = [c for c in columns if c.startswith(AUGMENTED_PREFIX) and c[len(AUGMENTED_PREFIX) :] not in columns]
    if orphans:
        raise SchemaError(
            f"column(s) {orphans} hold augmented samples of column(s) "
            f"{[c[len(AUGMENTED_PREFIX) :] for c in orphans]}, which the dataset does not have"
        )
    sample_columns = find_sample_columns(columns)
    if not sample_columns:
        raise SchemaError(
            "no augmented samples: expected a column 'augmented_<text column>' (a list of strings) beside each "
            f"text column, found columns {columns}. Produce the dataset with `mmel-augment`, or train with "
            "mmel_loss='none' on plain data."
        )
    return label_column, sample_columns


def _sample_counts(table: pa.Table, sample_columns: list[str]) -> pa.Array:
    """Each augmented column is a list per row, not empty everywhere, and lists as many samples as the others on
    every row: that count per row."""
    lengths = None
    for column in sample_columns:
        aug = augmented_column(column)
        kind = table.schema.field(aug).type
        if not pa.types.is_list(kind) and not pa.types.is_large_list(kind):
            raise SchemaError(f"column '{aug}' must be a list of samples per row, found type {kind}")
        if pa.types.is_null(kind.value_type):
            raise SchemaError(
                f"column '{aug}': every row's list is empty, so there are no augmented samples to train on; "
                "re-run mmel-augment, or train on the originals with mmel_loss='none'"
            )
        column_lengths = pc.list_value_length(table[aug])
        if lengths is None:
            lengths, first_aug = column_lengths, aug
            continue
        bad = _first_bad_row(pc.equal(column_lengths, lengths))
        if bad is not None:
            raise SchemaError(
                f"row {bad}: '{aug}' has {column_lengths[bad].as_py()} samples but '{first_aug}' has "
                f"{lengths[bad].as_py()}; every augmented column must list the same samples"
            )
    return lengths


def _check_teacher_columns(table: pa.Table, lengths: pa.Array, num_labels: int | None) -> int:
    """The teacher's vectors: one per original and one per sample, each of ``num_labels`` values (the first
    row's width when not given), finite probabilities for classification. Returns the width."""
    original_widths = pc.list_value_length(table[TEACHER_ORIGINAL_COLUMN])
    teacher_width = original_widths[0].as_py()
    expected = num_labels if num_labels is not None else teacher_width
    bad = _first_bad_row(pc.equal(original_widths, expected))
    if bad is not None:
        raise SchemaError(
            f"row {bad}: '{TEACHER_ORIGINAL_COLUMN}' has {original_widths[bad].as_py()} values, expected "
            f"{expected} (the number of labels; 1 for regression)"
        )
    teacher_augmented = table[TEACHER_AUGMENTED_COLUMN].combine_chunks()  # row indices below are global
    augmented_counts = pc.list_value_length(teacher_augmented)
    bad = _first_bad_row(pc.equal(augmented_counts, lengths))
    if bad is not None:
        raise SchemaError(
            f"row {bad}: '{TEACHER_AUGMENTED_COLUMN}' has {augmented_counts[bad].as_py()} entries but there are "
            f"{lengths[bad].as_py()} augmented samples"
        )
    inner = pc.list_flatten(teacher_augmented)
    if not pa.types.is_null(inner.type):
        inner_widths = pc.list_value_length(inner)
        bad_inner = _first_bad_row(pc.equal(inner_widths, expected))
        if bad_inner is not None:
            parents = pc.list_parent_indices(teacher_augmented)
            raise SchemaError(
                f"row {parents[bad_inner].as_py()}: an entry of '{TEACHER_AUGMENTED_COLUMN}' has "
                f"{inner_widths[bad_inner].as_py()} values, expected {expected}"
            )
    _check_teacher_values(table[TEACHER_ORIGINAL_COLUMN].combine_chunks(), TEACHER_ORIGINAL_COLUMN, expected)
    if not pa.types.is_null(inner.type):
        _check_teacher_values(inner, TEACHER_AUGMENTED_COLUMN, expected, pc.list_parent_indices(teacher_augmented))
    return teacher_width


def _check_teacher_values(vectors: pa.Array, column: str, width: int, rows: pa.Array | None = None) -> None:
    """Teacher vectors are finite; for classification, probabilities (in [0, 1], summing to 1 per vector)."""
    values = pc.list_flatten(vectors).to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, width)
    where = lambda index: int(rows[index].as_py()) if rows is not None else int(index)  # noqa: E731
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise SchemaError(
            f"row {where(bad)}: '{column}' holds a non-finite value ({values[bad].tolist()}); the "
            "teacher's outputs must be numbers"
        )
    if width == 1:
        return
    in_range = ((values >= -1e-6) & (values <= 1 + 1e-6)).all(axis=1) & (np.abs(values.sum(axis=1) - 1) <= 1e-3)
    if not in_range.all():
        bad = int(np.argmin(in_range))
        raise SchemaError(
            f"row {where(bad)}: '{column}' is {values[bad].tolist()}, not a probability vector (values "
            "in [0, 1] summing to 1); teacher logits must go through a softmax first"
        )


def validate_labels(dataset, num_labels: int, label_column: str | None = None) -> None:
    """Gold labels fit a model with ``num_labels`` outputs: class ids 0..C-1, or finite numbers for regression.

    Raises:
        SchemaError: naming the column and the first bad row.
    """
    columns = list(dataset.column_names)
    label_column = label_column or next((c for c in LABEL_COLUMNS if c in columns), None)
    if label_column is None:
        return
    labels = dataset.data.table[label_column]
    if dataset._indices is not None:  # a selected/shuffled view: only the label column is taken, never the images
        labels = labels.take(dataset._indices.column(0))
    labels = labels.combine_chunks()
    if pa.types.is_dictionary(labels.type):
        labels = labels.dictionary_decode()
    kind = labels.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        raise SchemaError(
            f"column '{label_column}': labels must be numbers (class ids, or floats for regression), "
            f"found {kind}; map the label names to ids first"
        )
    values = labels.to_numpy(zero_copy_only=False).astype(np.float64)
    if num_labels == 1:
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise SchemaError(
                f"row {int(bad[0])}, column '{label_column}': regression label {values[bad[0]]} is not a finite number"
            )
        return
    bad = np.flatnonzero(~((values >= 0) & (values < num_labels) & (values == np.round(values))))
    if len(bad):
        raise SchemaError(
            f"row {int(bad[0])}, column '{label_column}': label {labels[int(bad[0])].as_py()!r} is not a "
            f"class id 0..{num_labels - 1} (the model has {num_labels} labels)"
        )


def read_provenance(dataset) -> dict:
    """The :func:`provenance` of an augmented split, or ``{}`` for data made elsewhere."""
    try:
        found = json.loads(dataset.info.description or "")
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) and "mmel_hf_task" in found else {}
