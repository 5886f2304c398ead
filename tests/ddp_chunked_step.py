"""Run by test_chunked.py under torchrun: one SGD step (learning rate 1) with and without mmel_chunk_size.

Writes, from rank 0, the parameter change of each (= the summed gradient) to the file given as argument.
Everything is imported in ``main`` so that pytest's doctest collection can import this file safely.
"""

import os
import sys
from pathlib import Path


def main(target: Path) -> None:
    import torch
    from transformers import AutoTokenizer

    tests = Path(__file__).resolve().parent
    sys.path[:0] = [str(tests.parent), str(tests)]
    from conftest import bundled_tokenizer_path  # the repository's conftest.py (first on the path)
    from mmel_hf import MMELTrainer, MMELTrainingArguments

    from builders import make_augmented_dataset, make_tiny_bert

    tokenizer = AutoTokenizer.from_pretrained(bundled_tokenizer_path())
    dataset = make_augmented_dataset(num_rows=16, seed=3)  # ragged groups: the ranks' chunk counts differ

    def gradients(chunk_size):
        model = make_tiny_bert(tokenizer, seed=1)
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        args = MMELTrainingArguments(
            output_dir=str(target.parent / "out"),
            report_to="none",
            per_device_train_batch_size=4,
            gradient_accumulation_steps=2,
            max_steps=1,
            optim="sgd",
            learning_rate=1.0,
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            weight_decay=0.0,
            use_cpu=True,
            disable_tqdm=True,
            save_strategy="no",
            mmel_chunk_size=chunk_size,
            seed=0,
        )
        MMELTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer).train()
        return {name: before[name] - p.detach() for name, p in model.named_parameters()}

    results = {chunk: gradients(chunk) for chunk in (None, 3)}
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(
            {"world_size": int(os.environ["WORLD_SIZE"]), "one_pass": results[None], "chunked": results[3]}, target
        )
    from augment_cli.console import end_process_group

    end_process_group()  # exiting with the gloo group alive can abort the process in its teardown (SIGABRT)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
