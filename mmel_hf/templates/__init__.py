"""Jinja2 templates of the cards (rendered with ``huggingface_hub``'s ``DatasetCard/ModelCard.from_template``)."""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent

__all__ = ["TEMPLATES_DIR", "template_path"]


def template_path(name: str) -> str:
    """The path of ``templates/<name>`` (``dataset_card.md``, ``model_card.md``)."""
    return str(TEMPLATES_DIR / name)
