"""Fixtures for tests/ (the tokenizer fixture lives in the root conftest.py)."""

import pytest

from builders import make_augmented_dataset, make_tiny_bert, make_tiny_mlm, write_rte_dir


@pytest.fixture
def augmented_dataset():
    return make_augmented_dataset()


@pytest.fixture
def tiny_bert(tokenizer):
    return make_tiny_bert(tokenizer)


@pytest.fixture(scope="module")
def models(tmp_path_factory, tokenizer):
    """A tiny fill-mask model and a tiny 2-label classifier, saved with the real tokenizer: (mlm, teacher)."""
    root = tmp_path_factory.mktemp("models")
    mlm, teacher = root / "mlm", root / "teacher"
    make_tiny_mlm(tokenizer).save_pretrained(mlm)
    make_tiny_bert(tokenizer).save_pretrained(teacher)
    for folder in (mlm, teacher):
        tokenizer.save_pretrained(folder)
    return str(mlm), str(teacher)


@pytest.fixture
def rte_dir(tmp_path):
    return write_rte_dir(tmp_path / "RTE")
