"""MMELTrainer step time (hard, soft) against plain Trainer on the same flattened batch of S*|B| sequences.

Both trainers run `training_step` (forward, loss, backward) on identical token tensors: plain `Trainer`
sees the S*|B| sequences as an ordinary batch with per-sequence labels (the model's own cross-entropy),
`MMELTrainer` sees them grouped (plus the group mask and teacher outputs). Runs are interleaved
(plain, hard, soft, plain, ...) and the median of each is reported, so slow drift of the machine hits
all three alike. The optimizer step is identical in both and left out, so the ratio is the pessimistic
one.

    python benchmarks/bench_trainer_step.py --layers 2 --hidden 128
    python benchmarks/bench_trainer_step.py --layers 4 --hidden 256
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from mmel_hf import MMELTrainer, MMELTrainingArguments


def build_model(layers: int, hidden: int, seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 2),
        intermediate_size=hidden * 4,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--groups", type=int, default=8, help="S, originals per batch")
    parser.add_argument("--group-size", type=int, default=5, help="|B|, samples per group (original included)")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    n = args.groups * args.group_size
    input_ids = torch.randint(1000, 30000, (n, args.seq_len))
    attention_mask = torch.ones_like(input_ids)
    labels = torch.randint(0, 2, (args.groups,))
    teacher = torch.softmax(torch.randn(n, 2), -1)
    group_mask = torch.ones(args.groups, args.group_size, dtype=torch.bool)
    plain_batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels.repeat_interleave(args.group_size),
    }
    grouped_batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "mmel_group_mask": group_mask,
        "mmel_teacher": teacher,
    }

    output_dir = tempfile.mkdtemp()
    common = dict(output_dir=output_dir, report_to="none", use_cpu=True, disable_tqdm=True)
    trainers = {
        "plain Trainer": (
            Trainer(model=build_model(args.layers, args.hidden), args=TrainingArguments(**common)),
            plain_batch,
        ),
        "MMEL hard": (
            MMELTrainer(
                model=build_model(args.layers, args.hidden),
                args=MMELTrainingArguments(mmel_loss="hard", **common),
                data_collator=lambda rows: rows,
            ),
            grouped_batch,
        ),
        "MMEL soft": (
            MMELTrainer(
                model=build_model(args.layers, args.hidden),
                args=MMELTrainingArguments(mmel_loss="soft", **common),
                data_collator=lambda rows: rows,
            ),
            grouped_batch,
        ),
    }
    num_items = {}
    for name, (trainer, batch) in trainers.items():
        trainer.current_gradient_accumulation_steps = 1  # set by train(); we call training_step directly
        num_items[name] = trainer._get_num_items_in_batch([batch], trainer.args.device)
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for step in range(args.warmup + args.steps):
        for name, (trainer, batch) in trainers.items():
            trainer.model.train()
            trainer.model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            trainer.training_step(trainer.model, dict(batch), num_items[name])
            elapsed = time.perf_counter() - start
            if step >= args.warmup:
                times[name].append(elapsed)

    plain = statistics.median(times["plain Trainer"])
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} threads={torch.get_num_threads()} "
        f"cpus={os.cpu_count()} torch={torch.__version__}"
    )
    print(
        f"BERT {args.layers} layers / {args.hidden}, S={args.groups}, |B|={args.group_size}, "
        f"{n} sequences x {args.seq_len} tokens, {args.steps} steps (median)"
    )
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:14s} {median * 1000:8.1f} ms/step   ratio {median / plain:.3f}")


if __name__ == "__main__":
    main()
