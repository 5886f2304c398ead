"""A study's runs on disk: each run's folder, the key of the settings it was trained with, and whether it finished.

Shared by :mod:`.study` (which trains the runs) and :mod:`.study_report` (which reads them), so neither imports the
other.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from datasets.fingerprint import Hasher

from ..utils.files import write_json_atomically
from ..utils.privacy import public_options

__all__ = ["KEY_FILE", "finished_run", "mark_done", "prepare_run_folder", "run_key"]

KEY_FILE = "study_key.json"  # beside a run's metrics.json: the settings it was trained with, and their hash


def run_key(settings: dict) -> str:

    return Hasher.hash(json.loads(json.dumps(settings, sort_keys=True, default=str)))


def finished_run(folder: Path, key: str | None = None) -> dict | None:
    """A finished run's summary: its ``metrics.json`` is readable and (with ``key``) it was trained with exactly
    these settings. An unreadable file (a full disk, a killed write) or other settings mean: not done."""
    try:
        summary = json.loads((folder / "metrics.json").read_text())
        if key is not None and json.loads((folder / KEY_FILE).read_text()).get("key") != key:
            return None
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and "metrics" in summary else None


def prepare_run_folder(folder: Path) -> None:
    """A run folder of the study is the study's own: a stale or unfinished run in it is cleared before redoing."""

    if folder.exists():
        shutil.rmtree(folder)


def mark_done(folder: Path, key: str, settings: dict) -> None:
    write_json_atomically(folder / KEY_FILE, {"key": key, "settings": public_options(settings)})
