"""Input a command cannot use is refused at the door, in one line, before any work: labels, lengths, line
endings, flags that would change nothing."""

import json

import pytest

from augment_cli.augment import main as augment_main
from augment_cli.study import main as study_main
from augment_cli.train import main as train_main

from builders import CLASSES, SMALL, cli, study_argv


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


def test_negated_flags_say_what_they_turn_off():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "augment_cli.train", "--help"], capture_output=True, text=True)
    text = " ".join(result.stdout.split())
    assert "--no_save_model, --no-save-model Turn off --save-model" in text


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
