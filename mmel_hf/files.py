"""Writing a file so that readers see all of it or none: a temporary sibling, renamed into place.

Example:
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "metrics.json"
    >>> write_text_atomically(target, "{}")
    >>> target.read_text()
    '{}'
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["write_json_atomically", "write_text_atomically"]


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step; a failed write (a full disk ...) leaves the old file and no temporary one.
    Concurrent processes may write the same file: each writes its own temporary sibling."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json_atomically(path: Path, value) -> None:
    write_text_atomically(path, json.dumps(value, indent=2, default=str))
