"""The augmentation job: load the task, run Algorithm 2 and the teacher, cache the result.

``run_augmentation(AugmentConfig(task="rte", teacher=...))`` returns a ``DatasetDict`` whose ``train``
split follows :mod:`mmel_hf.schema` (what :class:`mmel_hf.MMELTrainer` reads) and whose evaluation splits
are untouched.

Caching: the result lives in ``<cache>/<task>/<fingerprint>/``. The fingerprint hashes the source data's
fingerprint, the identity of both models (Hub commit, or a hash of local weight files), the device type and
every option that changes the numbers, the batching included (see :mod:`.shards`: rows are batched within
fixed blocks, so the shard size, the number of processes and the claim order change nothing). Blocks are
written to a temporary folder, synced and renamed into place under a file lock with a manifest (row count,
sha256 of each file, the machine that computed them), so a killed run resumes at the missing blocks and
produces the same dataset, the ranks of ``accelerate launch``/``torchrun`` share the work, and concurrent
identical jobs share it too. One process assembles the blocks under a lock; ``COMPLETE`` is written last,
with the final dataset's row counts and file hashes, and only a folder whose ``COMPLETE`` and files agree is
ever read as finished: a damaged artefact is discarded and recomputed, with a one-line warning.

A job that finds blocks made on another machine (another CPU kind, GPU model, torch or thread count)
recomputes one of them first: if it matches (text identical, teacher outputs within
:meth:`AugmentConfig.tolerance`) it completes that cache, otherwise it starts its own beside it
(``<fingerprint>-<machine>``); it says which. ``--verify N`` recomputes N random blocks of a finished cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from accelerate.logging import get_logger

from ..files import content_digests, damaged, file_digest, seal, sync_path, sync_tree, unseal, write_text_atomically
from ..privacy import public_options
from ..schema import TEACHER_AUGMENTED_COLUMN, TEACHER_ORIGINAL_COLUMN, augmented_column
from ..tasks.registry import TaskSpec, describe_task, get_task, is_registered, reconcile_task
from ..tasks.sources import DataError, load_task_data
from .augment_config import AugmentConfig
from .fill_mask import FillMaskAugmenter
from .numerics import compare_blocks, describe_numerics, numerics_key, short_description
from .shards import MANIFEST, BlockPlan, run_blocks
from .teacher import TeacherLabeler

__all__ = [
    "AugmentationResult",
    "augment_split",
    "display_name",
    "fingerprint_job",
    "model_identity",
    "provenance",
    "read_provenance",
    "run_augmentation",
]

# accelerate's adapter: what every rank finds alike (a damaged or changed cache, the result) is said once, by the
# main process; a rank's own line passes main_process_only=False. Every call comes after run_augmentation has set
# up the accelerate state, which the adapter needs.
logger = get_logger(__name__)
# 2: provenance in info.description; 3: exact ties in k; 4: samples rendered from the original's characters;
# 5: rows batched within fixed blocks. Bump when a change alters the output for the same options.
ALGORITHM_VERSION = "5"
COMPLETE = "COMPLETE"


@dataclass
class AugmentationResult:
    """What the job produced and a summary of it."""

    dataset: object  # datasets.DatasetDict
    cache_path: Path
    cache_hit: bool
    summary: dict = field(default_factory=dict)


def _resolve_task(
    config: AugmentConfig, teacher_labels: int | None = None, teacher_task: dict | None = None
) -> TaskSpec:
    """The job's task: the flags' (a custom task without a label count takes the teacher's), or the one a teacher
    made by ``mmel-train`` records for this task name (then no task flag needs repeating; given ones must agree)."""
    where = f"--teacher {display_name(config.teacher or '')}"
    return reconcile_task(
        config, teacher_task, where, config.dataset_name, config.dataset_config, num_labels_fallback=teacher_labels
    )


def _teacher_task(teacher_name: str | None, task: str) -> dict | None:
    """The task description that ``mmel-train`` wrote beside a local teacher, if it is of the task ``task``."""
    if teacher_name is None or not Path(teacher_name).is_dir():
        return None
    try:
        recorded = json.loads((Path(teacher_name) / "metrics.json").read_text()).get("task_spec")
    except (OSError, ValueError, AttributeError):
        return None  # a teacher made elsewhere: the flags describe the task
    if not isinstance(recorded, dict) or str(recorded.get("name", "")).lower() != task.lower():
        return None
    return recorded


def model_identity(name_or_path: str, model=None, revision: str | None = None) -> str:
    """A string that changes whenever the weights change: a hash of local files, or the Hub commit."""
    path = Path(name_or_path)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(path.iterdir()):
            if file.suffix in (".safetensors", ".bin", ".json", ".txt", ".model") and file.is_file():
                digest.update(file.name.encode())
                digest.update(file_digest(file).encode())
        return f"local:{digest.hexdigest()[:32]}"
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return f"hub:{name_or_path}@{commit or revision or 'main'}"


def fingerprint_job(
    config: AugmentConfig, data, mlm_identity: str, teacher_identity: str | None, device_type: str = "cpu"
) -> str:
    """The cache key: options, both models, the source data, the algorithm's version and the device type (a CPU
    and a GPU never share blocks; machines of one device type compare before sharing, see the module doc)."""
    from datasets.fingerprint import Hasher

    options = config.result_options()
    options.update(
        mlm_model=mlm_identity,
        teacher=teacher_identity,
        version=ALGORITHM_VERSION,
        device_type=device_type,
        sources={split: ds._fingerprint for split, ds in data.items()},
    )
    return Hasher.hash(options)


def _atomic_save(dataset, target: Path, manifest: dict | None = None) -> None:
    """Write to a temporary sibling, sync it to disk, then rename over ``target``; a failure (a full disk ...)
    leaves nothing.

    ``manifest``: written into the folder before the rename as :data:`~.shards.MANIFEST`, with the row count and
    the sha256 of every file saved added, and sealed (:func:`~mmel_hf.files.seal`), so an edit is seen too."""
    temporary = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        dataset.save_to_disk(str(temporary))
        if manifest is not None:
            record = seal({**manifest, "num_rows": len(dataset), "files": content_digests(temporary)})
            (temporary / MANIFEST).write_text(json.dumps(record))
        sync_tree(temporary)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(temporary, target)
        sync_path(target.parent)  # the rename itself
    except BaseException as err:  # a full disk, Ctrl-C ...: no half-written copy is left behind
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(err, OSError):
            raise DataError(f"could not write {target} ({err.strerror or err}); nothing was left behind") from None
        raise


# What DatasetDict.save_to_disk writes: a folder holding only these is a dataset we may replace.
_SAVED_FILES = ("dataset_dict.json",)
_SPLIT_FILES = ("dataset_info.json", "state.json")


def _is_replaceable_dataset(folder: Path) -> str | None:
    """None if ``folder`` holds only a saved DatasetDict; else the first entry that is not part of one."""
    for entry in sorted(folder.iterdir()):
        if entry.name in _SAVED_FILES:
            continue
        if not entry.is_dir() or entry.is_symlink():
            return entry.name
        for inner in entry.iterdir():
            if not (inner.name in _SPLIT_FILES or (inner.name.startswith("data-") and inner.suffix == ".arrow")):
                return f"{entry.name}/{inner.name}"
    return None


def check_output_dir(output_dir: str, dataset_path: str | None = None) -> None:
    """Refuse, before any work, an --output-dir that cannot be written or whose replacement would lose data."""
    output = Path(output_dir)
    where = f"--output-dir {output_dir}"
    if output.is_symlink():
        raise DataError(f"{where}: is a symbolic link; give the real folder")
    for parent in [output, *output.parents]:
        if parent.exists() and not parent.is_dir():
            raise DataError(f"{where}: {'is' if parent == output else 'lies under'} a file ({parent})")
        if parent.exists():
            if not os.access(parent, os.W_OK):
                raise DataError(f"{where}: {parent} is not writable")
            break
    if dataset_path is not None:
        source, target = Path(dataset_path).resolve(), output.resolve()
        if source == target or source in target.parents or target in source.parents:
            raise DataError(f"{where}: overlaps --dataset-path {dataset_path}, the input; write the result elsewhere")
    if output.is_dir() and any(output.iterdir()):
        if not (output / "dataset_dict.json").exists():
            raise DataError(f"{where}: exists and is not a saved dataset; choose an empty or new folder")
        foreign = _is_replaceable_dataset(output)
        if foreign is not None:
            raise DataError(
                f"{where}: holds '{foreign}', which is not part of a saved dataset; it would be deleted "
                "when the result replaces the folder. Choose an empty or new folder"
            )


def augment_split(
    train,
    spec: TaskSpec,
    augmenter: FillMaskAugmenter,
    teacher: TeacherLabeler | None,
    separate: bool = True,
    start: int = 0,
):
    """Augment and label ``train`` (rows ``start``.. of the full split): the new columns as a Dataset."""
    from datasets import Dataset

    texts = [list(train[column]) for column in spec.text_columns]
    ids = range(start, start + len(train))
    samples = augmenter.augment(texts[0], ids, texts[1] if spec.is_pair else None, separate=separate)
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


def resolve_models(config: AugmentConfig) -> tuple[str, str | None]:
    """The fill-mask model and teacher to use: the user's, else the task's defaults ("embedded" = shipped)."""
    from ..embedded import embedded_mlm_path, embedded_teacher_path

    spec = get_task(config.task) if is_registered(config.task) else None
    mlm = config.mlm_model or (spec.default_mlm if spec else "bert-base-uncased")
    teacher = config.teacher or (spec.default_teacher if spec else None)
    if config.label_source == "original":
        teacher = None
    elif teacher is None:
        raise ValueError(
            f"--label-source teacher needs a teacher: task {config.task} has no default one. Give --teacher "
            "PATH_OR_ID (a classifier fine-tuned on the task) or use --label-source original"
        )
    mlm = embedded_mlm_path() if mlm == "embedded" else mlm
    teacher = embedded_teacher_path() if teacher == "embedded" else teacher
    return mlm, teacher


def _model_error(kind: str, name: str, err: Exception) -> DataError:
    return DataError(
        f"could not load the {kind} {display_name(name)!r} ({str(err).splitlines()[0]}). Without Hub access, give a "
        f"local model folder (--{'mlm-model' if kind == 'fill-mask model' else 'teacher'} /path/to/model), or run "
        "the embedded task with its shipped models: --task rt-polarity."
    )


def _teacher_num_labels(config: AugmentConfig, teacher_name: str | None) -> int | None:
    from transformers import AutoConfig

    if teacher_name is None:
        return None
    try:
        return AutoConfig.from_pretrained(
            teacher_name, revision=config.teacher_revision, trust_remote_code=config.trust_remote_code
        ).num_labels
    except (OSError, ValueError) as err:
        raise _model_error("teacher", teacher_name, err) from err


def _check_model_lengths(config: AugmentConfig, mlm_name: str, teacher_name: str | None) -> None:
    """--max-length must fit both models' positions: checked from their config files, before any weights load."""
    from transformers import AutoConfig

    from ..model_limits import check_max_length

    for kind, name, revision in (
        ("fill-mask model", mlm_name, config.mlm_revision),
        ("teacher", teacher_name, config.teacher_revision),
    ):
        if name is None:
            continue
        try:
            model_config = AutoConfig.from_pretrained(
                name, revision=revision, trust_remote_code=config.trust_remote_code
            )
        except (OSError, ValueError) as err:
            raise _model_error(kind, name, err) from err
        check_max_length(model_config, config.max_length, "--max-length", display_name(name))


def _load_models(config: AugmentConfig, device, mlm_name: str, teacher_name: str | None):
    import torch
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

    def load(kind, cls, name, revision):
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                name, revision=revision, trust_remote_code=config.trust_remote_code
            )
            model = cls.from_pretrained(
                name, revision=revision, trust_remote_code=config.trust_remote_code, dtype=torch.float32
            )  # weights may be stored in half precision
        except OSError as err:
            raise _model_error(kind, name, err) from err
        return tokenizer, model.to(device)

    mlm = load("fill-mask model", AutoModelForMaskedLM, mlm_name, config.mlm_revision)
    teacher = None
    if teacher_name is not None:
        teacher = load("teacher", AutoModelForSequenceClassification, teacher_name, config.teacher_revision)
    return mlm, teacher


def _shard_counts(part, new_columns, spec: TaskSpec, normalise) -> dict:
    """Of one shard: examples, augmented samples, samples distinct from their original and their siblings,
    and samples that reproduce their original. Originals are compared as the fill-mask tokenizer writes
    them back (``normalise``: lower case, spacing ...), as the samples are, so like is compared with like.
    ``new_columns``: the shard's new columns (a Dataset or a dict); only the ``augmented_*`` ones are read."""
    originals = list(zip(*(normalise(list(part[c])) for c in spec.text_columns)))
    groups = zip(*(list(new_columns[augmented_column(c)]) for c in spec.text_columns))
    total = distinct = duplicates = 0
    for original, per_column in zip(originals, groups):
        group = list(zip(*per_column))
        total += len(group)
        distinct += len(set(group) - {original})
        duplicates += sum(sample == original for sample in group)
    return {
        "examples": len(originals),
        "augmented_samples": total,
        "distinct_samples": distinct,
        "original_duplicates": duplicates,
    }


def _job_counts(shard_counts: list[dict], dataset) -> dict:
    """The job's counts from its shards' (summed), with the share of distinct samples and the split sizes."""
    keys = ("examples", "augmented_samples", "distinct_samples", "original_duplicates")
    sums = {key: sum(counts[key] for counts in shard_counts) for key in keys}
    total = sums["augmented_samples"]
    return {
        "examples": sums["examples"],
        "augmented_samples": total,
        "distinct_ratio": sums.pop("distinct_samples") / total if total else 0.0,
        "original_duplicates": sums["original_duplicates"],
        "splits": {s: len(d) for s, d in dataset.items()},
    }


def provenance(spec: TaskSpec, config: AugmentConfig, mlm_name: str, teacher_name: str | None) -> dict:
    """What made an augmented dataset; stored in its ``info.description`` and read back by ``mmel-train``."""
    return {
        "mmel_hf_task": spec.name,
        "task": describe_task(spec),
        "num_labels": spec.num_labels,
        "mlm_model": display_name(mlm_name),
        "teacher": display_name(teacher_name) if teacher_name else None,
        "label_source": config.label_source,
        "group_size": config.group_size,
        "ratio": config.ratio,
        "search": config.search,
    }


def read_provenance(dataset) -> dict:
    """The :func:`provenance` of an augmented split, or ``{}`` for data made elsewhere."""
    try:
        found = json.loads(dataset.info.description or "")
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) and "mmel_hf_task" in found else {}


def display_name(name: str) -> str:
    """Model names for cards and summaries: Hub ids as they are, the embedded models by name, no local paths
    (a folder, even one gone from this machine, is ``local:<last component>``).

    >>> display_name("google-bert/bert-base-uncased"), display_name("/home/me/runs/teacher")
    ('google-bert/bert-base-uncased', 'local:teacher')
    """
    from ..embedded import EMBEDDED_DIR

    path = Path(name)
    if path.is_dir():
        return f"mmel_hf embedded {path.name}" if path.resolve().parent == EMBEDDED_DIR else f"local:{path.name}"
    looks_like_a_path = path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name
    return f"local:{path.name}" if looks_like_a_path else name


def run_augmentation(config: AugmentConfig) -> AugmentationResult:
    """The whole job of ``mmel-augment``: load, augment, label, cache, save and push.

    Under ``accelerate launch``/``torchrun`` every rank runs this function: the ranks share the shards out
    (each on its own device), one assembles the result, and the main process alone saves and pushes it.
    Six steps, each a function below: the process, the task and its data, the models, the cache's identity,
    the result (reused or computed), and its delivery (saved, summarised, pushed).
    """
    started = time.perf_counter()
    state, device = _set_up_process(config)
    spec, data, mlm_name, teacher_name = _load_task_and_data(config, state)
    (mlm_tokenizer, mlm), teacher_pair = _load_models(config, device, mlm_name, teacher_name)  # data is good: load
    cache_root, fingerprint = _identify_cache(
        config, state, spec, data, mlm_name, mlm, teacher_name, teacher_pair, device
    )
    inner_bars = config.progress and state.num_processes == 1  # a bar per batch, within the block being done
    builder = BlockBuilder(config, spec, data["train"], mlm, mlm_tokenizer, teacher_pair, inner_bars)
    numerics = describe_numerics(device)
    if config.verify is not None:
        if state.num_processes > 1:
            raise DataError("--verify runs in one process: start it without accelerate launch/torchrun")
        return _verified(
            config, cache_root / fingerprint, builder, data, spec, numerics, started, mlm_name, teacher_name
        )
    result, plan, notes = _reuse_or_compute(
        config, state, spec, data, cache_root, fingerprint, builder, numerics, mlm_name, teacher_name
    )
    return _deliver(result, config, state, spec, plan, notes, started, mlm_name, teacher_name)


def _set_up_process(config: AugmentConfig):
    """Step 1: this rank (under accelerate launch/torchrun) and its device; an --output-dir refused before any work."""
    import torch
    from accelerate import PartialState

    # PartialState is shared by the whole process (a Trainer built later reuses it), so it is pinned to the CPU
    # only where several CPU processes need gloo to be set up.
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    state = PartialState(cpu=several and _runs_on_cpu(config.device))
    if config.output_dir:  # refuse before any work, never after
        check_output_dir(config.output_dir, config.dataset_path)
    requested = torch.device(config.device) if config.device else None
    # Each rank its own device: --device cuda (no index) means this rank's GPU, as no --device does.
    same_kind = requested is not None and requested.index is None and requested.type == state.device.type
    return state, state.device if requested is None or same_kind else requested


def _load_task_and_data(config: AugmentConfig, state):
    """Step 2: the models' names, the task and its data, checked before any model is fetched (only a custom task
    without --num-labels needs the teacher's label count: its config file, not its weights)."""
    mlm_name, teacher_name = resolve_models(config)
    teacher_task = _teacher_task(teacher_name, config.task)
    labels_from_teacher = (
        teacher_task is None
        and config.text_columns is not None
        and config.num_labels is None
        and not config.class_names
    )
    teacher_labels = _teacher_num_labels(config, teacher_name) if labels_from_teacher else None
    spec = _resolve_task(config, teacher_labels, teacher_task)
    # --overwrite reads the sources again: the main process does, the other ranks then read its copies.
    with (
        _no_dataset_bars() if not config.progress else nullcontext(),
        state.main_process_first() if config.overwrite else nullcontext(),
    ):
        data = load_task_data(
            spec,
            data_dir=config.data_dir,
            train_file=config.train_file,
            validation_files={"validation": config.validation_file} if config.validation_file else None,
            dataset_path=config.dataset_path,
            hub_path=config.dataset_name,
            hub_config=config.dataset_config,
            revision=config.dataset_revision,
            cache_dir=str(Path(config.resolved_cache_dir()) / "sources"),
            refresh=config.overwrite and state.is_main_process,
        )
    if config.max_train_samples is not None:
        data["train"] = data["train"].select(range(min(config.max_train_samples, len(data["train"]))))
    teacher_labels = teacher_labels or _teacher_num_labels(config, teacher_name)
    if teacher_labels is not None and teacher_labels != spec.num_labels:
        raise DataError(
            f"the teacher {display_name(teacher_name)!r} has {teacher_labels} output(s) but task {spec.name} "
            f"has {spec.num_labels} label(s) (1 = regression)"
        )
    _check_model_lengths(config, mlm_name, teacher_name)
    return spec, data, mlm_name, teacher_name


def _identify_cache(config: AugmentConfig, state, spec, data, mlm_name, mlm, teacher_name, teacher_pair, device):
    """Step 4: the fingerprint of everything that determines the result; --overwrite clears what it owns."""
    fingerprint = fingerprint_job(
        config,
        data,
        model_identity(mlm_name, mlm, config.mlm_revision),
        model_identity(teacher_name, teacher_pair[1], config.teacher_revision) if teacher_pair else None,
        device.type,
    )
    cache_root = Path(config.resolved_cache_dir()) / spec.name
    if config.overwrite:
        with state.main_process_first():  # the other ranks start once the main one has cleared the cache
            if state.is_main_process:
                _clear_cache(cache_root, fingerprint)
    return cache_root, fingerprint


def _reuse_or_compute(config, state, spec, data, cache_root, fingerprint, builder, numerics, mlm_name, teacher_name):
    """Step 5: the finished result if it checks out, else this rank's blocks computed and the result assembled."""
    notes: list[str] = []
    cache_path = _choose_cache(cache_root, fingerprint, builder, numerics, config, notes)
    plan = BlockPlan(cache_path, len(data["train"]), config.block_size, config.shard_size)
    if not _finished(cache_path, notes):
        cache_path.mkdir(parents=True, exist_ok=True)
        _write_text(
            cache_path / "config.json", json.dumps(public_options(config.result_options()), indent=2, default=str)
        )
        _compute_blocks(plan, builder, numerics, state, show_bar=config.progress and state.is_main_process)
    notes.extend(plan.discarded)
    dataset, counts, assembled = _assemble(plan, fingerprint, data, spec, config, mlm_name, teacher_name)
    cache_hit = not plan.computed and not assembled
    logger.info("%s: %s", "cache hit" if cache_hit else "finished", cache_path)
    result = AugmentationResult(dataset, cache_path, cache_hit)
    result.summary = dict(counts)
    return result, plan, notes


def _deliver(
    result: AugmentationResult, config: AugmentConfig, state, spec, plan, notes, started, mlm_name, teacher_name
) -> AugmentationResult:
    """Step 6: saved to --output-dir and pushed to the Hub (by the main process), with the summary."""
    save_here = config.output_dir and state.is_main_process
    if save_here:
        _atomic_save(result.dataset, Path(config.output_dir))
    result.summary = {
        "task": spec.name,
        **result.summary,
        "seconds": round(time.perf_counter() - started, 2),
        "cache": str(result.cache_path),
        "cache_hit": result.cache_hit,
        "blocks": plan.num_blocks,
        "blocks_computed_here": len(plan.computed),
        "processes": state.num_processes,
        "process_index": state.process_index,
        "notes": notes,
    }
    result.summary.update(
        mlm_model=display_name(mlm_name), teacher=display_name(teacher_name) if teacher_name else None
    )
    if save_here:
        result.summary["saved_to"] = str(Path(config.output_dir).resolve())
    if config.push_to_hub and state.is_main_process:
        from .card import push_to_hub

        push_to_hub(result.dataset, config, spec, result.summary)
        result.summary["pushed_to"] = config.push_to_hub
    return result


def _runs_on_cpu(device: str | None) -> bool:
    """Whether this job runs on the CPU: asked for, or no accelerator (then several ranks use gloo)."""
    import torch

    if device is not None:
        return torch.device(device).type == "cpu"
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6 knows every kind of accelerator
    return not (accelerator.is_available() if accelerator is not None else torch.cuda.is_available())


_write_text = write_text_atomically  # the cache's small files (config.json, COMPLETE)


def _clear_cache(cache_root: Path, fingerprint: str) -> None:
    """--overwrite: forget the finished result and its blocks, here and in the caches begun beside it on other
    machines (``<fingerprint>-<machine>``). The lock files stay: other processes may hold them."""
    for cache_path in [cache_root / fingerprint, *cache_root.glob(f"{fingerprint}-*")]:
        if cache_path.is_dir():
            for entry in cache_path.iterdir():
                if entry.name != "locks":
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


class BlockBuilder:
    """Computes one block: Algorithm 2 and the teacher over its rows, and the counts of what came out.

    Used for the job's blocks, by ``--verify`` and when a cache begun on another machine is checked, so all
    three compute a block the same way."""

    def __init__(
        self,
        config: AugmentConfig,
        spec: TaskSpec,
        train,
        mlm,
        mlm_tokenizer,
        teacher_pair,
        show_progress: bool = False,
    ):
        self.spec, self.train, self.separate = spec, train, config.separate
        self.augmenter = FillMaskAugmenter(
            mlm,
            mlm_tokenizer,
            num_augmented=config.num_augmented,
            ratio=config.ratio,
            search=config.search,
            seed=config.seed,
            max_length=config.max_length,
            batch_size=config.batch_size,
            precision=config.precision,
            show_progress=show_progress,
        )
        self.labeler = None
        if teacher_pair is not None:
            self.labeler = TeacherLabeler(
                teacher_pair[1],
                teacher_pair[0],
                batch_size=config.teacher_batch_size,
                max_length=config.max_length,
                precision=config.precision,
                show_progress=show_progress,
            )

    def build(self, rows: range):
        """(the block's new columns as a Dataset, its counts)."""
        part = self.train.select(rows)
        new = augment_split(part, self.spec, self.augmenter, self.labeler, self.separate, rows.start)
        return new, _shard_counts(part, new, self.spec, self.augmenter.round_trip)


def _text_columns(spec: TaskSpec) -> list[str]:
    return [augmented_column(c) for c in spec.text_columns]


def _compare_block(plan: BlockPlan, number: int, stored, builder: BlockBuilder, tolerance: float) -> dict:
    recomputed, _ = builder.build(plan.rows(number))
    return compare_blocks(stored, recomputed, _text_columns(builder.spec), tolerance)


def _choose_cache(
    cache_root: Path, fingerprint: str, builder: BlockBuilder, numerics: dict, config: AugmentConfig, notes: list[str]
) -> Path:
    """The cache folder this process completes: the fingerprint's, unless its blocks were made on another machine
    and one of them, recomputed here, does not match; then ``<fingerprint>-<this machine>``."""
    from datasets import load_from_disk

    cache_path = cache_root / fingerprint
    if _finished(cache_path, notes):
        return cache_path  # a finished result is reused wherever it was made (--verify checks it)
    plan = BlockPlan(cache_path, len(builder.train), config.block_size, config.shard_size)
    if not plan.block_dir.is_dir():
        return cache_path
    for number in range(plan.num_blocks):
        manifest = plan.manifest(number) if plan.is_done(number) else None
        if manifest is None or manifest.get("numerics") == numerics or not plan.check(number):
            continue
        made_on, here = short_description(manifest.get("numerics")), short_description(numerics)
        comparison = _compare_block(plan, number, load_from_disk(str(plan.path(number))), builder, config.tolerance())
        if comparison["matches"]:
            note = (
                f"the cache {cache_path} was begun on {made_on}; block {number} recomputed here on {here} matches "
                f"(text identical, teacher outputs within {config.tolerance():g}): completing it"
            )
            chosen = cache_path
        else:
            chosen = cache_root / f"{fingerprint}-{numerics_key(numerics)}"
            note = (
                f"the cache {cache_path} was begun on {made_on}; block {number} recomputed here on {here} differs "
                f"({comparison['first_mismatch']}): starting a new cache at {chosen}"
            )
        logger.warning(note)
        notes.append(note)
        return chosen
    return cache_path


def _finished(cache_path: Path, notes: list[str]) -> bool:
    """Whether ``cache_path`` holds a finished result whose ``COMPLETE`` record and files agree. A damaged one is
    discarded (``COMPLETE`` first, so no reader takes the rest for finished), with a note."""
    marker, final = cache_path / COMPLETE, cache_path / "dataset"
    if not marker.exists():
        return False
    try:
        record = unseal(marker.read_text())
    except OSError:
        record = None
    problem = f"{COMPLETE}: unreadable or edited" if record is None else damaged(final, record.get("files"))
    if problem is None:
        return True
    note = f"the finished result in {cache_path} was damaged ({problem}); computing it again"
    logger.warning(note)
    notes.append(note)
    marker.unlink(missing_ok=True)
    shutil.rmtree(final, ignore_errors=True)
    return False


def _compute_blocks(plan: BlockPlan, builder: BlockBuilder, numerics: dict, state, show_bar: bool) -> None:
    """This process's part of the work: the blocks it can claim, then waiting for those others hold."""
    from tqdm.auto import tqdm

    def compute(number: int) -> None:
        new, counts = builder.build(plan.rows(number))
        _atomic_save(new, plan.path(number), {"counts": counts, "numerics": numerics})

    where = f" ({state.num_processes} processes)" if state.num_processes > 1 else ""
    bar = tqdm(total=plan.num_rows, desc=f"Augmenting {builder.spec.name}{where}", unit="ex", disable=not show_bar)
    with _no_dataset_bars(), bar:
        run_blocks(
            plan,
            compute,
            state.process_index,
            state.num_processes,
            finished=lambda: (plan.cache_path / COMPLETE).exists(),
            progress=bar,
        )
    logger.info(
        "process %d of %d computed %d of %d block(s): %s",
        state.process_index,
        state.num_processes,
        len(plan.computed),
        plan.num_blocks,
        sorted(plan.computed),
        main_process_only=False,
    )


@contextmanager
def _no_dataset_bars():
    """No bars from ``datasets`` (nor our file-reading bar) in the block; the user's setting is restored after."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def _assemble(
    plan: BlockPlan,
    fingerprint: str,
    data,
    spec: TaskSpec,
    config: AugmentConfig,
    mlm_name: str,
    teacher_name: str | None,
):
    """The finished dataset: built from the blocks by the first process to get here, loaded by the others.

    Every block is checked against its manifest before it is used; a damaged one is computed again here.
    Returns (dataset, counts, whether this process assembled it)."""
    from datasets import DatasetDict, concatenate_datasets, load_from_disk
    from datasets.fingerprint import Hasher
    from filelock import FileLock

    final, marker = plan.cache_path / "dataset", plan.cache_path / COMPLETE
    plan.lock_dir.mkdir(parents=True, exist_ok=True)
    assembled = False
    with FileLock(str(plan.lock_dir / "assemble.lock")):
        if not marker.exists():
            train = data["train"]
            blocks = [load_from_disk(str(plan.path(i))) for i in range(plan.num_blocks)]
            if train._indices is not None:  # --max-train-samples on a shuffled source: rows in order, once
                train = train.flatten_indices()
            augmented_train = concatenate_datasets([train, concatenate_datasets(blocks)], axis=1)
            augmented_train.info.description = json.dumps(provenance(spec, config, mlm_name, teacher_name))
            # The same fingerprint whatever the shards and processes, so what users map() on it is cached alike.
            augmented_train._fingerprint = Hasher.hash([fingerprint, "train"])
            dataset = DatasetDict({"train": augmented_train, **{s: data[s] for s in data if s != "train"}})
            _atomic_save(dataset, final)
            manifests = [plan.manifest(i) for i in range(plan.num_blocks)]
            counts = _job_counts([m["counts"] for m in manifests], dataset)
            made_on = list(
                {json.dumps(m.get("numerics"), sort_keys=True): m.get("numerics") for m in manifests}.values()
            )
            _write_text(
                marker,
                json.dumps(
                    seal(
                        {
                            "fingerprint": fingerprint,
                            "finished": time.time(),
                            "counts": counts,
                            "made_on": made_on,
                            "rows": {split: len(part) for split, part in dataset.items()},
                            "files": content_digests(final),
                        }
                    )
                ),
            )
            del blocks
            shutil.rmtree(plan.block_dir, ignore_errors=True)
            plan.remove_locks()
            for leftover in plan.cache_path.glob("*.tmp-*"):  # of a process killed while saving
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
            assembled = True
    return load_from_disk(str(final)), unseal(marker.read_text())["counts"], assembled


def _verified(
    config: AugmentConfig,
    cache_path: Path,
    builder: BlockBuilder,
    data,
    spec: TaskSpec,
    numerics: dict,
    started: float,
    mlm_name: str,
    teacher_name: str | None,
) -> AugmentationResult:
    """--verify N: recompute N random blocks of the finished cache and compare them with what it holds."""
    from datasets import load_from_disk

    notes: list[str] = []
    if not _finished(cache_path, notes):
        raise DataError(
            f"--verify: no finished cache for these options at {cache_path}"
            f"{' (' + notes[0] + ')' if notes else ''}; run the same command without --verify to build it"
        )
    record = unseal((cache_path / COMPLETE).read_text())
    dataset = load_from_disk(str(cache_path / "dataset"))
    plan = BlockPlan(cache_path, len(data["train"]), config.block_size, config.shard_size)
    if len(dataset["train"]) != plan.num_rows:
        raise DataError(f"--verify: the cache holds {len(dataset['train'])} training rows, the data {plan.num_rows}")
    chosen = sorted(
        int(b)
        for b in np.random.default_rng().choice(plan.num_blocks, min(config.verify, plan.num_blocks), replace=False)
    )
    new_columns = [c for c in dataset["train"].column_names if c not in data["train"].column_names]
    results = {}
    for number in chosen:
        stored = dataset["train"].select(plan.rows(number)).select_columns(new_columns)
        results[number] = _compare_block(plan, number, stored, builder, config.tolerance())
    mismatched = [number for number, found in results.items() if not found["matches"]]
    summary = {
        "task": spec.name,
        "cache": str(cache_path),
        "matches": not mismatched,
        "blocks_checked": chosen,
        "blocks": plan.num_blocks,
        "tolerance": config.tolerance(),
        "text_mismatches": sum(found["text_mismatches"] for found in results.values()),
        "max_abs_difference": max(found["max_abs_difference"] for found in results.values()),
        "first_mismatch": next((f"block {n}: {results[n]['first_mismatch']}" for n in mismatched), None),
        "made_on": [short_description(m) for m in record.get("made_on", [])],
        "checked_on": short_description(numerics),
        "seconds": round(time.perf_counter() - started, 2),
        "mlm_model": display_name(mlm_name),
        "teacher": display_name(teacher_name) if teacher_name else None,
    }
    return AugmentationResult(dataset, cache_path, True, {"verify": summary, "process_index": 0})
