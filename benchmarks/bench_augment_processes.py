"""mmel-augment in one process against N processes (torchrun) on the same job: wall time and identity.

The job: the embedded rt-polarity task (embedded MLM and teacher), the first ``--examples`` training rows,
|B| = 5, ratio 0.4, greedy, shards of ``--shard-size`` rows, each configuration in a fresh cache. One
process uses every core (torch's default threads); N processes get ``OMP_NUM_THREADS = cores / N`` each.
The N-process result must equal the one-process result (same fingerprint, same Arrow tables).

    python benchmarks/bench_augment_processes.py --examples 400 --processes 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(command: list[str], env: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    summary = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    return time.perf_counter() - started, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mmel-processes-"))
    job = [
        "--task",
        "rt-polarity",
        "--max-train-samples",
        str(args.examples),
        "--shard-size",
        str(args.shard_size),
        "--no-progress",
    ]
    cores = os.cpu_count() or 1
    one_time, one = run(
        [sys.executable, "-m", "augment_cli.augment", *job, "--cache-dir", str(work / "one")], dict(os.environ)
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(max(cores // args.processes, 1))}
    many_time, many = run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(args.processes),
            "-m",
            "augment_cli.augment",
            *job,
            "--cache-dir",
            str(work / "many"),
        ],
        env,
    )
    from datasets import load_from_disk

    a, b = load_from_disk(str(Path(one["cache"]) / "dataset")), load_from_disk(str(Path(many["cache"]) / "dataset"))
    identical = Path(one["cache"]).name == Path(many["cache"]).name and all(
        a[s].data.table.equals(b[s].data.table) for s in a
    )
    import torch

    print(
        f"machine: {platform.machine()} cores={cores} torch={torch.__version__}; rt-polarity, {args.examples} examples, "
        f"shards of {args.shard_size}"
    )
    print(f"  1 process ({torch.get_num_threads()} threads): {one_time:7.1f} s")
    print(
        f"  {args.processes} processes ({env['OMP_NUM_THREADS']} thread(s) each): {many_time:7.1f} s "
        f"({one_time / many_time:.2f}x), identical result: {identical}"
    )


if __name__ == "__main__":
    main()
