"""Blocks and shards: how one augmentation job's rows are batched, stored and shared between processes.

**Blocks** fix the result. The training rows are cut into blocks of ``block_size`` rows (rows
``[b * block_size, (b + 1) * block_size)``); each block is augmented and labelled on its own, its rows sorted
by length and batched within it. So every row always meets the same batch-mates in the same tensor shapes,
whatever the shard layout, the number of processes, the rank that computed it or the order blocks were
claimed in, and the block size is part of the cache fingerprint.

**Shards** only share the work out. A shard is ``shard_size`` rows rounded up to whole blocks; every process
(a rank of ``accelerate launch``/``torchrun``, or a second copy of the same command) walks the shards, its
own first (shard ``i`` belongs to rank ``i % world_size``), then the others', and computes a block only
while it holds that block's file lock (:mod:`filelock`, as ``datasets`` uses) and finds it unfinished. A
finished block is a folder written to a temporary name, synced to disk and renamed into place in one step,
with a manifest (:data:`MANIFEST`) of its row count, its files' sha256 and the machine that computed it. A
block that is reused is checked against its manifest first; a damaged one (truncated, edited, a file
missing) is discarded and computed again, with a one-line warning. Since the stored unit does not depend
on ``shard_size``, a job resumed with another ``--shard-size`` (or a concurrent job with one) reuses every
finished block and leaves nothing behind.

Layout under the job's cache folder::

    blocks/block-00007/       a finished block (save_to_disk) and its manifest, mmel_block.json
    locks/block-00007.lock
    locks/assemble.lock       held while the final dataset is assembled (see cache.py)

All processes must see one file system (one machine, or a shared file system with working ``flock``
for several machines).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from ..utils.files import damaged, unseal

__all__ = ["MANIFEST", "BlockPlan", "claim_order", "run_blocks"]

logger = logging.getLogger(__name__)
MANIFEST = "mmel_block.json"


def claim_order(num_shards: int, rank: int, world_size: int) -> list[int]:
    """The order in which ``rank`` tries the shards: its own (``i % world_size == rank``), then the rest."""
    own = list(range(rank, num_shards, world_size))
    return own + [i for i in range(num_shards) if i % world_size != rank]


@dataclass
class BlockPlan:
    """Where the blocks of a job live, which rows each one holds, and how shards group them for claiming."""

    cache_path: Path
    num_rows: int
    block_size: int
    shard_size: int
    computed: list[int] = field(default_factory=list)  # blocks this process computed
    checked: set[int] = field(default_factory=set)  # blocks this process found intact
    discarded: list[str] = field(default_factory=list)  # why damaged blocks were thrown away

    @property
    def num_blocks(self) -> int:
        return -(-self.num_rows // self.block_size)

    @property
    def blocks_per_shard(self) -> int:
        return max(1, -(-self.shard_size // self.block_size))

    @property
    def num_shards(self) -> int:
        return -(-self.num_blocks // self.blocks_per_shard)

    def shard_blocks(self, shard: int) -> range:
        per = self.blocks_per_shard
        return range(shard * per, min((shard + 1) * per, self.num_blocks))

    @property
    def block_dir(self) -> Path:
        return self.cache_path / "blocks"

    @property
    def lock_dir(self) -> Path:
        return self.cache_path / "locks"

    def rows(self, number: int) -> range:
        return range(number * self.block_size, min((number + 1) * self.block_size, self.num_rows))

    def path(self, number: int) -> Path:
        return self.block_dir / f"block-{number:05d}"

    def lock(self, number: int) -> FileLock:
        return FileLock(str(self.lock_dir / f"block-{number:05d}.lock"))

    def manifest(self, number: int) -> dict | None:
        """The block's manifest, or None if it has none that can be read."""
        try:
            return unseal((self.path(number) / MANIFEST).read_text())  # None if any value was edited
        except OSError:
            return None

    def is_done(self, number: int) -> bool:
        """Cheap: the block has been renamed into place (see :meth:`check` before reusing it)."""
        return (self.path(number) / MANIFEST).exists()

    def check(self, number: int) -> bool:
        """Whether block ``number`` is finished and intact; a damaged one is deleted (and the reason kept)."""
        if number in self.checked:
            return True
        if not self.path(number).exists():
            return False
        manifest = self.manifest(number)
        if manifest is None:
            problem = f"{MANIFEST}: missing, unreadable or edited"
        elif manifest.get("num_rows") != len(self.rows(number)):
            problem = f"{manifest.get('num_rows')} rows recorded, {len(self.rows(number))} expected"
        else:
            problem = damaged(self.path(number), manifest.get("files"))
        if problem is None:
            self.checked.add(number)
            return True
        note = f"block {number} in {self.cache_path} was damaged ({problem}); computing it again"
        logger.warning(note)
        self.discarded.append(note)
        shutil.rmtree(self.path(number), ignore_errors=True)
        return False

    def counts(self, number: int) -> dict:
        return self.manifest(number)["counts"]

    def rows_done(self) -> int:
        return sum(len(self.rows(i)) for i in range(self.num_blocks) if self.is_done(i))

    def remove_locks(self) -> None:
        """Drop the block locks of a finished job (safe: every holder checks for COMPLETE before working)."""
        for number in range(self.num_blocks):
            Path(self.lock(number).lock_file).unlink(missing_ok=True)


def run_blocks(
    plan: BlockPlan,
    compute: Callable[[int], None],
    rank: int = 0,
    world_size: int = 1,
    finished: Callable[[], bool] = lambda: False,
    progress=None,
) -> None:
    """Compute every unfinished block that no other process is computing; return when all are finished.

    Args:
        compute: writes block ``number`` (atomically, with its manifest) to ``plan.path(number)``.
        finished: True once the whole job is complete (another process assembled it): stop early.
        progress: a tqdm bar over the job's rows (main process), or None.
    """
    plan.block_dir.mkdir(parents=True, exist_ok=True)
    plan.lock_dir.mkdir(parents=True, exist_ok=True)

    def refresh():
        if progress is not None:
            progress.n = plan.rows_done()
            progress.refresh()

    def attempt(number: int, timeout: float) -> bool:
        """Compute ``number`` if it is unfinished and its lock is free within ``timeout``; False if still held."""
        if finished() or (plan.is_done(number) and plan.check(number)):
            return True
        try:
            with plan.lock(number).acquire(timeout=timeout):
                if not plan.check(number) and not finished():  # a holder may have finished it meanwhile
                    rows = plan.rows(number)
                    logger.debug("block %d of %d: rows %d..%d", number, plan.num_blocks, rows.start, rows.stop - 1)
                    compute(number)
                    plan.computed.append(number)
                    plan.checked.add(number)
        except Timeout:
            return False
        refresh()
        return True

    refresh()
    order = [block for shard in claim_order(plan.num_shards, rank, world_size) for block in plan.shard_blocks(shard)]
    held_elsewhere = [number for number in order if not attempt(number, 0)]
    for number in held_elsewhere:  # computed by another process right now: wait for it (or take it if it dies)
        logger.info("block %d is being computed by another process; waiting for it", number)
        while not attempt(number, 1.0):
            refresh()
