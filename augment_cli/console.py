"""What the CLIs share about the console."""

from __future__ import annotations

import logging


def quiet_libraries(progress: bool) -> None:
    """Warnings only; without ``progress`` also no per-stage bars or load reports (each run's folder keeps its log)."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    if progress:
        return
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
