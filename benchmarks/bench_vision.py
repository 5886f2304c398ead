"""Vision adapter: a small real-image study (Table 1 style) and the throughput checks.

Study: scikit-learn's digits (1,797 real 8x8 grey images, bundled, no download), upscaled bilinearly to
16x16 and repeated to 3 channels, a fixed stratified split (1,437 train / 360 test). ResNet-20, |B| = 4
views (pad-2 crops, i.e. CIFAR's pad-4 scaled to 16 px, + flips), batch 64, the paper's SGD schedule
scaled to 15 epochs, lambda_P = 1, lambda_T = 1. Methods: Baseline(DA) (one random view per image),
DA+UNI (mmel_loss="uniform"), MMEL-H, MMEL-S; seeds 0, 1, 2; mean ± std of test accuracy.

Throughput: views/s of MMELVisionCollator against images/s of one ResNet-20 training step, and the step
time of MMEL-H against DA+UNI on identical view batches (interleaved, median).

    python benchmarks/bench_vision.py study
    python benchmarks/bench_vision.py speed
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F


def digits_data():
    from datasets import Array3D, ClassLabel, Dataset, DatasetDict, Features
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False).clamp(0, 1)
    images = (images.repeat(1, 3, 1, 1) * 255).round().to(torch.uint8).numpy()
    train_idx, test_idx = train_test_split(
        np.arange(len(images)), test_size=360, random_state=0, stratify=digits.target
    )
    features = Features({"img": Array3D(shape=(3, 16, 16), dtype="uint8"), "label": ClassLabel(num_classes=10)})
    return DatasetDict(
        {
            name: Dataset.from_dict({"img": images[idx], "label": digits.target[idx].tolist()}, features=features)
            for name, idx in (("train", train_idx), ("test", test_idx))
        }
    )


def run(method: str, seed: int, data, epochs: float) -> float:
    from mmel_hf import MMELTrainer, MMELTrainingArguments
    from mmel_hf.vision.collator import MMELVisionCollator
    from mmel_hf.vision.schedules import paper_optimizer_and_scheduler
    from mmel_hf.workflows.train_vision import build_model

    mode = {"Baseline(DA)": "none", "DA+UNI": "uniform", "MMEL-H": "hard", "MMEL-S": "soft"}[method]
    torch.manual_seed(seed)
    model = build_model("resnet20", 10)
    views = 1 if mode == "none" else 4
    collator = MMELVisionCollator(num_views=views, padding=2, original_first=mode != "none", seed=seed)
    args = MMELTrainingArguments(
        output_dir=tempfile.mkdtemp(),
        mmel_loss=mode,
        mmel_label_source="original",
        per_device_train_batch_size=64,
        per_device_eval_batch_size=256,
        num_train_epochs=epochs,
        seed=seed,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        logging_strategy="no",
    )
    steps_per_epoch = -(-len(data["train"]) // 64)
    trainer = MMELTrainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=data["train"],
        eval_dataset=data["test"],
        optimizers=paper_optimizer_and_scheduler(model, "cifar", steps_per_epoch, epochs),
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
    )
    trainer.train()
    return trainer.evaluate()["eval_accuracy"]


def study(epochs: float, seeds: list[int]) -> None:
    data = digits_data()
    print(f"digits 16x16: {len(data['train'])} train / {len(data['test'])} test, ResNet-20, |B|=4, {epochs} epochs")
    for method in ("Baseline(DA)", "DA+UNI", "MMEL-H", "MMEL-S"):
        started = time.perf_counter()
        accuracies = [run(method, seed, data, epochs) for seed in seeds]
        print(
            f"  {method:13s} {100 * statistics.mean(accuracies):6.2f} (±{100 * statistics.stdev(accuracies):.2f})  "
            f"seeds {[round(100 * a, 2) for a in accuracies]}  {time.perf_counter() - started:.0f}s",
            flush=True,
        )


def speed() -> None:
    from mmel_hf import MMELTrainer, MMELTrainingArguments
    from mmel_hf.vision.collator import MMELVisionCollator
    from mmel_hf.workflows.train_vision import build_model

    rows = [
        {"img": np.random.default_rng(i).integers(0, 256, (3, 32, 32), dtype=np.uint8), "label": i % 10}
        for i in range(128)
    ]
    collator = MMELVisionCollator(num_views=10)
    collator(rows)
    start = time.perf_counter()
    for _ in range(5):
        batch = collator(rows)
    views_per_second = 5 * 1280 / (time.perf_counter() - start)

    trainers = {}
    for mode in ("uniform", "hard"):
        torch.manual_seed(0)
        args = MMELTrainingArguments(
            output_dir=tempfile.mkdtemp(),
            mmel_loss=mode,
            mmel_label_source="original",
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
        )
        trainer = MMELTrainer(model=build_model("resnet20", 10), args=args, data_collator=collator)
        trainer.current_gradient_accumulation_steps = 1
        trainers[mode] = trainer
    small = {k: v[: 32 * 10] if k == "pixel_values" else v[:32] for k, v in batch.items()}
    times = {mode: [] for mode in trainers}
    for step in range(12):
        for mode, trainer in trainers.items():
            trainer.model.train()
            start = time.perf_counter()
            trainer.training_step(trainer.model, dict(small), torch.tensor(32))
            if step >= 2:
                times[mode].append(time.perf_counter() - start)
    uniform, hard = statistics.median(times["uniform"]), statistics.median(times["hard"])
    print(
        f"machine: {platform.machine()} threads={torch.get_num_threads()} cpus={os.cpu_count()} torch={torch.__version__}"
    )
    print(f"  views: {views_per_second:,.0f} views/s (CIFAR pad-4 crop + flip + normalise, 128 images x 10 views)")
    print(
        f"  ResNet-20 training step, 32 x 10 views: {1000 * uniform:.0f} ms = {320 / uniform:,.0f} images/s "
        f"-> view generation is {views_per_second / (320 / uniform):.0f}x faster than training consumes views"
    )
    print(
        f"  MMEL-H vs DA+UNI step time on the same views: {1000 * hard:.0f} ms vs {1000 * uniform:.0f} ms, "
        f"ratio {hard / uniform:.3f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["study", "speed"])
    parser.add_argument("--epochs", type=float, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    options = parser.parse_args()
    sys.exit(study(options.epochs, options.seeds) if options.what == "study" else speed())
