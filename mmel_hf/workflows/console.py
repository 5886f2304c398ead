"""What every workflow process shows on the console: the libraries' logs and bars, set once per process."""

from __future__ import annotations

import logging

import datasets
import transformers


def quiet_libraries(progress: bool, level: int = logging.WARNING) -> None:
    """Log at ``level``; without ``progress`` also no per-stage bars or load reports (each run's folder keeps its log).
    The CLIs call it at start, and so does each worker process a workflow spawns (a spawned process starts with the
    libraries' own defaults)."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=level)
    if progress:
        return

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
