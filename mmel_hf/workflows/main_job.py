"""The main job, offline, on the embedded default: the comparison that tests MMEL's claim, at CPU scale.

A small :func:`~mmel_hf.workflows.study.run_study` on the embedded task rt-polarity, in the paper's setting:

1. a **teacher** (the embedded 6-layer encoder) fine-tuned on the same ``train_examples`` examples the
   students see, so it knows no label they do not (the paper's teacher is fine-tuned on the task's
   training set, Section 3.3);
2. Algorithm 2 (greedy, |B| = 5, ratio 0.4) with the embedded fill-mask model, labelled by that teacher;
3. the same small student (the first ``student_layers`` encoder layers) trained with Baseline (originals
   only), Baseline(DA+UNI) (the plain mean over each group: same samples, labels and cost as MMEL), MMEL-H
   and MMEL-S, over several seeds;
4. a table, and plain sentences giving each paired difference with a 95% interval over seeds x evaluation
   examples ("beyond noise" only when it excludes 0; otherwise "inconclusive" with the detectable size).

Every stage is cached (the teacher, the augmentation, each finished run): a second run takes seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..augment.precision import fast_bf16_available
from .study import StudyConfig, run_study

__all__ = ["MAIN_JOB_METHODS", "MainJobConfig", "run_main_job", "study_config"]

MAIN_JOB_METHODS = ["none", "uniform", "hard", "soft"]


@dataclass
class MainJobConfig:
    """Options of ``mmel-main``."""

    output_dir: str = field(default="mmel_main_output", metadata={"help": "Where the teacher, runs and results go."})
    train_examples: int = field(
        default=300,
        metadata={"help": "Training examples of rt-polarity (of 11,752) that the teacher and every student see."},
    )
    eval_examples: int | None = field(
        default=None, metadata={"help": "Validation examples to evaluate on (default: all 1,000)."}
    )
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "Seeds of every student method."})
    group_size: int = field(default=5, metadata={"help": "|B|, the original included."})
    ratio: float = field(default=0.4, metadata={"help": "Fraction of word pieces replaced (Algorithm 2)."})
    teacher_epochs: float = field(default=3.0, metadata={"help": "Teacher fine-tuning epochs."})
    teacher_learning_rate: float = field(default=1e-4, metadata={"help": "Teacher learning rate."})
    student_layers: int = field(default=2, metadata={"help": "Encoder layers of the students (of the embedded 6)."})
    epochs: float = field(default=3.0, metadata={"help": "Training epochs of every student."})
    batch_size: int = field(default=16, metadata={"help": "Originals per batch (the groups add their |B|-1 samples)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate of the students."})
    max_length: int = field(default=64, metadata={"help": "Longest sequence in word pieces."})
    precision: str = field(
        default="auto",
        metadata={
            "help": "auto (bf16 where this machine runs it natively, else fp32), fp32 or bf16: for every stage alike.",
            "choices": ["auto", "fp32", "bf16"],
        },
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Augmentation cache (default ~/.cache/mmel_hf)."})
    progress: bool = field(default=False, metadata={"help": "Progress bars inside each stage (a line per run always)."})


def study_config(config: MainJobConfig):
    """The :class:`~mmel_hf.workflows.study.StudyConfig` the main job runs."""

    precision = config.precision
    if precision == "auto":
        precision = "bf16" if fast_bf16_available() else "fp32"
    return StudyConfig(
        task="rt-polarity",
        output_dir=config.output_dir,
        max_train_samples=config.train_examples,
        max_eval_samples=config.eval_examples,
        methods=list(MAIN_JOB_METHODS),
        seeds=list(config.seeds),
        teacher_model="embedded",
        teacher_epochs=config.teacher_epochs,
        teacher_learning_rate=config.teacher_learning_rate,
        mlm_model="embedded",
        group_size=config.group_size,
        ratio=config.ratio,
        student_model="embedded",
        student_layers=config.student_layers,
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        weight_decay=0.01,
        warmup_ratio=0.1,
        max_length=config.max_length,
        precision=precision,
        cache_dir=config.cache_dir,
        progress=config.progress,
    )


def run_main_job(config: MainJobConfig, say=None) -> dict:
    """Run (or resume) the main job; returns the study's report (also in ``<output_dir>/results.json``)."""

    study = study_config(config)
    report = run_study(study, say=say) if say is not None else run_study(study)
    report["precision"] = study.precision
    return report
