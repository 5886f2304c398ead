"""Commands of the documentation that need more than the code-block runner gives (tests/test_docs.py): here the CPU
DDP command of docs/guides/scale.md, run as written under torchrun."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from augment_cli.augment import main as augment_main

from builders import write_rte_dir

PAGE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "scale.md"


def readme_command(starts: str) -> list[str]:
    """The page's shell command (its continuation lines joined) that starts with ``starts``, as argv."""
    text = PAGE.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith(starts))
    return shlex.split(line.split("#")[0])


@pytest.mark.slow
def test_the_cpu_ddp_command_trains_one_run_over_two_processes(tmp_path):
    """`OMP_NUM_THREADS=1 torchrun --nproc_per_node 2 --no-python mmel-train ...` on a machine without a GPU is
    one DDP run (metrics.json: 2 processes, one "trained in" line), not two runs writing one folder."""
    command = readme_command("OMP_NUM_THREADS=1 torchrun --nproc_per_node 2 --no-python mmel-train")
    env_settings = dict(word.split("=", 1) for word in command if re.fullmatch(r"[A-Z_]+=\S*", word))
    argv = [word for word in command if word.split("=", 1)[0] not in env_settings]
    assert argv[0] == "torchrun" and "rte-augmented" in argv and argv[argv.index("--output-dir") + 1] == "rte-2proc"
    write_rte_dir(tmp_path / "RTE")
    made = augment_main(
        ["--task", "rte", "--data-dir", str(tmp_path / "RTE"), "--mlm-model", "embedded", "--label-source", "original",
         "--group-size", "3", "--cache-dir", str(tmp_path / "cache"), "--no-progress",
         "--output-dir", str(tmp_path / "rte-augmented")]
    )  # fmt: skip
    assert made == 0
    scripts = Path(sys.executable).parent  # where pip put torchrun and the mmel-* console scripts
    env = {**os.environ, **env_settings, "PATH": f"{scripts}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (done.stdout + done.stderr).count("trained in") == 1
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in done.stderr
    summary = json.loads((tmp_path / "rte-2proc" / "metrics.json").read_text())
    assert summary["processes"] == 2
