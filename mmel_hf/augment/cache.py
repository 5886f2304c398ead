"""The augmentation cache: its identity (the fingerprint), its life (chosen, computed block by block, assembled,
cleared) and the record that says a result is finished.

The result lives in ``<cache>/<task>/<fingerprint>/``. The fingerprint hashes the source data's fingerprint, the
identity of both models (Hub commit, or a hash of local weight files), the device type and every option that
changes the numbers, the batching included (see :mod:`.shards`: rows are batched within fixed blocks, so the shard
size, the number of processes and the claim order change nothing). Blocks are written to a temporary folder,
synced and renamed into place under a file lock with a manifest (row count, sha256 of each file, the machine that
computed them), so a killed run resumes at the missing blocks and produces the same dataset, the ranks of
``accelerate launch``/``torchrun`` share the work, and concurrent identical jobs share it too. One process
assembles the blocks under a lock; ``COMPLETE`` is written last, with the final dataset's row counts and file
hashes, and only a folder whose ``COMPLETE`` and files agree is ever read as finished: a damaged artefact is
discarded and recomputed, with a one-line warning.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from accelerate.logging import get_logger
from datasets import DatasetDict, concatenate_datasets, load_from_disk
from datasets.fingerprint import Hasher
from filelock import FileLock
from tqdm.auto import tqdm

from ..tasks.registry import TaskSpec
from ..utils.files import content_digests, damaged, seal, unseal, write_text_atomically
from .augment_config import AugmentConfig
from .counts import job_counts
from .models import model_identity  # noqa: F401  (the fingerprint's model identities; imported from here before)
from .numerics import numerics_key, short_description
from .provenance import provenance
from .saving import atomic_save
from .shards import BlockPlan, run_blocks
from .transform import BlockBuilder, compare_block, no_dataset_bars

logger = get_logger(__name__)
# 2: provenance in info.description; 3: exact ties in k; 4: samples rendered from the original's characters;
# 5: rows batched within fixed blocks; 6: no cuDNN attention on CUDA (mmel_hf.utils.attention); 7: the teacher batched in length bands within a token budget. Bump when a change alters
# the output for the same options.
ALGORITHM_VERSION = "7"
COMPLETE = "COMPLETE"
write_text = write_text_atomically  # the cache's small files (config.json, COMPLETE)


def fingerprint_job(
    config: AugmentConfig,
    data,
    mlm_identity: str | None,
    teacher_identity: str | None,
    device_type: str = "cpu",
    augmenter_identity: dict | None = None,
) -> str:
    """The cache key: options, the models, what else determines the augmenter's samples (a file's digest), the source
    data, the algorithm's version and the device type (a CPU and a GPU never share blocks; machines of one device
    type compare before sharing, see the module doc)."""

    options = config.result_options()
    if augmenter_identity:  # fill-mask's is empty: the fingerprints of its caches stay as they were
        options["augmenter_identity"] = augmenter_identity
    options.update(
        mlm_model=mlm_identity,
        teacher=teacher_identity,
        version=ALGORITHM_VERSION,
        device_type=device_type,
        sources={split: ds._fingerprint for split, ds in data.items()},
    )
    return Hasher.hash(options)


def clear_cache(cache_root: Path, fingerprint: str) -> None:
    """--overwrite: forget the finished result and its blocks, here and in the caches begun beside it on other
    machines (``<fingerprint>-<machine>``). The lock files stay: other processes may hold them."""
    for cache_path in [cache_root / fingerprint, *cache_root.glob(f"{fingerprint}-*")]:
        if cache_path.is_dir():
            for entry in cache_path.iterdir():
                if entry.name != "locks":
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def choose_cache(
    cache_root: Path, fingerprint: str, builder: BlockBuilder, numerics: dict, config: AugmentConfig, notes: list[str]
) -> Path:
    """The cache folder this process completes: the fingerprint's, unless its blocks were made on another machine
    and one of them, recomputed here, does not match; then ``<fingerprint>-<this machine>``."""

    cache_path = cache_root / fingerprint
    if is_finished(cache_path, notes):
        return cache_path  # a finished result is reused wherever it was made (--verify checks it)
    plan = BlockPlan(cache_path, len(builder.train), config.block_size, config.shard_size)
    if not plan.block_dir.is_dir():
        return cache_path
    for number in range(plan.num_blocks):
        manifest = plan.manifest(number) if plan.is_done(number) else None
        if manifest is None or manifest.get("numerics") == numerics or not plan.check(number):
            continue
        made_on, here = short_description(manifest.get("numerics")), short_description(numerics)
        comparison = compare_block(plan, number, load_from_disk(str(plan.path(number))), builder, config.tolerance())
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


def is_finished(cache_path: Path, notes: list[str], next_step: str = "computing it again") -> bool:
    """Whether ``cache_path`` holds a finished result whose ``COMPLETE`` record and files agree. A damaged one is
    discarded (``COMPLETE`` first, so no reader takes the rest for finished), with a note that ends with what the
    job does next (``next_step``)."""
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
    note = f"the finished result in {cache_path} was damaged ({problem}); {next_step}"
    logger.warning(note)
    notes.append(note)
    marker.unlink(missing_ok=True)
    shutil.rmtree(final, ignore_errors=True)
    return False


def compute_blocks(plan: BlockPlan, builder: BlockBuilder, numerics: dict, state, show_bar: bool) -> None:
    """This process's part of the work: the blocks it can claim, then waiting for those others hold."""

    def compute(number: int) -> None:
        new, counts = builder.build(plan.rows(number))
        atomic_save(new, plan.path(number), {"counts": counts, "numerics": numerics})

    where = f" ({state.num_processes} processes)" if state.num_processes > 1 else ""
    bar = tqdm(total=plan.num_rows, desc=f"Augmenting {builder.spec.name}{where}", unit="ex", disable=not show_bar)
    with no_dataset_bars(), bar:
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


def assemble(
    plan: BlockPlan,
    fingerprint: str,
    data,
    spec: TaskSpec,
    config: AugmentConfig,
    mlm_name: str | None,
    teacher_name: str | None,
    made: dict | None = None,
):
    """The finished dataset: built from the blocks by the first process to get here, loaded by the others.

    Every block is checked against its manifest before it is used; a damaged one is computed again here.
    Returns (dataset, counts, whether this process assembled it)."""

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
            augmented_train.info.description = json.dumps(provenance(spec, config, mlm_name, teacher_name, made))
            # The same fingerprint whatever the shards and processes, so what users map() on it is cached alike.
            augmented_train._fingerprint = Hasher.hash([fingerprint, "train"])
            dataset = DatasetDict({"train": augmented_train, **{s: data[s] for s in data if s != "train"}})
            atomic_save(dataset, final)
            manifests = [plan.manifest(i) for i in range(plan.num_blocks)]
            counts = job_counts([m["counts"] for m in manifests], dataset)
            made_on = list(
                {json.dumps(m.get("numerics"), sort_keys=True): m.get("numerics") for m in manifests}.values()
            )
            write_text(
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
