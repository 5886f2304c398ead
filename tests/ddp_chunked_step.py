"""Run by test_chunked.py under torchrun: one SGD step (learning rate 1) with and without mmel_chunk_size.

Writes, from rank 0, the parameter change of each (= the summed gradient) to the file given as argument.
"""

import os
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import bundled_tokenizer_path  # noqa: E402
from mmel_hf import MMELTrainer, MMELTrainingArguments  # noqa: E402

from builders import make_augmented_dataset, make_tiny_bert  # noqa: E402


def gradients(tokenizer, dataset, chunk_size, output_dir):
    model = make_tiny_bert(tokenizer, seed=1)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = MMELTrainingArguments(
        output_dir=output_dir, report_to="none", per_device_train_batch_size=4, gradient_accumulation_steps=2,
        max_steps=1, optim="sgd", learning_rate=1.0, lr_scheduler_type="constant", max_grad_norm=0.0,
        weight_decay=0.0, use_cpu=True, disable_tqdm=True, save_strategy="no", mmel_chunk_size=chunk_size, seed=0,
    )
    MMELTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer).train()
    return {name: before[name] - p.detach() for name, p in model.named_parameters()}


if __name__ == "__main__":
    target = Path(sys.argv[1])
    tokenizer = AutoTokenizer.from_pretrained(bundled_tokenizer_path())
    dataset = make_augmented_dataset(num_rows=16, seed=3)  # ragged groups: the ranks' chunk counts differ
    results = {chunk: gradients(tokenizer, dataset, chunk, str(target.parent / "out")) for chunk in (None, 3)}
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save({"world_size": int(os.environ["WORLD_SIZE"]), "one_pass": results[None], "chunked": results[3]}, target)
