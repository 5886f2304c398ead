"""The flows' shared data: a custom task's TSV files, and a teacher and its augmented dataset made by the CLIs once for
each flow module that uses them (module scope, as the tiny models they are made from)."""

import pytest

from augment_cli.augment import main as augment_main
from augment_cli.train import main as train_main

from builders import CLASSES, SMALL, write_reviews


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
