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

The report (:mod:`mmel_hf.workflows.study_report`) is written from the runs' ``metrics.json`` files alone.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from transformers import AutoConfig

from ..augment import AugmentConfig, run_augmentation
from ..augment.augment_config import AugmenterArguments
from ..augment.models import model_identity
from ..augment.pipeline import check_samples_file
from ..errors import DataError
from ..tasks.registry import DataArguments
from ..training_args import METHOD_NAMES, MMELTrainingArguments, method_name
from ..utils import devices  # device facts by module: the tests model other machines there
from ..utils.files import write_json_atomically
from ..utils.model_limits import check_max_length
from ..utils.privacy import public_options, public_value
from .console import quiet_libraries
from .study_report import write_report
from .study_runs import finished_run, mark_done, prepare_run_folder, run_key
from .train import load_data, resolve_model_path, run_training
from .train_config import TrainConfig

__all__ = ["MethodSpec", "StudyConfig", "parse_method", "run_study"]

logger = logging.getLogger(__name__)

_MODES = tuple(METHOD_NAMES)  # the modes in the order of the paper's tables


@dataclass(frozen=True)
class MethodSpec:
    """One method of the study: a mode, the labels of augmented samples, and lambda_P."""

    key: str
    mode: str
    label_source: str = "teacher"
    lambda_p: float = 1.0

    @property
    def title(self) -> str:

        name = method_name(self.mode, self.label_source)
        return (
            f"{name} (lambda_P={self.lambda_p:g})" if self.mode in ("hard", "soft") and self.lambda_p != 1.0 else name
        )


def parse_method(text: str) -> MethodSpec:
    """``hard``, ``hard-original`` (Table 4), ``hard@0.1`` (lambda_P = 0.1), ``soft-original@10`` ..."""
    key = text.strip()
    body, _, lam = key.partition("@")
    mode, _, source = body.partition("-")
    if mode not in _MODES or source not in ("", "original", "teacher"):
        raise ValueError(
            f"method {text!r}: expected one of {list(_MODES)}, optionally with -original and/or @LAMBDA_P "
            "(e.g. hard-original, hard@0.1)"
        )
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
class StudyConfig(AugmenterArguments, DataArguments):
    """Options of ``mmel-study``. Settings are shared by every method: nothing is tuned per method.

    The task flags (``--task``, ``--text-columns``, ``--label-column``, ``--class-names``, ``--num-labels``) are
    those of ``mmel-train`` and ``mmel-augment``: a custom task is studied like a GLUE one."""

    output_dir: str = field(default="mmel_study_output", metadata={"help": "Where the runs and the results go."})
    max_train_samples: int | None = field(
        default=1000,
        metadata={"help": "Training examples (the first N) that the teacher and every student see; 0 or none = all."},
    )

    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on the first N examples of the evaluation split (default: all)."}
    )
    methods: list[str] = field(
        default_factory=lambda: ["none", "long", "uniform", "hard", "soft", "hard-original"],
        metadata={
            "help": "Methods: none, long, uniform, max, hard, soft; add -original for "
            "original labels (Table 4) and @L for lambda_P = L (hard@0.1)."
        },
    )
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "Training seeds of every method."})

    teacher: str | None = field(
        default=None,
        metadata={"help": "An existing teacher (Hub id or folder). Default: train one on the same examples."},
    )
    teacher_model: str = field(default="embedded", metadata={"help": "What the teacher is fine-tuned from."})
    teacher_layers: int | None = field(default=None, metadata={"help": "Keep the teacher's first N layers."})
    teacher_epochs: float = field(default=3.0, metadata={"help": "Teacher fine-tuning epochs."})
    teacher_learning_rate: float = field(default=1e-4, metadata={"help": "Teacher AdamW learning rate."})
    mlm_model: str | None = field(
        default="embedded",
        metadata={
            "help": "Fill-mask model of Algorithm 2 ('embedded' runs offline; bert-base-uncased is the paper's)."
        },
    )
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
    precision: str = field(
        default="auto",
        metadata={
            "help": "fp32, or bf16 autocast for augmentation, teacher and students alike (fast on GPUs and on CPUs "
            "with AVX512-BF16/AMX); auto: bf16 on a CUDA GPU with bf16 tensor cores, else fp32 (recorded resolved).",
            "choices": ["auto", "fp32", "bf16"],
        },
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={
            "help": "Attention kernel of teacher and students (transformers' attn_implementation; default: the model's)."
        },
    )
    progress: bool = field(default=False, metadata={"help": "Progress bars inside each run (a line per run always)."})
    parallel_runs: int = field(
        default=1,
        metadata={
            "help": "Student runs trained at once, each in its own process on the same device. A small student "
            "leaves a large GPU idle between its steps (the host is the limit), so several runs together finish "
            "the study sooner; each run's result is the same as alone. On a CPU the cores are shared out."
        },
    )

    def __post_init__(self):
        self.check_task_options()
        self.check_data_sources()  # before the teacher's training, not at the first student's
        if self.task is None:
            raise ValueError(
                "--task is required: a GLUE task, rt-polarity, or a name for a custom task (with --text-columns)"
            )
        self.method_specs = [parse_method(m) for m in self.methods]
        if not self.seeds:
            raise ValueError("--seeds: give at least one seed")
        # Each seed is one paired run of every method: a repeated seed or method would count one run as several.
        repeated = next((seed for seed in self.seeds if self.seeds.count(seed) > 1), None)
        if repeated is not None:
            raise ValueError(
                f"--seeds {' '.join(map(str, self.seeds))}: seed {repeated} is given more than once; each seed is one "
                "paired run, so give distinct seeds"
            )
        seen = {}
        for spec in self.method_specs:
            identity = (spec.mode, spec.label_source, spec.lambda_p)  # hard and hard@1 are one method
            if identity in seen:
                raise ValueError(
                    f"--methods: {seen[identity]!r} and {spec.key!r} are the same method; give each method once"
                )
            seen[identity] = spec.key
        for name in ("epochs", "teacher_epochs", "learning_rate", "teacher_learning_rate"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise ValueError(f"--{name.replace('_', '-')} {value:g}: must be a positive number (a run must train)")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.parallel_runs < 1:
            raise ValueError(f"--parallel-runs {self.parallel_runs}: must be at least 1")
        if self.max_train_samples == 0:
            self.max_train_samples = None
        self.augment_config(teacher=None)  # the augmenter's options, checked before the teacher trains
        if self.precision == "auto":  # resolved here: the runs' keys and study_config.json record the value
            self.precision = "bf16" if devices.cuda_with_fast_bf16() else "fp32"

    def augment_config(self, teacher: str | None):
        """The study's augmentation job: any augmenter (``--augmenter``), its samples labelled by ``teacher``."""

        fill_mask = self.augmenter == "fill-mask"
        key = self.augmented_file_key
        # A file keyed by an id column needs that column read (mmel-augment takes --keep-columns; a study keeps it).
        keep = {"keep_columns": [key]} if key not in (None, "row", "id", "idx") else {}
        return AugmentConfig(
            **keep,
            **self.task_options(),
            **self.augmenter_options(),
            teacher=teacher,
            mlm_model=self.mlm_model if fill_mask else None,
            ratio=self.ratio if fill_mask else 0.4,
            max_train_samples=self.max_train_samples,
            group_size=self.group_size,  # refused with a file, which decides |B|
            seed=self.augment_seed,
            max_length=self.max_length,
            precision=self.precision,
            cache_dir=self.cache_dir,
            progress=self.progress,
            **self.data_sources(),
        )

    def to_dict(self) -> dict:
        """The options as written into ``study_config.json`` and ``results.json``: no local paths."""
        return public_options(asdict(self))

    def task_options(self) -> dict:
        return {
            name: getattr(self, name)
            for name in ("task", "text_columns", "label_column", "class_names", "num_labels", "label_range")
        }


def _training_options(config: StudyConfig, mode: str, seed: int, epochs: float, **extra) -> dict:
    """The MMELTrainingArguments of one run (but its folder and console settings): they key the run."""
    extra.setdefault("learning_rate", config.learning_rate)
    extra.setdefault("eval_strategy", "epoch")  # the students' curves (Figure 2)
    return dict(
        mmel_loss=mode,
        seed=seed,
        num_train_epochs=epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=128,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear",
        max_length=config.max_length,
        bf16=config.precision == "bf16",
        save_strategy="no",
        logging_steps=50,
        report_to="none",
        **extra,
    )


def _training_args(config: StudyConfig, output: Path, options: dict):

    # Any accelerator torch knows (CUDA, MPS, XPU ...), as the augmentation picks it; the CPU only without one.
    return MMELTrainingArguments(
        output_dir=str(output), disable_tqdm=not config.progress, use_cpu=devices.runs_on_cpu(None), **options
    )


# -- Reuse, keyed by what determines each artefact --------------------------------------------------------


def _model_key(name: str | None) -> str | None:
    """A model's identity for a key: its files' hash for a folder (so a retrained teacher is a new one)."""

    return None if name is None else model_identity(resolve_model_path(name))


def train_teacher(config: StudyConfig, say: Callable[[str], None], data_key: dict | None = None) -> str:
    """The teacher's folder: the given one, or one fine-tuned on the students' examples (reused while the
    settings and data that determine it are unchanged)."""

    if config.teacher is not None:
        return config.teacher
    folder = Path(config.output_dir) / "teacher"
    # Evaluated once, after training: only its final accuracy is reported (per-epoch evaluation of the 6-layer
    # teacher on rt-polarity's 1,000 sentences was 60 of its 111 s on 2 cores).
    options = _training_options(
        config,
        "none",
        seed=0,
        epochs=config.teacher_epochs,
        learning_rate=config.teacher_learning_rate,
        eval_strategy="no",
    )
    train_config = TrainConfig(
        **config.task_options(),
        model=config.teacher_model,
        num_layers=config.teacher_layers,
        attn_implementation=config.attn_implementation,
        max_eval_samples=config.max_eval_samples,
        max_train_samples=config.max_train_samples,
        cache_dir=config.cache_dir,
        overwrite_output_dir=True,
        **config.data_sources(),
    )
    # The data by its content (a moved file is the same data), the model by its files.
    settings = {
        "teacher": {
            **asdict(train_config),
            **dict.fromkeys(config.data_sources()),
            "model": _model_key(config.teacher_model),
            "data": data_key,
            "cache_dir": None,
        },
        "training": options,
    }
    key = run_key(settings)
    done = finished_run(folder, key)
    if done is None or not (folder / "config.json").exists():
        say(f"teacher: fine-tuning {config.teacher_model} on {config.max_train_samples or 'all'} examples")
        prepare_run_folder(folder)
        run_training(train_config, _training_args(config, folder, options), quiet=not config.progress)
        mark_done(folder, key, settings)
        done = finished_run(folder, key)
    say(f"teacher: {_headline(done)} -> {folder}")
    return str(folder)


def _headline(summary: dict) -> str:
    first = next(iter(summary["metrics"].values()), {})
    shown = [f"{k.split('_', 1)[1]} {v:.4f}" for k, v in first.items() if not k.endswith("_loss")]
    return ", ".join(shown) + f" ({summary['train_seconds']:.0f}s)"


def _check_task_and_data(config: StudyConfig):
    """The task and its data, checked before anything is written or any model is loaded: ``(spec, data)``."""

    spec, data = load_data(
        TrainConfig(
            **config.task_options(),
            max_train_samples=config.max_train_samples,
            cache_dir=config.cache_dir,
            **config.data_sources(),
        )
    )
    _check_max_length(config)
    check_samples_file(config.augment_config(teacher=None), spec)  # a bad line now, not after the teacher trains
    return spec, data


def _check_max_length(config: StudyConfig) -> None:
    """--max-length must fit every model of the study (from their config files: no weights are loaded)."""

    models = {config.teacher or config.teacher_model, config.student_model, config.mlm_model or "embedded"}
    for name in sorted(models):
        try:
            model_config = AutoConfig.from_pretrained(resolve_model_path(name))
        except (OSError, ValueError):
            continue  # reported where the model is loaded, with the ways forward (local folder, embedded ...)
        check_max_length(model_config, config.max_length, "--max-length", public_value(name))


@contextmanager
def _study_lock(output: Path):
    """One mmel-study at a time per --output-dir (the same ``filelock`` the augmentation shards use)."""

    lock = FileLock(str(output / ".mmel-study.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise DataError(
            f"--output-dir {output}: another mmel-study is running on this folder (it holds "
            f"{lock.lock_file}); wait for it to finish, or give another --output-dir"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _refuse_launchers() -> None:
    """A study is one process that runs its runs one after another and writes one report: under torchrun or
    accelerate launch every rank would train, read the others' half-written runs and write the reports."""

    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world > 1:
        raise DataError(
            f"mmel-study runs in one process, not under a launcher (WORLD_SIZE={world}): start it with "
            "plain python/mmel-study (it uses this machine's GPU), or launch mmel-train with torchrun for "
            "each run of a multi-GPU study"
        )


def run_study(config: StudyConfig, say: Callable[[str], None] = logger.info) -> dict:
    """Run (or resume) the whole study; returns the report (also written as results.json / results.md).

    Every artefact is reused only while what determines it is unchanged: the teacher (its settings and data),
    the augmentation (its cache fingerprint), each run (its settings and the augmentation's fingerprint). A
    rerun with other settings redoes exactly what changed, and the report describes only matching runs.
    """

    _refuse_launchers()
    spec, data = _check_task_and_data(config)  # a bad file or flag: one line, nothing written
    split = spec.eval_splits[0]
    total = len(data[split]) if split in data else 0
    scored = min(total, config.max_eval_samples or total)
    evaluation = {"split": split, "scored": scored, "of": total, "limited": scored < total}
    output = Path(config.output_dir)
    if output.exists() and not output.is_dir():
        raise DataError(f"--output-dir {output}: exists and is not a folder")
    output.mkdir(parents=True, exist_ok=True)
    with _study_lock(output):
        write_json_atomically(output / "study_config.json", config.to_dict())
        started = time.perf_counter()
        data_key = {name: dataset._fingerprint for name, dataset in data.items()}
        teacher = train_teacher(config, say, data_key)
        stages = {"teacher": time.perf_counter() - started}
        method = (
            f"Algorithm 2 (|B| = {config.group_size}, ratio {config.ratio})"
            if config.augmenter_name == "fill-mask"
            else f"the {config.augmenter_name} augmenter"
        )
        say(f"augmentation: {method} on {len(data['train'])} examples, labelled by the teacher")
        augment_started = time.perf_counter()
        augmented = run_augmentation(config.augment_config(teacher))
        summary = augmented.summary
        say(
            f"augmentation: {summary['examples']} examples, {summary['augmented_samples']} samples "
            f"(distinct {summary['distinct_ratio']:.1%}) in {time.perf_counter() - augment_started:.0f}s"
            f"{' (cache hit)' if summary['cache_hit'] else ''}"
        )

        stages["augmentation"] = time.perf_counter() - augment_started
        runs_started = time.perf_counter()
        keys = _train_students(config, output, augmented.cache_path, say)
        stages["students"] = time.perf_counter() - runs_started
        report = write_report(
            output,
            config,
            spec=spec,
            teacher_summary=finished_run(Path(teacher)) if config.teacher is None else None,
            augmentation=_public_summary(summary),
            evaluation=evaluation,
            keys=keys,
        )
        report["total_seconds"] = round(time.perf_counter() - started, 1)
        # Wall-clock seconds of each stage of this call (a reused teacher or cache takes seconds)
        report["stage_seconds"] = {name: round(seconds, 1) for name, seconds in stages.items()}
        return report


@dataclass
class _StudentRun:
    """One student run of the study: what it trains and where, and the key it is reused by."""

    method: MethodSpec
    seed: int
    folder: Path
    train_config: object  # TrainConfig
    options: dict
    settings: dict
    key: str


def _student_runs(config: StudyConfig, output: Path, cache_path: Path) -> list[_StudentRun]:
    """Every method x seed of the study, with the settings that key it."""

    runs = []
    for method in config.method_specs:
        for seed in config.seeds:
            options = _training_options(
                config,
                method.mode,
                seed,
                config.epochs,
                mmel_label_source=method.label_source,
                mmel_lambda_p=method.lambda_p,
            )
            train_config = TrainConfig(
                model=config.student_model,
                num_layers=config.student_layers,
                attn_implementation=config.attn_implementation,
                max_eval_samples=config.max_eval_samples,
                augmented=str(cache_path),
                save_model=False,
                overwrite_output_dir=True,
            )
            settings = {
                "student": {
                    **asdict(train_config),
                    "model": _model_key(config.student_model),
                    "augmented": cache_path.name,
                },
                "training": options,
            }
            folder = output / "runs" / method.key / f"seed-{seed}"
            runs.append(_StudentRun(method, seed, folder, train_config, options, settings, run_key(settings)))
    return runs


def _train_student(config: StudyConfig, run: _StudentRun, worker: bool = False, threads: int | None = None) -> None:
    """Trains one student run into its folder and marks it done (in this process or a worker of the pool)."""

    if worker:  # a spawned process: the console as the study's own, and on a CPU its share of the cores
        quiet_libraries(config.progress)
        if threads is not None:
            torch.set_num_threads(threads)
    prepare_run_folder(run.folder)
    run_training(run.train_config, _training_args(config, run.folder, run.options), quiet=not config.progress)
    mark_done(run.folder, run.key, run.settings)


def _train_students(config: StudyConfig, output: Path, cache_path: Path, say: Callable[[str], None]) -> dict:
    """Every student run not done before: one after another, or ``parallel_runs`` at a time, each in its own
    process (spawned, so no CUDA state is shared). Returns the runs' keys by (method, seed)."""
    runs = _student_runs(config, output, cache_path)
    numbers = {id(run): number for number, run in enumerate(runs, start=1)}

    def report(run: _StudentRun, status: str = "") -> None:
        say(
            f"[{numbers[id(run)]}/{len(runs)}] {run.method.title}, seed {run.seed}: {_headline(finished_run(run.folder, run.key))}{status}"
        )

    todo = []
    for run in runs:
        if finished_run(run.folder, run.key) is None:
            todo.append(run)
        else:
            report(run, " (done before)")
    workers = min(config.parallel_runs, len(todo))
    if workers <= 1:
        for run in todo:
            _train_student(config, run)
            report(run)
    else:
        _train_in_parallel(config, todo, workers, report)
    return {(run.method.key, run.seed): run.key for run in runs}


def _train_in_parallel(config: StudyConfig, todo: list[_StudentRun], workers: int, report) -> None:

    threads = max(1, (os.cpu_count() or 1) // workers) if devices.runs_on_cpu(None) else None
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = {pool.submit(_train_student, config, run, True, threads): run for run in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for future in finished:
                run = pending.pop(future)
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise DataError(f"{run.method.title}, seed {run.seed} failed in its worker: {error}") from error
                report(run)


def _public_summary(summary: dict) -> dict:
    """The augmentation summary without local paths (the cache folder by its fingerprint only)."""
    return public_options({k: v for k, v in summary.items() if k != "saved_to"})
