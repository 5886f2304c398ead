"""Length-grouped sampling of MMEL groups (``train_sampling_strategy="group_by_length"``) against random batches.

A grouped batch pads every sample of every group to the longest sample of the batch; with length-grouped
sampling (lengths of a group = its longest sample, :meth:`MMELDataCollator.lengths`) batch-mates are groups of
similar length. Measured on an augmented dataset (for the main job's task: the cache folder ``mmel-main``
prints), with the main job's student (the embedded encoder's first 2 layers), batch size and precision:

- padded tokens per epoch (model input positions, padding included) and the share of them that is padding;
- wall time of training epochs, random and grouped alternated ``--repeats`` times on the same machine, and
  their ratio (median over repeats).

    python benchmarks/bench_group_by_length.py --augmented ~/.cache/mmel_hf/rt-polarity-<fingerprint>
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import torch


def padded_tokens(trainer) -> tuple[int, int]:
    """(positions fed to the model, of them real tokens) over one pass of the training dataloader."""
    positions = real = 0
    for batch in trainer.get_train_dataloader():
        positions += batch["input_ids"].numel()
        real += int(batch["attention_mask"].sum())
    return positions, real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--augmented", required=True, help="An augmented dataset folder (an mmel-augment cache).")
    parser.add_argument("--mode", default="hard", help="mmel_loss of the runs (default: hard).")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    options = parser.parse_args()

    from transformers.utils import logging as hf_logging

    from mmel_hf import MMELTrainer, MMELTrainingArguments
    from mmel_hf.augment.precision import fast_bf16_available
    from mmel_hf.workflows.train import load_augmented, resolve_model_path

    hf_logging.set_verbosity_error()
    bf16 = options.precision == "bf16" or (options.precision == "auto" and fast_bf16_available())
    train = load_augmented(options.augmented)["train"]
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    student = resolve_model_path("embedded")  # the students of mmel-main: the embedded encoder, first layers
    tokenizer = AutoTokenizer.from_pretrained(student)
    num_labels = len(train[0]["teacher_original"])

    def trainer_for(strategy: str, output: str) -> MMELTrainer:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            student, num_labels=num_labels, num_hidden_layers=options.layers, dtype=torch.float32
        )
        args = MMELTrainingArguments(
            output_dir=output,
            report_to="none",
            use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
            per_device_train_batch_size=options.batch_size,
            num_train_epochs=options.epochs,
            save_strategy="no",
            max_length=options.max_length,
            mmel_loss=options.mode,
            bf16=bf16,
            seed=0,
            logging_steps=10_000,
            train_sampling_strategy=strategy,
        )
        return MMELTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)

    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, {'bf16' if bf16 else 'fp32'}; {len(train)} groups, batch {options.batch_size}, "
        f"mode {options.mode}, {options.epochs:g} epoch(s)"
    )
    with tempfile.TemporaryDirectory() as output:
        times: dict[str, list[float]] = {"random": [], "group_by_length": []}
        for strategy in times:
            torch.manual_seed(0)
            positions, real = padded_tokens(trainer_for(strategy, output))
            print(f"{strategy:>16}: {positions:,} positions per epoch, {1 - real / positions:.1%} of them padding")
        for _ in range(options.repeats):
            for strategy in times:
                trainer = trainer_for(strategy, output)
                started = time.perf_counter()
                trainer.train()
                times[strategy].append(time.perf_counter() - started)
        for strategy, seconds in times.items():
            print(f"{strategy:>16}: train {', '.join(f'{s:.1f}' for s in seconds)} s")
        ratio = statistics.median(r / g for r, g in zip(times["random"], times["group_by_length"]))
        print(f"random / group_by_length wall time: {ratio:.2f}x (median over {options.repeats} repeat(s))")


if __name__ == "__main__":
    main()
