"""Baseline(DA+Long) of Table 3: every augmented sample becomes an independent training example.

The paper's "Baseline(DA+Long)" trains on the augmented data without groups: each augmented sample z is
an example of its own, labelled as MMEL-H labels it (the teacher's output for z, Section 3.3, or the
original's gold label for the Table 4 ablation), and the originals keep their gold labels. With the same
batch size this takes |B| times the steps of the other methods; that cost is part of the comparison.

:func:`flatten_groups` turns a dataset in the augmented schema (:mod:`mmel_hf.schema`) into such a flat
dataset with Arrow operations (no Python loop over rows). Every flat row carries its target in
``mmel_target``: a probability vector ``[C]`` (classification) or ``[value]`` (regression), which
:class:`~mmel_hf.MMELTrainer` (``mmel_loss="long"``) trains on with the same per-sample loss as Eq. 7.

Examples:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({
    ...     "sentence": ["a fine film"], "label": [1], "augmented_sentence": [["a great film", "a fine movie"]],
    ...     "teacher_original": [[0.1, 0.9]], "teacher_augmented": [[[0.2, 0.8], [0.7, 0.3]]],
    ... })
    >>> flat = flatten_groups(ds, num_labels=2)
    >>> list(flat["sentence"])
    ['a fine film', 'a great film', 'a fine movie']
    >>> [[round(p, 2) for p in target] for target in flat["mmel_target"]]
    [[0.0, 1.0], [0.2, 0.8], [0.7, 0.3]]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

from .schema import TEACHER_AUGMENTED_COLUMN, augmented_column, validate_augmented_dataset

__all__ = ["TARGET_COLUMN", "flatten_groups"]

TARGET_COLUMN = "mmel_target"


def _gold_vectors(labels: pa.Array, num_labels: int) -> pa.Array:
    """Gold labels as target vectors: one-hot ``[C]`` rows, or ``[value]`` for regression."""
    values = labels.to_numpy(zero_copy_only=False)
    if num_labels == 1:
        matrix = values.astype(np.float32).reshape(-1, 1)
    else:
        matrix = np.eye(num_labels, dtype=np.float32)[values.astype(np.int64)]
    return pa.array(list(matrix), type=pa.list_(pa.float32()))


def flatten_groups(dataset, num_labels: int, label_source: str = "teacher"):
    """One row per sample: the originals with their gold labels, then every augmented sample.

    Args:
        dataset: a ``datasets.Dataset`` in the augmented schema.
        num_labels: the task's number of labels (1 = regression).
        label_source: ``"teacher"`` (augmented samples take the teacher's outputs) or ``"original"`` (they
            take their original's gold label).
    Returns:
        a ``datasets.Dataset`` with the text columns, the label column (the original's gold label, kept for
        reference) and ``mmel_target``.
    """

    schema = validate_augmented_dataset(dataset, require_teacher=label_source == "teacher", num_labels=num_labels)
    table = dataset.flatten_indices().data.table if dataset._indices is not None else dataset.data.table
    label = table[schema.label_column].combine_chunks()
    if pa.types.is_dictionary(label.type):
        label = label.dictionary_decode()
    first_augmented = table[augmented_column(schema.sample_columns[0])].combine_chunks()
    parents = pc.list_parent_indices(first_augmented)  # the original of every augmented sample

    gold = _gold_vectors(label, num_labels)
    if label_source == "teacher":
        augmented_targets = pc.list_flatten(table[TEACHER_AUGMENTED_COLUMN].combine_chunks())
        augmented_targets = augmented_targets.cast(pa.list_(pa.float32()))
    else:
        augmented_targets = gold.take(parents)

    columns = {}
    for column in schema.sample_columns:
        originals = table[column].combine_chunks()
        samples = pc.list_flatten(table[augmented_column(column)].combine_chunks())
        columns[column] = pa.concat_arrays([originals, samples.cast(originals.type)])
    columns[schema.label_column] = pa.concat_arrays([label, label.take(parents)])
    columns[TARGET_COLUMN] = pa.concat_arrays([gold, augmented_targets])
    return Dataset(pa.table(columns))
