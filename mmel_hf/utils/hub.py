"""What a push to the Hugging Face Hub needs, checked before any work (not after a whole run)."""

from __future__ import annotations

from huggingface_hub import constants

__all__ = ["check_push_possible"]


def check_push_possible(option: str = "--push-to-hub") -> None:
    """Refuse a push that cannot happen: with ``HF_HUB_OFFLINE`` set, ``huggingface_hub`` sends nothing, so the
    push would fail after all the work (training, augmentation) is done."""

    if constants.HF_HUB_OFFLINE:
        raise ValueError(
            f"{option}: HF_HUB_OFFLINE is set, so nothing can be pushed; unset it, or drop {option} and push the "
            "saved result later"
        )
