"""The shards of one augmentation job, shared by the processes of a distributed run and by concurrent jobs.

A job's training rows are cut into shards of ``shard_size`` rows. Every process (a rank of
``accelerate launch``/``torchrun``, or a second copy of the same command) walks the shards, its own first
(shard ``i`` belongs to rank ``i % world_size``) and then the others', and computes a shard only while it
holds that shard's file lock (:mod:`filelock`, as ``datasets`` uses) and finds it unfinished; a finished
shard is a folder renamed into place in one step. So a shard is never computed twice, a process that is
killed frees its locks (the kernel drops them with the process), a rerun resumes at the unfinished shards,
and the shards of a process that is still working are waited for, not redone.

Layout under the job's cache folder::

    shards-<size>/shard-00007/   a finished shard (save_to_disk) with its counts in mmel_counts.json
    locks/shard-<size>-00007.lock
    locks/assemble.lock          held while the final dataset is assembled (see pipeline.py)

All processes must see one file system (one machine, or a shared file system with working ``flock``
for several machines).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["ShardPlan", "claim_order", "run_shards"]

logger = logging.getLogger(__name__)
COUNTS_FILE = "mmel_counts.json"


def claim_order(num_shards: int, rank: int, world_size: int) -> list[int]:
    """The order in which ``rank`` tries the shards: its own (``i % world_size == rank``), then the rest."""
    own = list(range(rank, num_shards, world_size))
    return own + [i for i in range(num_shards) if i % world_size != rank]


@dataclass
class ShardPlan:
    """Where the shards of a job live and which rows each one holds."""

    cache_path: Path
    num_rows: int
    shard_size: int
    computed: list[int] = field(default_factory=list)  # shards this process computed

    @property
    def num_shards(self) -> int:
        return -(-self.num_rows // self.shard_size)

    @property
    def shard_dir(self) -> Path:
        return self.cache_path / f"shards-{self.shard_size}"

    @property
    def lock_dir(self) -> Path:
        return self.cache_path / "locks"

    def rows(self, number: int) -> range:
        return range(number * self.shard_size, min((number + 1) * self.shard_size, self.num_rows))

    def path(self, number: int) -> Path:
        return self.shard_dir / f"shard-{number:05d}"

    def lock(self, number: int) -> FileLock:
        return FileLock(str(self.lock_dir / f"shard-{self.shard_size}-{number:05d}.lock"))

    def is_done(self, number: int) -> bool:
        return (self.path(number) / COUNTS_FILE).exists()

    def counts(self, number: int) -> dict:
        return json.loads((self.path(number) / COUNTS_FILE).read_text())

    def rows_done(self) -> int:
        return sum(len(self.rows(i)) for i in range(self.num_shards) if self.is_done(i))

    def remove_locks(self) -> None:
        """Drop the shard locks of a finished job (safe: every holder checks for COMPLETE before working)."""
        for number in range(self.num_shards):
            Path(self.lock(number).lock_file).unlink(missing_ok=True)


def run_shards(plan: ShardPlan, compute: Callable[[int], None], rank: int = 0, world_size: int = 1,
               finished: Callable[[], bool] = lambda: False, progress=None) -> None:
    """Compute every unfinished shard that no other process is computing; return when all are finished.

    Args:
        compute: writes shard ``number`` (atomically, with its counts) to ``plan.path(number)``.
        finished: True once the whole job is complete (another process assembled it): stop early.
        progress: a tqdm bar over the job's rows (main process), or None.
    """
    plan.shard_dir.mkdir(parents=True, exist_ok=True)
    plan.lock_dir.mkdir(parents=True, exist_ok=True)

    def refresh():
        if progress is not None:
            progress.n = plan.rows_done()
            progress.refresh()

    def attempt(number: int, timeout: float) -> bool:
        """Compute ``number`` if it is unfinished and its lock is free within ``timeout``; False if still held."""
        if plan.is_done(number) or finished():
            return True
        try:
            with plan.lock(number).acquire(timeout=timeout):
                if not plan.is_done(number) and not finished():  # a holder may have finished it meanwhile
                    rows = plan.rows(number)
                    logger.debug("shard %d of %d: rows %d..%d", number, plan.num_shards, rows.start, rows.stop - 1)
                    compute(number)
                    plan.computed.append(number)
        except Timeout:
            return False
        refresh()
        return True

    refresh()
    held_elsewhere = [number for number in claim_order(plan.num_shards, rank, world_size) if not attempt(number, 0)]
    for number in held_elsewhere:  # computed by another process right now: wait for it (or take it if it dies)
        logger.info("shard %d is being computed by another process; waiting for it", number)
        while not attempt(number, 1.0):
            refresh()
