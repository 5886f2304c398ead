"""The main job, offline, on the embedded default: augment, label, then train MMEL-H and the baseline.

1. ``mmel-augment --task rt-polarity`` on the first ``train_examples`` training examples: Algorithm 2
   (greedy, |B| = 5, ratio 0.4) with the embedded fill-mask model, labelled by the embedded teacher.
   Cached: a second run reuses it in seconds.
2. A small student (the first ``student_layers`` layers of the embedded model's encoder, a fresh
   classification head) trained twice with the same budget and seed: plain fine-tuning on the originals
   (``mmel_loss="none"``, the paper's "Baseline") and MMEL-H (``mmel_loss="hard"``, lambda_P = 1).
3. Both validation accuracies, and where everything was saved, are printed and written to
   ``<output_dir>/results.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["MainJobConfig", "build_student", "run_main_job"]

logger = logging.getLogger(__name__)


@dataclass
class MainJobConfig:
    """Options of ``mmel-main``."""

    output_dir: str = field(default="mmel_main_output", metadata={"help": "Where the results and students go."})
    train_examples: int = field(default=1000, metadata={
        "help": "Training examples of rt-polarity to augment and train on (of 11,752)."})
    group_size: int = field(default=5, metadata={"help": "|B|, the original included."})
    ratio: float = field(default=0.4, metadata={"help": "Fraction of word pieces replaced (Algorithm 2)."})
    student_layers: int = field(default=2, metadata={"help": "Encoder layers of the student (of the embedded 6)."})
    epochs: float = field(default=3.0, metadata={"help": "Training epochs for each student."})
    batch_size: int = field(default=16, metadata={"help": "Originals per batch (MMEL-H also sees their |B|-1 samples)."})
    learning_rate: float = field(default=3e-4, metadata={"help": "AdamW learning rate of the students."})
    max_length: int = field(default=64, metadata={"help": "Longest sequence in word pieces."})
    seed: int = field(default=0, metadata={"help": "Seed of augmentation and training."})
    cache_dir: str | None = field(default=None, metadata={"help": "Augmentation cache (default ~/.cache/mmel_hf)."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})


def build_student(mlm_path: str, num_layers: int, num_labels: int = 2):
    """A sequence classifier from the first ``num_layers`` encoder layers of a fill-mask model."""
    import torch
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        mlm_path, num_hidden_layers=num_layers, num_labels=num_labels, dtype=torch.float32
    )


def _train_and_evaluate(config: MainJobConfig, mode: str, data, tokenizer, mlm_path: str, output: Path) -> dict:
    import torch
    from transformers import set_seed

    from .metrics import glue_compute_metrics
    from .mmel_config import MMELTrainingArguments
    from .mmel_trainer import MMELTrainer

    set_seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_student(mlm_path, config.student_layers)
    args = MMELTrainingArguments(
        output_dir=str(output), mmel_loss=mode, max_length=config.max_length, num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=128,
        learning_rate=config.learning_rate, warmup_steps=0.1, weight_decay=0.01, seed=config.seed,
        logging_steps=20, save_strategy="no", report_to="none", use_cpu=not torch.cuda.is_available(),
        disable_tqdm=not config.progress,
    )
    trainer = MMELTrainer(model=model, args=args, train_dataset=data["train"], eval_dataset=data["validation"],
                          processing_class=tokenizer, compute_metrics=glue_compute_metrics("sst2"))
    started = time.perf_counter()
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model(str(output))
    return {"validation_accuracy": metrics["eval_accuracy"], "train_seconds": round(time.perf_counter() - started, 1),
            "model_dir": str(output.resolve())}


def run_main_job(config: MainJobConfig) -> dict:
    """Run the whole job; returns (and writes) the results."""
    from transformers import AutoTokenizer

    from .augment import AugmentConfig, run_augmentation
    from .embedded import embedded_mlm_path

    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    augmented = run_augmentation(AugmentConfig(
        task="rt-polarity", max_train_samples=config.train_examples, group_size=config.group_size,
        ratio=config.ratio, search="greedy", seed=config.seed, max_length=config.max_length,
        cache_dir=config.cache_dir, output_dir=str(output / "augmented"), progress=config.progress,
    ))
    augment_seconds = time.perf_counter() - started
    mlm_path = embedded_mlm_path()
    tokenizer = AutoTokenizer.from_pretrained(mlm_path)
    results = {
        "config": asdict(config),
        "augmentation": {**augmented.summary, "seconds": round(augment_seconds, 1)},
        "baseline": _train_and_evaluate(config, "none", augmented.dataset, tokenizer, mlm_path, output / "baseline"),
        "mmel_hard": _train_and_evaluate(config, "hard", augmented.dataset, tokenizer, mlm_path, output / "mmel_hard"),
        "total_seconds": None,
    }
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    (output / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return results
