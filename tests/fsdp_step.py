"""Run by test_trainer.py under torchrun: MMELTrainer asked for FSDP on the CPU.

transformers and accelerate run such a job as plain DDP (``MULTI_CPU``) without a word; MMELTrainer refuses it.
Writes, from rank 0, what happened to the file given as argument. Imports live in ``main`` so that pytest's
doctest collection can import this file safely.
"""

import json
import os
import sys
from pathlib import Path


def main(target: Path) -> None:
    from transformers import AutoTokenizer

    tests = Path(__file__).resolve().parent
    sys.path[:0] = [str(tests.parent), str(tests)]
    from conftest import bundled_tokenizer_path  # the repository's conftest.py (first on the path)
    from mmel_hf import MMELTrainer, MMELTrainingArguments

    from builders import make_augmented_dataset, make_tiny_bert

    tokenizer = AutoTokenizer.from_pretrained(bundled_tokenizer_path())
    args = MMELTrainingArguments(
        output_dir=str(target.parent / "out"),
        report_to="none",
        use_cpu=True,
        max_steps=1,
        mmel_loss="hard",
        fsdp=True,
        fsdp_config={"transformer_layer_cls_to_wrap": ["BertLayer"]},
    )
    try:
        MMELTrainer(
            model=make_tiny_bert(tokenizer, seed=1),
            args=args,
            train_dataset=make_augmented_dataset(8),
            processing_class=tokenizer,
        )
        outcome = {"refused": None}
    except ValueError as err:
        outcome = {"refused": str(err)}
    if int(os.environ.get("RANK", "0")) == 0:
        target.write_text(json.dumps({"world_size": int(os.environ["WORLD_SIZE"]), **outcome}))
    from augment_cli.console import end_process_group

    end_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
