"""Training a text model on a task: a teacher on the original data, or a student with any MMEL mode.

``run_training(TrainConfig(...), MMELTrainingArguments(...))`` is what ``mmel-train`` runs:

1. the task's data through the readers of ``mmel-augment`` (GLUE folders, CSV/TSV/JSON lines,
   ``save_to_disk`` folders, the Hub) or an augmented dataset made by ``mmel-augment``;
2. any ``AutoModelForSequenceClassification`` (a fresh head with the task's labels on an encoder),
   optionally cut to its first ``num_layers`` encoder layers;
3. :class:`~mmel_hf.MMELTrainer` in the chosen mode: ``none`` (Baseline; this is how a teacher is made),
   ``long`` (Baseline(DA+Long)), ``uniform`` (DA+UNI), ``max`` (MaxUp), ``hard`` (MMEL-H), ``soft`` (MMEL-S),
   with the teacher's or the original labels (Table 4);
4. every evaluation split with the task's GLUE metrics; the model, tokenizer, ``metrics.json`` (metrics,
   times, the dev-metric curve, the resolved configuration), ``predictions.json`` (the final evaluation's
   prediction for every example, which the study's confidence intervals resample), ``log.jsonl`` and a model
   card in ``output_dir``; optionally a push to the Hub.
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.utils.data
from datasets import DatasetDict, get_dataset_config_names, load_dataset, load_from_disk
from filelock import FileLock, Timeout
from huggingface_hub import DatasetCard
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PrinterCallback,
    ProgressCallback,
    TrainerCallback,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint

from ..adapters import name_base_in_adapter_config, newly_initialised_modules
from ..augment.augment_config import resolved_cache_dir
from ..augment.card import EVALUATION_CONFIG, PROVENANCE_FIELD
from ..diagnostics import run_weights
from ..embedded import resolve_model_path
from ..errors import DataError
from ..model_card import push_folder, run_card_data
from ..schema import TEACHER_ORIGINAL_COLUMN, augmented_column, label_column_named_label, read_provenance
from ..tasks.metrics import glue_compute_metrics
from ..tasks.registry import TaskSpec, describe_task, metric_task, reconcile_task, recorded_task
from ..tasks.sources import load_task_data
from ..trainer import MMELTrainer
from ..training_args import GROUPED_LOSSES, METHOD_NAMES, method_name  # noqa: F401  (also imported from here)
from ..utils.files import write_json_atomically
from ..utils.hub import check_push_possible
from ..utils.model_limits import check_max_length
from ..utils.privacy import public_options
from .checkpoints import checkpoint_problem
from .train_config import TrainConfig

__all__ = ["TrainingResult", "load_augmented", "load_model", "resolve_resume_checkpoint", "run_training"]

logger = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    """What ``run_training`` produced: final metrics per evaluation split and where things were written."""

    metrics: dict
    output_dir: Path
    train_seconds: float
    curve: list
    weights: dict | None = None  # MMEL runs: how far P* moved from uniform (mmel_hf.diagnostics)


class CurveCallback(TrainerCallback):
    """The dev metric against training time (Figure 2): evaluation time is not counted as training time.

    The curve so far and its training seconds are saved in every checkpoint (``mmel_curve.json``): a run resumed
    from one continues the curve and its clock where the checkpoint left them."""

    SAVED = "mmel_curve.json"

    def __init__(self, resume_from: str | None = None):
        self.points, self._started, self._eval_seconds, self._training = [], None, 0.0, False
        self._resume_from, self._seconds_before = resume_from, 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self._started, self._training = time.perf_counter(), True
        saved = Path(self._resume_from) / self.SAVED if self._resume_from else None
        if saved is not None and saved.is_file():
            record = json.loads(saved.read_text())
            self.points, self._seconds_before = record["points"], record["train_seconds"]

    def _train_seconds(self) -> float:
        return self._seconds_before + time.perf_counter() - (self._started or time.perf_counter()) - self._eval_seconds

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            record = {"points": self.points, "train_seconds": round(self._train_seconds(), 2)}
            (folder / self.SAVED).write_text(json.dumps(record))

    def on_train_end(self, args, state, control, **kwargs):
        self._training = False

    def train_seconds_total(self, runtime: float | None) -> float:
        """The run's training seconds: this call's ``train_runtime`` plus those before a resume."""
        return self._seconds_before + (runtime if runtime is not None else self._train_seconds() - self._seconds_before)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not self._training:
            return
        metrics = metrics or {}
        self._eval_seconds += sum(v for k, v in metrics.items() if k.endswith("_runtime"))
        seconds = self._train_seconds()
        self.points.append(
            {
                "step": state.global_step,
                "epoch": state.epoch,
                "train_seconds": round(seconds, 2),
                **{k: v for k, v in metrics.items() if not k.endswith(("_runtime", "_per_second"))},
            }
        )


class _PredictionKeeper(TrainerCallback):
    """The per-example predictions of each split's latest evaluation, for the study's paired bootstrap
    (:mod:`mmel_hf.workflows.significance`); written to ``predictions.json`` beside ``metrics.json``."""

    def __init__(self, splits, orders: dict | None = None):
        self.splits, self.kept, self._last = list(splits), {}, None
        self.orders = orders or {}  # split -> the dataset row of each evaluated position (length-sorted evaluation)

    def keep(self, predicted, references) -> None:
        self._last = (predicted, references)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self._last is None:
            return
        for split in self.splits:
            if any(k.startswith((f"eval_{split}_", f"{split}_")) for k in metrics or {}):
                predicted, references = self._last
                if split in self.orders:  # back to the split's own row order
                    predicted, references = (
                        _unsorted(predicted, self.orders[split]),
                        _unsorted(references, self.orders[split]),
                    )
                self.kept[split] = {"predictions": predicted.tolist(), "references": references.tolist()}
        self._last = None


def _unsorted(values, order):
    restored = np.empty_like(values)
    restored[order] = values
    return restored


def length_sorted(dataset, tokenizer, text_columns, max_length: int):
    """``(dataset in order of tokenized length, order)``: evaluation batches of similar lengths pad less (on
    rt-polarity's 1,000 validation sentences in batches of 128: 30k tokens instead of 59k). ``order[i]`` is the
    row of ``dataset`` at position ``i``; the sort is stable. Only order-free things (the metrics) see the sorted
    rows; per-example predictions are put back in the split's order (:class:`_PredictionKeeper`)."""
    columns = [c for c in text_columns if c in dataset.column_names]
    if len(dataset) < 2 or not columns:
        return dataset, None
    encoded = tokenizer(*(list(dataset[c]) for c in columns), truncation=True, max_length=max_length)
    order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
    return dataset.select(order), order


def load_augmented(name_or_path: str):
    """An augmented ``DatasetDict`` from a ``save_to_disk`` folder, an ``mmel-augment`` cache folder, a Hub dataset
    pushed by ``mmel-augment --push-to-hub`` or a local clone of one."""

    path = Path(name_or_path)
    cloned_repo = (path / "README.md").is_file() and not (path / "dataset_dict.json").exists()
    if path.exists() and not cloned_repo:
        if (path / "dataset" / "dataset_dict.json").exists():  # a cache folder of mmel-augment
            path = path / "dataset"
        try:
            data = load_from_disk(str(path))
        except FileNotFoundError as err:
            raise DataError(
                f"--augmented {name_or_path}: not a dataset folder written by mmel-augment ({err})"
            ) from None
    else:
        try:
            data = _load_pushed(name_or_path)
        except DataError:
            raise
        except Exception as err:  # offline, unknown id ...
            raise DataError(
                f"--augmented {name_or_path}: no such folder, and the Hub dataset could not be loaded "
                f"({type(err).__name__}). Give the folder that mmel-augment --output-dir wrote."
            ) from err
    if not isinstance(data, DatasetDict) or "train" not in data:
        raise DataError(f"--augmented {name_or_path}: expected a DatasetDict with a 'train' split")
    return data


def _load_pushed(name_or_folder: str):
    """A dataset in the Hub layout ``mmel-augment --push-to-hub`` writes (a repo id, or a clone of the repo): the
    ``default`` configuration holds the augmented ``train`` split, the ``evaluation`` configuration the untouched
    evaluation splits, and the card's YAML what made them (Parquet files cannot carry it)."""

    data = DatasetDict(load_dataset(name_or_folder))
    if EVALUATION_CONFIG in get_dataset_config_names(name_or_folder):
        data.update(load_dataset(name_or_folder, EVALUATION_CONFIG))
    folder = Path(name_or_folder)
    card = DatasetCard.load(folder / "README.md" if folder.is_dir() else name_or_folder, repo_type="dataset")
    recorded = card.data.to_dict().get(PROVENANCE_FIELD)
    if isinstance(recorded, dict) and "mmel_hf_task" in recorded:
        data["train"].info.description = json.dumps(recorded)  # where read_provenance finds it after load_from_disk
    return data


def _check_augmented(data, spec: TaskSpec, where: str) -> None:
    """An augmented dataset must be of ``spec``'s task: same text columns, same labels."""
    train = data["train"]
    made_for = read_provenance(train).get("mmel_hf_task")
    if made_for is not None and made_for != spec.name:
        raise DataError(f"{where}: made for task {made_for!r}, not {spec.name!r}")
    needed = [*spec.text_columns, *(augmented_column(c) for c in spec.text_columns), spec.label_column]
    missing = [c for c in needed if c not in train.column_names]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {missing} for task {spec.name} (columns: {train.column_names}); "
            "an augmented dataset of another task, or name its columns with --text-columns/--label-column"
        )
    if TEACHER_ORIGINAL_COLUMN in train.column_names and len(train):
        width = len(train[0][TEACHER_ORIGINAL_COLUMN])
        if width != spec.num_labels:
            raise DataError(
                f"{where}: the teacher outputs have {width} value(s) per sample but task {spec.name} has "
                f"{spec.num_labels} label(s) (1 = regression); if the data is right, give --num-labels "
                f"{width}"
            )


def load_data(config: TrainConfig):
    """The task and the training and evaluation splits named by ``config``: ``(spec, data)``.

    An augmented dataset records its task, so ``--task`` and the task flags are read from it (flags given again
    must agree). Every split's label column is named ``label`` on the way out, whatever the task calls it.
    """

    if config.augmented is not None:
        data = load_augmented(config.augmented)
        where = f"--augmented {config.augmented}"
        spec = reconcile_task(config, recorded_task(data["train"]), where, config.dataset_name, config.dataset_config)
        _check_augmented(data, spec, where)
    else:
        spec = reconcile_task(config, None, "", config.dataset_name, config.dataset_config)
        data = load_task_data(
            spec,
            data_dir=config.data_dir,
            train_file=config.train_file,
            validation_files={"validation": config.validation_file} if config.validation_file else None,
            dataset_path=config.dataset_path,
            hub_path=config.dataset_name,
            hub_config=config.dataset_config,
            revision=config.dataset_revision,
            cache_dir=str(Path(resolved_cache_dir(config.cache_dir)) / "sources"),
        )
    for split in data:
        limit = config.max_train_samples if split == "train" else config.max_eval_samples
        if limit is not None:
            data[split] = data[split].select(range(min(limit, len(data[split]))))
    for split in data:  # the trainer reads labels from `label`, whatever the task calls its column
        data[split] = label_column_named_label(data[split], spec.label_column)
    return spec, data


def _config_overrides(config: TrainConfig, spec: TaskSpec, model_config) -> dict:
    """What the run changes in the model's config: the task's labels (a fresh head names its classes as GLUE
    does), the first ``--num-layers`` layers, the attention implementation; a classifier of another label count
    is refused."""
    is_classifier = any(a.endswith("ForSequenceClassification") for a in (model_config.architectures or []))
    if is_classifier and model_config.num_labels != spec.num_labels:
        raise DataError(
            f"the model {config.model!r} is a classifier with {model_config.num_labels} label(s) but task "
            f"{spec.name} has {spec.num_labels} (1 = regression)"
        )
    overrides = {
        "num_labels": spec.num_labels,
        "problem_type": "regression" if spec.is_regression else "single_label_classification",
    }
    names = spec.label_names
    if names and not is_classifier:
        overrides.update(id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    if config.num_layers is not None:
        available = getattr(model_config, "num_hidden_layers", None)
        if available is None:
            raise DataError(f"--num-layers: the model {config.model!r} does not say how many layers it has")
        if config.num_layers > available:
            raise DataError(f"--num-layers {config.num_layers}: the model {config.model!r} has only {available}")
        overrides["num_hidden_layers"] = config.num_layers
    if config.attn_implementation is not None:
        overrides["attn_implementation"] = config.attn_implementation
    return overrides


def load_model(config: TrainConfig, spec: TaskSpec, max_length: int | None = None):
    """The model (task's labels; first ``num_layers`` layers) and its tokenizer, with clear errors."""

    name = resolve_model_path(config.model)
    common = dict(revision=config.model_revision, trust_remote_code=config.trust_remote_code)
    try:
        model_config = AutoConfig.from_pretrained(name, **common)
        tokenizer = AutoTokenizer.from_pretrained(name, **common)
    except OSError as err:
        raise DataError(
            f"could not load the model {config.model!r} ({str(err).splitlines()[0]}). Without Hub access, "
            "give a local model folder or --model embedded."
        ) from err
    if max_length is not None:
        check_max_length(model_config, max_length, "--max-length", config.model)
    overrides = _config_overrides(config, spec, model_config)
    if config.use_peft:
        _check_lora_modules(config, model_config, overrides)  # before any weights load, in mmel_hf's words
    # One line instead of transformers' load report (a table of every weight, 25 lines for a cut encoder): a
    # fresh head and the weights of dropped layers are what a student is expected to have.
    source = logging.getLogger("transformers.modeling_utils")
    source.addFilter(_drop_load_report)
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            name, **common, **overrides, dtype=torch.float32, output_loading_info=True
        )
    finally:
        source.removeFilter(_drop_load_report)
    missing, unused = sorted(info.get("missing_keys") or []), info.get("unexpected_keys") or []
    logger.info(
        "loaded %s: %d weight(s) newly initialised (%s), %d checkpoint weight(s) unused%s",
        config.model,
        len(missing),
        ", ".join(sorted(missing)[:4]) + (" ..." if len(missing) > 4 else "") or "none",
        len(unused),
        " (layers dropped by --num-layers, or the checkpoint's own head)" if unused else "",
    )
    base = BaseSource(
        name=name,
        options={**common, **overrides},
        new_modules=newly_initialised_modules(missing),
        # What PEFT's loader cannot rebuild from a Hub id: a local folder, fewer layers, another label count.
        kept_with_adapters=Path(name).is_dir()
        or config.num_layers is not None
        or model_config.num_labels != spec.num_labels,
    )
    return model, tokenizer, base


def _check_lora_modules(config: TrainConfig, model_config, overrides: dict) -> None:
    """--lora-target-modules and --lora-modules-to-save must name modules of the model (PEFT matches a name or the
    end of a dotted path): checked on the model's skeleton (no weights), so a typo is one line before any work
    instead of PEFT's error after the weights load, or a silently unmatched name among matched ones."""

    skeleton_config = copy.deepcopy(model_config)
    for key, value in overrides.items():
        if key != "attn_implementation":
            setattr(skeleton_config, key, value)
    with torch.device("meta"):
        skeleton = AutoModelForSequenceClassification.from_config(
            skeleton_config, trust_remote_code=config.trust_remote_code
        )
    names = [name for name, _ in skeleton.named_modules() if name]
    linear = sorted({n.rsplit(".", 1)[-1] for n, m in skeleton.named_modules() if isinstance(m, torch.nn.Linear)})
    for flag, wanted in (
        ("--lora-target-modules", config.lora_target_modules),
        ("--lora-modules-to-save", config.lora_modules_to_save),
    ):
        for target in wanted or []:
            if not any(name == target or name.endswith("." + target) for name in names):
                raise DataError(
                    f"{flag} {target}: the model {config.model!r} has no module of that name (its linear layers: "
                    f"{', '.join(linear)})"
                )


@dataclass(frozen=True)
class BaseSource:
    """Where a run's model came from, as ``from_pretrained(name, **options)`` rebuilds it (before training).

    ``new_modules``: backbone modules the checkpoint lacked (see :func:`~mmel_hf.adapters.newly_initialised_modules`);
    ``kept_with_adapters``: a ``--use-peft`` folder must hold this base itself to load back exactly."""

    name: str
    options: dict
    new_modules: list[str]
    kept_with_adapters: bool


def keep_base_with_adapters(output: Path, base: BaseSource) -> None:
    """Make a ``--use-peft`` folder load back, with ``AutoPeftModelForSequenceClassification.from_pretrained(output)``,
    into the model that was trained: where the base cannot be rebuilt from a Hub id, the folder holds it (its
    ``config.json`` and weights, as the adapters were trained on them: the labels, the layers kept) and the adapter
    config names the folder (``--push-to-hub`` names the repo instead)."""

    if not base.kept_with_adapters:
        return
    frozen = AutoModelForSequenceClassification.from_pretrained(base.name, **{**base.options, "dtype": torch.float32})
    frozen.save_pretrained(str(output))  # its head and new modules are replaced by the adapters' trained copies
    name_base_in_adapter_config(output, str(output.resolve()))


RESUME_LATEST = ("true", "latest", "last")  # --resume-from-checkpoint without a path (run_glue.py's meaning)


def resolve_resume_checkpoint(value, output_dir: str) -> str | None:
    """The checkpoint folder ``--resume-from-checkpoint`` names, checked before any work.

    ``None``/``False``: no resume. ``True``, ``"true"``, ``"latest"`` (or the bare flag): the latest
    ``checkpoint-*`` in ``output_dir``. Anything else: that folder, which must hold a Trainer checkpoint.
    """

    if value is None or value is False or (isinstance(value, str) and value.lower() in ("", "false", "none")):
        return None
    if value is True or (isinstance(value, str) and value.lower() in RESUME_LATEST and not Path(value).exists()):
        latest = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
        if latest is None:
            raise DataError(
                f"--resume-from-checkpoint: no checkpoint-* folder in --output-dir {output_dir} to resume "
                "from (checkpoints are written with --save-strategy steps/epoch)"
            )
        problem = checkpoint_problem(Path(latest))
        if problem is not None:  # refused, not silently replaced by an older one: the user chooses
            whole = _latest_whole_checkpoint(output_dir)
            raise DataError(
                f"--resume-from-checkpoint: the latest checkpoint {latest} is half-written ({problem}); "
                + (
                    f"resume from the latest whole one with --resume-from-checkpoint {whole}"
                    if whole
                    else "no whole checkpoint is left: start again without --resume-from-checkpoint"
                )
            )
        return latest
    folder = Path(value)
    if not folder.is_dir():
        raise DataError(f"--resume-from-checkpoint {value}: no such checkpoint folder")
    if not (folder / "trainer_state.json").is_file():
        raise DataError(
            f"--resume-from-checkpoint {value}: not a Trainer checkpoint (no trainer_state.json); give a "
            "checkpoint-* folder written during training"
        )
    problem = checkpoint_problem(folder)
    if problem is not None:
        raise DataError(
            f"--resume-from-checkpoint {value}: the checkpoint is half-written ({problem}); give an "
            "earlier checkpoint-* folder"
        )
    return str(folder)


def _latest_whole_checkpoint(output_dir: str) -> str | None:
    """The newest ``checkpoint-<step>`` in ``output_dir`` that :func:`checkpoint_problem` finds whole."""
    numbered = [
        (int(p.name.split("-")[1]), p)
        for p in Path(output_dir).glob("checkpoint-*")
        if p.is_dir() and p.name.split("-")[1].isdigit()
    ]
    return next((str(p) for _, p in sorted(numbered, reverse=True) if checkpoint_problem(p) is None), None)


def _drop_load_report(record: logging.LogRecord) -> bool:
    """Drops transformers' weight-by-weight load report (the keys are summarised in one line instead)."""
    message = record.getMessage()
    return not ("MISSING" in message or "UNEXPECTED" in message or "MISMATCH" in message)


def run_training(config: TrainConfig, args, quiet: bool = False) -> TrainingResult:
    """Train, evaluate every evaluation split, save and (with ``args.push_to_hub``) push; see the module doc.

    ``quiet`` drops the trainer's console printing (logs still go to ``log.jsonl``), for callers that print a
    line per run themselves.
    """
    started = time.perf_counter()
    if args.push_to_hub:
        check_push_possible()
    output = Path(args.output_dir)
    resume = resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir)
    try:
        with training_output(output, overwrite=config.overwrite_output_dir, resuming=resume is not None):
            return _train(config, args, quiet, started, output, resume)
    except BaseException as err:
        reason = _write_failure(err)
        if reason is not None:
            raise DataError(
                f"could not write into {output} ({reason}); the run counts as unfinished (metrics.json is written last)"
            ) from None
        raise


def check_training_output_dir(output: Path, overwrite: bool = False, resuming: bool = False) -> None:
    """Refuse, before any work, an --output-dir whose files a run would replace or delete (``README.md``,
    ``config.json``, ``metrics.json``, old ``checkpoint-*`` under ``--save-total-limit``), unless
    ``--overwrite-output-dir`` (Trainer's meaning) or ``--resume-from-checkpoint`` (the folder's own run)."""
    where = f"--output-dir {output}"
    for parent in [output, *output.parents]:
        if parent.exists() and not parent.is_dir():
            raise DataError(f"{where}: {'is' if parent == output else 'lies under'} a file ({parent})")
        if parent.exists():
            break
    if not output.is_dir() or overwrite or resuming:
        return
    held = _held_files(output)
    if held:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        resumable = any(output.glob("checkpoint-*"))
        raise DataError(
            f"{where}: holds files ({shown}) that training would replace or delete; choose an empty or "
            "new folder"
            + (
                ", pass --overwrite-output-dir to replace them, or --resume-from-checkpoint to continue the run saved there"
                if resumable
                else " or pass --overwrite-output-dir to replace them"
            )
        )


OUTPUT_LOCK = ".mmel-train.lock"


@contextmanager
def training_output(output: Path, overwrite: bool = False, resuming: bool = False):
    """The guard every training command (mmel-train, mmel-train-vision) runs in, around its whole run:

    - an --output-dir whose files the run would replace is refused before any work
      (:func:`check_training_output_dir`: unless --overwrite-output-dir or a resume);
    - one run at a time writes into it (a hidden lock held by the main process);
    - a run that fails before its first checkpoint in a new or empty folder leaves nothing there (and no folder
      of its own), so the same command runs again."""
    check_training_output_dir(output, overwrite=overwrite, resuming=resuming)
    existed = output.exists()
    was_empty = not existed or not _held_files(output)
    try:
        with _output_held(output):
            try:
                check_training_output_dir(output, overwrite=overwrite, resuming=resuming)  # as it is now we hold it
                yield
            except BaseException:
                if was_empty and _is_main_rank():
                    _clear_unfinished(output)
                raise
    except BaseException:
        if not existed and _is_main_rank() and output.is_dir() and _held_files(output) == []:
            (output / OUTPUT_LOCK).unlink(missing_ok=True)
            output.rmdir()
        raise


def _clear_unfinished(output: Path) -> None:
    """What a run that failed before its first checkpoint wrote into a folder that was new or empty: removed, so
    that the same command runs again (a half-written config.json would make it refuse the folder, with no
    checkpoint to resume from). A folder with a checkpoint is kept for --resume-from-checkpoint."""
    if not output.is_dir() or any(output.glob("checkpoint-*")):
        return
    for entry in output.iterdir():
        if entry.name == OUTPUT_LOCK:
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _held_files(output: Path) -> list[str]:
    """What a folder holds, but the lock of the run writing into it."""
    return sorted(entry.name for entry in output.iterdir() if entry.name != OUTPUT_LOCK)


def _is_main_rank() -> bool:

    return os.environ.get("RANK", "0") == "0"


@contextmanager
def _output_held(output: Path):
    """One mmel-train at a time per --output-dir: the main process of a run holds a lock in it (a hidden file, never
    pushed), so a second run into the same folder stops in one line instead of both writing it."""

    if not _is_main_rank():  # the ranks of one run share the main process's hold
        yield
        return
    output.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(output / OUTPUT_LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise DataError(
            f"--output-dir {output}: another mmel-train is writing into this folder (it holds {lock.lock_file}); "
            "wait for it to finish, or give another --output-dir"
        ) from None
    try:
        yield
    finally:
        lock.release()  # the file stays (removing it would race with a run taking it): hidden, never pushed


def _write_failure(err: BaseException) -> str | None:
    """Why a write failed (a full disk, a read-only folder ...), for errors that are writes; None otherwise.

    torch, safetensors and tokenizers report a failed write in their own words ("[enforce fail at
    inline_container.cc] unexpected pos", ``SafetensorError``, a bare ``Exception``)."""
    if isinstance(err, DataError):
        return None
    if isinstance(err, OSError):  # only the errors of a write; a missing input keeps its own message
        writes = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG, errno.EIO, errno.EPERM)
        return (err.strerror or str(err)) if err.errno in writes else None
    text = str(err)
    if type(err).__name__ == "SafetensorError" or "inline_container" in text or "No space left" in text:
        first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        return "No space left on device" if "No space" in text or "unexpected pos" in text else first
    return None


class RunTrainer(MMELTrainer):
    """The trainer of a ``mmel-train`` run: its evaluation splits are already in length order (:func:`length_sorted`)
    and their predictions are put back in row order by position, so evaluation stays sequential when training
    batches are length-grouped (Trainer's length-grouped evaluation sampler would shuffle the rows)."""

    def _get_eval_sampler(self, eval_dataset):
        if self.args.train_sampling_strategy in self._LENGTH_SAMPLERS and eval_dataset is not None:
            return torch.utils.data.SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None
        return super()._get_eval_sampler(eval_dataset)


def _train(config: TrainConfig, args, quiet: bool, started: float, output: Path, resume: str | None) -> TrainingResult:
    """One run: the data, the run's arguments, the model, training, the final metrics; the files on the main rank."""
    spec, data = load_data(config)  # data first: a bad file is reported before any model download
    grouped = all(augmented_column(c) in data["train"].column_names for c in spec.text_columns)
    if args.mmel_loss in GROUPED_LOSSES and not grouped:
        raise DataError(
            f"--mmel-loss {args.mmel_loss} trains on groups of augmented samples, but the training data "
            "has none: make them with mmel-augment and pass --augmented DIR (or use --mmel-loss none)"
        )
    push = args.push_to_hub
    args = _run_arguments(args, spec, data)
    set_seed(args.seed)  # the fresh head is initialised under the run's seed
    model, tokenizer, base = load_model(config, spec, args.max_length)
    args.mmel_text_columns = args.mmel_text_columns or list(spec.text_columns)
    sorted_splits = {
        split: length_sorted(data[split], tokenizer, args.mmel_text_columns, args.max_length)
        for split in spec.eval_splits
        if split in data
    }
    eval_splits = {split: dataset for split, (dataset, _) in sorted_splits.items()}
    orders = {split: order for split, (_, order) in sorted_splits.items() if order is not None}
    curve, kept = CurveCallback(resume), _PredictionKeeper(eval_splits, orders)
    trainer = RunTrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=eval_splits or None,
        peft_config=config.peft_config(base.new_modules),
        processing_class=tokenizer,
        compute_metrics=glue_compute_metrics(metric_task(spec), keep=kept.keep),
        callbacks=[curve, kept],
    )
    if quiet:
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
    train_output = trainer.train(resume_from_checkpoint=resume)
    train_seconds = curve.train_seconds_total(train_output.metrics.get("train_runtime"))
    metrics = {split: _final_metrics(trainer, curve.points, split, dataset) for split, dataset in eval_splits.items()}
    weights = run_weights(trainer)  # how far P* moved from uniform; a warning if it stayed there
    result = TrainingResult(metrics, output, train_seconds, curve.points, weights)
    _save_run(trainer, config, spec, data, base, result, kept.kept, started, push)
    return result


def _run_arguments(args, spec: TaskSpec, data):
    """A copy of the user's arguments (their object stays as given) as this run needs them: no push by Trainer (the
    run pushes itself, with its own card), no pinned memory without an accelerator (torch warns at every run), no
    evaluation without an evaluation split."""
    args = copy.copy(args)
    args.push_to_hub = False
    if args.dataloader_pin_memory and not torch.cuda.is_available():
        args.dataloader_pin_memory = False
    if not any(split in data for split in spec.eval_splits):
        logger.warning("no evaluation split (%s) in the data: nothing will be evaluated", ", ".join(spec.eval_splits))
        args.eval_strategy = "no"
    return args


def _save_run(trainer, config: TrainConfig, spec, data, base, result: TrainingResult, predictions, started, push):
    """The run's folder: the model (a collective under FSDP/ZeRO-3, so on every rank), then on the main rank the
    tokenizer, the card, ``metrics.json`` and its companions, and the push."""
    output, args = result.output_dir, trainer.args
    if trainer.is_world_process_zero():
        output.mkdir(parents=True, exist_ok=True)
        (output / "metrics.json").unlink(missing_ok=True)  # an old run's: until the new one is written, unfinished
        (output / "predictions.json").unlink(missing_ok=True)
    if config.save_model:
        # On every rank: under FSDP (full state dict) and ZeRO-3 the save is a collective; Trainer writes the
        # files from the main process only (args.should_save).
        trainer.save_model(str(output))
    if not trainer.is_world_process_zero():
        return
    if config.save_model:
        trainer.processing_class.save_pretrained(str(output))
        if config.use_peft:
            keep_base_with_adapters(output, base)
    summary = {
        "task": spec.name,
        "task_spec": describe_task(spec),
        "method": method_name(args.mmel_loss, args.mmel_label_source),
        "mmel_loss": args.mmel_loss,
        "metrics": result.metrics,
        "train_seconds": round(result.train_seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
        "train_examples": len(data["train"]),
        "processes": args.world_size,
        "curve": result.curve,
        "augmented_dataset": read_provenance(data["train"]) or None,
        "mmel_weights": result.weights,
        # Local paths by their last component only: this file is uploaded with --push-to-hub.
        "config": {"data": public_options(asdict(config)), "training": public_options(args.to_dict())},
    }
    trainer.model_card_data = run_card_data(summary, spec, config)  # the one card path: the trainer's
    trainer.create_model_card()
    # the final evaluation's per-example predictions (what the study's intervals resample)
    write_run_files(output, trainer, summary, predictions=predictions or None)
    if push:
        push_folder(output, args.hub_model_id or output.name, private=args.hub_private_repo, token=args.hub_token)


def write_run_files(output: Path, trainer, summary: dict, predictions: dict | None = None) -> None:
    """What every training command leaves beside the model: ``log.jsonl`` (Trainer's log history),
    ``predictions.json`` (when given) and ``metrics.json``, written last and in one step: its presence means the
    run finished."""
    with open(output / "log.jsonl", "w") as handle:
        for entry in trainer.state.log_history:
            handle.write(json.dumps(entry) + "\n")
    if predictions:
        write_json_atomically(output / "predictions.json", predictions)
    write_json_atomically(output / "metrics.json", summary)


def _final_metrics(trainer, points: list, split: str, dataset) -> dict:
    """The split's metrics after training: from the evaluation at the last step when there was one."""
    prefix = f"eval_{split}_"
    for point in reversed(points):
        if point["step"] == trainer.state.global_step and any(k.startswith(prefix) for k in point):
            return {f"{split}_{k[len(prefix) :]}": v for k, v in point.items() if k.startswith(prefix)}
    metrics = trainer.evaluate(dataset, metric_key_prefix=split)  # also has "epoch": not a metric of the split
    return {
        k: v for k, v in metrics.items() if k.startswith(f"{split}_") and not k.endswith(("_runtime", "_per_second"))
    }
