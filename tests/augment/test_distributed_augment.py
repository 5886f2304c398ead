"""mmel-augment across processes: ranks of torchrun (gloo on CPU) and concurrent commands share one cache.

Every test compares with the dataset of one process in one go: the same cache fingerprint, the same Arrow
tables (bitwise), the same dataset fingerprint, whatever the number of processes, the shard layout and the
rank that computed a block. Bitwise is what the design guarantees here: rows are batched within fixed
blocks, so each row meets the same batch-mates in the same shapes, and the reference runs with one thread as
each rank does (OMP_NUM_THREADS=1), so the same kernels run on the same machine.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from datasets import load_from_disk

from mmel_hf.augment import AugmentConfig, run_augmentation
from mmel_hf.augment.shards import BlockPlan, claim_order

from builders import PAIRS, REPO, RTE_HEADER

ROWS = 24
BLOCK = 4  # six blocks


@pytest.fixture
def rte_24(tmp_path):
    folder = tmp_path / "RTE"
    folder.mkdir()
    rows = [f"{i}\t{a} ({i})\t{b}\t{label}" for i, (a, b, label) in enumerate((PAIRS * 5)[:ROWS])]
    (folder / "train.tsv").write_text("\n".join([RTE_HEADER, *rows]) + "\n")
    (folder / "dev.tsv").write_text("\n".join([RTE_HEADER, *rows[:3]]) + "\n")
    return folder


def options(models, data, cache, shard_size):
    return dict(
        task="rte",
        data_dir=str(data),
        mlm_model=models[0],
        teacher=models[1],
        cache_dir=str(cache),
        shard_size=shard_size,
        block_size=BLOCK,
        seed=3,
        progress=False,
    )


@contextmanager
def one_thread():
    """Run in-process work with one thread, as the ranks do: the same machine then runs the same kernels."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cli_args(settings: dict) -> list[str]:
    args = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        args += [flag, str(value)] if value is not False else ["--no-" + key.replace("_", "-")]
    return args


def start(command: list[str], stderr_file: Path | None = None) -> subprocess.Popen:
    """Start ``command``; its stderr goes to a pipe, or to ``stderr_file`` to be read while it runs."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    stderr = open(stderr_file, "w") if stderr_file else subprocess.PIPE  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)


def torchrun(num_processes: int, settings: dict) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(num_processes),
        "-m",
        "augment_cli.augment",
        *cli_args(settings),
    ]


def one_process(settings: dict) -> list[str]:
    return [sys.executable, "-m", "augment_cli.augment", *cli_args(settings)]


def computed_blocks(stderr: str) -> dict[int, list[int]]:
    """Process index -> the blocks it computed, from each process's closing log line."""
    found = re.findall(r"process (\d+) of \d+ computed \d+ of \d+ block\(s\): \[([\d, ]*)\]", stderr)
    return {int(rank): [int(n) for n in shards.split(",") if n.strip()] for rank, shards in found}


def assert_same_dataset(cache_path: Path, reference) -> None:
    loaded = load_from_disk(str(cache_path / "dataset"))
    assert list(loaded) == list(reference.dataset)
    for split in loaded:
        assert loaded[split].data.table.equals(reference.dataset[split].data.table), split
    assert loaded["train"]._fingerprint == reference.dataset["train"]._fingerprint


def wait_until(condition, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_claim_order_puts_each_ranks_own_shards_first():
    assert claim_order(5, 0, 2) == [0, 2, 4, 1, 3]
    assert claim_order(5, 1, 2) == [1, 3, 0, 2, 4]
    assert claim_order(3, 0, 1) == [0, 1, 2]


@pytest.fixture
def reference(models, rte_24, tmp_path):
    """The dataset of one process in one go, shards of 5 rows (two blocks each), one thread as in the ranks."""
    with one_thread():
        return run_augmentation(AugmentConfig(**options(models, rte_24, tmp_path / "one", shard_size=5)))


@pytest.mark.slow
def test_two_ranks_under_torchrun_give_the_one_process_dataset(models, rte_24, tmp_path, reference):
    settings = options(models, rte_24, tmp_path / "two", shard_size=3)  # another shard layout on purpose
    job = start(torchrun(2, settings))
    stdout, stderr = job.communicate(timeout=600)
    assert job.returncode == 0, stderr[-3000:]
    blocks = computed_blocks(stderr)
    assert sorted(blocks) == [0, 1]  # two ranks, each reporting its part
    done = [n for part in blocks.values() for n in part]
    assert sorted(done) == list(range(ROWS // BLOCK))  # every block once: none twice, none missing
    summaries = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1 and summaries[0]["processes"] == 2  # the main process reports, once
    cache_path = Path(summaries[0]["cache"])
    assert cache_path.name == reference.cache_path.name  # the same fingerprint
    assert_same_dataset(cache_path, reference)


@pytest.mark.slow
def test_two_concurrent_identical_commands_share_the_cache(models, rte_24, tmp_path, reference):
    settings = options(models, rte_24, tmp_path / "shared", shard_size=4)
    cache_path = tmp_path / "shared" / "rte" / reference.cache_path.name  # the fingerprint does not name the cache
    plan = BlockPlan(cache_path, ROWS, BLOCK, 4)
    plan.lock_dir.mkdir(parents=True)
    last = plan.num_blocks - 1
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    with plan.lock(last):  # a third party holds the last shard: both commands must wait for it, not crash
        jobs = [start(one_process(settings), log) for log in logs]
        waiting = f"block {last} is being computed by another process"
        wait_until(lambda: all(waiting in log.read_text() for log in logs), "both commands to wait on the held shard")
        assert all(plan.is_done(n) for n in range(last)) and not plan.is_done(last)
        assert all(job.poll() is None for job in jobs)
    outputs = [(job.communicate(timeout=600)[0], log.read_text()) for job, log in zip(jobs, logs)]
    for job, (_, stderr) in zip(jobs, outputs):
        assert job.returncode == 0, stderr[-3000:]
    parts = [computed_blocks(stderr)[0] for _, stderr in outputs]
    assert sorted(parts[0] + parts[1]) == list(range(plan.num_blocks))  # each block computed exactly once
    summaries = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    assert summaries[0]["cache"] == summaries[1]["cache"]
    assert_same_dataset(cache_path, reference)


@pytest.mark.slow
def test_a_killed_rank_leaves_a_job_that_resumes(models, rte_24, tmp_path, reference):
    import psutil

    settings = options(models, rte_24, tmp_path / "killed", shard_size=4)
    cache_path = tmp_path / "killed" / "rte" / reference.cache_path.name
    plan = BlockPlan(cache_path, ROWS, BLOCK, 4)
    plan.lock_dir.mkdir(parents=True)
    held = 2
    with plan.lock(held):  # keeps the job from finishing until rank 1 is killed
        launcher = start(torchrun(2, settings))
        wait_until(lambda: sum(plan.is_done(n) for n in range(plan.num_blocks)) == plan.num_blocks - 1, "the blocks")
        ranks = {
            p.environ().get("RANK"): p
            for p in psutil.Process(launcher.pid).children(recursive=True)
            if "RANK" in p.environ()
        }
        ranks["1"].send_signal(signal.SIGKILL)
        launcher.communicate(timeout=300)
    assert launcher.returncode != 0  # torchrun stops the job when a rank dies
    assert not (cache_path / "COMPLETE").exists() and not plan.is_done(held)

    with one_thread():  # the rerun, here in one process on the same machine
        resumed = run_augmentation(AugmentConfig(**settings))
    assert resumed.summary["blocks_computed_here"] == 1  # only the block that was never finished
    assert resumed.summary["notes"] == []  # same machine, same numerics: nothing to compare
    assert resumed.cache_path == cache_path
    assert_same_dataset(cache_path, reference)
