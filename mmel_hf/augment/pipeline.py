"""The augmentation job, as six named steps: load the task, run Algorithm 2 and the teacher, cache the result.

``run_augmentation(AugmentConfig(task="rte", teacher=...))`` returns a ``DatasetDict`` whose ``train``
split follows :mod:`mmel_hf.schema` (what :class:`mmel_hf.MMELTrainer` reads) and whose evaluation splits
are untouched. This module only orchestrates; each concept has its own module:

- :mod:`.job`: the one object the steps share and fill in;
- :mod:`.models`: which fill-mask model and teacher, checked from their config files, loaded;
- :mod:`.cache`: the fingerprint, the cache folder's life and the ``COMPLETE`` record;
- :mod:`.shards`: the fixed blocks and how processes share them;
- :mod:`.transform`: one block computed (Algorithm 2, the teacher, the counts of :mod:`.counts`);
- :mod:`.saving`: the result written to ``--output-dir``; :mod:`.provenance`: what made it; :mod:`.card`: the Hub.

A job that finds blocks made on another machine (another CPU kind, GPU model, torch or thread count)
recomputes one of them first: if it matches (text identical, teacher outputs within
:meth:`AugmentConfig.tolerance`) it completes that cache, otherwise it starts its own beside it
(``<fingerprint>-<machine>``); it says which. ``--verify N`` recomputes N random blocks of a finished cache.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from accelerate.logging import get_logger
from datasets import load_from_disk

from ..schema import read_provenance
from ..tasks.registry import TaskSpec, reconcile_task
from ..tasks.sources import DataError, load_task_data
from ..utils import devices  # device facts by module: the tests model other machines there
from ..utils.files import unseal
from ..utils.privacy import display_name, public_options
from .augment_config import AugmentConfig
from .cache import (
    COMPLETE,
    assemble,
    choose_cache,
    clear_cache,
    compute_blocks,
    fingerprint_job,
    is_finished,
    model_identity,
    write_text,
)
from .card import push_to_hub
from .job import AugmentJob
from .models import (
    check_model_lengths,
    load_fill_mask,
    load_generator,
    load_teacher,
    recorded_teacher_task,
    resolve_models,
    teacher_num_labels,
)
from .numerics import describe_numerics, short_description
from .provenance import provenance
from .saving import atomic_save, check_output_dir
from .shards import BlockPlan
from .transform import BlockBuilder, augment_split, build_augmenter, compare_block, no_dataset_bars

__all__ = [
    "AugmentationResult",
    "augment_split",
    "check_samples_file",
    "display_name",
    "fingerprint_job",
    "load_job_data",
    "model_identity",
    "provenance",
    "read_provenance",
    "run_augmentation",
]

# accelerate's adapter: what every rank finds alike (a damaged or changed cache, the result) is said once, by the
# main process; a rank's own line passes main_process_only=False. Every call comes after run_augmentation has set
# up the accelerate state, which the adapter needs.
logger = get_logger(__name__)


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


def run_augmentation(config: AugmentConfig) -> AugmentationResult:
    """The whole job of ``mmel-augment``: load, augment, label, cache, save and push.

    Under ``accelerate launch``/``torchrun`` every rank runs this function: the ranks share the shards out
    (each on its own device), one assembles the result, and the main process alone saves and pushes it.
    Six steps, each a function below taking the one :class:`~.job.AugmentJob` they fill in: the process, the task
    and its data, the models, the cache's identity, the result (reused or computed), and its delivery (saved,
    summarised, pushed).
    """
    job = _set_up_process(config)
    _load_task_and_data(job)
    _load_models(job)
    _identify_cache(job)
    if job.config.verify is not None:
        return _verified(job)
    result, plan, notes = _reuse_or_compute(job)
    return _deliver(job, result, plan, notes)


def _set_up_process(config: AugmentConfig) -> AugmentJob:
    """Step 1: this rank (under accelerate launch/torchrun) and its device, the device's defaults resolved; an
    --output-dir refused before any work."""
    started = time.perf_counter()
    # PartialState is shared by the whole process (a Trainer built later reuses it), so it is pinned to the CPU
    # only where several CPU processes need gloo to be set up.
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    state = PartialState(cpu=several and devices.runs_on_cpu(config.device))
    if config.output_dir:  # refuse before any work, never after
        check_output_dir(config.output_dir, config.dataset_path)
    requested = torch.device(config.device) if config.device else None
    # Each rank its own device: --device cuda (no index) means this rank's GPU, as no --device does.
    same_kind = requested is not None and requested.index is None and requested.type == state.device.type
    device = state.device if requested is None or same_kind else requested
    # auto precision and batch sizes: the device's, before the fingerprint
    return AugmentJob(config.resolved_for(device), state, device, started)


def _load_task_and_data(job: AugmentJob) -> None:
    """Step 2: the models' names, the task and its data, checked before any model is fetched (only a custom task
    without --num-labels needs the teacher's label count: its config file, not its weights)."""
    config, state = job.config, job.state
    job.mlm_name, job.teacher_name = resolve_models(config)
    teacher_task = recorded_teacher_task(job.teacher_name, config.task)
    labels_from_teacher = (
        teacher_task is None
        and config.text_columns is not None
        and config.num_labels is None
        and not config.class_names
    )
    teacher_labels = teacher_num_labels(config, job.teacher_name) if labels_from_teacher else None
    job.spec = spec = _resolve_task(config, teacher_labels, teacher_task)
    # --overwrite reads the sources again: the main process does, the other ranks then read its copies.
    with state.main_process_first() if config.overwrite else nullcontext():
        job.data = load_job_data(config, spec, refresh=config.overwrite and state.is_main_process)
    teacher_labels = teacher_labels or teacher_num_labels(config, job.teacher_name)
    if teacher_labels is not None and teacher_labels != spec.num_labels:
        raise DataError(
            f"the teacher {display_name(job.teacher_name)!r} has {teacher_labels} output(s) but task {spec.name} "
            f"has {spec.num_labels} label(s) (1 = regression)"
        )
    check_model_lengths(config, job.mlm_name, job.teacher_name)


def load_job_data(config: AugmentConfig, spec: TaskSpec, refresh: bool = False):
    """The job's data: ``spec``'s splits from the source the options name, the columns they keep, the first
    ``--max-train-samples`` training rows; ``refresh`` reads the sources again (``--overwrite``)."""
    with no_dataset_bars() if not config.progress else nullcontext():
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
            refresh=refresh,
            keep_columns=config.keep_columns,
        )
    if config.max_train_samples is not None:
        data["train"] = data["train"].select(range(min(config.max_train_samples, len(data["train"]))))
    return data


def check_samples_file(config: AugmentConfig, spec: TaskSpec) -> None:
    """``--augmenter file``: the samples file read and checked whole against the training rows, as the job will
    (for a study, before its teacher trains rather than after). Other augmenters: nothing to check here."""
    if config.augmenter == "file":
        build_augmenter(config, spec, load_job_data(config, spec)["train"], load_mlm=None)


def _load_models(job: AugmentJob) -> None:
    """Step 3, the data being good: the augmenter (a file is checked whole first; a fill-mask model loads), then
    the teacher, and the block builder that runs them."""
    config, device = job.config, job.device
    inner_bars = config.progress and job.state.num_processes == 1  # a bar per batch, within the block being done
    augmenter = build_augmenter(
        config,
        job.spec,
        job.data["train"],
        lambda: load_fill_mask(config, device, job.mlm_name),
        inner_bars,
        lambda kind, name: load_generator(config, device, kind, name),
    )
    teacher_pair = load_teacher(config, device, job.teacher_name)
    job.builder = BlockBuilder(config, job.spec, job.data["train"], augmenter, teacher_pair, inner_bars)
    job.numerics = describe_numerics(device)


def _identify_cache(job: AugmentJob) -> None:
    """Step 4: the fingerprint of everything that determines the result; --overwrite clears what it owns."""
    config, builder = job.config, job.builder
    mlm = getattr(builder.augmenter, "model", None)
    teacher = builder.labeler.model if builder.labeler is not None else None
    job.fingerprint = fingerprint_job(
        config,
        job.data,
        model_identity(job.mlm_name, mlm, config.mlm_revision) if job.mlm_name else None,
        model_identity(job.teacher_name, teacher, config.teacher_revision) if job.teacher_name else None,
        job.device.type,
        _augmenter_identity(builder.augmenter),
    )
    job.cache_root = Path(config.resolved_cache_dir()) / job.spec.name
    if config.overwrite:
        with job.state.main_process_first():  # the other ranks start once the main one has cleared the cache
            if job.state.is_main_process:
                clear_cache(job.cache_root, job.fingerprint)


def _augmenter_identity(augmenter) -> dict:
    """What the fingerprint hashes of the augmenter: its own identity, and for one given from Python its class too
    (two classes of one name are two augmenters)."""
    found = dict(augmenter.identity())
    if type(augmenter).__module__.split(".")[0] != "mmel_hf":
        found.update(name=augmenter.name, cls=f"{type(augmenter).__module__}.{type(augmenter).__qualname__}")
    return found


def _reuse_or_compute(job: AugmentJob) -> tuple[AugmentationResult, BlockPlan, list[str]]:
    """Step 5: the finished result if it checks out, else this rank's blocks computed and the result assembled."""
    config, state, builder = job.config, job.state, job.builder
    notes: list[str] = []
    cache_path = choose_cache(job.cache_root, job.fingerprint, builder, job.numerics, config, notes)
    plan = BlockPlan(cache_path, job.train_rows, config.block_size, config.shard_size)
    if not is_finished(cache_path, notes):
        cache_path.mkdir(parents=True, exist_ok=True)
        write_text(
            cache_path / "config.json", json.dumps(public_options(config.result_options()), indent=2, default=str)
        )
        compute_blocks(plan, builder, job.numerics, state, show_bar=config.progress and state.is_main_process)
    notes.extend(plan.discarded)
    made = builder.augmenter.describe()
    dataset, counts, assembled = assemble(
        plan, job.fingerprint, job.data, job.spec, config, job.mlm_name, job.teacher_name, made
    )
    cache_hit = not plan.computed and not assembled
    logger.info("%s: %s", "cache hit" if cache_hit else "finished", cache_path)
    result = AugmentationResult(dataset, cache_path, cache_hit)
    result.summary = {**counts, "augmenter": made}
    return result, plan, notes


def _deliver(job: AugmentJob, result: AugmentationResult, plan: BlockPlan, notes: list[str]) -> AugmentationResult:
    """Step 6: saved to --output-dir and pushed to the Hub (by the main process), with the summary."""
    config, state = job.config, job.state
    if config.label_source == "original":
        note = (
            "--label-source original: every sample keeps its original's label, and MMEL weights up the samples with the "
            "largest loss, which are most often those whose copied label is wrong (the paper's Table 4: about 6 "
            "points lost); label them with a teacher where you can"
        )
        logger.warning(note)
        notes.append(note)
    save_here = config.output_dir and state.is_main_process
    if save_here:
        atomic_save(result.dataset, Path(config.output_dir))
    result.summary = {
        "task": job.spec.name,
        **result.summary,
        "seconds": round(time.perf_counter() - job.started, 2),
        "cache": str(result.cache_path),
        "cache_hit": result.cache_hit,
        "blocks": plan.num_blocks,
        "blocks_computed_here": len(plan.computed),
        "processes": state.num_processes,
        "process_index": state.process_index,
        "notes": notes,
        # what the device's defaults resolved to (also in the fingerprint)
        "precision": config.precision,
        "batch_size": config.batch_size,
        "teacher_batch_size": config.teacher_batch_size,
        "max_tokens_per_batch": config.max_tokens_per_batch,
        "block_size": config.block_size,
        **job.model_names(),
    }
    if save_here:
        result.summary["saved_to"] = str(Path(config.output_dir).resolve())
    if config.push_to_hub and state.is_main_process:
        push_to_hub(result.dataset, config, job.spec, result.summary)
        result.summary["pushed_to"] = config.push_to_hub
    return result


def _verified(job: AugmentJob) -> AugmentationResult:
    """--verify N: recompute N random blocks of the finished cache and compare them with what it holds."""
    config, cache_path = job.config, job.cache_path
    if job.state.num_processes > 1:
        raise DataError("--verify runs in one process: start it without accelerate launch/torchrun")
    if not job.builder.augmenter.deterministic:
        raise DataError(
            f"--verify: the augmenter {job.builder.augmenter.name!r} declares its samples not deterministic"
        )
    notes: list[str] = []
    if not is_finished(cache_path, notes, next_step="it was discarded"):
        raise DataError(
            f"--verify: no finished cache for these options at {cache_path}"
            f"{' (' + notes[0] + ')' if notes else ''}; run the same command without --verify to build it"
        )
    record = unseal((cache_path / COMPLETE).read_text())
    dataset = load_from_disk(str(cache_path / "dataset"))
    plan = BlockPlan(cache_path, job.train_rows, config.block_size, config.shard_size)
    if len(dataset["train"]) != plan.num_rows:
        raise DataError(f"--verify: the cache holds {len(dataset['train'])} training rows, the data {plan.num_rows}")
    chosen = sorted(
        int(b)
        for b in np.random.default_rng().choice(plan.num_blocks, min(config.verify, plan.num_blocks), replace=False)
    )
    new_columns = [c for c in dataset["train"].column_names if c not in job.data["train"].column_names]
    results = {}
    for number in chosen:
        stored = dataset["train"].select(plan.rows(number)).select_columns(new_columns)
        results[number] = compare_block(plan, number, stored, job.builder, config.tolerance())
    mismatched = [number for number, found in results.items() if not found["matches"]]
    summary = {
        "task": job.spec.name,
        "cache": str(cache_path),
        "matches": not mismatched,
        "blocks_checked": chosen,
        "blocks": plan.num_blocks,
        "tolerance": config.tolerance(),
        "text_mismatches": sum(found["text_mismatches"] for found in results.values()),
        "max_abs_difference": max(found["max_abs_difference"] for found in results.values()),
        "first_mismatch": next((f"block {n}: {results[n]['first_mismatch']}" for n in mismatched), None),
        "made_on": [short_description(m) for m in record.get("made_on", [])],
        "checked_on": short_description(job.numerics),
        "seconds": round(time.perf_counter() - job.started, 2),
        **job.model_names(),
    }
    return AugmentationResult(dataset, cache_path, True, {"verify": summary, "process_index": 0})
