"""The per-block transform: Algorithm 2 and the teacher over a block's rows, as new columns and counts."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from ..schema import TEACHER_AUGMENTED_COLUMN, TEACHER_ORIGINAL_COLUMN, augmented_column
from ..tasks.registry import TaskSpec
from .augment_config import AugmentConfig
from .augmenter import Augmenter
from .counts import shard_counts
from .file_source import FileAugmenter
from .fill_mask import FillMaskAugmenter
from .numerics import compare_blocks
from .shards import BlockPlan
from .teacher import TeacherLabeler


def augment_split(train, spec: TaskSpec, augmenter: Augmenter, teacher: TeacherLabeler | None, start: int = 0):
    """Augment and label ``train`` (rows ``start``.. of the full split) with any :class:`Augmenter`: the new columns
    as a Dataset."""
    from datasets import Dataset

    texts = [list(train[column]) for column in spec.text_columns]
    ids = range(start, start + len(train))
    samples = augmenter.augment_rows(texts, ids)
    columns = {
        augmented_column(c): [[s[j] for s in group] for group in samples] for j, c in enumerate(spec.text_columns)
    }
    sizes = [len(group) for group in samples]
    if teacher is not None:
        per_column = [[] for _ in spec.text_columns]  # every original and its samples, flat, column by column
        for i, group in enumerate(samples):
            for sample in [tuple(t[i] for t in texts), *group]:
                for j, text in enumerate(sample):
                    per_column[j].append(text)
        outputs = teacher.predict(per_column[0], per_column[1] if spec.is_pair else None)
        bounds = np.cumsum([0] + [n + 1 for n in sizes])
        columns[TEACHER_ORIGINAL_COLUMN] = [outputs[b].tolist() for b in bounds[:-1]]
        columns[TEACHER_AUGMENTED_COLUMN] = [outputs[b + 1 : e].tolist() for b, e in zip(bounds[:-1], bounds[1:])]
    else:  # --label-source original: the original label stands in for the teacher (Table 4, "Original")
        labels = list(train[spec.label_column])
        vectors = [
            [float(v)] if spec.is_regression else np.eye(spec.num_labels, dtype=np.float32)[v].tolist() for v in labels
        ]
        columns[TEACHER_ORIGINAL_COLUMN] = vectors
        columns[TEACHER_AUGMENTED_COLUMN] = [[v] * n for v, n in zip(vectors, sizes)]
    return Dataset.from_dict(columns)


def build_augmenter(
    config: AugmentConfig, spec: TaskSpec, train, load_mlm: Callable[[], tuple], show_progress: bool = False
) -> Augmenter:
    """The job's augmenter (``--augmenter``): the one place that knows them by name. A file is read and checked
    whole here, before any model is loaded; ``load_mlm`` loads the fill-mask model's (tokenizer, model)."""
    if isinstance(config.augmenter, Augmenter):  # an object given from Python
        return config.augmenter
    if config.augmenter == "file":
        return FileAugmenter(
            config.augmented_file,
            spec,
            train,
            key=config.augmented_file_key,
            allow_missing=config.allow_missing_samples,
            limited=config.max_train_samples is not None,
        )
    mlm_tokenizer, mlm = load_mlm()
    return FillMaskAugmenter(
        mlm,
        mlm_tokenizer,
        num_augmented=config.num_augmented,
        ratio=config.ratio,
        search=config.search,
        seed=config.seed,
        max_length=config.max_length,
        batch_size=config.batch_size,
        max_tokens=config.max_tokens_per_batch,
        precision=config.precision,
        show_progress=show_progress,
        separate=config.separate,
    )


class BlockBuilder:
    """Computes one block: the augmenter and the teacher over its rows, and the counts of what came out.

    Used for the job's blocks, by ``--verify`` and when a cache begun on another machine is checked, so all
    three compute a block the same way."""

    def __init__(self, config: AugmentConfig, spec: TaskSpec, train, augmenter: Augmenter, teacher_pair,
                 show_progress: bool = False):  # fmt: skip
        self.spec, self.train, self.augmenter = spec, train, augmenter
        self.labeler = None
        if teacher_pair is not None:
            self.labeler = TeacherLabeler(
                teacher_pair[1],
                teacher_pair[0],
                batch_size=config.teacher_batch_size,
                max_tokens=config.max_tokens_per_batch,
                max_length=config.max_length,
                precision=config.precision,
                show_progress=show_progress,
            )

    def build(self, rows: range):
        """(the block's new columns as a Dataset, its counts)."""
        part = self.train.select(rows)
        new = augment_split(part, self.spec, self.augmenter, self.labeler, rows.start)
        return new, shard_counts(part, new, self.spec, self.augmenter.normalise)


def _text_columns(spec: TaskSpec) -> list[str]:
    return [augmented_column(c) for c in spec.text_columns]


def compare_block(plan: BlockPlan, number: int, stored, builder: BlockBuilder, tolerance: float) -> dict:
    recomputed, _ = builder.build(plan.rows(number))
    return compare_blocks(stored, recomputed, _text_columns(builder.spec), tolerance)


@contextmanager
def no_dataset_bars():
    """No bars from ``datasets`` (nor our file-reading bar) in the block; the user's setting is restored after."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()
