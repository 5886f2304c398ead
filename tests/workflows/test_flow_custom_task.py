"""A user's own task across the commands, on data unlike the GLUE fixtures: a TSV whose label column is
``stars`` with string labels in three classes, and a regression set in JSON lines. Each command reads what the
previous one recorded (the task, its columns and classes), so no flag is given twice; reruns redo what changed."""

import json
import random

import pytest

from augment_cli.augment import main as augment_main
from augment_cli.study import main as study_main
from augment_cli.train import main as train_main

from builders import CLASSES, SMALL, cli, study_argv


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
    # The file's id column is kept in every split, so that results join back to the user's rows.
    assert train["id"][:3] == ["r0", "r1", "r2"] and data["validation"]["id"][:2] == ["r0", "r1"]
    for mode in ("hard", "uniform"):  # MMEL-H and DA+UNI: no --task, no column or class flags
        out = tmp_path / mode
        code, stdout, err = cli(
            capsys,
            train_main,
            ["--augmented", augmented, "--model", models[0], *SMALL, "--mmel-loss", mode, "--output-dir", out],
        )
        assert code == 0, err
        student = json.loads((out / "metrics.json").read_text())
        assert student["task"] == "reviews" and student["train_examples"] == 18
        assert 0 <= student["metrics"]["validation"]["validation_accuracy"] <= 1
        assert AutoConfig.from_pretrained(out).num_labels == 3


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--num-labels", "2"], "--num-labels 2"),
        (["--label-column", "label"], "--label-column label"),
        (["--task", "other"], "made for task 'reviews'"),
        (["--class-names", "bad", "meh", "good"], "--class-names bad meh good"),
    ],
)
def test_flags_given_again_must_agree_with_the_record(teacher_and_augmented, models, capsys, tmp_path, flags, named):
    _, augmented = teacher_and_augmented
    out = tmp_path / "never"
    code, _, err = cli(
        capsys,
        train_main,
        ["--augmented", augmented, "--model", models[0], *SMALL, "--mmel-loss", "hard", "--output-dir", out, *flags],
    )
    assert code == 1 and named in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.slow
def test_a_study_of_the_custom_task_and_reruns_that_redo_what_changed(reviews, models, capsys, tmp_path):
    output = tmp_path / "study"
    argv = study_argv(
        reviews,
        models,
        output,
        tmp_path / "cache",
        examples=12,
        group_size=3,
        seeds=("0", "1"),
        extra=["--max-eval-samples", "4"],
    )
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


def test_the_final_summary_reports_the_whole_run(teacher_and_augmented, models, capsys, tmp_path):
    _, augmented = teacher_and_augmented
    out = tmp_path / "out"
    code, _, err = cli(
        capsys,
        train_main,
        [
            "--augmented",
            augmented,
            "--model",
            models[0],
            *SMALL,
            "--mmel-loss",
            "hard",
            "--logging-steps",
            "1",
            "--num-train-epochs",
            "2",
            "--output-dir",
            out,
        ],
    )
    assert code == 0, err
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [e["mmel/max_weight"] for e in log if "loss" in e and "mmel/max_weight" in e]
    final = next(e for e in log if "train_runtime" in e)
    # 18 groups at batch 4: steps of 4, 4, 4, 4 and 2 groups per epoch; the run's mean weighs each step by them.
    groups = [4, 4, 4, 4, 2] * 2
    assert len(steps) == len(groups)
    whole_run = sum(g * v for g, v in zip(groups, steps)) / sum(groups)
    assert final["mmel/max_weight"] == pytest.approx(whole_run, rel=1e-5)
    assert final["mmel/max_weight"] != pytest.approx(steps[-1], rel=1e-5)  # not the last window's


def test_mmel_trainer_from_python_trains_on_what_mmel_augment_made(teacher_and_augmented, tmp_path):
    """The library reads the task the dataset records: the custom task's label column (`stars`) is the label, in
    the training set and in the evaluation set, with no renaming by the user."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from mmel_hf import MMELTrainer, MMELTrainingArguments

    teacher, augmented = teacher_and_augmented
    data = load_from_disk(str(augmented))
    assert "stars" in data["train"].column_names and "label" not in data["train"].column_names
    args = MMELTrainingArguments(
        output_dir=str(tmp_path / "out"), mmel_loss="hard", max_steps=2, per_device_train_batch_size=4,
        use_cpu=True, report_to=[], disable_tqdm=True,
    )  # fmt: skip
    trainer = MMELTrainer(
        model=str(teacher),
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=AutoTokenizer.from_pretrained(teacher),
    )
    assert trainer.train().global_step == 2
    metrics = trainer.evaluate()
    assert metrics["eval_loss"] > 0
    predicted = trainer.predict(data["validation"])
    assert list(predicted.label_ids) == data["validation"]["stars"]  # the gold classes, read from `stars`


def test_digit_class_names_mean_one_class_in_a_tsv_and_in_json(models, capsys, tmp_path):
    """The README's star-rating command (--class-names 1 2 3 4 5) with a TSV train file and a JSON-lines dev file:
    the label 1 names class "1" (id 0) whether it is written as text (TSV), as a JSON number or as a JSON
    string; a 0 names no class and is refused in one line, naming the file and line."""
    from datasets import load_from_disk

    stars = [1, 5, 3, 2, 4, 1]
    (tmp_path / "train.tsv").write_text(
        "id\treview\tstars\n" + "".join(f"r{i}\tthe film rates {s} of five\t{s}\n" for i, s in enumerate(stars))
    )
    dev = [(1, 1), ("2", 2), (5.0, 5), (3, 3)]  # (as written in JSON, the class it names)
    (tmp_path / "dev.jsonl").write_text(
        "".join(json.dumps({"review": f"a review {i}", "stars": v}) + "\n" for i, (v, _) in enumerate(dev))
    )
    command = [
        "--task", "reviews", "--train-file", tmp_path / "train.tsv", "--validation-file", tmp_path / "dev.jsonl",
        "--text-columns", "review", "--label-column", "stars", "--class-names", "1", "2", "3", "4", "5",
        "--label-source", "original", "--mlm-model", models[0], "--group-size", "2",
        "--cache-dir", tmp_path / "cache", "--no-progress",
    ]  # fmt: skip
    code, _, err = cli(capsys, augment_main, [*command, "--output-dir", tmp_path / "out"])
    assert code == 0, err
    data = load_from_disk(str(tmp_path / "out"))
    assert data["train"]["stars"] == [s - 1 for s in stars]  # class "1" is id 0
    assert data["validation"]["stars"] == [name - 1 for _, name in dev]
    assert [row.index(1.0) for row in data["train"]["teacher_original"]] == [s - 1 for s in stars]

    (tmp_path / "dev.jsonl").write_text(json.dumps({"review": "zero stars", "stars": 0}) + "\n")
    code, _, err = cli(capsys, augment_main, [*command, "--output-dir", tmp_path / "out2"])
    assert code != 0 and not (tmp_path / "out2").exists()
    assert "dev.jsonl: line 1, column 'stars': label 0 is not one of the classes" in err
    assert len(err.strip().splitlines()) == 1


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
    task = [
        "--task",
        "scores",
        "--text-columns",
        "text",
        "--label-column",
        "score",
        "--num-labels",
        "1",
        "--label-range",
        "0",
        "10",
    ]
    data = ["--train-file", train, "--validation-file", tmp_path / "dev.jsonl"]
    code, _, err = cli(
        capsys,
        train_main,
        [*task, *data, "--model", models[0], *SMALL, "--mmel-loss", "none", "--output-dir", tmp_path / "teacher"],
    )
    assert code == 0, err
    code, _, err = cli(
        capsys,
        augment_main,
        [
            "--task",
            "scores",
            *data,
            "--teacher",
            tmp_path / "teacher",
            "--mlm-model",
            models[0],
            "--group-size",
            "3",
            "--no-progress",
            "--cache-dir",
            tmp_path / "cache",
            "--output-dir",
            tmp_path / "aug",
        ],
    )
    assert code == 0, err
    code, _, err = cli(
        capsys,
        train_main,
        [
            "--augmented",
            tmp_path / "aug",
            "--model",
            models[0],
            *SMALL,
            "--mmel-loss",
            "soft",
            "--output-dir",
            tmp_path / "soft",
        ],
    )
    assert code == 0, err
    metrics = json.loads((tmp_path / "soft" / "metrics.json").read_text())["metrics"]["validation"]
    assert {"validation_pearson", "validation_spearmanr"} <= set(metrics)

    # Out of the stated range, or not finite: refused at the door, naming the file and row.
    for bad in ("11", "NaN", "-Infinity", "1e39"):
        broken = tmp_path / f"bad-{bad}.jsonl"
        broken.write_text(lines[0] + "\n" + '{"text": "x", "score": ' + bad + "}\n")
        code, _, err = cli(
            capsys,
            augment_main,
            [
                *task,
                "--train-file",
                broken,
                "--label-source",
                "original",
                "--mlm-model",
                models[0],
                "--no-progress",
                "--cache-dir",
                tmp_path / "cache2",
            ],
        )
        assert code == 1 and f"{broken}: line 2, column 'score'" in err, (bad, err)
