"""Peak memory of ``mmel-augment`` as the training set grows (synthetic rows, tiny random models, CPU).

For each size, a synthetic SST-2-style TSV file of N rows (6-12 words each) is augmented with |B| = 5,
ratio 0.4, greedy, by a 2-layer/64 BertForMaskedLM and labelled by a 2-layer/64 classifier (random weights,
the bert-base-uncased vocabulary), with the default shards of 1,000 rows, in a fresh process. Reported:
its peak resident set (``ru_maxrss``), and the peak of its anonymous memory (``RssAnon`` of
/proc/PID/status, polled every 50 ms): the resident set also counts the pages of memory-mapped Arrow
files that were read, which the kernel drops when it needs the room; anonymous memory is what the
process holds. Flat memory means the file, the samples and the teacher outputs are streamed shard by
shard and never held whole.

    python benchmarks/bench_augment_memory.py --rows 10000 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "the a film movie story plot actor acting scene music score script director cast ending start "
    "good bad great dull funny sad long short bright dark warm cold slow fast clever silly honest"
).split()


def write_rows(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("sentence\tlabel\n")
        for _ in range(rows):
            handle.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))) + f"\t{rng.randint(0, 1)}\n")


def tiny_models(folder: Path) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertForSequenceClassification

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import bundled_tokenizer_path

    tokenizer = AutoTokenizer.from_pretrained(bundled_tokenizer_path())
    torch.manual_seed(0)
    config = dict(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=128,
    )
    for name, model in (
        ("mlm", BertForMaskedLM(BertConfig(**config))),
        ("teacher", BertForSequenceClassification(BertConfig(**config, num_labels=2))),
    ):
        model.save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)


def run_measured(command: list[str], cwd: Path, env: dict) -> tuple[int, float, float, str]:
    """Run ``command``; return its exit status, peak RSS and peak anonymous memory (MiB), and its stderr."""
    with tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        peak_anon = 0
        while child.poll() is None:
            try:
                with open(f"/proc/{child.pid}/status") as status:
                    for line in status:
                        if line.startswith("RssAnon:"):
                            peak_anon = max(peak_anon, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.05)
        child.wait()
        stderr.seek(0)
        peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # this driver runs one size only
        return child.returncode, peak_rss / 1024, peak_anon / 1024, stderr.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)  # set by the driver for each size
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mmel-memory-"))
    if args.work is None:
        tiny_models(work)
        import torch

        print(
            f"machine: {platform.machine()} cpus={os.cpu_count()} torch={torch.__version__}; tiny 2/64 MLM and teacher",
            flush=True,
        )
    mlm, teacher = str(work / "mlm"), str(work / "teacher")
    repo = Path(__file__).resolve().parents[1]
    for rows in args.rows:
        data = work / f"train-{rows}.tsv"
        write_rows(data, rows)
        command = [
            sys.executable,
            "-m",
            "augment_cli.augment",
            "--task",
            "sst2",
            "--train-file",
            str(data),
            "--mlm-model",
            mlm,
            "--teacher",
            teacher,
            "--cache-dir",
            str(work / f"cache-{rows}"),
            "--no-progress",
        ]
        if len(args.rows) > 1:  # one size per driver process, so that RUSAGE_CHILDREN is that size's alone
            subprocess.run([sys.executable, __file__, "--rows", str(rows), "--work", str(work)], check=True)
            continue
        started = time.perf_counter()
        code, peak_rss, peak_anon, stderr = run_measured(
            command, repo, {**os.environ, "HF_DATASETS_CACHE": str(work / "hf")}
        )
        if code != 0:
            raise SystemExit(stderr[-3000:])
        print(
            f"  {rows:>8,} rows ({data.stat().st_size / 2**20:5.1f} MiB file): peak RSS {peak_rss:6.1f} MiB, "
            f"peak anonymous {peak_anon:6.1f} MiB, {time.perf_counter() - started:6.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
