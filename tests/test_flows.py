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
WORDS = {
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
                f"r{i}\tthe film was {rng.choice(WORDS[stars])} and the cast {rng.choice(WORDS[stars])}\t{stars}"
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
    code = train_main(
        [
            *task,
            "--train-file",
            str(reviews["train"]),
            "--validation-file",
            str(reviews["dev"]),
            "--model",
            models[0],
            *SMALL,
            "--mmel-loss",
            "none",
            "--output-dir",
            str(root / "teacher"),
        ]
    )
    assert code == 0
    # The teacher records the task: mmel-augment needs only its name and the data.
    code = augment_main(
        [
            "--task",
            "reviews",
            "--train-file",
            str(reviews["train"]),
            "--validation-file",
            str(reviews["dev"]),
            "--teacher",
            str(root / "teacher"),
            "--mlm-model",
            models[0],
            "--group-size",
            "3",
            "--cache-dir",
            str(root / "cache"),
            "--no-progress",
            "--output-dir",
            str(root / "augmented"),
        ]
    )
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
        "--max-train-samples",
        str(examples),
        "--teacher-model",
        models[0],
        "--teacher-layers",
        "1",
        "--teacher-epochs",
        "1",
        "--mlm-model",
        models[0],
        "--student-model",
        models[0],
        "--student-layers",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--group-size",
        str(group_size),
        "--cache-dir",
        cache,
        "--seeds",
        *seeds,
        "--methods",
        "uniform",
        "hard",
        *extra,
    ]


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


# -- Faults and bad values at the door (issue 15, parts 3-5) ----------------------------------------------


def test_training_into_a_folder_of_user_files_is_refused_before_any_work(reviews, models, capsys, tmp_path):
    folder = tmp_path / "mine"
    (folder / "checkpoint-100").mkdir(parents=True)
    (folder / "README.md").write_text("my notes")
    argv = [
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
        "--model",
        models[0],
        *SMALL,
        "--mmel-loss",
        "none",
        "--save-total-limit",
        "1",
        "--save-strategy",
        "steps",
        "--save-steps",
        "1",
        "--output-dir",
        folder,
    ]
    code, _, err = cli(capsys, train_main, argv)
    assert code == 1 and "holds files" in err and "--overwrite-output-dir" in err, err
    assert (folder / "README.md").read_text() == "my notes" and (folder / "checkpoint-100").is_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "checkpoint-100"]
    code, _, err = cli(capsys, train_main, [*argv, "--overwrite-output-dir"])  # Trainer's meaning: replace them
    assert code == 0, err
    assert (folder / "metrics.json").exists() and (folder / "README.md").read_text() != "my notes"


@pytest.mark.parametrize("bars", [False, True])
def test_a_non_finite_loss_stops_the_run_instead_of_saving_nan_weights(models, capsys, tmp_path, bars):
    rows = [{"text": f"film {i}", "score": 1e20 if i % 2 else 0.5} for i in range(8)]  # finite, far off any scale
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out"
    small = SMALL
    if bars:  # the training bar is open when the run stops: the error still starts a line of its own
        small = SMALL[: SMALL.index("--disable-tqdm")] + SMALL[SMALL.index("--disable-tqdm") + 2 :]
    code, _, err = cli(
        capsys,
        train_main,
        [
            "--task",
            "huge",
            "--text-columns",
            "text",
            "--label-column",
            "score",
            "--num-labels",
            "1",
            "--train-file",
            tmp_path / "train.jsonl",
            "--model",
            models[0],
            *small,
            "--mmel-loss",
            "none",
            "--output-dir",
            out,
        ],
    )
    assert code == 1 and "gradients became" in err and "optimizer step 1" in err, err
    assert err.splitlines()[-1].startswith("mmel-train: error: ") and not (out / "model.safetensors").exists()
    assert bars or len(err.strip().splitlines()) == 1


def test_max_length_beyond_the_model_positions_is_refused_before_work(reviews, models, capsys, tmp_path):
    common = [
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
    ]
    code, _, err = cli(
        capsys,
        augment_main,
        [
            *common,
            "--label-source",
            "original",
            "--mlm-model",
            models[0],
            "--max-length",
            "600",
            "--no-progress",
            "--cache-dir",
            tmp_path / "c",
        ],
    )
    assert code == 1 and "--max-length 600" in err and "at most 128" in err, err
    assert not (tmp_path / "c" / "reviews").exists()
    code, _, err = cli(
        capsys,
        study_main,
        study_argv(
            reviews,
            models,
            tmp_path / "s",
            tmp_path / "c",
            examples=4,
            group_size=2,
            seeds=("0",),
            extra=["--max-length", "600"],
        ),
    )
    assert code == 1 and "at most 128" in err and not (tmp_path / "s").exists(), err
    code, _, err = cli(
        capsys,
        train_main,
        [
            *common,
            "--model",
            models[0],
            *SMALL,
            "--mmel-loss",
            "none",
            "--max-length",
            "600",
            "--output-dir",
            tmp_path / "t",
        ],
    )
    assert code == 1 and "at most 128" in err and not (tmp_path / "t").exists(), err


@pytest.mark.parametrize(
    "labels,message",
    [
        ([True, False, True], "booleans"),
        ([0, -1, 1], "row 1, column 'y': label -1 is not a class id 0..1"),
        ([0, 1.5, 1], "row 1, column 'y': label 1.5 is not a class id"),
        (["pos", "neg", "pos"], "row 0, column 'y': label 'pos' is text; name the classes"),
    ],
)
def test_dataset_path_labels_are_checked_at_the_door(models, capsys, tmp_path, labels, message):
    from datasets import Dataset, DatasetDict

    DatasetDict(train=Dataset.from_dict({"text": ["a", "b", "c"], "y": labels})).save_to_disk(str(tmp_path / "ds"))
    code, _, err = cli(
        capsys,
        augment_main,
        [
            "--task",
            "t",
            "--text-columns",
            "text",
            "--label-column",
            "y",
            "--dataset-path",
            tmp_path / "ds",
            "--label-source",
            "original",
            "--mlm-model",
            models[0],
            "--no-progress",
            "--cache-dir",
            tmp_path / "c",
        ],
    )
    assert code == 1 and message in err and "Traceback" not in err, err


def test_string_labels_of_a_glue_task_in_json_lines(models, capsys, tmp_path):
    rows = [
        {"sentence1": "A cat sat.", "sentence2": "A cat.", "label": "entailment"},
        {"sentence1": "No rain.", "sentence2": "It rained.", "label": "not_entailment"},
    ]
    (tmp_path / "rte.jsonl").write_text("\n".join(json.dumps(r) for r in rows * 3) + "\n")
    code, _, err = cli(
        capsys,
        augment_main,
        [
            "--task",
            "rte",
            "--train-file",
            tmp_path / "rte.jsonl",
            "--label-source",
            "original",
            "--mlm-model",
            models[0],
            "--no-progress",
            "--cache-dir",
            tmp_path / "c",
            "--group-size",
            "2",
            "--output-dir",
            tmp_path / "aug",
        ],
    )
    assert code == 0, err
    from datasets import load_from_disk

    assert load_from_disk(str(tmp_path / "aug"))["train"]["label"] == [0, 1] * 3


@pytest.mark.parametrize("content", ["review\tstars\nnice\rone\tpositive\n", "review\tstars\rnice\tpositive\r"])
def test_carriage_returns_in_a_tsv_are_one_line_in_every_command(models, capsys, tmp_path, content):
    (tmp_path / "train.tsv").write_bytes(content.encode())
    task = [
        "--task",
        "reviews",
        "--text-columns",
        "review",
        "--label-column",
        "stars",
        "--class-names",
        *CLASSES,
        "--train-file",
        tmp_path / "train.tsv",
    ]
    for main, extra in (
        (
            augment_main,
            ["--label-source", "original", "--mlm-model", models[0], "--no-progress", "--cache-dir", tmp_path / "c"],
        ),
        (
            train_main,
            ["--model", models[0], "--mmel-loss", "none", "--output-dir", tmp_path / "t", "--disable-tqdm", "true"],
        ),
    ):
        code, _, err = cli(capsys, main, [*task, *extra])
        assert code == 1 and "train.tsv: line" in err and "LF line endings" in err, err
        assert len(err.strip().splitlines()) == 1 and "Reading" not in err


def test_a_study_run_whose_metrics_file_was_cut_counts_as_unfinished(reviews, models, capsys, tmp_path):
    output = tmp_path / "study"
    argv = study_argv(reviews, models, output, tmp_path / "cache", examples=8, group_size=2, seeds=("0",))
    assert cli(capsys, study_main, argv)[0] == 0
    (output / "runs" / "hard" / "seed-0" / "metrics.json").write_text('{"metrics": {"valid')  # a full disk's cut
    code, out, err = cli(capsys, study_main, argv)
    assert code == 0, err
    assert out.count("(done before)") == 1 and "MMEL-H, seed 0: " in out
    assert json.loads((output / "runs" / "hard" / "seed-0" / "metrics.json").read_text())["mmel_loss"] == "hard"

    # A second study on the same folder while one runs: refused in one line, nothing touched.
    from filelock import FileLock

    with FileLock(str(output / ".mmel-study.lock")):
        before = (output / "results.md").stat().st_mtime_ns
        code, _, err = cli(capsys, study_main, argv)
    assert code == 1 and "another mmel-study is running" in err and len(err.strip().splitlines()) == 1
    assert (output / "results.md").stat().st_mtime_ns == before


def _files_holding(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.name.endswith(".lock"):
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {n}" for n in needles if n.encode() in data]
    return found


def test_nothing_written_by_any_command_holds_a_token_or_a_local_path(reviews, models, capsys, tmp_path, monkeypatch):
    """A fake token (flag and HF_TOKEN) and this test's temp path: no file that mmel-train, mmel-augment or
    mmel-study writes, nor any file pushed to the Hub (captured at the huggingface_hub/datasets API layer), holds
    either. (mmel-main is mmel-study on the embedded task: test_embedded greps its folder the same way.)"""
    from fake_hub import FakeHub

    monkeypatch.setenv("HF_TOKEN", SECRET)
    hub = FakeHub().install(monkeypatch)

    work = tmp_path / "work"
    task = ["--task", "reviews", "--text-columns", "review", "--label-column", "stars", "--class-names", *CLASSES]
    data = ["--train-file", reviews["train"], "--validation-file", reviews["dev"]]
    code, out, err = cli(
        capsys,
        train_main,
        [
            *task,
            *data,
            "--model",
            models[0],
            *SMALL,
            "--mmel-loss",
            "none",
            "--save-strategy",
            "steps",
            "--save-steps",
            "2",
            "--output-dir",
            work / "teacher",
            "--push-to-hub",
            "true",
            "--hub-model-id",
            "me/t",
            "--hub-token",
            SECRET,
        ],
    )
    assert code == 0, err
    code, out2, err = cli(
        capsys,
        augment_main,
        [
            "--task",
            "reviews",
            *data,
            "--teacher",
            work / "teacher",
            "--mlm-model",
            models[0],
            "--group-size",
            "2",
            "--no-progress",
            "--cache-dir",
            work / "cache",
            "--output-dir",
            work / "augmented",
            "--push-to-hub",
            "me/reviews-augmented",
        ],
    )
    assert code == 0, err
    code, out3, err = cli(
        capsys,
        study_main,
        [
            *task,
            *data,
            "--output-dir",
            work / "study",
            "--max-train-samples",
            "6",
            "--teacher",
            work / "teacher",
            "--mlm-model",
            models[0],
            "--student-model",
            models[0],
            "--student-layers",
            "1",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--group-size",
            "2",
            "--cache-dir",
            work / "cache",
            "--seeds",
            "0",
            "--methods",
            "uniform",
            "hard",
        ],
    )
    assert code == 0, err
    pushed = tmp_path / "pushed"  # what reached the Hub, as files
    for repo, folder in [("me/t", "model"), ("me/reviews-augmented", "dataset")]:
        for name, data in hub.files(repo).items():
            (pushed / folder / name).parent.mkdir(parents=True, exist_ok=True)
            (pushed / folder / name).write_bytes(data)
    assert (pushed / "model" / "model.safetensors").exists() and (pushed / "dataset" / "README.md").exists()
    assert list((pushed / "dataset" / "data").glob("train-*.parquet"))
    assert not list((pushed / "model").glob("checkpoint-*"))
    assert SECRET not in out + out2 + out3
    for root in (work, pushed):
        assert _files_holding(root, [SECRET, str(tmp_path)]) == []


class SafetensorError(Exception):
    """Stands in for safetensors' own error type (matched by name, as mmel-train matches it)."""


@pytest.mark.parametrize(
    "where,error",
    [
        ("save", SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")),
        ("save", OSError(28, "No space left on device")),
        ("checkpoint", RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1024 vs 980")),
    ],
)
def test_a_failed_write_while_training_is_one_line_and_leaves_the_run_unfinished(
    reviews, models, capsys, tmp_path, monkeypatch, where, error
):
    from transformers import Trainer

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(Trainer, "save_model" if where == "save" else "_save_checkpoint", fail)
    out = tmp_path / "out"
    argv = [
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
        "--model",
        models[0],
        *SMALL,
        "--mmel-loss",
        "none",
        "--output-dir",
        out,
    ]
    if where == "checkpoint":
        argv += ["--save-strategy", "steps", "--save-steps", "1"]
    code, _, err = cli(capsys, train_main, argv)
    assert code == 1 and "could not write into" in err and "unfinished" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (out / "metrics.json").exists()
    if where == "save":  # nothing half-written blocks the same command once the disk has room again
        assert not out.exists()
        monkeypatch.undo()
        code, _, err = cli(capsys, train_main, argv)
        assert code == 0, err
        assert (out / "metrics.json").exists()


def test_a_second_mmel_train_into_a_folder_being_written_stops_in_one_line(reviews, models, capsys, tmp_path):
    """Two runs into one new --output-dir would both exit 0, the last writer winning: the second is refused."""
    from filelock import FileLock

    from mmel_hf.workflows.train import OUTPUT_LOCK

    out = tmp_path / "out"
    out.mkdir()
    argv = ["--task", "reviews", "--text-columns", "review", "--label-column", "stars", "--class-names", *CLASSES,
            "--train-file", reviews["train"], "--model", models[0], *SMALL, "--mmel-loss", "none", "--output-dir", out]  # fmt: skip
    with FileLock(str(out / OUTPUT_LOCK)):  # the first run, still training
        code, _, err = cli(capsys, train_main, argv)
    assert code == 1 and "another mmel-train is writing into this folder" in err, err
    assert len(err.strip().splitlines()) == 1 and sorted(p.name for p in out.iterdir()) == [OUTPUT_LOCK]
    code, _, err = cli(
        capsys, train_main, argv
    )  # once it has finished, the folder is free (the lock is no file of a run)
    assert code == 0, err


def test_an_os_error_anywhere_in_mmel_augment_is_one_line(reviews, models, capsys, tmp_path, monkeypatch):
    from mmel_hf.augment import pipeline

    def full(path, text):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(pipeline, "write_text", full)  # the cache's config.json, outside the protected writes
    code, _, err = cli(
        capsys,
        augment_main,
        [
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
            "--label-source",
            "original",
            "--mlm-model",
            models[0],
            "--no-progress",
            "--cache-dir",
            tmp_path / "c",
        ],
    )
    assert code == 1 and "config.json: no space left on device" in err and len(err.strip().splitlines()) == 1, err


def test_mmel_train_parses_local_files_into_the_shared_cache_root(reviews, models, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MMEL_HF_CACHE", str(tmp_path / "root"))
    code, _, err = cli(
        capsys,
        train_main,
        [
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
            "--model",
            models[0],
            *SMALL,
            "--mmel-loss",
            "none",
            "--max-steps",
            "1",
            "--output-dir",
            tmp_path / "out",
        ],
    )
    assert code == 0, err
    assert list((tmp_path / "root" / "sources").glob("source-*.arrow"))


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


def test_negated_flags_say_what_they_turn_off():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "augment_cli.train", "--help"], capture_output=True, text=True)
    text = " ".join(result.stdout.split())
    assert "--no_save_model, --no-save-model Turn off --save-model" in text


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


def test_push_to_hub_offline_is_refused_before_training(reviews, models, capsys, tmp_path):
    """HF_HUB_OFFLINE (set for this suite) means no push can happen: mmel-train says so before training."""
    out = tmp_path / "out"
    argv = ["--task", "reviews", "--text-columns", "review", "--label-column", "stars", "--class-names", *CLASSES,
            "--train-file", reviews["train"], "--model", models[0], *SMALL, "--output-dir", out,
            "--push-to-hub", "true", "--hub-model-id", "me/reviews"]  # fmt: skip
    code, out_text, err = cli(capsys, train_main, argv)
    assert code != 0 and "--push-to-hub: HF_HUB_OFFLINE is set" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and "trained in" not in out_text


@pytest.mark.parametrize(
    "command,flags,named",
    [
        (
            "augment",
            ["--label-source", "original", "--teacher", "t"],
            "--teacher is not used with --label-source original",
        ),
        ("augment", ["--task", "rtee"], "unknown task 'rtee'; known tasks: cola"),
        ("augment", ["--text-columns", "review", "review", "--label-source", "original"], "a column is given twice"),
        ("train", ["--lora-r", "8"], "--lora-r set(s) the LoRA adapters: add --use-peft"),
        ("train", ["--use-peft", "--lora-alpha", "-4"], "--lora-alpha -4: must be positive"),
        ("train", ["--use-peft", "--lora-dropout", "1"], "--lora-dropout 1.0: must be in [0, 1)"),
        ("train", ["--use-peft", "--lora-target-modules", "query", "quary", "--mmel-loss", "none"], "quary: the model"),
    ],
)
def test_flags_that_would_change_nothing_are_refused(reviews, models, capsys, tmp_path, command, flags, named):
    """A flag that the run would ignore, or one whose value cannot work, is one line before any work."""
    out = tmp_path / "never"
    task = ["--task", "reviews", "--text-columns", "review", "--label-column", "stars", "--class-names", *CLASSES]
    if "--task" in flags or "--text-columns" in flags:
        task = task[:2] + task[4:] if "--text-columns" in flags else ["--label-column", "stars"]
    common = [*task, "--train-file", reviews["train"], "--output-dir", out, *flags]
    main = augment_main if command == "augment" else train_main
    extra = ["--mlm-model", models[0], "--no-progress"] if command == "augment" else ["--model", models[0], *SMALL]
    try:
        code = main([str(a) for a in [*common, *extra]])
    except SystemExit as exit_:  # refused while the options are read: argparse's usage, then the line
        code = exit_.code
    err = capsys.readouterr().err
    assert code in (1, 2) and named in err.strip().splitlines()[-1], err
    assert not out.exists()
