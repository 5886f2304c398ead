"""The prepared GPU check (benchmarks/gpu_check.py) works before device time is spent on it: its dry mode runs
every part on the CPU with tiny models, and the shell entry point refuses a machine without CUDA clearly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_runs_every_part_in_its_dry_mode(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    parts = (
        "ceiling",
        "mfu",
        "nan_length",
        "cli",
        "glue_projection",
        "augment",
        "teacher",
        "trainer_step",
        "chunked",
        "layout",
    )
    assert all("error" not in report[p] for p in parts), {p: report[p].get("error") for p in parts}
    assert report["dry_run"] and report["machine"]["device"] == "cpu"
    assert set(report["augment"]["rates"]) == {"fp32@4", "fp32@16", "bf16@4", "bf16@16"}
    assert report["augment"]["rates"]["fp32@4"]["limit_sentences_per_s"] > 0
    assert report["augment"]["pipeline_sentences_per_s"] > 0 and report["teacher"]["fp32_texts_per_s"] > 0
    assert report["trainer_step"]["hard_over_plain"] > 0
    assert (
        report["generators"]["batched_sentences_per_s"] > 0 and report["generators"]["batched_over_one_at_a_time"] > 0
    )
    assert report["cli"]["augment_sst2"]["rows_per_s"] > 0 and report["cli"]["augment_rte"]["rows"] > 0
    assert report["cli"]["train_hard"]["sequences_per_train_second"] > 0
    assert report["cli"]["plain_trainer"]["sequences_per_second"] > 0 and report["cli"]["mmel_hard_over_plain"] > 0
    assert (
        report["nan_length"]["ours"]["all_gradients_finite"] and report["nan_length"]["cudnn_allowed"]["last_loss"] > 0
    )
    assert set(report["glue_projection"]["minutes_by_task"]) >= {"sst2", "mnli", "qqp", "rte"}
    assert report["ceiling"]["matmul_tflops"] > 0 and report["ceiling"]["encoder_tokens_per_s"] > 0
    for variant in ("ours", "rows_1024", "cudnn_allowed"):  # MFU on real tokens, against the ceiling just measured
        assert 0 < report["mfu"][variant]["mfu"] and 0 < report["mfu"][variant]["real_token_share"] <= 1
    # The design's guarantees, checked by the same code that will run on the card:
    assert (
        report["chunked"]["dropout_replayed"] and report["chunked"]["max_abs_gradient_difference_vs_kept_chunks"] < 1e-4
    )
    assert report["layout"]["texts_identical"] and report["layout"]["teacher_bitwise_identical"]


def test_the_gpu_check_refuses_a_machine_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check would run")
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable, "OUT": "/nonexistent-never-written"},
        timeout=300,
    )
    assert result.returncode == 1 and "no CUDA device here" in result.stderr
