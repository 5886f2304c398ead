"""What a model can take: checked from its configuration file, before any weights are loaded.

Examples:
    >>> from transformers import BertConfig
    >>> position_limit(BertConfig(max_position_embeddings=512))
    512
    >>> check_max_length(BertConfig(max_position_embeddings=512), 600, "--max-length", "bert")
    Traceback (most recent call last):
    ...
    mmel_hf.errors.DataError: --max-length 600: the model 'bert' takes at most 512 word pieces; give --max-length 512 or less
"""

from __future__ import annotations

from ..errors import DataError

__all__ = ["check_max_length", "position_limit"]

# Models whose position ids start after the padding id (RoBERTa's convention): 514 positions hold 512 tokens.
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text", "xmod")


def position_limit(config) -> int | None:
    """The longest sequence the model's position embeddings hold, or None where it has no such limit."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return None
    if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
        positions -= (getattr(config, "pad_token_id", None) or 0) + 1
    return positions


def check_max_length(config, max_length: int | None, flag: str, model_name: str) -> None:
    """Refuse a ``max_length`` longer than the model's positions (it would fail mid-work, or silently wrap)."""
    limit = position_limit(config)
    if max_length is not None and limit is not None and max_length > limit:
        raise DataError(
            f"{flag} {max_length}: the model {model_name!r} takes at most {limit} word pieces; give "
            f"{flag} {limit} or less"
        )
