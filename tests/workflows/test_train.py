"""mmel-train end to end: teacher -> augment -> students in every mode, DA+Long's flat data, metrics.json, config
files, the model card and push, errors; and the real GLUE files where ../shared is present."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset

from augment_cli.augment import main as augment_main
from augment_cli.train import main as train_main
from augment_cli.train import parse
from mmel_hf import MMELTrainer, MMELTrainingArguments, SchemaError
from mmel_hf.da_long import TARGET_COLUMN, flatten_groups

from builders import kill_after_save_script, make_augmented_dataset, make_tiny_bert

SHARED_GLUE = __import__("builders").SHARED / "glue"
MODES = ["none", "long", "uniform", "max", "hard", "soft"]


# -- Baseline(DA+Long): the flat data --------------------------------------------------------------------


@pytest.mark.parametrize("label_source", ["teacher", "original"])
def test_flatten_groups_gives_one_row_per_sample_with_mmel_h_targets(label_source):
    ds = make_augmented_dataset(num_rows=9, ragged=True)
    flat = flatten_groups(ds, num_labels=2, label_source=label_source)
    sizes = [len(a) for a in ds["augmented_sentence"]]
    assert len(flat) == len(ds) + sum(sizes)
    targets = np.asarray(flat[TARGET_COLUMN])
    # Originals first, each with its gold label one-hot.
    np.testing.assert_array_equal(targets[: len(ds)], np.eye(2)[ds["label"]])
    assert flat["sentence"][: len(ds)] == ds["sentence"]
    row = len(ds)
    for i in range(len(ds)):
        for j, sample in enumerate(ds["augmented_sentence"][i]):
            assert flat["sentence"][row] == sample and flat["label"][row] == ds["label"][i]
            expected = ds["teacher_augmented"][i][j] if label_source == "teacher" else np.eye(2)[ds["label"][i]]
            np.testing.assert_allclose(targets[row], expected, rtol=1e-6)
            row += 1


def test_flatten_groups_regression_and_errors():
    ds = make_augmented_dataset(num_rows=4, regression=True, ragged=False, num_augmented=2)
    flat = flatten_groups(ds, num_labels=1)
    assert len(flat) == 12
    np.testing.assert_allclose(np.asarray(flat[TARGET_COLUMN])[:4, 0], ds["label"])
    np.testing.assert_allclose(np.asarray(flat[TARGET_COLUMN])[4:6], ds["teacher_augmented"][0], rtol=1e-6)
    with pytest.raises(SchemaError, match="no augmented samples"):
        flatten_groups(Dataset.from_dict({"sentence": ["a"], "label": [0]}), num_labels=2)


def test_long_mode_loss_is_the_mean_per_sample_loss_and_takes_b_times_the_steps(tmp_path, tokenizer):
    ds = make_augmented_dataset(num_rows=8, ragged=False, num_augmented=3)
    model = make_tiny_bert(tokenizer)
    args = MMELTrainingArguments(
        output_dir=str(tmp_path),
        mmel_loss="long",
        per_device_train_batch_size=4,
        num_train_epochs=1,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        save_strategy="no",
        learning_rate=1e-3,
    )
    trainer = MMELTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    assert len(trainer.train_dataset) == 32 and len(trainer.get_train_dataloader()) == 8  # |B| x the steps of 8 groups
    batch = trainer.data_collator([trainer.train_dataset[i] for i in (0, 9, 20, 31)])
    model.train()
    loss = trainer.compute_loss(model, batch)
    logits = model(**{k: v for k, v in batch.items() if k not in ("labels", TARGET_COLUMN)}).logits
    expected = -(batch[TARGET_COLUMN] * torch.log_softmax(logits, -1)).sum(-1).mean()
    torch.testing.assert_close(loss, expected)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


# -- mmel-train: the chain teacher -> augment -> students ----------------------------------------------


def run_cli(capsys, argv):
    code = train_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def chain(tmp_path_factory, models, tokenizer):
    """A teacher trained by mmel-train on the tiny RTE folder, and its mmel-augment output."""
    from builders import write_rte_dir

    root = tmp_path_factory.mktemp("chain")
    rte = write_rte_dir(root / "RTE")
    common = [
        "--task",
        "rte",
        "--model",
        models[0],
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
    ]
    assert (
        train_main([*common, "--data-dir", str(rte), "--mmel-loss", "none", "--output-dir", str(root / "teacher")]) == 0
    )
    assert (
        augment_main(
            [
                "--task",
                "rte",
                "--data-dir",
                str(rte),
                "--mlm-model",
                models[0],
                "--teacher",
                str(root / "teacher"),
                "--cache-dir",
                str(root / "cache"),
                "--no-progress",
                "--group-size",
                "3",
                "--output-dir",
                str(root / "augmented"),
            ]
        )
        == 0
    )
    return {"root": root, "rte": rte, "common": common, "augmented": str(root / "augmented")}


def test_teacher_folder_is_a_complete_model(chain):
    teacher = chain["root"] / "teacher"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "metrics.json", "log.jsonl", "README.md"):
        assert (teacher / name).exists(), name
    summary = json.loads((teacher / "metrics.json").read_text())
    assert summary["method"] == "Baseline" and summary["train_examples"] == 10
    assert set(summary["metrics"]["validation"]) >= {"validation_accuracy", "validation_loss"}
    assert summary["config"]["training"]["learning_rate"] == 3e-5  # Appendix D defaults under the user's flags
    assert summary["config"]["training"]["per_device_train_batch_size"] == 4
    assert summary["config"]["data"]["num_layers"] == 1
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(teacher).num_hidden_layers == 1


@pytest.mark.parametrize("mode,label_source", [(m, "teacher") for m in MODES] + [("hard", "original")])
def test_every_mode_trains_a_student_on_the_augmented_data(chain, capsys, tmp_path, mode, label_source):
    out = tmp_path / "student"
    code, stdout, err = run_cli(
        capsys,
        [
            *chain["common"],
            "--augmented",
            chain["augmented"],
            "--mmel-loss",
            mode,
            "--mmel-label-source",
            label_source,
            "--output-dir",
            str(out),
        ],
    )
    assert code == 0, err
    assert "validation: " in stdout and "accuracy" in stdout
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["mmel_loss"] == mode and summary["train_examples"] == 10
    assert 0.0 <= summary["metrics"]["validation"]["validation_accuracy"] <= 1.0
    assert summary["curve"] and summary["curve"][-1]["epoch"] == 1.0
    assert summary["augmented_dataset"]["mmel_hf_task"] == "rte"
    card = (out / "README.md").read_text()
    assert summary["method"] in card and "local:augmented" in card and str(chain["root"]) not in card
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    expected_steps = 8 if mode == "long" else 3  # 10 originals + 20 samples at batch 4, against 10 groups
    assert log[-1]["step"] == expected_steps


def test_config_file_gives_the_same_options_as_flags(chain, tmp_path):
    file = tmp_path / "train.yaml"
    file.write_text(
        f"task: rte\naugmented: {chain['augmented']}\nmodel: m\nmmel_loss: soft\nmmel_lambda_t: 2.0\n"
        "num_train_epochs: 2\n"
    )
    config, args = parse([str(file)])
    assert (config.task, config.augmented, args.mmel_loss, args.mmel_lambda_t) == (
        "rte",
        chain["augmented"],
        "soft",
        2.0,
    )
    assert args.num_train_epochs == 2 and args.learning_rate == 3e-5 and args.per_device_train_batch_size == 32
    config, args = parse(["--task", "mnli", "--mmel-loss", "hard"])
    assert args.num_train_epochs == 3 and args.warmup_steps == 0 and args.weight_decay == 0.0
    assert parse(["--task", "cola"])[1].num_train_epochs == 10


def test_clear_errors_and_nothing_written(chain, capsys, tmp_path, models):
    from datasets import DatasetDict

    out = tmp_path / "never"
    single = tmp_path / "single-sentence"  # augmented elsewhere (no provenance), with one sentence column
    DatasetDict(train=make_augmented_dataset(num_rows=4)).save_to_disk(str(single))
    cases = [
        (["--data-dir", str(chain["rte"]), "--mmel-loss", "hard"], "has none: make them with mmel-augment"),
        (["--augmented", chain["augmented"], "--mmel-loss", "hard", "--task", "mrpc"], "made for task 'rte'"),
        (["--augmented", chain["augmented"], "--mmel-loss", "hard", "--task", "cola"], "made for task 'rte'"),
        (["--augmented", str(single), "--mmel-loss", "hard"], "missing column(s)"),
        (["--augmented", chain["augmented"], "--mmel-loss", "hard", "--task", "stsb"], "made for task 'rte'"),
        (["--augmented", str(tmp_path / "nothing-here"), "--mmel-loss", "hard"], "--augmented"),
        (["--data-dir", str(chain["rte"]), "--mmel-loss", "none", "--num-layers", "9"], "has only 2"),
    ]
    for extra, message in cases:
        code, _, err = run_cli(capsys, [*chain["common"], *extra, "--output-dir", str(out)])
        assert code == 1 and message in err, (extra, err)
        assert "Traceback" not in err and not out.exists()

    three = tmp_path / "three-labels"
    make_tiny_bert_with_labels(three, models, 3)
    code, _, err = run_cli(
        capsys,
        [
            "--task",
            "rte",
            "--data-dir",
            str(chain["rte"]),
            "--model",
            str(three),
            "--mmel-loss",
            "none",
            "--output-dir",
            str(out),
        ],
    )
    assert code == 1 and "classifier with 3 label(s) but task rte has 2" in err and not out.exists()

    with pytest.raises(SystemExit) as exit_:
        train_main(["--task", "rte", "--mmel-loss", "longer"])
    assert exit_.value.code == 2


def make_tiny_bert_with_labels(folder, models, num_labels):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        models[1], num_labels=num_labels, ignore_mismatched_sizes=True
    )
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(models[1]).save_pretrained(folder)


def test_push_to_hub_uploads_the_folder_with_its_card_and_never_the_token(chain, capsys, tmp_path, monkeypatch):
    from mmel_hf import model_card

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, private=False, exist_ok=False):
            from huggingface_hub import RepoUrl

            calls.append(("create", repo_id, private))
            return RepoUrl(f"https://huggingface.co/{repo_id}")

        def create_commit(self, repo_id, operations, commit_message):
            calls.append(("upload", repo_id, sorted(op.path_in_repo for op in operations)))

    import huggingface_hub

    monkeypatch.setattr(model_card, "HfApi", FakeApi)  # where the push looks it up
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # FakeApi answers
    secret = "hf_SECRETsecretSECRET"
    out = tmp_path / "pushed"
    code, stdout, err = run_cli(
        capsys,
        [
            *chain["common"],
            "--augmented",
            chain["augmented"],
            "--mmel-loss",
            "hard",
            "--output-dir",
            str(out),
            "--push-to-hub",
            "true",
            "--hub-model-id",
            "me/rte-mmel",
            "--hub-token",
            secret,
            "--save-strategy",
            "steps",
            "--save-steps",
            "1",
        ],
    )
    assert code == 0, err
    assert ("create", "me/rte-mmel", None) in calls and ("token", secret) in calls  # the account's default visibility
    upload = next(c for c in calls if c[0] == "upload")
    assert {"README.md", "metrics.json", "model.safetensors", "training_args.bin"} <= set(upload[2])
    assert list(out.glob("checkpoint-*")) and not [f for f in upload[2] if f.startswith("checkpoint-")]
    for path in out.rglob("*"):  # the pickled arguments too, in the folder and in every checkpoint
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and str(tmp_path).encode() not in data, path
    assert secret not in stdout + err
    card = (out / "README.md").read_text()
    assert "MMEL-H" in card and "lambda_P = 1.0" in card and "teacher `local:teacher`" in card
    from huggingface_hub import ModelCard

    loaded = ModelCard.load(out / "README.md")  # the Hub's own parser reads the header the template wrote
    assert loaded.data.library_name == "transformers" and loaded.data.pipeline_tag == "text-classification"
    assert {"mmel", "text-classification", "rte"} <= set(loaded.data.tags)
    assert loaded.data.base_model is None  # a local folder is no Hub id: named in the text as local:<name> only
    assert "arxiv.org/abs/2103.08933" in loaded.text and "@inproceedings{yi2021reweighting" in loaded.text
    assert "Weights P* over the whole run: normalised entropy" in loaded.text and '"validation_accuracy"' in loaded.text

    class OfflineApi(FakeApi):
        def create_repo(self, *args, **kwargs):
            raise ConnectionError(f"no network for {secret}")

    monkeypatch.setattr(model_card, "HfApi", OfflineApi)
    with pytest.raises(RuntimeError, match="could not push") as info:
        model_card.push_folder(out, "me/rte-mmel", token=secret)
    assert secret not in str(info.value)


def test_help_lists_every_mode():
    result = subprocess.run(
        [sys.executable, "-m", "augment_cli.train", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0
    for text in ("--mmel-loss", "long", "--augmented", "--num-layers", "Appendix D", "--learning-rate"):
        assert text in result.stdout


# -- Real GLUE files (../shared/glue), skipped where absent ---------------------------------------------


@pytest.mark.skipif(not SHARED_GLUE.exists(), reason="../shared/glue is not present")
@pytest.mark.parametrize(
    "task,folder,keys",
    [
        ("cola", "CoLA", {"validation_matthews_correlation"}),
        ("stsb", "STS-B", {"validation_pearson", "validation_spearmanr"}),
        ("mrpc", "MRPC", {"validation_accuracy", "validation_f1"}),
    ],
)
def test_real_glue_task_trains_and_reports_its_metrics(task, folder, keys, models, capsys, tmp_path):
    out = tmp_path / task
    code, _, err = run_cli(
        capsys,
        [
            "--task",
            task,
            "--data-dir",
            str(SHARED_GLUE / folder),
            "--model",
            models[0],
            "--num-layers",
            "1",
            "--mmel-loss",
            "none",
            "--max-train-samples",
            "16",
            "--max-steps",
            "2",
            "--per-device-train-batch-size",
            "8",
            "--per-device-eval-batch-size",
            "256",
            "--max-length",
            "64",
            "--output-dir",
            str(out),
            "--disable-tqdm",
            "true",
            "--use-cpu",
            "true",
            "--no-save-model",
        ],
    )
    assert code == 0, err
    summary = json.loads((out / "metrics.json").read_text())
    assert keys <= set(summary["metrics"]["validation"])
    assert not (out / "model.safetensors").exists()


def test_metrics_json_names_local_paths_by_their_last_component(chain):
    summary = json.loads((chain["root"] / "teacher" / "metrics.json").read_text())
    text = json.dumps(summary["config"])
    assert str(chain["root"]) not in text and "local:RTE" in text


# -- Resuming a killed run (issue 15, part 1) -------------------------------------------------------------


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


@pytest.mark.parametrize("mode", ["hard", "none"])
def test_a_killed_cli_run_resumes_to_the_uninterrupted_weights(chain, capsys, tmp_path, mode):
    data = ["--augmented", chain["augmented"]] if mode != "none" else ["--data-dir", str(chain["rte"])]
    argv = [
        *chain["common"],
        *data,
        "--mmel-loss",
        mode,
        "--num-train-epochs",
        "3",
        "--per-device-train-batch-size",
        "2",
        "--save-strategy",
        "steps",
        "--save-steps",
        "5",
        "--eval-strategy",
        "no",
        "--learning-rate",
        "1e-3",
    ]
    reference = tmp_path / "reference"
    assert train_main([*argv, "--output-dir", str(reference)]) == 0
    capsys.readouterr()
    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(__import__("builders").REPO)}
    result = subprocess.run(
        [sys.executable, "-c", kill_after_save_script(10), *argv, "--output-dir", str(killed)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == -9, result.stderr[-2000:]
    assert sorted(p.name for p in killed.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-5"]
    assert not (killed / "model.safetensors").exists()
    stamps = {p: p.stat().st_mtime_ns for p in killed.glob("checkpoint-*/*")}
    code, _, err = run_cli(capsys, [*argv, "--output-dir", str(killed), "--resume-from-checkpoint"])  # bare: latest
    assert code == 0, err
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # resumed, not restarted: old checkpoints kept
    log = [json.loads(line) for line in (killed / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 15
    # --eval-strategy no with an evaluation split: scored once at the end, and only its own metrics recorded.
    assert set(json.loads((killed / "metrics.json").read_text())["metrics"]["validation"]) == {
        "validation_loss",
        "validation_accuracy",
    }
    expected, resumed = _weights(reference), _weights(killed)
    assert expected.keys() == resumed.keys()
    for name in expected:  # same machine, same batches and batch-mates: the same computation
        torch.testing.assert_close(resumed[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)
    # The run-level summary covers the whole run, the 10 steps before the kill included (carried by the checkpoint).
    summaries = [json.loads((folder / "metrics.json").read_text()) for folder in (reference, killed)]
    finals = [
        next(e for e in map(json.loads, (f / "log.jsonl").read_text().splitlines()) if "train_runtime" in e)
        for f in (reference, killed)
    ]
    assert finals[1]["train_loss"] == pytest.approx(finals[0]["train_loss"], rel=1e-5)
    if mode == "hard":
        for key, value in summaries[0]["mmel_weights"].items():
            assert summaries[1]["mmel_weights"][key] == (
                pytest.approx(value, rel=1e-5) if isinstance(value, float) else value
            )


def test_resume_from_a_missing_checkpoint_is_one_line_and_writes_nothing(chain, capsys, tmp_path):
    out = tmp_path / "never"
    for value in (str(tmp_path / "nothing" / "checkpoint-9"), None):
        extra = [value] if value else []
        code, _, err = run_cli(
            capsys,
            [
                *chain["common"],
                "--data-dir",
                str(chain["rte"]),
                "--mmel-loss",
                "none",
                "--output-dir",
                str(out),
                "--resume-from-checkpoint",
                *extra,
            ],
        )
        assert code == 1 and "--resume-from-checkpoint" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_half_written_checkpoint_is_refused_naming_the_file(chain, capsys, tmp_path):
    """Trainer's save is not atomic (transformers #35782, #36112): a cut file must not be resumed from."""
    argv = [
        *chain["common"],
        "--data-dir",
        str(chain["rte"]),
        "--mmel-loss",
        "none",
        "--num-train-epochs",
        "2",
        "--per-device-train-batch-size",
        "2",
        "--save-strategy",
        "steps",
        "--save-steps",
        "5",
        "--eval-strategy",
        "no",
    ]
    out = tmp_path / "run"
    assert train_main([*argv, "--output-dir", str(out)]) == 0
    capsys.readouterr()
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert len(checkpoints) >= 2
    latest, earlier = checkpoints[-1], checkpoints[-2]
    pristine = {p.name: p.read_bytes() for p in latest.iterdir() if p.is_file()}

    def cut(name):
        (latest / name).write_bytes(pristine[name][: len(pristine[name]) // 2])

    damages = {
        "model.safetensors": lambda: cut("model.safetensors"),
        "optimizer.pt": lambda: cut("optimizer.pt"),
        "scheduler.pt": lambda: (latest / "scheduler.pt").write_bytes(b""),
        "trainer_state.json": lambda: cut("trainer_state.json"),
    }
    for name, damage in damages.items():
        damage()
        for extra in ([], [str(latest)]):  # the bare flag (latest) and the folder named
            code, _, err = run_cli(
                capsys, [*argv, "--output-dir", str(out), "--overwrite-output-dir", "--resume-from-checkpoint", *extra]
            )
            assert code == 1 and name in err and "half-written" in err and "Traceback" not in err, (name, err)
            assert len(err.strip().splitlines()) == 1
            if not extra:  # the bare flag names the whole checkpoint to resume from instead
                assert str(earlier) in err
        (latest / name).write_bytes(pristine[name])
    from mmel_hf.workflows.checkpoints import checkpoint_problem

    assert checkpoint_problem(latest) is None and checkpoint_problem(earlier) is None


def test_every_mmel_run_says_whether_its_weights_moved(chain, capsys, tmp_path):
    """Whole-run normalised entropy and effective sample share of P*, with a warning when they stayed at uniform."""
    runs = {}
    for name, extra in (
        ("flat", ["--mmel-lambda-p", "1000"]),
        ("sharp", ["--mmel-lambda-p", "0.0001"]),
        ("uniform", []),
    ):
        mode = "uniform" if name == "uniform" else "hard"
        code, out, err = run_cli(
            capsys,
            [
                *chain["common"],
                "--augmented",
                chain["augmented"],
                "--mmel-loss",
                mode,
                *extra,
                "--output-dir",
                str(tmp_path / name),
            ],
        )
        assert code == 0, err
        runs[name] = (
            out,
            json.loads((tmp_path / name / "metrics.json").read_text()),
            (tmp_path / name / "README.md").read_text(),
        )
    out, summary, card = runs["flat"]
    weights = summary["mmel_weights"]
    assert weights["near_uniform"] and weights["effective_share"] >= 0.95 and weights["normalised_entropy"] > 0.99
    assert "MMEL-H behaved like DA+UNI here" in out and "--mmel-lambda-p (now 1000)" in out
    assert "behaved like DA+UNI" in card and f"{weights['effective_share']:.3f}" in card
    log = [json.loads(line) for line in (tmp_path / "flat" / "log.jsonl").read_text().splitlines()]
    final = next(e for e in log if "train_runtime" in e)  # the whole run, as the summary reports it
    assert weights["effective_share"] == pytest.approx(final["mmel/effective_share"])
    out, summary, card = runs["sharp"]
    assert not summary["mmel_weights"]["near_uniform"] and summary["mmel_weights"]["warning"] is None
    assert summary["mmel_weights"]["effective_share"] < runs["flat"][1]["mmel_weights"]["effective_share"]
    assert "weights P*: normalised entropy" in out and "behaved like DA+UNI" not in out
    assert runs["uniform"][1]["mmel_weights"] is None  # DA+UNI's weights are uniform by definition: nothing to say


def test_each_run_keeps_its_per_example_predictions(chain, capsys, tmp_path):
    code, _, err = run_cli(
        capsys,
        [
            *chain["common"],
            "--data-dir",
            str(chain["rte"]),
            "--mmel-loss",
            "none",
            "--output-dir",
            str(tmp_path / "run"),
        ],
    )
    assert code == 0, err
    kept = json.loads((tmp_path / "run" / "predictions.json").read_text())["validation"]
    accuracy = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]["validation"][
        "validation_accuracy"
    ]
    predictions, references = np.array(kept["predictions"]), np.array(kept["references"])
    assert len(predictions) == len(references) == 3  # every example of dev.tsv
    assert (predictions == references).mean() == pytest.approx(accuracy)  # the predictions the metric was computed on


def test_evaluation_runs_in_length_order_and_predictions_come_back_in_row_order(tokenizer):
    """Length-sorted evaluation pads less; the per-example predictions are still those of the split's rows."""
    from mmel_hf.workflows.train import _PredictionKeeper, length_sorted

    texts = ["a b c d e f g h", "a", "a b c", "a b c d e", "a b"]
    dataset = Dataset.from_dict({"sentence": texts, "label": [0, 1, 2, 3, 4]})
    ordered, order = length_sorted(dataset, tokenizer, ["sentence"], max_length=6)
    lengths = [len(tokenizer(t, truncation=True, max_length=6)["input_ids"]) for t in ordered["sentence"]]
    assert lengths == sorted(lengths) and list(ordered["label"]) == [1, 4, 2, 0, 3]  # stable among the truncated ties
    assert [texts[i] for i in order] == list(ordered["sentence"])
    keeper = _PredictionKeeper(["validation"], {"validation": order})
    keeper.keep(np.array(ordered["label"]) * 10, np.array(ordered["label"]))  # what evaluation sees, in its order
    keeper.on_evaluate(None, None, None, metrics={"eval_validation_accuracy": 1.0})
    assert keeper.kept["validation"] == {"predictions": [0, 10, 20, 30, 40], "references": [0, 1, 2, 3, 4]}
    assert length_sorted(dataset.select([0]), tokenizer, ["sentence"], 4)[1] is None  # nothing to sort


def test_every_rank_takes_part_in_saving_the_model(chain, monkeypatch, tmp_path):
    """Under FSDP (full state dict) or ZeRO-3 saving is a collective: a rank that skipped it would hang the others.
    Trainer.save_model writes the files from the main process only; run_training calls it on every rank."""
    from mmel_hf.workflows.train import run_training

    calls = []
    monkeypatch.setattr(MMELTrainer, "is_world_process_zero", lambda self: False)  # as on rank 1
    monkeypatch.setattr(MMELTrainer, "save_model", lambda self, output_dir=None, **kw: calls.append(output_dir))
    config, args = parse(
        [
            *chain["common"],
            "--data-dir",
            str(chain["rte"]),
            "--mmel-loss",
            "none",
            "--output-dir",
            str(tmp_path / "run"),
        ]
    )
    run_training(config, args, quiet=True)
    assert calls == [str(tmp_path / "run")]
    assert not (tmp_path / "run" / "metrics.json").exists()  # the reports stay rank 0's


def test_the_card_names_original_labels_when_the_dataset_was_made_with_them():
    """A student trained in teacher mode on a dataset made with --label-source original learnt the original labels
    (the teacher columns hold them): the card says so, not "labels of augmented samples: teacher"."""
    from mmel_hf import MMELTrainingArguments
    from mmel_hf.model_card import MMELCardData, render_model_card

    provenance = {"label_source": "original", "mlm_model": "m", "teacher": None, "search": "greedy", "group_size": 3,
                  "ratio": 0.4}  # fmt: skip
    args = MMELTrainingArguments(output_dir="unused", mmel_loss="hard", mmel_label_source="teacher", report_to="none")
    card = render_model_card(MMELCardData(title="t", provenance=provenance), args)
    assert "labels of augmented samples: the original labels (the augmented dataset was made with" in card
    card = render_model_card(MMELCardData(title="t", provenance={**provenance, "label_source": "teacher"}), args)
    assert "labels of augmented samples: teacher" in card
