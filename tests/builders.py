"""Builders for tests: tiny models from configs and small augmented datasets in the schema of mmel_hf.schema."""

import pickle
import random
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification

from mmel_hf import MMELTrainer, MMELTrainingArguments

WORDS = {
    "good": ["great", "fine", "lovely", "superb"],
    "bad": ["awful", "poor", "dull", "weak"],
    "film": ["movie", "picture", "story", "show"],
}
POSITIVE = ["a good film", "the acting is good", "good fun for the whole family", "a good and honest film"]
NEGATIVE = ["a bad film", "the plot is bad", "bad jokes and a bad ending", "this film is bad"]

TESTS = Path(__file__).resolve().parent  # the tests' root, where this helper module lives
REPO = TESTS.parent
SHARED = REPO.parent / "shared"  # read-only data beside the checkout (../shared); tests that read it skip without it


def augment(sentence: str, rng: random.Random, count: int) -> list[str]:
    """Word substitutions from a fixed table: stand-ins for fill-mask samples."""
    samples = []
    for _ in range(count):
        words = [rng.choice(WORDS[w]) if w in WORDS and rng.random() < 0.7 else w for w in sentence.split()]
        samples.append(" ".join(words))
    return samples


def make_augmented_dataset(num_rows=16, seed=0, regression=False, ragged=True, num_augmented=3, pair=False):
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    rows = {"sentence": [], "label": [], "augmented_sentence": [], "teacher_original": [], "teacher_augmented": []}
    if pair:
        rows.update({"question": [], "augmented_question": []})
    for i in range(num_rows):
        positive = i % 2 == 0
        sentence = rng.choice(POSITIVE if positive else NEGATIVE)
        count = rng.randint(0, num_augmented) if ragged else num_augmented
        rows["sentence"].append(sentence)
        rows["augmented_sentence"].append(augment(sentence, rng, count))
        if pair:
            rows["question"].append("is it good ?")
            rows["augmented_question"].append(["is it fine ?"] * count)
        if regression:
            rows["label"].append(4.0 if positive else 1.0)
            values = (torch.rand(count + 1, generator=generator) * 2 + (3.0 if positive else 0.5)).tolist()
            rows["teacher_original"].append([values[0]])
            rows["teacher_augmented"].append([[v] for v in values[1:]])
        else:
            rows["label"].append(int(positive))
            probs = torch.softmax(torch.randn(count + 1, 2, generator=generator) * 2, -1).tolist()
            rows["teacher_original"].append(probs[0])
            rows["teacher_augmented"].append(probs[1:])
    if pair:  # the model's order: question first
        order = ["question", "sentence", "label", "augmented_question", "augmented_sentence"]
        rows = {k: rows[k] for k in order + ["teacher_original", "teacher_augmented"]}
    return Dataset.from_dict(rows)


def make_tiny_bert(tokenizer, num_labels=2, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertForSequenceClassification(config)


def make_tiny_mlm(tokenizer, seed=0):
    from transformers import BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    return BertForMaskedLM(config).eval()


RTE_HEADER = "index\tsentence1\tsentence2\tlabel"
PAIRS = [
    ("The cat sat on the mat.", "A cat was sitting.", "entailment"),
    ("No weapons were found in the house.", "Weapons were found.", "not_entailment"),
    ("The film opened in Paris last year.", "The film opened in France.", "entailment"),
    ("She sold her old car to a friend.", "She bought a car.", "not_entailment"),
    ("Rain fell all day in the city.", "It was dry.", "not_entailment"),
]


def make_tiny_seq2seq(tokenizer, seed=0):
    """A tiny random-weight BART speaking the bert-base-uncased vocabulary: a stand-in translation model."""
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(seed)
    ids = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
               eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.cls_token_id,
               forced_eos_token_id=tokenizer.sep_token_id)  # fmt: skip
    config = BartConfig(vocab_size=tokenizer.vocab_size, d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_position_embeddings=128, **ids)  # fmt: skip
    return BartForConditionalGeneration(config).eval()


def make_tiny_causal(tokenizer, seed=0):
    """A tiny random-weight GPT-2 speaking the bert-base-uncased vocabulary: a stand-in paraphrase model."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=tokenizer.vocab_size, n_embd=32, n_layer=1, n_head=2, n_positions=256,
                        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                        pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return GPT2LMHeadModel(config).eval()


def write_rte_dir(folder):
    """A tiny GLUE RTE folder (train.tsv with 10 rows, dev.tsv with 3) in GLUE's own layout."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{i}\t{a}\t{b}\t{label}" for i, (a, b, label) in enumerate(PAIRS * 2)]
    (folder / "train.tsv").write_text("\n".join([RTE_HEADER, *rows]) + "\n")
    (folder / "dev.tsv").write_text("\n".join([RTE_HEADER, *rows[:3]]) + "\n")
    return folder


def write_glue_dir(root, rows=10):
    """The four GLUE task folders of ../shared/glue in their own layouts, tiny: CoLA (no header; source, label,
    mark, sentence), MRPC (a BOM before the header; Quality, ids, strings), RTE, STS-B (10 columns, score last)."""
    texts = [t for pair in PAIRS for t in pair[:2]] + POSITIVE + NEGATIVE
    pairs = [(texts[i % len(texts)], texts[(3 * i + 1) % len(texts)]) for i in range(rows)]
    layouts = {
        "CoLA": (None, lambda i, a, b: f"gj04\t{i % 2}\t\t{a}"),
        "MRPC": (
            "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
            lambda i, a, b: f"{i % 2}\t{i}\t{i + 100}\t{a}\t{b}",
        ),
        "RTE": (RTE_HEADER, lambda i, a, b: f"{i}\t{a}\t{b}\t{'entailment' if i % 2 else 'not_entailment'}"),
        "STS-B": (
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
            lambda i, a, b: f"{i}\tmain-captions\tMSRvid\t2012test\t{i}\tnone\tnone\t{a}\t{b}\t{(i * 0.7) % 5:.3f}",
        ),
    }
    for folder, (header, row) in layouts.items():
        path = root / folder
        path.mkdir(parents=True, exist_ok=True)
        lines = [row(i, a, b) for i, (a, b) in enumerate(pairs)]
        for split, part in (("train.tsv", lines), ("dev.tsv", lines[: max(4, rows // 2)])):
            (path / split).write_text("\n".join(([header] if header else []) + part) + "\n", encoding="utf-8")
    return root


# -- shared by several test modules (trainer steps, CIFAR files, killed runs) --------------------------------


def base_settings(tmp_path):
    return dict(
        output_dir=str(tmp_path / "out"),
        report_to="none",
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        max_steps=3,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )


def make_args(tmp_path, **overrides):
    return MMELTrainingArguments(**{**base_settings(tmp_path), **overrides})


def parameters(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_same_parameters(a, b, **tolerances):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=lambda m, n=name: f"{n}: {m}", **tolerances)


def one_sgd_step(
    tmp_path, tokenizer, dataset, batch_size, accumulation, mode, model=None, learning_rate=0.5, **overrides
):
    """The parameters after one plain SGD step (constant learning rate, no clipping, no weight decay)."""
    model = model or make_tiny_bert(tokenizer, seed=1)
    args = make_args(
        tmp_path,
        mmel_loss=mode,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        optim="sgd",
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        weight_decay=0.0,
        **overrides,
    )
    MMELTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer).train()
    return parameters(model)


def write_cifar10(folder, per_batch=8, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, per_batch).tolist(),
        }
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)
    return folder


_KILL_AT_SAVE = """
import os, signal, sys
from transformers import TrainerCallback
import mmel_hf.trainer as module

class KillAfterSave(TrainerCallback):  # kill -9 right after checkpoint-{step} is on disk
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == {step}:
            os.kill(os.getpid(), signal.SIGKILL)

init = module.MMELTrainer.__init__
def patched(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self.add_callback(KillAfterSave())
module.MMELTrainer.__init__ = patched
from {module} import main
sys.exit(main(sys.argv[1:]))
"""


def kill_after_save_script(step: int, module: str = "augment_cli.train") -> str:
    """A CLI run (``module``'s main) that kills itself with SIGKILL right after checkpoint-``step`` is written."""
    return _KILL_AT_SAVE.replace("{step}", str(step)).replace("{module}", module)


def trainer_for(tmp_path, tokenizer, dataset, num_labels=2, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "out"),
        report_to="none",
        use_cpu=True,
        max_steps=1,
        per_device_train_batch_size=4,
        disable_tqdm=True,
        save_strategy="no",
        logging_steps=1,
    )
    settings.update(overrides)
    return MMELTrainer(
        model=make_tiny_bert(tokenizer, num_labels=num_labels),
        args=MMELTrainingArguments(**settings),
        train_dataset=dataset,
        processing_class=tokenizer,
    )


def run_under_torchrun(script: str, target, processes: int = 2) -> None:
    """``python -m torch.distributed.run`` of ``tests/<script> <target>`` on ``processes`` CPU ranks (gloo, one
    thread each); fails the test with the ranks' stderr if it does not exit 0."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        str(tests / script),
        str(target),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tests.parent)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


# The flows' custom task (tests/workflows/test_flow_*.py): a user's export, and how a test runs a CLI.
CLASSES = ["negative", "neutral", "positive"]


REVIEW_WORDS = {
    "negative": ["awful", "dull", "bad", "weak"],
    "neutral": ["plain", "usual", "average", "okay"],
    "positive": ["great", "lovely", "fine", "superb"],
}


SECRET = "hf_FLOWtokenFLOWtokenFLOW"


def write_reviews(folder: Path, rows: int = 18) -> tuple[Path, Path]:
    """train.tsv / dev.tsv with columns id, review, stars (string classes), as a user's export would have them."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)

    def table(count):
        lines = ["id\treview\tstars"]
        for i in range(count):
            stars = CLASSES[i % 3]
            lines.append(
                f"r{i}\tthe film was {rng.choice(REVIEW_WORDS[stars])} and the cast {rng.choice(REVIEW_WORDS[stars])}\t{stars}"
            )
        return "\n".join(lines) + "\n"

    (folder / "train.tsv").write_text(table(rows))
    (folder / "dev.tsv").write_text(table(6))
    return folder / "train.tsv", folder / "dev.tsv"


def cli(capsys, main, argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


SMALL = [
    "--num-layers",
    "1",
    "--per-device-train-batch-size",
    "4",
    "--num-train-epochs",
    "1",
    "--disable-tqdm",
    "true",
    "--use-cpu",
    "true",
    "--learning-rate",
    "1e-3",
]


def tiny_study_flags(model: str, cache, group_size: int = 3, examples: int = 8) -> list[str]:
    """The flags of a tiny mmel-study: one-layer teacher and students from ``model`` (also the fill-mask model), one
    epoch each, batches of 4, the first ``examples`` training examples."""
    return ["--max-train-samples", str(examples), "--teacher-model", model, "--teacher-layers", "1",
            "--teacher-epochs", "1", "--mlm-model", model, "--student-model", model, "--student-layers", "1",
            "--epochs", "1", "--batch-size", "4", "--group-size", str(group_size), "--cache-dir", str(cache)]  # fmt: skip


def study_argv(reviews, models, output, cache, examples, group_size, seeds, extra=()):
    """A tiny mmel-study of the custom task: teacher and students from the tiny model, methods DA+UNI and MMEL-H."""
    return [
        "--task",
        "reviews",
        "--text-columns",
        "review",
        "--label-column",
        "stars",
        "--class-names",
        *CLASSES,
        "--train-file",
        reviews["train"],
        "--validation-file",
        reviews["dev"],
        "--output-dir",
        output,
        *tiny_study_flags(models[0], cache, group_size, examples),
        "--seeds",
        *seeds,
        "--methods",
        "uniform",
        "hard",
        *extra,
    ]
