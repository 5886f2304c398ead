"""The console scripts introduce themselves: --version, and a mistyped flag in one line naming the closest one."""

import subprocess
import sys

import pytest

from mmel_hf import __version__

COMMANDS = {
    "mmel-augment": "augment_cli.augment",
    "mmel-train": "augment_cli.train",
    "mmel-study": "augment_cli.study",
    "mmel-main": "augment_cli.main_job",
    "mmel-train-vision": "augment_cli.train_vision",
}


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
