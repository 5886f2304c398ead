"""Speed of the augmenters that generate (issue 20, part 5), on the CPU: ours against the same models run one text
at a time, and EDA against nlpaug's own list call.

- back-translation: two random-weight BART models of Marian's size (6 + 6 layers, width 512, 8 heads) speaking the
  bert-base-uncased vocabulary (throughput does not depend on the weights; random weights never stop early, so every
  answer runs to --max-length tokens on both sides: the same work). Ours: BackTranslationAugmenter, batched by
  length bands; one at a time: the same augmenter with batches of one text.
- eda: EdaAugmenter (seeded per row and sample, the caller's random state restored) against nlpaug's
  RandomWordAug.augment on the whole list, unseeded (what a user of nlpaug runs).

    python benchmarks/bench_generating.py --sentences 32 --eda-sentences 2000
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration  # noqa: E402

from mmel_hf.augment.back_translation import BackTranslationAugmenter  # noqa: E402
from mmel_hf.augment.generation import GenerationSettings  # noqa: E402


def rt_sentences(count: int) -> list[str]:
    rows = (ROOT / "mmel_hf" / "embedded" / "rt_polarity" / "train.jsonl").read_text().splitlines()
    return [json.loads(row)["sentence"] for row in rows[:count]]


def marian_sized(tokenizer, seed: int):
    torch.manual_seed(seed)
    config = BartConfig(vocab_size=tokenizer.vocab_size, d_model=512, encoder_layers=6, decoder_layers=6,
                        encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
                        decoder_ffn_dim=2048, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                        decoder_start_token_id=tokenizer.cls_token_id)  # fmt: skip
    return BartForConditionalGeneration(config).eval()


def back_translation(texts, max_length: int) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "mmel_hf" / "embedded" / "mlm")
    forward, backward = (tokenizer, marian_sized(tokenizer, 0)), (tokenizer, marian_sized(tokenizer, 1))
    found = {}
    for name, batch in (("ours", 64), ("one_at_a_time", 1)):
        augmenter = BackTranslationAugmenter(forward, backward, num_augmented=2, num_candidates=2,
                                             settings=GenerationSettings(batch_size=batch, max_length=max_length))  # fmt: skip
        started = time.perf_counter()
        augmenter.augment_rows([texts], range(len(texts)))
        found[f"{name}_sentences_per_s"] = round(len(texts) / (time.perf_counter() - started), 3)
    found["ours_over_one_at_a_time"] = round(found["ours_sentences_per_s"] / found["one_at_a_time_sentences_per_s"], 2)
    return found


def eda(texts) -> dict:
    import nlpaug.augmenter.word as word

    from mmel_hf.augment.eda import EdaAugmenter

    ours = EdaAugmenter(["swap"], alpha=0.1, num_augmented=4, num_candidates=4)
    started = time.perf_counter()
    ours.augment_rows([texts], range(len(texts)))
    ours_rate = len(texts) / (time.perf_counter() - started)
    peer = word.RandomWordAug(action="swap", aug_p=0.1, aug_min=1)
    started = time.perf_counter()
    for _ in range(4):  # four samples per sentence, as ours
        peer.augment(texts)
    peer_rate = len(texts) / (time.perf_counter() - started)
    return {"ours_sentences_per_s": round(ours_rate, 1), "nlpaug_sentences_per_s": round(peer_rate, 1),
            "ours_over_nlpaug": round(ours_rate / peer_rate, 2)}  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=32)
    parser.add_argument("--eda-sentences", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=24)
    args = parser.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    report = {
        "machine": f"{platform.machine()} threads={torch.get_num_threads()} torch={torch.__version__}",
        "back_translation": back_translation(rt_sentences(args.sentences), args.max_length),
        "eda": eda(rt_sentences(args.eda_sentences)),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
