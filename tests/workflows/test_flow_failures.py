"""What goes wrong mid-run (a non-finite loss, a failed write, a second run into the same folder, a cut metrics
file) is one line and leaves nothing that looks finished; nothing written holds a token or a local path."""

import json
from pathlib import Path

import pytest

from augment_cli.augment import main as augment_main
from augment_cli.study import main as study_main
from augment_cli.train import main as train_main

from builders import CLASSES, SECRET, SMALL, cli, study_argv


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
