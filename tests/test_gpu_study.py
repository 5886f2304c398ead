"""benchmarks/gpu_study.py (issue 32): its plan against a budget, and a dry run of the whole call on the CPU."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from builders import write_glue_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED_GLUE = ROOT.parent / "shared" / "glue"


@pytest.fixture(scope="module")
def gpu_study():
    spec = importlib.util.spec_from_file_location("gpu_study", ROOT / "benchmarks" / "gpu_study.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_study"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def sizes(gpu_study):
    official = {"cola": (8551, 1043, 1), "mrpc": (3668, 408, 2), "rte": (2490, 277, 2), "stsb": (5749, 1500, 2)}
    return {name: gpu_study.TaskSize(name, *found) for name, found in official.items()}


def test_the_plan_cuts_epochs_then_seeds_then_tasks_and_says_so(gpu_study):
    rates = dict(gpu_study.ESTIMATED_RATES)
    settings = gpu_study.Settings(seeds=[0, 1, 2, 3, 4], epochs=3, teacher_epochs=3)
    free = gpu_study.make_plan(sizes(gpu_study), settings, rates, budget_s=0)
    assert free.cuts == [] and free.tasks == ["cola", "mrpc", "rte", "stsb"]
    assert free.total == pytest.approx(
        rates["process_start_s"] + sum(e["total"] for e in free.estimates.values()), abs=1
    )

    tight = gpu_study.make_plan(sizes(gpu_study), settings, rates, budget_s=free.total * 0.5)
    assert tight.total <= free.total * 0.5 and tight.cuts
    assert tight.cuts[0].startswith("student epochs 3 -> ") and tight.settings.epochs < 3
    # Seeds are cut only once the epochs are down to 1, and never below 3.
    assert len(tight.settings.seeds) == 5 or tight.settings.epochs == tight.settings.teacher_epochs == 1
    assert len(tight.settings.seeds) >= 3

    hopeless = gpu_study.make_plan(sizes(gpu_study), settings, rates, budget_s=60)
    assert hopeless.settings.seeds == [0, 1, 2] and hopeless.settings.epochs == 1
    assert any(cut.startswith("task cola") for cut in hopeless.cuts)  # the most expensive task goes first
    assert hopeless.tasks == [] or hopeless.total <= 60

    # More runs at once, or faster rates, never make the plan longer.
    wide = gpu_study.make_plan(sizes(gpu_study), gpu_study.Settings(seeds=[0, 1, 2], epochs=3, teacher_epochs=3,
                                                                    parallel_runs=16), rates, budget_s=0)  # fmt: skip
    narrow = gpu_study.make_plan(sizes(gpu_study), gpu_study.Settings(seeds=[0, 1, 2], epochs=3, teacher_epochs=3,
                                                                      parallel_runs=1), rates, budget_s=0)  # fmt: skip
    assert wide.total < narrow.total


def test_every_tasks_layout_is_counted_as_glue_writes_it(gpu_study, tmp_path):
    """CoLA without a header, MRPC with a byte-order mark, RTE, STS-B's ten columns: the rows the plan counts."""
    glue = write_glue_dir(tmp_path / "glue", rows=7)
    found = gpu_study.task_sizes(glue, list(gpu_study.TASKS), None)
    assert {name: (s.train, s.dev, s.segments) for name, s in found.items()} == {
        "cola": (7, 4, 1), "mrpc": (7, 4, 2), "rte": (7, 4, 2), "stsb": (7, 4, 2)
    }  # fmt: skip
    assert gpu_study.task_sizes(glue, ["rte"], 5)["rte"].train == 5


def test_the_default_plan_fits_seven_minutes_on_the_estimated_rates(gpu_study):
    """Issue 32: the whole call in 7 minutes on an H100/H200 (estimated rates until a GPU run measures them): every
    task, the five methods, 3 seeds."""
    plan = gpu_study.make_plan(
        sizes(gpu_study),
        gpu_study.Settings(seeds=[0, 1, 2], epochs=3, teacher_epochs=3),
        gpu_study.ESTIMATED_RATES,
        420,
    )
    assert plan.total <= 420 and plan.tasks == ["cola", "mrpc", "rte", "stsb"]
    assert plan.settings.methods == ["none", "uniform", "hard", "soft", "hard-original"]


@pytest.mark.skipif(not SHARED_GLUE.exists(), reason="../shared/glue is not present")
def test_row_counts_of_the_real_glue_files_are_the_official_sizes(gpu_study):
    found = gpu_study.task_sizes(SHARED_GLUE, list(gpu_study.TASKS), None)
    assert {name: (s.train, s.dev) for name, s in found.items()} == {
        name: (s.train, s.dev) for name, s in sizes(gpu_study).items()
    }


@pytest.mark.slow
def test_the_dry_run_runs_the_whole_call_on_the_cpu(tmp_path):
    """The script as the GPU machine runs it, with tiny models and a few rows: a pair classification task and the
    regression one (the other layouts are read in the plan's test), every method, two runs at a time; one JSON and
    one Markdown report in the layout of Tables 3 and 4."""
    glue = write_glue_dir(tmp_path / "glue", rows=8)
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_study.py"), "--dry-run", "--glue-dir", str(glue),
               "--out", str(out), "--seeds", "0", "1", "--epochs", "1", "--teacher-epochs", "1", "--batch-size", "4",
               "--parallel-runs", "2", "--max-length", "32", "--tasks", "rte", "stsb"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("plan: tasks rte, stsb")  # printed before anything runs
    report = json.loads((out / "gpu_study.json").read_text())
    assert report["tasks_done"] == ["rte", "stsb"] and report["dry_run"]
    for task, found in report["results"].items():
        assert set(found["methods"]) == {"none", "uniform", "hard", "soft", "hard-original"}, task
        assert all(m["seeds"] == [0, 1] for m in found["methods"].values())
        pairs = {(c["a"], c["b"]) for c in found["comparisons"]}
        assert {("hard", "uniform"), ("soft", "uniform"), ("uniform", "none"), ("hard", "hard-original")} <= pairs
        assert set(report["stage_seconds"][task]) == {"teacher", "augmentation", "students", "total"}
    assert report["results"]["stsb"]["metric"] == "spearmanr" and report["results"]["rte"]["metric"] == "accuracy"
    assert report["measured_rates"]["augment_segments_per_s"] > 0 and "step_s" in report["measured_rates"]
    markdown = (out / "gpu_study.md").read_text()
    for text in ("### Table 3 layout", "| MMEL-H: teacher − original labels |", "| MMEL-S − DA+UNI |", "dry run",
                 "## Study: rte", "## Study: stsb"):  # fmt: skip
        assert text in markdown, text
    assert str(tmp_path) not in markdown and str(tmp_path) not in (out / "gpu_study.json").read_text()


def test_the_docs_paper_settings_command_is_one_the_script_takes(tmp_path, capsys, gpu_study):
    """The docs' command for the study at the paper's settings (docs/guides/studies.md), as written (the GLUE folder swapped for a tiny
    one), planned without running: every flag exists, and without a budget nothing is cut."""
    import re
    import shlex

    text = (ROOT / "docs" / "guides" / "studies.md").read_text()
    command = re.search(r"python benchmarks/gpu_study\.py (?:[^\n]*\\\n)*[^\n]*", text).group(0)
    words = shlex.split(command.split("#")[0].replace("\\\n", " "))
    assert words[:2] == ["python", "benchmarks/gpu_study.py"]
    glue = write_glue_dir(tmp_path / "glue", rows=4)
    arguments = [str(glue) if word == "glue_data" else word for word in words[2:]]
    assert gpu_study.main([*arguments, "--plan-only"]) == 0
    out = capsys.readouterr().out
    assert "students 10 epoch(s), teacher 10" in out and "seeds [0, 1, 2, 3, 4]" in out and "cut:" not in out
