"""Fixtures for tests/ (the tokenizer fixture lives in the root conftest.py)."""

import pytest

from builders import make_augmented_dataset, make_tiny_bert


@pytest.fixture
def augmented_dataset():
    return make_augmented_dataset()


@pytest.fixture
def tiny_bert(tokenizer):
    return make_tiny_bert(tokenizer)
