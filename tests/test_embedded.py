"""The embedded default: the rt-polarity task, the fill-mask model, the teacher, and a short main job."""

import json

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from augment_cli.main_job import main as main_job_cli
from mmel_hf.augment import get_task, load_task_data
from mmel_hf.embedded import EMBEDDED_DIR, embedded_mlm_path, embedded_teacher_path

# Documented in mmel_hf/embedded/mlm/README.md: each masked word is among the model's top 5.
FILL_MASK_EXAMPLES = [
    ("the movie was [MASK] and the acting was great .", {"good", "great", "fun", "funny", "excellent"}),
    ("he was born in new york [MASK] .", {"city"}),
    ("the president of the united [MASK] spoke today .", {"states"}),
]
# Documented in mmel_hf/embedded/teacher/README.md.
TEACHER_EXAMPLES = [
    ("a wonderful , moving film with superb performances .", 1),
    ("a dull , lifeless mess that wastes its talented cast .", 0),
]


def test_task_has_the_documented_sizes():
    data = load_task_data(get_task("rt-polarity"))
    assert {split: len(ds) for split, ds in data.items()} == {"train": 11752, "validation": 1000}
    assert sum(data["train"]["label"][:]) == 6796 and sum(data["validation"]["label"][:]) == 572
    assert set(data["train"]["sentence"][:]).isdisjoint(data["validation"]["sentence"][:])


def test_fill_mask_model_loads_offline_and_predicts_english():
    tokenizer = AutoTokenizer.from_pretrained(embedded_mlm_path())
    model = AutoModelForMaskedLM.from_pretrained(embedded_mlm_path(), dtype=torch.float32).eval()
    metrics = json.loads((EMBEDDED_DIR / "mlm" / "metrics.json").read_text())
    assert metrics["top1"] > 3 * metrics["unigram_top1"] and metrics["top5"] > metrics["unigram_top5"]
    for text, expected in FILL_MASK_EXAMPLES:
        encoded = tokenizer(text, return_tensors="pt")
        position = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
        with torch.no_grad():
            top5 = model(**encoded).logits[0, position].topk(5).indices
        assert expected & set(tokenizer.convert_ids_to_tokens(top5)), (text, tokenizer.convert_ids_to_tokens(top5))


def test_teacher_loads_offline_and_classifies_the_documented_examples():
    tokenizer = AutoTokenizer.from_pretrained(embedded_teacher_path())
    model = AutoModelForSequenceClassification.from_pretrained(embedded_teacher_path(), dtype=torch.float32).eval()
    encoded = tokenizer([t for t, _ in TEACHER_EXAMPLES], padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**encoded).logits.argmax(-1).tolist()
    assert predicted == [label for _, label in TEACHER_EXAMPLES]
    metrics = json.loads((EMBEDDED_DIR / "teacher" / "metrics.json").read_text())
    assert metrics["validation_accuracy"] > metrics["majority_baseline"] + 0.15


@pytest.mark.parametrize("folder", ["mlm", "teacher"])
def test_committed_weights_are_small_and_carded(folder):
    weights = EMBEDDED_DIR / folder / "model.safetensors"
    assert weights.stat().st_size <= 60 * 1024 * 1024
    card = (EMBEDDED_DIR / folder / "README.md").read_text()
    assert "## Training" in card and "## Limits" in card


def test_the_embedded_models_train_in_float32_from_python(tmp_path, caplog):
    """Stored in half precision, they load as float32 with a plain from_pretrained (the README's offline Quick
    start), and MMELTrainer takes model="embedded" as the commands do; half-precision trainable weights without
    mixed precision are named in a warning."""
    import logging

    from datasets import Dataset

    from mmel_hf import MMELTrainer, MMELTrainingArguments

    assert next(AutoModelForMaskedLM.from_pretrained(embedded_mlm_path()).parameters()).dtype == torch.float32
    teacher = AutoModelForSequenceClassification.from_pretrained(embedded_teacher_path())
    assert {p.dtype for p in teacher.parameters()} == {torch.float32}
    train = Dataset.from_dict(
        {
            "sentence": ["a fine film", "a dull plot"],
            "label": [1, 0],
            "augmented_sentence": [["a great film"], ["a weak plot"]],
            "teacher_original": [[0.1, 0.9], [0.8, 0.2]],
            "teacher_augmented": [[[0.2, 0.8]], [[0.9, 0.1]]],
        }
    )
    args = MMELTrainingArguments(output_dir=str(tmp_path), max_steps=1, use_cpu=True, report_to="none")
    tokenizer = AutoTokenizer.from_pretrained(embedded_mlm_path())
    trainer = MMELTrainer(model="embedded", args=args, train_dataset=train, processing_class=tokenizer)
    assert trainer.model.config.num_labels == 2 and next(trainer.model.parameters()).dtype == torch.float32
    with caplog.at_level(logging.WARNING, logger="mmel_hf.trainer"):
        MMELTrainer(model=teacher.half(), args=args, train_dataset=train, processing_class=tokenizer)
    assert any("trainable weights are float16 and mixed precision is off" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_short_main_job_end_to_end(tmp_path, capsys, monkeypatch):
    secret = "hf_MAINjobTOKENmainJOB"
    monkeypatch.setenv("HF_TOKEN", secret)
    args = [
        "--output_dir",
        str(tmp_path / "out"),
        "--train_examples",
        "12",
        "--eval_examples",
        "64",
        "--epochs",
        "1",
        "--teacher_epochs",
        "1",
        "--student_layers",
        "1",
        "--seeds",
        "0",
        "1",
        "--cache_dir",
        str(tmp_path / "cache"),
        "--precision",
        "fp32",
    ]
    assert main_job_cli(args) == 0
    out = capsys.readouterr().out
    for title in ("Baseline ", "Baseline(DA+UNI)", "MMEL-H", "MMEL-S", "Highest mean accuracy", "interval"):
        assert title in out, title
    assert "inconclusive: 2 seed(s) cannot measure seed-to-seed variation" in out  # never "beyond" with 2 seeds
    assert "teacher (trained on the same 12 examples)" in out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["augmentation"]["examples"] == 12 and results["augmentation"]["augmented_samples"] == 48
    assert set(results["methods"]) == {"none", "uniform", "hard", "soft"}
    for entry in results["methods"].values():
        assert entry["seeds"] == [0, 1] and all(0 <= v <= 1 for v in entry["metrics"]["accuracy"]["values"])
    teacher = json.loads((tmp_path / "out" / "teacher" / "metrics.json").read_text())
    assert teacher["train_examples"] == 12  # the teacher saw exactly the students' examples
    assert (tmp_path / "out" / "curves.png").stat().st_size > 1000
    # The second run reuses the teacher, the augmentation and every finished run.
    assert main_job_cli(args) == 0
    out = capsys.readouterr().out
    assert "(cache hit)" in out and out.count("(done before)") == 8
    for path in tmp_path.rglob("*"):  # nothing written holds a token or a local path
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and str(tmp_path).encode() not in data, path


def test_rte_offline_names_the_ways_forward(tmp_path, capsys):
    from augment_cli.augment import main as augment_cli

    code = augment_cli(["--task", "rte", "--label-source", "original", "--cache-dir", str(tmp_path), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "--task rt-polarity" in err and ("local model folder" in err or "--data-dir" in err)
