"""The per-block transform: Algorithm 2 and the teacher over a block's rows, as new columns and counts."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch
from datasets import Dataset
from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

from ..losses import teacher_disagreement
from ..schema import TEACHER_AUGMENTED_COLUMN, TEACHER_ORIGINAL_COLUMN, augmented_column
from ..tasks.registry import TaskSpec
from .augment_config import AugmentConfig
from .augmenter import Augmenter
from .back_translation import BackTranslationAugmenter
from .counts import shard_counts
from .eda import EdaAugmenter
from .file_source import FileAugmenter
from .fill_mask import FillMaskAugmenter
from .generation import GenerationSettings
from .numerics import compare_blocks
from .paraphrase import DEFAULT_PROMPT, ParaphraseAugmenter
from .shards import BlockPlan
from .teacher import TeacherLabeler


def augment_split(
    train,
    spec: TaskSpec,
    augmenter: Augmenter,
    teacher: TeacherLabeler | None,
    start: int = 0,
    drop_disagreeing: bool = False,
):
    """Augment and label ``train`` (rows ``start``.. of the full split) with any :class:`Augmenter`: the new columns
    as a Dataset, and how the teacher's labels of the samples compare with its labels of their originals
    (:func:`label_counts`); with ``drop_disagreeing`` the samples it labels otherwise are left out."""

    texts = [list(train[column]) for column in spec.text_columns]
    ids = range(start, start + len(train))
    samples = augmenter.augment_rows(texts, ids)
    if teacher is None:  # --label-source original: the original label stands in for the teacher (Table 4)
        labels = list(train[spec.label_column])
        originals = [
            [float(v)] if spec.is_regression else np.eye(spec.num_labels, dtype=np.float32)[v].tolist() for v in labels
        ]
        augmented = [[v] * len(group) for v, group in zip(originals, samples)]
        counts = {}
    else:
        per_column = [[] for _ in spec.text_columns]  # every original and its samples, flat, column by column
        for i, group in enumerate(samples):
            for sample in [tuple(t[i] for t in texts), *group]:
                for j, text in enumerate(sample):
                    per_column[j].append(text)
        outputs = teacher.predict(per_column[0], per_column[1] if spec.is_pair else None)
        bounds = np.cumsum([0] + [len(group) + 1 for group in samples])
        originals = [outputs[b].tolist() for b in bounds[:-1]]
        augmented = [outputs[b + 1 : e].tolist() for b, e in zip(bounds[:-1], bounds[1:])]
        disagree = disagreeing(originals, augmented, spec.is_regression)
        counts = label_counts(originals, augmented, disagree, spec.is_regression)
        if drop_disagreeing:
            samples = [[s for s, d in zip(g, flags) if not d] for g, flags in zip(samples, disagree)]
            augmented = [[a for a, d in zip(g, flags) if not d] for g, flags in zip(augmented, disagree)]
            counts["dropped_disagreeing"] = counts["teacher_disagreements"]
    columns = {
        augmented_column(c): [[s[j] for s in group] for group in samples] for j, c in enumerate(spec.text_columns)
    }
    columns[TEACHER_ORIGINAL_COLUMN] = originals
    columns[TEACHER_AUGMENTED_COLUMN] = augmented
    return Dataset.from_dict(columns), counts


REGRESSION_THRESHOLD = 0.5  # the paper's (Section 4.2) and MMELTrainingArguments.mmel_regression_threshold's default


def disagreeing(originals: list, augmented: list[list], regression: bool) -> list[list[bool]]:
    """Per group, which samples the teacher labels otherwise than their original: another class, or (regression) a
    prediction more than :data:`REGRESSION_THRESHOLD` away. The rule of :func:`mmel_hf.losses.teacher_disagreement`
    (the trainer's ``mmel/teacher_disagreement``), applied to the ragged groups of a block."""

    sizes = [len(group) for group in augmented]
    width = max(sizes, default=0)
    if width == 0:
        return [[] for _ in augmented]
    outputs = len(originals[0])
    teacher = torch.zeros(len(originals), width + 1, outputs)
    mask = torch.zeros(len(originals), width + 1, dtype=torch.bool)
    teacher[:, 0] = torch.tensor(originals)
    mask[:, 0] = True
    for i, group in enumerate(augmented):
        if group:
            teacher[i, 1 : len(group) + 1] = torch.tensor(group)
            mask[i, 1 : len(group) + 1] = True
    found = teacher_disagreement(teacher, mask, regression, REGRESSION_THRESHOLD).tolist()
    return [row[:size] for row, size in zip(found, sizes)]


def label_counts(originals: list, augmented: list[list], disagree: list[list[bool]], regression: bool) -> dict:
    """How many samples the teacher labels otherwise than their original (and, for regression, the summed distance
    between the two predictions), for the job's label-safety report."""
    counts = {
        "teacher_labelled_samples": sum(len(group) for group in augmented),
        "teacher_disagreements": sum(sum(flags) for flags in disagree),
    }
    if regression:
        counts["teacher_shift_sum"] = float(
            sum(abs(a[0] - o[0]) for o, group in zip(originals, augmented) for a in group)
        )
    return counts


def build_augmenter(
    config: AugmentConfig,
    spec: TaskSpec,
    train,
    load_mlm: Callable[[], tuple],
    show_progress: bool = False,
    load_model: Callable[[str, str], tuple] | None = None,
) -> Augmenter:
    """The job's augmenter (``--augmenter``): the one place that knows them by name. A file is read and checked
    whole here, before any model is loaded; ``load_mlm`` loads the fill-mask model's (tokenizer, model) and
    ``load_model(kind, name)`` a generating augmenter's ((tokenizer, model), identity, display name)."""
    if isinstance(config.augmenter, Augmenter):  # an object given from Python
        return config.augmenter
    if config.augmenter in ("back-translation", "generate"):
        return _generating_augmenter(config, load_model)
    if config.augmenter == "eda":
        return EdaAugmenter(config.eda_operations, config.eda_alpha, config.num_augmented, config.seed,
                            config.num_candidates)  # fmt: skip
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


def _generating_augmenter(config: AugmentConfig, load_model) -> Augmenter:
    settings = GenerationSettings(config.temperature, config.top_k, config.batch_size, config.max_tokens_per_batch,
                                  config.max_length, config.precision)  # fmt: skip
    shared = dict(num_augmented=config.num_augmented, seed=config.seed, num_candidates=config.num_candidates,
                  settings=settings)  # fmt: skip
    if config.augmenter == "generate":
        pair, identity, shown = load_model("paraphrase model", config.generator_model)
        return ParaphraseAugmenter(pair, config.prompt_template or DEFAULT_PROMPT,
                                   identity={"model": identity, "model_name": shown}, **shared)  # fmt: skip
    forward, forward_identity, forward_name = load_model("translation model", config.translation_models[0])
    backward, backward_identity, backward_name = load_model("translation model", config.translation_models[1])
    identity = {"forward": forward_identity, "backward": backward_identity, "forward_name": forward_name,
                "backward_name": backward_name}  # fmt: skip
    return BackTranslationAugmenter(
        forward,
        backward,
        sampling=config.sampling == "sample",
        source_language=config.source_language,
        pivot_language=config.pivot_language,
        identity=identity,
        **shared,
    )


class BlockBuilder:
    """Computes one block: the augmenter and the teacher over its rows, and the counts of what came out.

    Used for the job's blocks, by ``--verify`` and when a cache begun on another machine is checked, so all
    three compute a block the same way."""

    def __init__(self, config: AugmentConfig, spec: TaskSpec, train, augmenter: Augmenter, teacher_pair,
                 show_progress: bool = False):  # fmt: skip
        self.spec, self.train, self.augmenter = spec, train, augmenter
        self.drop_disagreeing = config.drop_disagreeing
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
        self.augmenter.take_counts()  # what an earlier, unfinished block left counted
        new, labels = augment_split(part, self.spec, self.augmenter, self.labeler, rows.start, self.drop_disagreeing)
        counts = {**shard_counts(part, new, self.spec, self.augmenter.normalise), **labels}
        return new, {**counts, **self.augmenter.take_counts()}


def _text_columns(spec: TaskSpec) -> list[str]:
    return [augmented_column(c) for c in spec.text_columns]


def compare_block(plan: BlockPlan, number: int, stored, builder: BlockBuilder, tolerance: float) -> dict:
    recomputed, _ = builder.build(plan.rows(number))
    return compare_blocks(stored, recomputed, _text_columns(builder.spec), tolerance)


@contextmanager
def no_dataset_bars():
    """No bars from ``datasets`` (nor our file-reading bar) in the block; the user's setting is restored after."""

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()
