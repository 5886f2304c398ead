"""The paper's protocol in one call: teacher -> augmentation -> every method x every seed -> tables and a figure.

``run_study(StudyConfig(task="rte", data_dir=...))`` (``mmel-study``):

1. **Teacher** (Section 3.3): ``teacher_model`` fine-tuned on the same training examples the students see
   (mode ``none``), so the teacher knows no label the students do not; or an existing ``--teacher``.
2. **Augmentation**: ``mmel-augment`` (Algorithm 2) on those examples, labelled by the teacher (cached).
3. **Students**: every method (``none``, ``long``, ``uniform``, ``max``, ``hard``, ``soft``; ``-original``
   for the original labels of Table 4; ``hard@0.1`` for another lambda_P) x every seed, with the same
   student, data, labels and settings. Finished runs are skipped on a rerun.
4. ``results.md`` (Table 3 / Table 4 layout: mean ± std over seeds, per-seed values, paired differences
   against DA+UNI, time per run), ``results.json`` and ``curves.png`` (dev metric against training time,
   Figure 2).

The report (:mod:`mmel_hf.study_report`) is written from the runs' ``metrics.json`` files alone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["MethodSpec", "StudyConfig", "parse_method", "run_study"]

logger = logging.getLogger(__name__)

_MODES = ("none", "long", "uniform", "max", "hard", "soft")


@dataclass(frozen=True)
class MethodSpec:
    """One method of the study: a mode, the labels of augmented samples, and lambda_P."""

    key: str
    mode: str
    label_source: str = "teacher"
    lambda_p: float = 1.0

    @property
    def title(self) -> str:
        from .train import method_name

        name = method_name(self.mode, self.label_source)
        return f"{name} (lambda_P={self.lambda_p:g})" if self.mode in ("hard", "soft") and self.lambda_p != 1.0 else name


def parse_method(text: str) -> MethodSpec:
    """``hard``, ``hard-original`` (Table 4), ``hard@0.1`` (lambda_P = 0.1), ``soft-original@10`` ..."""
    key = text.strip()
    body, _, lam = key.partition("@")
    mode, _, source = body.partition("-")
    if mode not in _MODES or source not in ("", "original", "teacher"):
        raise ValueError(f"method {text!r}: expected one of {list(_MODES)}, optionally with -original and/or @LAMBDA_P "
                         "(e.g. hard-original, hard@0.1)")
    try:
        lambda_p = float(lam) if lam else 1.0
    except ValueError:
        raise ValueError(f"method {text!r}: {lam!r} after '@' is not a number") from None
    if lam and mode not in ("hard", "soft"):
        raise ValueError(f"method {text!r}: lambda_P applies to hard and soft only")
    if not lambda_p > 0:
        raise ValueError(f"method {text!r}: lambda_P must be > 0 (use 'max' for the lambda_P -> 0 limit)")
    return MethodSpec(key, mode, source or "teacher", lambda_p)


@dataclass
class StudyConfig:
    """Options of ``mmel-study``. Settings are shared by every method: nothing is tuned per method."""

    task: str = field(metadata={"help": "The task (rte, mrpc, cola, stsb ..., or rt-polarity, the embedded one)."})
    output_dir: str = field(default="mmel_study_output", metadata={"help": "Where the runs and the results go."})
    data_dir: str | None = field(default=None, metadata={"help": "A local GLUE task folder (train.tsv, dev.tsv)."})
    train_file: str | None = field(default=None, metadata={"help": "A local CSV/TSV or JSON-lines training file."})
    validation_file: str | None = field(default=None, metadata={"help": "A local validation file."})
    dataset_path: str | None = field(default=None, metadata={"help": "A folder written by save_to_disk."})
    max_train_samples: int | None = field(default=1000, metadata={
        "help": "Training examples (the first N) that the teacher and every student see; 0 or none = all."})

    max_eval_samples: int | None = field(default=None, metadata={
        "help": "Evaluate on the first N examples of the evaluation split (default: all)."})
    methods: list[str] = field(default_factory=lambda: ["none", "long", "uniform", "hard", "soft", "hard-original"],
                               metadata={"help": "Methods: none, long, uniform, max, hard, soft; add -original for "
                                                 "original labels (Table 4) and @L for lambda_P = L (hard@0.1)."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "Training seeds of every method."})

    teacher: str | None = field(default=None, metadata={
        "help": "An existing teacher (Hub id or folder). Default: train one on the same examples."})
    teacher_model: str = field(default="embedded", metadata={"help": "What the teacher is fine-tuned from."})
    teacher_layers: int | None = field(default=None, metadata={"help": "Keep the teacher's first N layers."})
    teacher_epochs: float = field(default=3.0, metadata={"help": "Teacher fine-tuning epochs."})
    teacher_learning_rate: float = field(default=1e-4, metadata={"help": "Teacher AdamW learning rate."})
    mlm_model: str | None = field(default="embedded", metadata={
        "help": "Fill-mask model of Algorithm 2 ('embedded' runs offline; bert-base-uncased is the paper's)."})
    group_size: int = field(default=5, metadata={"help": "|B|, the original included."})
    ratio: float = field(default=0.4, metadata={"help": "Fraction of word pieces replaced (Algorithm 2)."})
    augment_seed: int = field(default=42, metadata={"help": "Seed of the augmentation (fixed across methods)."})

    student_model: str = field(default="embedded", metadata={"help": "What every student is fine-tuned from."})
    student_layers: int | None = field(default=2, metadata={"help": "Keep the students' first N layers."})
    epochs: float = field(default=3.0, metadata={"help": "Student training epochs (every method)."})
    learning_rate: float = field(default=1e-4, metadata={"help": "AdamW learning rate of the students."})
    batch_size: int = field(default=16, metadata={"help": "Originals per batch (DA+Long: samples per batch)."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.0, metadata={"help": "Share of steps with a linear warm-up."})
    max_length: int = field(default=128, metadata={"help": "Longest sequence in word pieces."})
    precision: str = field(default="fp32", metadata={
        "help": "fp32, or bf16 autocast for augmentation, teacher and students alike (fast on GPUs and on CPUs "
                "with AVX512-BF16/AMX).", "choices": ["fp32", "bf16"]})
    attn_implementation: str | None = field(default=None, metadata={
        "help": "Attention kernel of teacher and students (transformers' attn_implementation; default: the model's)."})
    cache_dir: str | None = field(default=None, metadata={"help": "Augmentation cache (default ~/.cache/mmel_hf)."})
    progress: bool = field(default=False, metadata={"help": "Progress bars inside each run (a line per run always)."})

    def __post_init__(self):
        self.method_specs = [parse_method(m) for m in self.methods]
        if not self.seeds:
            raise ValueError("--seeds: give at least one seed")
        if self.max_train_samples == 0:
            self.max_train_samples = None

    def to_dict(self) -> dict:
        return asdict(self)


def _training_args(config: StudyConfig, output: Path, mode: str, seed: int, epochs: float, **extra):
    import torch

    from .mmel_config import MMELTrainingArguments

    extra.setdefault("learning_rate", config.learning_rate)
    return MMELTrainingArguments(
        output_dir=str(output), mmel_loss=mode, seed=seed, num_train_epochs=epochs,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=128, weight_decay=config.weight_decay, warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear", max_length=config.max_length, bf16=config.precision == "bf16", eval_strategy="epoch", save_strategy="no",
        logging_steps=50, report_to="none", disable_tqdm=not config.progress, use_cpu=not torch.cuda.is_available(),
        **extra,
    )


def _data_options(config: StudyConfig) -> dict:
    return dict(data_dir=config.data_dir, train_file=config.train_file, validation_file=config.validation_file,
                dataset_path=config.dataset_path)


def _done(folder: Path) -> dict | None:
    file = folder / "metrics.json"
    return json.loads(file.read_text()) if file.exists() else None


def train_teacher(config: StudyConfig, say: Callable[[str], None]) -> str:
    """The teacher's folder: the given one, or one fine-tuned on the students' examples (reused if done)."""
    from .train import run_training
    from .train_config import TrainConfig

    if config.teacher is not None:
        return config.teacher
    folder = Path(config.output_dir) / "teacher"
    done = _done(folder)
    if done is None or not (folder / "config.json").exists():
        say(f"teacher: fine-tuning {config.teacher_model} on {config.max_train_samples or 'all'} examples")
        run_training(
            TrainConfig(task=config.task, model=config.teacher_model, num_layers=config.teacher_layers,
                        attn_implementation=config.attn_implementation, max_eval_samples=config.max_eval_samples,
                        max_train_samples=config.max_train_samples, **_data_options(config)),
            _training_args(config, folder, "none", seed=0, epochs=config.teacher_epochs,
                           learning_rate=config.teacher_learning_rate),
            quiet=not config.progress,
        )
        done = _done(folder)
    say(f"teacher: {_headline(done)} -> {folder}")
    return str(folder)


def _headline(summary: dict) -> str:
    first = next(iter(summary["metrics"].values()), {})
    shown = [f"{k.split('_', 1)[1]} {v:.4f}" for k, v in first.items() if not k.endswith("_loss")]
    return ", ".join(shown) + f" ({summary['train_seconds']:.0f}s)"


def run_study(config: StudyConfig, say: Callable[[str], None] = logger.info) -> dict:
    """Run (or resume) the whole study; returns the report (also written as results.json / results.md)."""
    from .augment import AugmentConfig, run_augmentation
    from .study_report import write_report
    from .train import run_training
    from .train_config import TrainConfig

    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "study_config.json").write_text(json.dumps(config.to_dict(), indent=2, default=str))
    started = time.perf_counter()
    teacher = train_teacher(config, say)
    augment_started = time.perf_counter()
    augmented = run_augmentation(AugmentConfig(
        task=config.task, teacher=teacher, mlm_model=config.mlm_model, max_train_samples=config.max_train_samples,
        group_size=config.group_size, ratio=config.ratio, seed=config.augment_seed, max_length=config.max_length,
        precision=config.precision,
        cache_dir=config.cache_dir, progress=config.progress, **_data_options(config),
    ))
    summary = augmented.summary
    say(f"augmentation: {summary['examples']} examples, {summary['augmented_samples']} samples "
        f"(distinct {summary['distinct_ratio']:.1%}) in {time.perf_counter() - augment_started:.0f}s"
        f"{' (cache hit)' if summary['cache_hit'] else ''}")

    runs = [(method, seed) for method in config.method_specs for seed in config.seeds]
    for number, (method, seed) in enumerate(runs, start=1):
        folder = output / "runs" / method.key / f"seed-{seed}"
        done = _done(folder)
        if done is None:
            run_training(
                TrainConfig(task=config.task, model=config.student_model, num_layers=config.student_layers,
                            attn_implementation=config.attn_implementation, max_eval_samples=config.max_eval_samples,
                            augmented=str(augmented.cache_path), save_model=False),
                _training_args(config, folder, method.mode, seed, config.epochs,
                               mmel_label_source=method.label_source, mmel_lambda_p=method.lambda_p),
                quiet=not config.progress,
            )
            done = _done(folder)
            status = ""
        else:
            status = " (done before)"
        say(f"[{number}/{len(runs)}] {method.title}, seed {seed}: {_headline(done)}{status}")
    report = write_report(output, config, teacher_summary=_done(Path(teacher)) if config.teacher is None else None,
                          augmentation=summary)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    return report
