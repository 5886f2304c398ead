"""Memory-bounded groups: peak memory and step time of MMELTrainer with ``mmel_chunk_size`` at |B| = 10.

Three configurations, each in a fresh process so that its peak resident memory is its own:

- ``plain``: plain ``Trainer`` on a batch of S sequences (the user's batch without augmentation);
- ``one-pass``: ``MMELTrainer`` (hard) on S groups of |B| sequences, one forward pass over S*|B|;
- ``chunked``: the same with ``mmel_chunk_size = S`` (gradient-free pass, then S*|B|/S chunks forward+backward).

Each runs ``training_step`` (forward, loss, backward; the optimiser step is the same for all and left out)
on identical random tokens. Peak memory is the growth of the process's peak resident set (``ru_maxrss``)
over its resident set before the first step: activations, gradients and allocator caches, not the model.
Step times come from one more process that runs the three configurations interleaved step by step (so
drift of the machine hits all alike) and takes the medians. GPU: ``torch.cuda.max_memory_allocated``.

glibc keeps freed memory in its heaps, so on CPU the peak resident set also counts fragmentation left by
earlier chunks. ``--live-memory`` runs the children with ``MALLOC_MMAP_THRESHOLD_=65536`` (every large
tensor its own mapping, returned on free), which measures the memory in use, as ``max_memory_allocated``
does on a GPU (the step times are always measured with the default allocator).

    python benchmarks/bench_chunked.py --layers 4 --hidden 256 --groups 32 --group-size 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

CONFIGS = ("plain", "one-pass", "chunked")


def resident_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def build(args, config: str, device):
    """A trainer, its model and batch for one configuration (the same weights and tokens for all)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from mmel_hf import MMELTrainer, MMELTrainingArguments

    torch.manual_seed(0)
    bert = BertConfig(
        vocab_size=30522,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=max(args.hidden // 64, 2),
        intermediate_size=args.hidden * 4,
        num_labels=2,
    )
    model = BertForSequenceClassification(bert).to(device)
    groups, size = args.groups, args.group_size
    n = groups * size
    input_ids = torch.randint(1000, 30000, (n, args.seq_len), device=device)
    attention_mask = torch.ones_like(input_ids)
    labels = torch.randint(0, 2, (groups,), device=device)
    common = dict(output_dir=tempfile.mkdtemp(), report_to="none", disable_tqdm=True, use_cpu=device.type == "cpu")
    if config == "plain":
        trainer = Trainer(model=model, args=TrainingArguments(**common))
        batch = {"input_ids": input_ids[::size], "attention_mask": attention_mask[::size], "labels": labels}
    else:
        chunk = groups if config == "chunked" else None
        trainer = MMELTrainer(
            model=model,
            args=MMELTrainingArguments(mmel_loss="hard", mmel_chunk_size=chunk, **common),
            data_collator=lambda rows: rows,
        )
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "mmel_group_mask": torch.ones(groups, size, dtype=torch.bool, device=device),
            "mmel_teacher": torch.softmax(torch.randn(n, 2, device=device), -1),
        }
    trainer.current_gradient_accumulation_steps = 1
    return trainer, batch, trainer._get_num_items_in_batch([batch], device)


def timed_step(trainer, batch, num_items, device) -> float:
    import torch

    trainer.model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.training_step(trainer.model, dict(batch), num_items)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run_memory(args) -> dict:
    """Peak memory of one configuration, alone in this process."""
    import torch

    device = torch.device(args.device)
    trainer, batch, num_items = build(args, args.config, device)
    before = resident_kib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    for _ in range(2):
        timed_step(trainer, batch, num_items, device)
    if device.type == "cuda":
        return {"peak_mib": (torch.cuda.max_memory_allocated() - base_cuda) / 2**20}
    return {"peak_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}


def run_timing(args) -> dict:
    """Step times of the three configurations in one process, interleaved step by step (median)."""
    import torch

    device = torch.device(args.device)
    built = {config: build(args, config, device) for config in args.configs}
    times = {config: [] for config in args.configs}
    for step in range(args.warmup + args.steps):
        for config, (trainer, batch, num_items) in built.items():
            elapsed = timed_step(trainer, batch, num_items, device)
            if step >= args.warmup:
                times[config].append(elapsed)
    return {config: statistics.median(values) for config, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--groups", type=int, default=32, help="S, originals per batch (also the chunk size)")
    parser.add_argument("--group-size", type=int, default=10, help="|B|, samples per group (original included)")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--live-memory", action="store_true", help="measure memory in use (see above)")
    parser.add_argument(
        "--configs",
        nargs="+",
        choices=CONFIGS,
        default=list(CONFIGS),
        help="which to run (one-pass may not fit in memory for large models)",
    )
    parser.add_argument("--no-timing", action="store_true", help="memory only")
    parser.add_argument("--config", choices=(*CONFIGS, "timing"), help="run one part here (used by the driver)")
    args = parser.parse_args()
    if args.config:
        print(json.dumps(run_timing(args) if args.config == "timing" else run_memory(args)))
        return
    env = {**os.environ, **({"MALLOC_MMAP_THRESHOLD_": "65536"} if args.live_memory else {})}

    def child(config: str, environment: dict) -> dict:
        command = [sys.executable, __file__, "--config", config, *sys.argv[1:]]
        output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout
        return json.loads(output.strip().splitlines()[-1])

    peaks = {config: child(config, env)["peak_mib"] for config in args.configs}
    times = {} if args.no_timing else child("timing", dict(os.environ))  # timed with the default allocator
    import torch

    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} torch={torch.__version__} "
        f"device={args.device}"
    )
    print(
        f"BERT {args.layers} layers / {args.hidden}, S={args.groups}, |B|={args.group_size}, {args.seq_len} tokens, "
        f"chunk = S; memory: {'in use (live)' if args.live_memory else 'peak RSS growth'}"
        f"{'' if args.no_timing else f'; time: {args.steps} interleaved steps (median)'}"
    )
    for config in args.configs:
        line = f"  {config:9s} peak {peaks[config]:8.1f} MiB"
        if "plain" in peaks:
            line += f" ({peaks[config] / peaks['plain']:.2f}x plain)"
        if config in times:
            line += f"   step {times[config] * 1000:8.1f} ms"
            if "one-pass" in times:
                line += f" ({times[config] / times['one-pass']:.2f}x one-pass)"
        print(line)


if __name__ == "__main__":
    main()
