"""The prepared GPU check (issue 17): one call, one JSON, every number with the card that gave it.

On a machine with one NVIDIA GPU (torch, transformers, accelerate installed; ``datasets`` perhaps not; nothing
downloadable), from the repository root: ``benchmarks/gpu_check.sh`` (installs the wheels that
``benchmarks/gpu_check_wheels.sh`` prepared here, then runs this file). Models have random weights of BERT-base
shape (throughput does not depend on the weights); the sentences are rt-polarity's, shipped in the tree
(``mmel_hf/embedded/rt_polarity``), with the embedded bert-base-uncased tokenizer (the weights are not needed).

It measures, each timing between ``torch.cuda.synchronize()`` calls:

- ``ceiling``: the card's bf16 matmul rate (TFLOP/s) and a warm BERT encoder at one fixed large shape (tokens/s,
  TFLOP/s, their share of the matmul rate): what every other figure is measured against;
- ``mfu``: Algorithm 2 cold, bf16 with the model held in bf16: TFLOP/s on *real* tokens as a share of the matmul
  ceiling (the figure the project reports), the real-token share and the distinct forward shapes per 1,000 rows;
  at the CUDA defaults (passes of up to 65,536 tokens and 4,096 sequences, cuDNN attention kept out), at the former
  1,024 sequences a pass, and with cuDNN attention allowed (the A/Bs);
- ``cli``: cold-process ``mmel-augment`` on an SST-2-like and an RTE-like folder made from shipped text, then
  ``mmel-train`` hard/uniform/none with evaluation, each timed end to end (the device's defaults), and a plain
  ``transformers.Trainer`` on the same sequences (``plain_trainer``, ``mmel_hard_over_plain``);
- ``nan_length``: a few training steps at length 192 (64 mod 128) with padded rows, cuDNN attention allowed
  and kept out: whether every gradient stays finite (pytorch #196678 on Hopper);
- ``glue_projection``: the minutes ``mmel-augment`` would take on every GLUE training set, from ``cli``'s rates;
- ``augment``: Algorithm 2 (greedy, |B| = 5, ratio 0.4) in sentences/s, fp32 and bf16, at several batch sizes,
  against the same forward shapes through the bare encoder (``limit``) and the naive per-sentence fill-mask
  pipeline; whether the samples are identical across batch sizes and between fp32 and bf16 (fractions);
- ``teacher``: TeacherLabeler texts/s (fp32, bf16) against raw batched inference of the same batches;
- ``trainer_step``: MMELTrainer (hard, soft) training-step time against plain Trainer on the same S*|B| sequences;
- ``generators``: back-translation (Marian-sized random BART pair, bf16) batched against one text at a time;
- ``chunked``: peak memory of one training step with and without ``mmel_chunk_size``, and the largest gradient
  difference between the chunked step and the same chunks with every activation kept, dropout on (the CUDA
  random state must be replayed in the recomputation);
- ``layout``: whether ``run_augmentation`` gives the bitwise-same dataset for other shard sizes and claim
  orders on this device (the fixed blocks of issue 16), with the verification tolerance of its precision.

``--dry-run`` runs every part on the CPU with tiny models and counts (the test suite runs it), so the script
is known to work before device time is spent on it.

    benchmarks/gpu_check.sh                                    # on the GPU machine: $OUT/gpu_check.json
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from transformers import (  # noqa: E402
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)

from mmel_hf.augment.fill_mask import FillMaskAugmenter  # noqa: E402
from mmel_hf.augment.teacher import TeacherLabeler  # noqa: E402

BASE = dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072)
TINY = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128)
# (sentences, batch sizes, pipeline sentences, teacher texts, step repeats, groups per step, |B|, chunk)
FULL = dict(
    nan_length=192,
    nan_rows=32,
    nan_steps=5,
    cli_rows=1024,
    cli_pairs=256,
    cli_modes=["hard", "uniform", "none"],
    matmul=8192,
    ceiling_batch=256,
    ceiling_length=128,
    mfu_sentences=1024,
    mfu_batch=4096,
    mfu_tokens=65536,
    mfu_rows_batch=1024,
    sentences=512,
    batch_sizes=[64, 256, 1024],
    pipeline=16,
    teacher=4096,
    repeats=10,
    groups=32,
    width=5,
    chunk=32,
    layout_rows=96,
    block=32,
    generator_size=(512, 6, 8),
    generator_length=32,
    generator_sentences=256,
    generator_single=16,
)
DRY = dict(
    nan_length=24,
    nan_rows=4,
    nan_steps=2,
    cli_rows=16,
    cli_pairs=8,
    cli_modes=["hard"],
    matmul=128,
    ceiling_batch=4,
    ceiling_length=16,
    mfu_sentences=12,
    mfu_batch=16,
    mfu_tokens=256,
    mfu_rows_batch=8,
    sentences=12,
    batch_sizes=[4, 16],
    pipeline=2,
    teacher=24,
    repeats=2,
    groups=4,
    width=3,
    chunk=4,
    layout_rows=10,
    block=4,
    generator_size=(32, 1, 2),
    generator_length=6,
    generator_sentences=6,
    generator_single=2,
)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def machine(device: torch.device) -> dict:
    import transformers

    found = {
        "device": str(device),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        found.update(
            card=properties.name,
            memory_gib=round(properties.total_memory / 2**30, 1),
            capability=".".join(map(str, torch.cuda.get_device_capability(device))),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    return found


def encoder_flops_per_token(size: dict, length: float) -> float:
    """Forward FLOPs of one token through a BERT encoder: 2 x its layers' weights (the matmuls) plus attention's
    QK^T and AV (4 x length x hidden per layer)."""
    hidden, layers, inner = size["hidden_size"], size["num_hidden_layers"], size["intermediate_size"]
    weights = layers * (4 * hidden * hidden + 2 * hidden * inner)
    return 2 * weights + 4 * length * hidden * layers


def check_ceiling(size, counts, device) -> dict:
    """The card's ceiling: a large bf16 matmul's rate, and a warm BERT encoder at one fixed large shape (tokens/s,
    TFLOP/s and their share of the matmul rate): what "fast" is measured against (fp32 on the dry run's CPU)."""
    from transformers import BertModel

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    n, repeats = counts["matmul"], counts["repeats"]
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b  # warm-up
    seconds, _ = timed(lambda: [a @ b for _ in range(repeats)], device)
    matmul = 2 * n**3 * repeats / seconds / 1e12
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=30522, **size)).to(device=device, dtype=dtype).eval()
    batch, length = counts["ceiling_batch"], counts["ceiling_length"]
    ids = torch.randint(1000, 29000, (batch, length), device=device)
    with torch.inference_mode():
        encoder(input_ids=ids)  # warm-up: kernels chosen for this one shape
        seconds, _ = timed(lambda: [encoder(input_ids=ids) for _ in range(repeats)], device)
    tokens_per_s = batch * length * repeats / seconds
    encoder_tflops = tokens_per_s * encoder_flops_per_token(size, length) / 1e12
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "matmul_tflops": round(matmul, 2),
        "encoder_shape": [batch, length],
        "encoder_tokens_per_s": round(tokens_per_s),
        "encoder_tflops": round(encoder_tflops, 2),
        "encoder_share_of_matmul": round(encoder_tflops / matmul, 3),
    }


def check_mfu(tokenizer, texts, size, counts, device, ceiling: dict) -> dict:
    """Algorithm 2 (bf16 on CUDA, the model held in bf16, cold: no warm-up) in TFLOP/s on *real* tokens as a share
    of the matmul ceiling, the share of real tokens, and the distinct forward shapes per 1,000 rows. Variants:
    ``ours`` (the CUDA defaults: passes of up to 65,536 tokens and 4,096 sequences, cuDNN attention kept out),
    ``rows_1024`` (the former default: 1,024 sequences a pass, no token budget) and ``cudnn_allowed`` (ours with
    MMEL_HF_CUDNN_ATTENTION=1), each meeting its kernels' shapes for the first time."""
    from mmel_hf.utils.attention import KEEP_CUDNN

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    precision = "bf16" if device.type == "cuda" else "fp32"
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, **size)).to(device=device, dtype=dtype).eval()
    seen = {}

    def count(module, args, kwargs):
        mask = kwargs["attention_mask"]
        seen["shapes"].add(tuple(mask.shape))
        seen["sums"].append(mask.sum())  # a device tensor: read after the timing, so the hook adds no sync
        seen["all"] += mask.numel()

    handle = model.base_model.register_forward_pre_hook(count, with_kwargs=True)
    ours = {"batch_size": counts["mfu_batch"], "max_tokens": counts["mfu_tokens"]}
    variants = (
        ("ours", None, ours),
        ("rows_1024", None, {"batch_size": counts["mfu_rows_batch"], "max_tokens": None}),
        ("cudnn_allowed", "1", ours),
    )
    result = {"sentences": len(texts), "precision": precision, **ours}
    try:
        for variant, keep, batching in variants:
            seen.update(all=0, shapes=set(), sums=[])
            if keep:
                os.environ[KEEP_CUDNN] = keep
            augmenter = FillMaskAugmenter(
                model, tokenizer, num_augmented=counts["width"] - 1, precision=precision, **batching
            )
            seconds, _ = timed(lambda a=augmenter: a.augment(texts), device)
            os.environ.pop(KEEP_CUDNN, None)
            real = int(torch.stack(seen["sums"]).sum()) if seen["sums"] else 0
            mean_length = seen["all"] / max(1, sum(shape[0] for shape in seen["shapes"]))
            tflops = real / seconds * encoder_flops_per_token(size, mean_length) / 1e12
            result[variant] = {
                "sentences_per_s": round(len(texts) / seconds, 2),
                "real_token_share": round(real / max(seen["all"], 1), 3),
                "real_token_tflops": float(f"{tflops:.4g}"),  # significant digits: the dry run's are tiny, not 0
                "mfu": float(f"{tflops / ceiling['matmul_tflops']:.4g}") if ceiling.get("matmul_tflops") else None,
                "distinct_shapes_per_1000_rows": round(1000 * len(seen["shapes"]) / len(texts), 1),
            }
    finally:
        handle.remove()
        os.environ.pop(KEEP_CUDNN, None)
    return result


def check_cli(tokenizer, texts, size, counts) -> dict:
    """The commands as a user runs them, each a cold process timed end to end: ``mmel-augment`` on an SST-2-like
    and an RTE-like GLUE folder made from shipped text (models of the check's size with random weights, the
    device's defaults), then ``mmel-train`` in each of ``cli_modes`` on the SST-2-like set with its evaluation."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-cli-") as work:
        return _cli_runs(tokenizer, texts, size, counts, Path(work))


def _cli_runs(tokenizer, texts, size, counts, work: Path) -> dict:
    import subprocess

    torch.manual_seed(0)
    mlm, teacher = work / "mlm", work / "teacher"
    BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, **size)).save_pretrained(mlm)
    BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, num_labels=2, **size)).save_pretrained(
        teacher
    )
    for folder in (mlm, teacher):
        tokenizer.save_pretrained(folder)
    pool = (texts * (counts["cli_rows"] // len(texts) + 2))[: counts["cli_rows"] + 1]
    sst, rte = work / "SST-2", work / "RTE"
    for folder in (sst, rte):
        folder.mkdir()
    single = ["sentence\tlabel", *(f"{t}\t{i % 2}" for i, t in enumerate(pool[:-1]))]
    pairs = ["index\tsentence1\tsentence2\tlabel"] + [
        f"{i}\t{pool[i]}\t{pool[i + 1]}\t{('entailment', 'not_entailment')[i % 2]}" for i in range(counts["cli_pairs"])
    ]
    for folder, lines in ((sst, single), (rte, pairs)):
        (folder / "train.tsv").write_text("\n".join(lines) + "\n")
        (folder / "dev.tsv").write_text("\n".join(lines[: max(2, len(lines) // 8)]) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}

    def run(module: str, argv: list) -> float:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", module, *map(str, argv)], env=env, capture_output=True, text=True, timeout=600
        )
        if done.returncode:
            raise RuntimeError(f"{module}: {(done.stderr.strip().splitlines() or ['failed'])[-1]}")
        return time.perf_counter() - started

    result = {}
    for task, folder, rows in (("sst2", sst, counts["cli_rows"]), ("rte", rte, counts["cli_pairs"])):
        seconds = run(
            "augment_cli.augment",
            ["--task", task, "--data-dir", folder, "--mlm-model", mlm, "--teacher", teacher, "--no-progress",
             "--cache-dir", work / "cache", "--output-dir", work / f"{task}-augmented"],
        )  # fmt: skip
        result[f"augment_{task}"] = {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds, 2)}
    for mode in counts["cli_modes"]:
        data = ["--data-dir", sst] if mode == "none" else ["--augmented", work / "sst2-augmented"]
        out = work / f"train-{mode}"
        seconds = run(
            "augment_cli.train",
            ["--task", "sst2", *data, "--model", mlm, "--mmel-loss", mode, "--num-train-epochs", "1",
             "--per-device-train-batch-size", "32", "--output-dir", out, "--disable-tqdm", "true"],
        )  # fmt: skip
        summary = json.loads((out / "metrics.json").read_text())
        sequences = counts["cli_rows"] * (1 if mode == "none" else counts["width"])
        result[f"train_{mode}"] = {
            "seconds": round(seconds, 2),
            "train_seconds": summary["train_seconds"],
            "sequences_per_train_second": round(sequences / max(summary["train_seconds"], 1e-9), 1),
        }
    result["plain_trainer"] = plain_trainer(tokenizer, mlm, work / "sst2-augmented", counts, work / "plain")
    # The target (>= 0.9): mmel-train hard's sequences per training second over the plain Trainer's. Its
    # train_runtime includes the evaluation after the epoch, so the ratio errs on mmel-train's slow side.
    if "train_hard" in result:
        result["mmel_hard_over_plain"] = round(
            result["train_hard"]["sequences_per_train_second"] / result["plain_trainer"]["sequences_per_second"], 3
        )
    return result


def plain_trainer(tokenizer, model_folder: Path, augmented: Path, counts, output: Path) -> dict:
    """A plain ``transformers.Trainer`` on the same sequences ``mmel-train --mmel-loss hard`` sees (every original
    and its augmented samples, as independent rows), the same model, batch (32 groups x |B| sequences) and
    precision defaults: the reference ``mmel-train`` is measured against."""
    from datasets import Dataset, load_from_disk
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

    from mmel_hf.utils.devices import cuda_with_fast_bf16

    train = load_from_disk(str(augmented))["train"]
    texts, labels = [], []
    for row in train:
        group = [row["sentence"], *row["augmented_sentence"]]
        texts += group
        labels += [row["label"]] * len(group)
    data = Dataset.from_dict(dict(tokenizer(texts, truncation=True, max_length=128), labels=labels))
    model = AutoModelForSequenceClassification.from_pretrained(model_folder, num_labels=2, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=str(output), per_device_train_batch_size=32 * counts["width"], num_train_epochs=1,
        bf16=cuda_with_fast_bf16(), report_to="none", save_strategy="no", disable_tqdm=True, logging_strategy="no",
        use_cpu=not torch.cuda.is_available(),
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=DataCollatorWithPadding(tokenizer))
    seconds = trainer.train().metrics["train_runtime"]
    return {
        "sequences": len(texts),
        "train_seconds": round(seconds, 2),
        "sequences_per_second": round(len(texts) / seconds, 1),
    }


# The official GLUE training sets: rows, and whether a row is a sentence pair.
GLUE_TRAIN = {
    "cola": (8551, False), "sst2": (67349, False), "mrpc": (3668, True), "qqp": (363846, True), "stsb": (5749, True),
    "mnli": (392702, True), "qnli": (104743, True), "rte": (2490, True), "wnli": (635, True),
}  # fmt: skip


def glue_projection(cli: dict) -> dict:
    """The time ``mmel-augment`` (Algorithm 2 and the teacher) would take on every GLUE training set, projected from
    the ``cli`` part's end-to-end rates: single sentences at the SST-2-like rate, pairs at the RTE-like rate (two
    rt-polarity sentences, about 46 pieces: real pairs such as RTE's are longer, so this is a lower bound)."""
    single, pair = cli["augment_sst2"]["rows_per_s"], cli["augment_rte"]["rows_per_s"]
    minutes = {
        task: round(rows / (pair if is_pair else single) / 60, 1) for task, (rows, is_pair) in GLUE_TRAIN.items()
    }
    return {
        "minutes_by_task": minutes,
        "total_minutes": round(sum(minutes.values()), 1),
        "from_rows_per_s": [single, pair],
    }


def check_nan_length(size, counts, device) -> dict:
    """torch 2.11's cuDNN attention backward can give NaN gradients with a padding mask on Hopper when the sequence
    length is 64 modulo 128 (pytorch #196678): a few training steps of a BERT classifier at length 192 with padded
    rows, with cuDNN attention allowed and with ours (cuDNN kept out); is every gradient finite?"""
    from mmel_hf.utils.attention import KEEP_CUDNN, without_cudnn_attention

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    length, rows = counts["nan_length"], counts["nan_rows"]
    result = {"length": length}
    for variant, keep in (("ours", None), ("cudnn_allowed", "1")):
        if keep:
            os.environ[KEEP_CUDNN] = keep
        try:
            torch.manual_seed(0)
            model = BertForSequenceClassification(BertConfig(vocab_size=30522, num_labels=2, **size)).to(device)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            ids = torch.randint(1000, 29000, (rows, length), device=device)
            mask = torch.ones_like(ids)
            mask[rows // 2 :, length // 2 :] = 0  # half the rows padded: the condition of the bug
            labels = torch.randint(0, 2, (rows,), device=device)
            finite = True
            for _ in range(counts["nan_steps"]):
                with (
                    without_cudnn_attention(device),
                    torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32),
                ):
                    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                loss.backward()
                finite &= all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
                optimizer.step()
                optimizer.zero_grad()
            result[variant] = {"all_gradients_finite": finite, "last_loss": round(float(loss), 4)}
        finally:
            os.environ.pop(KEEP_CUDNN, None)
    return result


def sentences(tokenizer, count: int) -> list[str]:
    rows = (json.loads(line) for line in open(ROOT / "mmel_hf" / "embedded" / "rt_polarity" / "train.jsonl"))
    chosen = [r["sentence"] for r in rows if 8 <= len(tokenizer.tokenize(r["sentence"])) <= 62]
    return chosen[:count]


def check_augment(tokenizer, texts, size, counts, device, precisions) -> dict:
    from bench_augment import measure_limit, naive_pipeline

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, **size)).to(device).eval()
    width = counts["width"] - 1
    result, reference = {"sentences": len(texts), "rates": {}}, None
    for precision in precisions:
        for batch in counts["batch_sizes"]:
            augmenter = FillMaskAugmenter(
                model, tokenizer, num_augmented=width, ratio=0.4, batch_size=batch, precision=precision
            )
            augmenter.augment(texts[:8])  # warm-up (kernels are chosen per shape)
            seconds, samples = timed(lambda a=augmenter: a.augment(texts), device)
            entry = {"sentences_per_s": round(len(texts) / seconds, 2)}
            if reference is None:
                reference = samples
                entry["limit_sentences_per_s"] = round(measure_limit(augmenter, texts), 2)
            entry["identical_to_fp32_first_batch_size"] = _identical(samples, reference)
            result["rates"][f"{precision}@{batch}"] = entry
    peers = texts[: counts["pipeline"]]
    seconds, _ = timed(lambda: naive_pipeline(model, tokenizer, peers, width, 0.4, 0), device)
    result["pipeline_sentences_per_s"] = round(len(peers) / seconds, 2)
    return result


def _identical(a, b) -> float:
    pairs = [(x, y) for group_a, group_b in zip(a, b) for x, y in zip(group_a, group_b)]
    return round(sum(x == y for x, y in pairs) / max(len(pairs), 1), 4)


def check_teacher(tokenizer, texts, size, device, precisions) -> dict:
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, num_labels=2, **size))
    model = model.to(device).eval()
    found = {"texts": len(texts)}
    for precision in precisions:
        labeler = TeacherLabeler(model, tokenizer, batch_size=256, precision=precision)
        labeler.predict(texts[:64])
        seconds, _ = timed(lambda lab=labeler: lab.predict(texts), device)
        found[f"{precision}_texts_per_s"] = round(len(texts) / seconds, 1)
    from bench_augment import raw_teacher_inference

    raw = raw_teacher_inference(model, tokenizer, texts)
    raw()
    seconds, _ = timed(raw, device)
    found["raw_fp32_texts_per_s"] = round(len(texts) / seconds, 1)
    return found


def check_generators(tokenizer, texts, counts, device) -> dict:
    """Back-translation (issue 20) on the device: two random-weight BART models of Marian's size (of the check's
    size on the dry run) held in bf16 on CUDA, the augmenter's batched generate against the same augmenter one text
    at a time, in sentences/s (random weights never stop early: every answer runs to ``generator_length`` tokens,
    the same work both ways)."""
    from transformers import BartConfig, BartForConditionalGeneration

    from mmel_hf.augment.back_translation import BackTranslationAugmenter
    from mmel_hf.augment.generation import GenerationSettings

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    size = counts["generator_size"]
    ids = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
               eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.cls_token_id)  # fmt: skip

    def model(seed):
        torch.manual_seed(seed)
        config = BartConfig(vocab_size=tokenizer.vocab_size, d_model=size[0], encoder_layers=size[1],
                            decoder_layers=size[1], encoder_attention_heads=size[2], decoder_attention_heads=size[2],
                            encoder_ffn_dim=4 * size[0], decoder_ffn_dim=4 * size[0], max_position_embeddings=512,
                            **ids)  # fmt: skip
        return BartForConditionalGeneration(config).to(device=device, dtype=dtype).eval()

    forward, backward = (tokenizer, model(0)), (tokenizer, model(1))
    found = {"dtype": str(dtype).removeprefix("torch."), "answer_tokens": counts["generator_length"]}
    for name, batch, sentences in (("batched", 256, counts["generator_sentences"]),
                                   ("one_at_a_time", 1, counts["generator_single"])):  # fmt: skip
        settings = GenerationSettings(batch_size=batch, max_length=counts["generator_length"])
        augmenter = BackTranslationAugmenter(forward, backward, num_augmented=2, num_candidates=2, settings=settings)
        seconds, _ = timed(lambda a=augmenter, t=texts[:sentences]: a.augment_rows([t], range(len(t))), device)
        found[f"{name}_sentences_per_s"] = round(sentences / seconds, 2)
    found["batched_over_one_at_a_time"] = round(
        found["batched_sentences_per_s"] / found["one_at_a_time_sentences_per_s"], 2
    )
    return found


def grouped_batch(tokenizer, texts, groups: int, width: int):
    from datasets import Dataset

    from mmel_hf import MMELDataCollator

    rows = {
        "sentence": texts[:groups],
        "label": [i % 2 for i in range(groups)],
        "augmented_sentence": [[t] * (width - 1) for t in texts[:groups]],
        "teacher_original": [[0.3, 0.7]] * groups,
        "teacher_augmented": [[[0.6, 0.4]] * (width - 1)] * groups,
    }
    dataset = Dataset.from_dict(rows)
    return dataset, MMELDataCollator(tokenizer, text_columns=("sentence",))([dataset[i] for i in range(groups)])


def _args(cls, folder, device, **extra):
    return cls(
        output_dir=folder,
        per_device_train_batch_size=4,
        report_to="none",
        use_cpu=device.type == "cpu",
        learning_rate=1e-5,
        **extra,
    )


def check_trainer_step(tokenizer, texts, size, counts, device) -> dict:
    from mmel_hf import MMELTrainer, MMELTrainingArguments

    dataset, batch = grouped_batch(tokenizer, texts, counts["groups"], counts["width"])
    flat = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    flat["labels"] = torch.zeros(flat["input_ids"].shape[0], dtype=torch.long)
    folder = tempfile.mkdtemp()
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, num_labels=2, **size)).to(device)
    trainers = {"plain": (Trainer(model=model, args=_args(TrainingArguments, folder, device)), flat)}
    for mode in ("hard", "soft"):
        trainers[mode] = (
            MMELTrainer(
                model=model,
                args=_args(MMELTrainingArguments, folder, device, mmel_loss=mode),
                train_dataset=dataset,
                processing_class=tokenizer,
            ),
            batch,
        )
    num_items = {}
    for name, (trainer, inputs) in trainers.items():
        trainer.current_gradient_accumulation_steps = 1  # set by train(); training_step is called directly
        num_items[name] = trainer._get_num_items_in_batch([inputs], device)
    times = {name: [] for name in trainers}
    model.train()
    for _ in range(counts["repeats"] + 1):  # interleaved; the first round warms up
        for name, (trainer, inputs) in trainers.items():
            model.zero_grad(set_to_none=True)
            step = lambda t=trainer, i=inputs, n=num_items[name]: t.training_step(model, dict(i), n)  # noqa: E731
            seconds, _ = timed(step, device)
            times[name].append(seconds)
    median = {name: statistics.median(values[1:]) for name, values in times.items()}
    return {
        "sequences_per_step": int(flat["input_ids"].shape[0]),
        "median_ms": {k: round(1000 * v, 2) for k, v in median.items()},
        "hard_over_plain": round(median["hard"] / median["plain"], 3),
        "soft_over_plain": round(median["soft"] / median["plain"], 3),
    }


def check_chunked(tokenizer, texts, size, counts, device) -> dict:
    from mmel_hf import MMELTrainer, MMELTrainingArguments

    dataset, batch = grouped_batch(tokenizer, texts, counts["groups"], counts["width"])
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, num_labels=2, hidden_dropout_prob=0.3, **size)
    model = BertForSequenceClassification(config).to(device).train()
    folder, chunk = tempfile.mkdtemp(), counts["chunk"]
    batch = {k: v.to(device) for k, v in batch.items()}

    def step(chunk_size, forward=None):
        trainer = MMELTrainer(
            model=model,
            args=_args(MMELTrainingArguments, folder, device, mmel_chunk_size=chunk_size),
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        if forward is not None:
            trainer._forward = forward
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        torch.manual_seed(11)
        trainer.compute_loss(model, dict(batch)).backward()
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20 if device.type == "cuda" else None
        return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}, peak

    def kept_chunks(model, inputs):  # the same chunks, every activation kept
        size_ = inputs["input_ids"].shape[0]
        logits = torch.cat(
            [model(**{k: v[s : s + chunk] for k, v in inputs.items()}).logits for s in range(0, size_, chunk)]
        )
        return logits, {"logits": logits}

    chunked, chunked_peak = step(chunk)
    kept, _ = step(None, forward=kept_chunks)
    _, one_pass_peak = step(None)
    difference = max((chunked[n] - kept[n]).abs().max().item() for n in kept)
    return {
        "sequences": int(batch["input_ids"].shape[0]),
        "chunk": chunk,
        "peak_mib": {"one_pass": one_pass_peak, "chunked": chunked_peak},
        "max_abs_gradient_difference_vs_kept_chunks": difference,
        "dropout_replayed": difference < 1e-4,
    }


def check_layout(tokenizer, texts, size, counts, device, precision) -> dict:
    """run_augmentation on this device with other shard sizes and claim orders: the same bytes (issue 16)."""
    from mmel_hf.augment import AugmentConfig, run_augmentation

    root = Path(tempfile.mkdtemp())
    rows = [{"sentence": t, "label": ["neg", "pos"][i % 2]} for i, t in enumerate(texts[: counts["layout_rows"]])]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, **size)).save_pretrained(root / "mlm")
    BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, num_labels=2, **size)).save_pretrained(
        root / "teacher"
    )
    for folder in ("mlm", "teacher"):
        tokenizer.save_pretrained(root / folder)
    digests = {}
    for shard in (counts["block"], 3 * counts["block"]):
        config = AugmentConfig(
            task="custom",
            text_columns=["sentence"],
            label_column="label",
            class_names=["neg", "pos"],
            train_file=str(root / "train.jsonl"),
            mlm_model=str(root / "mlm"),
            teacher=str(root / "teacher"),
            group_size=counts["width"],
            block_size=counts["block"],
            shard_size=shard,
            cache_dir=str(root / f"cache-{shard}"),
            precision=precision,
            progress=False,
            device=str(device),
        )
        dataset = run_augmentation(config).dataset["train"]
        digests[shard] = (
            list(dataset["augmented_sentence"]),
            dataset.data.table.column("teacher_augmented").to_pylist(),
        )
    (texts_a, teacher_a), (texts_b, teacher_b) = digests.values()
    return {
        "rows": len(rows),
        "precision": precision,
        "shard_sizes": list(digests),
        "texts_identical": texts_a == texts_b,
        "teacher_bitwise_identical": teacher_a == teacher_b,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="Tiny models and counts on the CPU (the test suite).")
    parser.add_argument(
        "--out",
        default=os.path.join(os.environ.get("OUT", "."), "gpu_check.json"),
        help="Where the JSON goes (default $OUT/gpu_check.json).",
    )
    args = parser.parse_args(argv)
    device = torch.device("cpu" if args.dry_run or not torch.cuda.is_available() else "cuda")
    if not args.dry_run and device.type != "cuda":
        print("gpu_check: no CUDA device here; use --dry-run to try the script on the CPU", file=sys.stderr)
        return 1
    size, counts = (TINY, DRY) if args.dry_run else (BASE, FULL)
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "mmel_hf" / "embedded" / "mlm")
    texts = sentences(tokenizer, max(counts["sentences"], counts["layout_rows"]))
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    precisions = ["fp32", "bf16"] if bf16 or args.dry_run else ["fp32"]
    report = {"machine": machine(device), "dry_run": args.dry_run, "model": size}
    parts = {
        "ceiling": lambda: check_ceiling(size, counts, device),
        "mfu": lambda: check_mfu(
            tokenizer,
            (texts * (counts["mfu_sentences"] // len(texts) + 1))[: counts["mfu_sentences"]],
            size,
            counts,
            device,
            report.get("ceiling", {}),
        ),  # fmt: skip
        "nan_length": lambda: check_nan_length(size, counts, device),
        "cli": lambda: check_cli(tokenizer, texts, size, counts),
        "glue_projection": lambda: glue_projection(report["cli"]),
        "augment": lambda: check_augment(tokenizer, texts[: counts["sentences"]], size, counts, device, precisions),
        "teacher": lambda: check_teacher(
            tokenizer, (texts * (counts["teacher"] // len(texts) + 1))[: counts["teacher"]], size, device, precisions
        ),
        "trainer_step": lambda: check_trainer_step(tokenizer, texts, size, counts, device),
        "generators": lambda: check_generators(tokenizer, texts, counts, device),
        "chunked": lambda: check_chunked(tokenizer, texts, size, counts, device),
        "layout": lambda: check_layout(
            tokenizer, texts, TINY if args.dry_run else size, counts, device, precisions[-1]
        ),
    }
    for name, part in parts.items():  # one part failing leaves the others' figures
        started = time.perf_counter()
        try:
            report[name] = part()
        except Exception as err:  # noqa: BLE001 - recorded in the report, which is the point of the check
            report[name] = {"error": f"{type(err).__name__}: {err}"}
        report[name]["seconds"] = round(time.perf_counter() - started, 1)
        print(f"gpu_check: {name} {json.dumps(report[name])}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"gpu_check: wrote {args.out}")
    return 1 if any("error" in report[name] for name in parts) else 0


if __name__ == "__main__":
    sys.exit(main())
