"""The console scripts introduce themselves: --version, and a mistyped flag in one line naming the closest one."""

import subprocess
import sys

import pytest

from augment_cli import COMMANDS
from mmel_hf import __version__


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_answers_version_and_names_the_flag_meant(command, capsys):
    import importlib

    main = importlib.import_module(COMMANDS[command]).main
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith(f"{command} (mmel_hf) {__version__}; torch ")
    with pytest.raises(SystemExit) as done:
        main(["--output_dirr", "x"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"{command}: error: unknown option(s): --output_dirr (did you mean --output-dir?)")


def test_a_mistyped_flag_from_the_shell_is_one_line():
    done = subprocess.run([sys.executable, "-m", "augment_cli.train", "--lerning-rate", "3e-5"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2 and done.stderr == (
        "mmel-train: error: unknown option(s): --lerning-rate (did you mean --learning-rate?); mmel-train --help "
        "lists every option\n"
    )


def test_help_is_grouped_by_topic(capsys):
    """mmel-augment --help reads by topic: each option in its group (the augmenter's, fill-mask's, the Hub's ...)."""
    from augment_cli.augment import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    sections = {}
    for line in out.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = sections.setdefault(line[:-1], [])
        elif line.startswith("  --") and sections:
            current.append(line.split()[0].rstrip(","))
    assert "--augmented_file" in sections["augmenter"] and "--ratio" in sections["fill-mask (Algorithm 2)"]
    assert "--push_to_hub" in sections["Hub"] and "--teacher" in sections["teacher"]
    assert "--max_tokens_per_batch" in sections["batching, precision and device"]
    assert "other options" not in sections and len(sections["options"]) <= 2  # -h and --version only


def test_the_commands_table_is_what_setup_installs():
    """augment_cli.COMMANDS (read by these tests and the docs' CLI reference) names every console script setup.cfg
    installs, with the module whose main it runs."""
    import configparser
    from pathlib import Path

    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    lines = [line.split("=") for line in setup["options.entry_points"]["console_scripts"].strip().splitlines()]
    installed = {name.strip(): target.strip().removesuffix(":main") for name, target in lines}
    assert installed == COMMANDS
