"""Flows a user runs across commands, on data unlike the GLUE fixtures: a custom TSV whose label column is
``stars`` with string labels in three classes, and a custom regression set in JSON lines. Each command reads
what the previous one recorded (the task, its columns and classes), so no flag is given twice; reruns redo
exactly what changed; nothing written holds a token or a local path."""

import json
import random
from pathlib import Path

import pytest

from augment_cli.augment import main as augment_main
from augment_cli.study import main as study_main
from augment_cli.train import main as train_main

CLASSES = ["negative", "neutral", "positive"]
WORDS = {"negative": ["awful", "dull", "bad", "weak"], "neutral": ["plain", "usual", "average", "okay"],
         "positive": ["great", "lovely", "fine", "superb"]}
SECRET = "hf_FLOWtokenFLOWtokenFLOW"


def write_reviews(folder: Path, rows: int = 18) -> tuple[Path, Path]:
    """train.tsv / dev.tsv with columns id, review, stars (string classes), as a user's export would have them."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)

    def table(count):
        lines = ["id\treview\tstars"]
        for i in range(count):
            stars = CLASSES[i % 3]
            lines.append(f"r{i}\tthe film was {rng.choice(WORDS[stars])} and the cast {rng.choice(WORDS[stars])}\t{stars}")
        return "\n".join(lines) + "\n"

    (folder / "train.tsv").write_text(table(rows))
    (folder / "dev.tsv").write_text(table(6))
    return folder / "train.tsv", folder / "dev.tsv"


def cli(capsys, main, argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


SMALL = ["--num-layers", "1", "--per-device-train-batch-size", "4", "--num-train-epochs", "1",
         "--disable-tqdm", "true", "--use-cpu", "true", "--learning-rate", "1e-3"]


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    train, dev = write_reviews(root / "data")
    return {"root": root, "train": train, "dev": dev}


@pytest.fixture(scope="module")
def teacher_and_augmented(reviews, models):
    """teacher (mmel-train --mmel-loss none on the TSV) -> mmel-augment labelled by it, without task flags."""
    root = reviews["root"]
    task = ["--task", "reviews", "--text-columns", "review", "--label-column", "stars", "--class-names", *CLASSES]
    code = train_main([*task, "--train-file", str(reviews["train"]), "--validation-file", str(reviews["dev"]),
                       "--model", models[0], *SMALL, "--mmel-loss", "none", "--output-dir", str(root / "teacher")])
    assert code == 0
    # The teacher records the task: mmel-augment needs only its name and the data.
    code = augment_main(["--task", "reviews", "--train-file", str(reviews["train"]), "--validation-file",
                         str(reviews["dev"]), "--teacher", str(root / "teacher"), "--mlm-model", models[0],
                         "--group-size", "3", "--cache-dir", str(root / "cache"), "--no-progress",
                         "--output-dir", str(root / "augmented")])
    assert code == 0
    return root / "teacher", root / "augmented"


def test_custom_tsv_teacher_augment_students_without_repeating_a_flag(teacher_and_augmented, models, capsys, tmp_path):
    from datasets import load_from_disk
    from transformers import AutoConfig

    teacher, augmented = teacher_and_augmented
    summary = json.loads((teacher / "metrics.json").read_text())
    assert summary["task_spec"]["label_names"] == CLASSES and summary["task_spec"]["label_column"] == "stars"
    assert AutoConfig.from_pretrained(teacher).id2label == dict(enumerate(CLASSES))
    data = load_from_disk(str(augmented))
    train = data["train"]
    assert {"review", "stars", "augmented_review", "teacher_original"} <= set(train.column_names)
    assert set(train["stars"]) == {0, 1, 2} and len(train[0]["teacher_original"]) == 3  # strings -> ids, 3 classes
    for mode in ("hard", "uniform"):  # MMEL-H and DA+UNI: no --task, no column or class flags
        out = tmp_path / mode
        code, stdout, err = cli(capsys, train_main, ["--augmented", augmented, "--model", models[0], *SMALL,
                                                     "--mmel-loss", mode, "--output-dir", out])
        assert code == 0, err
        student = json.loads((out / "metrics.json").read_text())
        assert student["task"] == "reviews" and student["train_examples"] == 18
        assert 0 <= student["metrics"]["validation"]["validation_accuracy"] <= 1
        assert AutoConfig.from_pretrained(out).num_labels == 3


@pytest.mark.parametrize("flags,named", [
    (["--num-labels", "2"], "--num-labels 2"),
    (["--label-column", "label"], "--label-column label"),
    (["--task", "other"], "made for task 'reviews'"),
    (["--class-names", "bad", "meh", "good"], "--class-names bad meh good"),
])
def test_flags_given_again_must_agree_with_the_record(teacher_and_augmented, models, capsys, tmp_path, flags, named):
    _, augmented = teacher_and_augmented
    out = tmp_path / "never"
    code, _, err = cli(capsys, train_main, ["--augmented", augmented, "--model", models[0], *SMALL, "--mmel-loss",
                                            "hard", "--output-dir", out, *flags])
    assert code == 1 and named in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_study_of_the_custom_task_and_reruns_that_redo_what_changed(reviews, models, capsys, tmp_path):
    output = tmp_path / "study"
    argv = ["--task", "reviews", "--text-columns", "review", "--label-column", "stars", "--class-names", *CLASSES,
            "--train-file", reviews["train"], "--validation-file", reviews["dev"], "--output-dir", output,
            "--max-train-samples", "12", "--teacher-model", models[0], "--teacher-layers", "1", "--teacher-epochs", "1",
            "--mlm-model", models[0], "--student-model", models[0], "--student-layers", "1", "--epochs", "1",
            "--batch-size", "4", "--group-size", "3", "--cache-dir", tmp_path / "cache", "--seeds", "0", "1",
            "--methods", "uniform", "hard", "--max-eval-samples", "4"]
    code, out, err = cli(capsys, study_main, argv)
    assert code == 0, err
    assert "teacher: fine-tuning" in out and "[4/4]" in out and "MMEL-H vs Baseline(DA+UNI)" in out
    report = (output / "results.md").read_text()
    assert "# Study: reviews" in report and "1 epochs" in report
    assert "only its first 4 of 6 examples were scored" in report
    results = json.loads((output / "results.json").read_text())
    assert set(results["methods"]) == {"uniform", "hard"} and results["methods"]["hard"]["seeds"] == [0, 1]

    code, out, err = cli(capsys, study_main, [*argv, "--epochs", "2"])  # other student settings: students redone
    assert code == 0, err
    assert "(done before)" not in out and "teacher: fine-tuning" not in out and "(cache hit)" in out
    report = (output / "results.md").read_text()
    assert "2 epochs" in report
    for run in output.glob("runs/*/seed-*"):
        assert json.loads((run / "metrics.json").read_text())["config"]["training"]["num_train_epochs"] == 2

    code, out, err = cli(capsys, study_main, [*argv, "--epochs", "2", "--teacher-epochs", "2"])  # a new teacher:
    assert code == 0, err  # new teacher labels, a new augmentation, every student again
    assert "teacher: fine-tuning" in out and "(cache hit)" not in out and "(done before)" not in out

    code, out, err = cli(capsys, study_main, [*argv, "--epochs", "2", "--teacher-epochs", "2"])  # nothing changed
    assert code == 0 and out.count("(done before)") == 4 and "teacher: fine-tuning" not in out


def test_regression_from_json_lines_through_every_command(models, capsys, tmp_path):
    rng = random.Random(1)
    lines = []
    for i in range(12):
        score = rng.uniform(0, 10)
        word = "great" if score > 5 else "dull"
        lines.append(json.dumps({"text": f"a {word} film number {i}", "score": round(score, 2)}))
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(lines) + "\n")
    (tmp_path / "dev.jsonl").write_text("\n".join(lines[:4]) + "\n")
    task = ["--task", "scores", "--text-columns", "text", "--label-column", "score", "--num-labels", "1",
            "--label-range", "0", "10"]
    data = ["--train-file", train, "--validation-file", tmp_path / "dev.jsonl"]
    code, _, err = cli(capsys, train_main, [*task, *data, "--model", models[0], *SMALL, "--mmel-loss", "none",
                                            "--output-dir", tmp_path / "teacher"])
    assert code == 0, err
    code, _, err = cli(capsys, augment_main, ["--task", "scores", *data, "--teacher", tmp_path / "teacher",
                                              "--mlm-model", models[0], "--group-size", "3", "--no-progress",
                                              "--cache-dir", tmp_path / "cache", "--output-dir", tmp_path / "aug"])
    assert code == 0, err
    code, _, err = cli(capsys, train_main, ["--augmented", tmp_path / "aug", "--model", models[0], *SMALL,
                                            "--mmel-loss", "soft", "--output-dir", tmp_path / "soft"])
    assert code == 0, err
    metrics = json.loads((tmp_path / "soft" / "metrics.json").read_text())["metrics"]["validation"]
    assert {"validation_pearson", "validation_spearmanr"} <= set(metrics)

    # Out of the stated range, or not finite: refused at the door, naming the file and row.
    for bad in ("11", "NaN", "-Infinity", "1e39"):
        broken = tmp_path / f"bad-{bad}.jsonl"
        broken.write_text(lines[0] + "\n" + '{"text": "x", "score": ' + bad + "}\n")
        code, _, err = cli(capsys, augment_main, [*task, "--train-file", broken, "--label-source", "original",
                                                  "--mlm-model", models[0], "--no-progress", "--cache-dir",
                                                  tmp_path / "cache2"])
        assert code == 1 and f"{broken}: line 2, column 'score'" in err, (bad, err)
