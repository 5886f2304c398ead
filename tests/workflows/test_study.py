"""mmel-study: method names, the paired comparison, and a whole tiny study (resumable) with its report."""

import json
import os
import subprocess
import sys

import pytest

from augment_cli.study import main as study_main
from mmel_hf.workflows.study import MethodSpec, StudyConfig, parse_method
from mmel_hf.workflows.study_report import compare

from builders import tiny_study_flags


def test_parse_method():
    assert parse_method(" hard ") == MethodSpec("hard", "hard", "teacher", 1.0)
    spec = parse_method("hard-original@0.1")
    assert (spec.mode, spec.label_source, spec.lambda_p) == ("hard", "original", 0.1)
    assert parse_method("uniform").title == "Baseline(DA+UNI)"
    assert parse_method("hard@10").title == "MMEL-H (lambda_P=10)"
    assert parse_method("long-original").title == "Baseline(DA+Long), original labels"
    for bad, message in (
        ("harder", "expected one of"),
        ("uniform@2", "hard and soft only"),
        ("hard@x", "not a number"),
        ("hard@0", "must be > 0"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_method(bad)
    with pytest.raises(ValueError, match="--seeds"):
        StudyConfig(task="rte", seeds=[])


def test_compare_without_predictions_resamples_seeds_and_never_calls_zero_variance_certain():
    steady = compare([0.71, 0.72, 0.73], [0.70, 0.71, 0.72])  # +1 point on every seed, no per-example predictions
    assert steady["mean"] == pytest.approx(0.01) and steady["resampled"] == "seeds only"
    assert not steady["beyond_noise"] and "do not vary" in steady["inconclusive_because"]  # not "p = 0.00"
    two = compare([0.70, 0.70], [0.71, 0.71])  # two seeds, both -1.00
    assert not two["beyond_noise"] and "2 seed(s)" in two["inconclusive_because"]
    assert not compare([0.8], [0.7])["beyond_noise"]  # one seed can never be beyond noise


@pytest.mark.slow
def test_tiny_study_end_to_end_and_resumable(models, rte_dir, tmp_path, capsys):
    output = tmp_path / "study"
    args = [
        "--task",
        "rte",
        "--data-dir",
        str(rte_dir),
        "--output-dir",
        str(output),
        *tiny_study_flags(models[0], tmp_path / "cache"),
        "--seeds",
        "0",
        "1",
        "--methods",
        "none",
        "long",
        "uniform",
        "hard",
        "soft",
        "hard-original",
        "hard@0.1",
    ]
    assert study_main(args) == 0
    out = capsys.readouterr().out
    assert "teacher: fine-tuning" in out and "[14/14]" in out
    assert "MMEL-H vs Baseline(DA+UNI)" in out and "paired seeds" in out

    teacher = json.loads((output / "teacher" / "metrics.json").read_text())
    assert teacher["train_examples"] == 8  # the teacher sees exactly the students' examples
    results = json.loads((output / "results.json").read_text())
    assert set(results["methods"]) == {"none", "long", "uniform", "hard", "soft", "hard-original", "hard@0.1"}
    hard = results["methods"]["hard"]
    assert hard["seeds"] == [0, 1] and len(hard["metrics"]["accuracy"]["values"]) == 2
    runs = {
        key: json.loads((output / "runs" / key / "seed-1" / "metrics.json").read_text()) for key in results["methods"]
    }
    assert runs["hard-original"]["config"]["training"]["mmel_label_source"] == "original"
    assert runs["hard@0.1"]["config"]["training"]["mmel_lambda_p"] == 0.1
    assert runs["long"]["curve"][-1]["step"] == 6  # 8 originals + 16 samples at batch 4, against 2 steps of groups
    assert runs["uniform"]["curve"][-1]["step"] == 2
    assert not (output / "runs" / "hard" / "seed-0" / "model.safetensors").exists()  # studies keep metrics only

    report = (output / "results.md").read_text()
    for text in (
        "## Table 3 layout",
        "## Table 4 layout",
        "| Baseline(DA+Long) |",
        "| MMEL-H, original labels |",
        "| MMEL-H (lambda_P=0.1) |",
        "train time per run",
        "curves.png",
        "Teacher: ",
    ):
        assert text in report, text
    assert (output / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # Every reading carries an interval over seeds x the 3 evaluation examples; 2 seeds are never "beyond noise".
    comparisons = results["comparisons"]
    assert [(c["a"], c["b"]) for c in comparisons] == [
        ("hard", "uniform"),
        ("soft", "uniform"),
        ("uniform", "none"),
        ("long", "uniform"),
        ("hard", "hard-original"),
    ]
    for found in comparisons:
        assert found["interval"][0] <= found["mean"] <= found["interval"][1] and found["examples"] == 3
        assert found["level"] == pytest.approx(0.99) and not found["beyond_noise"]
        assert "2 seed(s)" in found["inconclusive_because"]
    assert "_predictions" not in results["methods"]["hard"]  # per-example predictions stay in each run's folder
    # The lambda_P sweep's effect on P*, beside the metric.
    assert "## Did the reweighting move?" in report
    for title in ("| MMEL-H | 1 |", "| MMEL-H (lambda_P=0.1) | 0.1 |", "| MMEL-S | 1 |"):
        assert title in report, title
    assert all(w and 0 <= w["effective_share"] <= 1 for w in results["methods"]["hard@0.1"]["weights"])

    assert study_main(args) == 0  # a rerun trains nothing
    out = capsys.readouterr().out
    assert out.count("(done before)") == 14 and "teacher: fine-tuning" not in out and "(cache hit)" in out


@pytest.mark.slow
def test_runs_trained_side_by_side_give_what_they_give_one_by_one(models, rte_dir, tmp_path, capsys):
    """--parallel-runs: the student runs train in worker processes, each as it would alone (same seed, data and
    settings), and the report is the same; 0 is refused."""
    common = ["--task", "rte", "--data-dir", str(rte_dir), "--max-train-samples", "8", "--teacher-model", models[0],
              "--teacher-layers", "1", "--teacher-epochs", "1", "--mlm-model", models[0], "--student-model", models[0],
              "--student-layers", "1", "--epochs", "1", "--batch-size", "4", "--group-size", "3", "--cache-dir",
              str(tmp_path / "cache"), "--seeds", "0", "1", "--methods", "none", "hard"]  # fmt: skip
    found = {}
    for workers in ("1", "2"):
        output = tmp_path / f"study-{workers}"
        assert study_main([*common, "--output-dir", str(output), "--parallel-runs", workers]) == 0
        assert "[4/4]" in capsys.readouterr().out
        found[workers] = json.loads((output / "results.json").read_text())["methods"]
        for method in ("none", "hard"):
            for seed in (0, 1):
                run = json.loads((output / "runs" / method / f"seed-{seed}" / "metrics.json").read_text())
                found[workers][(method, seed)] = run["metrics"]["validation"]["validation_loss"]
    for method in ("none", "hard"):
        assert found["1"][method]["seeds"] == found["2"][method]["seeds"] == [0, 1]
        for seed in (0, 1):  # a worker on a CPU has its share of the threads: the same run to rounding, not bitwise
            assert found["2"][(method, seed)] == pytest.approx(found["1"][(method, seed)], abs=1e-5)
    with pytest.raises(ValueError, match="--parallel-runs 0"):
        StudyConfig(task="rte", parallel_runs=0)


def test_study_help_and_bad_method(capsys):
    result = subprocess.run(
        [sys.executable, "-m", "augment_cli.study", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0 and "--methods" in result.stdout and "--seeds" in result.stdout
    with pytest.raises(SystemExit) as exit_:
        study_main(["--task", "rte", "--methods", "hardest"])
    assert exit_.value.code == 2 and "hardest" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--seeds", "0", "0", "0"], "seed 0 is given more than once"),
        (["--methods", "hard", "uniform", "hard"], "'hard' and 'hard' are the same method"),
        (["--methods", "hard", "hard@1"], "'hard' and 'hard@1' are the same method"),
        (["--epochs", "0"], "--epochs 0: must be a positive number"),
        (["--teacher-epochs", "-1"], "--teacher-epochs -1: must be a positive number"),
    ],
)
def test_one_run_is_never_counted_as_several(rte_dir, tmp_path, capsys, flags, named):
    """Repeated seeds or methods would be reported as paired runs (and meet the 3-seed rule); zero epochs would
    train nothing and replace earlier runs: refused in one line, before anything is written."""
    output = tmp_path / "study"
    with pytest.raises(SystemExit) as exit_:
        study_main(["--task", "rte", "--data-dir", str(rte_dir), "--output-dir", str(output), *flags])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and named in err, err
    assert not output.exists()


def test_a_study_under_a_launcher_is_refused_before_anything_is_written(rte_dir, tmp_path, capsys, monkeypatch):
    """Under torchrun every rank would train every run, read the others' half-written runs and write the reports."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    code = study_main(["--task", "rte", "--data-dir", str(rte_dir), "--output-dir", str(tmp_path / "study")])
    err = capsys.readouterr().err
    assert code != 0 and "WORLD_SIZE=2" in err and "not under a launcher" in err
    assert not (tmp_path / "study").exists()


def test_a_read_only_output_is_one_line_in_words(rte_dir, tmp_path, capsys, monkeypatch):
    """A read-only file system: the folder and the reason, not Python's "[Errno 30] ..."."""
    import errno
    from pathlib import Path

    real = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.name == "study":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    code = study_main(["--task", "rte", "--data-dir", str(rte_dir), "--output-dir", str(tmp_path / "study")])
    err = capsys.readouterr().err
    assert code == 1 and f"could not write {tmp_path / 'study'}: read-only file system" in err, err
    assert "Errno" not in err and len(err.strip().splitlines()) == 1


def test_a_study_on_another_augmenters_samples(models, rte_dir, tmp_path, capsys):
    """mmel-study --augmenter eda: the protocol on EDA's edits; a flag of another augmenter is refused before the
    teacher trains."""
    pytest.importorskip("nlpaug")
    output = tmp_path / "study"
    common = ["--task", "rte", "--data-dir", str(rte_dir), "--max-train-samples", "8", "--teacher-model", models[0],
              "--teacher-layers", "1", "--teacher-epochs", "1", "--student-model", models[0], "--student-layers", "1",
              "--epochs", "1", "--batch-size", "4", "--group-size", "3", "--cache-dir", str(tmp_path / "cache"),
              "--seeds", "0", "--methods", "uniform", "hard", "--output-dir", str(output)]  # fmt: skip
    assert study_main([*common, "--augmenter", "eda", "--eda-alpha", "0.3"]) == 0
    results = json.loads((output / "results.json").read_text())
    assert results["augmentation"]["augmenter"]["augmenter"] == "eda" and set(results["methods"]) == {"uniform", "hard"}
    with pytest.raises(SystemExit):
        study_main([*common, "--augmenter", "file"])
    assert "needs --augmented-file" in capsys.readouterr().err


def test_a_study_on_a_file_keyed_by_the_datas_own_id_column(models, rte_dir, tmp_path, capsys):
    """mmel-study --augmenter file --augmented-file-key index: the study reads the key column itself (mmel-augment
    takes --keep-columns; a study has no such flag)."""
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"index": str(i), "sentence2": ["a paraphrase."]}) + "\n" for i in range(10)))
    output = tmp_path / "study"
    args = ["--task", "rte", "--data-dir", str(rte_dir), "--teacher-model", models[0], "--teacher-layers", "1",
            "--teacher-epochs", "1", "--student-model", models[0], "--student-layers", "1", "--epochs", "1",
            "--batch-size", "4", "--cache-dir", str(tmp_path / "cache"), "--seeds", "0", "--methods", "uniform",
            "--augmenter", "file", "--augmented-file", str(samples), "--augmented-file-key", "index",
            "--output-dir", str(output)]  # fmt: skip
    assert study_main(args) == 0, capsys.readouterr().err
    results = json.loads((output / "results.json").read_text())
    assert results["augmentation"]["augmented_samples"] == 10 and results["augmentation"]["augmenter"]["key"] == "index"


def test_results_md_is_rendered_from_its_template():
    """results.md comes from templates/study_results.md: the settings, Table 3 (collapsed runs marked), Table 4 only
    with two MMEL-H rows at lambda_P 1, the weights table for MMEL methods that logged weights, the readings and the
    curves; one blank line between parts, never two."""
    from types import SimpleNamespace

    from mmel_hf.workflows.study_report import render_results

    def entry(title, mode, source="teacher", values=(0.61, 0.65), collapsed=(), weights=None):
        return {"title": title, "mode": mode, "label_source": source, "lambda_p": 1.0, "seeds": [0, 1],
                "metrics": {"accuracy": {"values": list(values), "mean": 0.63, "std": 0.02}}, "train_seconds": 12.34,
                "collapsed_seeds": list(collapsed), "weights": [weights] * len(values)}  # fmt: skip

    weights = {"normalised_entropy": 0.991, "effective_share": 0.962, "near_uniform": True}
    config = SimpleNamespace(teacher_model="embedded", teacher_layers=2, teacher=None, student_model="embedded",
                             student_layers=None, epochs=3.0, learning_rate=1e-4, batch_size=16, weight_decay=0.0,
                             warmup_ratio=0.0, seeds=[0, 1], group_size=5, ratio=0.4)  # fmt: skip
    methods = {"none": entry("Baseline", "none", collapsed=(1,)), "hard": entry("MMEL-H", "hard", weights=weights),
               "hard-original": entry("MMEL-H, original labels", "hard", "original")}  # fmt: skip
    report = {"task": "rte", "split": "validation", "metric": "accuracy", "methods": methods, "verdict": ["A beats B."],
              "teacher": {"validation": {"validation_accuracy": 0.7012, "validation_loss": 0.6}},
              "augmentation": {"examples": 300, "mlm_model": "local:mlm", "augmented_samples": 1200, "distinct_ratio": 0.8734},
              "evaluation": {"scored": 100, "of": 277, "limited": True}}  # fmt: skip
    text = render_results(config, report, ["accuracy"], "curves.png")
    for line in (
        "# Study: rte\n\n- Training examples: 300 (teacher and every student see the same ones); evaluation: "
        "`validation`, **only its first 100 of 277 examples were scored**",
        "- Teacher: embedded, first 2 layers, fine-tuned on the same 300 examples: accuracy 70.12\n",
        "- Augmentation: fill-mask `local:mlm`, greedy, |B| = 5, ratio 0.4; 1200 samples, 87.3% distinct\n",
        "; 3 epochs, lr 0.0001, batch 16, weight decay 0.0, warm-up 0.0; seeds [0, 1]; lambda_P = 1 unless named\n\n",
        "| method | accuracy | per-seed accuracy | train time per run |\n|---|---|---|---|\n",
        "| Baseline | 63.00 ± 2.00 | 61.00, 65.00 (collapsed) | 12.3 s |\n",
        "\n\n(collapsed): the run predicted one class",
        "## Table 4 layout (MMEL-H with teacher vs original labels)\n\n| method |",
        "| MMEL-H | 1 | 63.00 | 0.991 | 0.962 | 2 of 2 runs |\n\n## Reading",
        "- A beats B.\n\n![accuracy against training time](curves.png)\n",
    ):
        assert line in text, line
    assert "\n\n\n" not in text and text.endswith("(curves.png)\n") and "MMEL-H, original labels | 1 |" not in text


def test_a_bad_samples_file_is_refused_before_the_teacher_trains(models, rte_dir, tmp_path, capsys):
    """mmel-study --augmenter file: the samples file is checked whole against the training rows at the door, as
    mmel-augment checks it, so a bad line costs no teacher training and writes nothing."""
    samples = tmp_path / "samples.jsonl"
    lines = [json.dumps({"row": i, "sentence2": ["a paraphrase."]}) for i in range(10)]
    lines[1] = '{"row": 1, "sentence2": ["cut off'  # line 2: not JSON
    samples.write_text("\n".join(lines) + "\n")
    output = tmp_path / "study"
    args = ["--task", "rte", "--data-dir", str(rte_dir), "--teacher-model", models[0], "--teacher-layers", "1",
            "--student-model", models[0], "--cache-dir", str(tmp_path / "cache"), "--seeds", "0", "--methods", "uniform",
            "--augmenter", "file", "--augmented-file", str(samples), "--output-dir", str(output)]  # fmt: skip
    assert study_main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "samples.jsonl:2: not a JSON object" in err, err
    assert not output.exists()  # nothing written, no teacher trained
