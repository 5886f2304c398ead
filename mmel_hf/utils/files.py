"""Files that readers see whole or not at all, and that say when they were damaged since.

Writes go to a temporary sibling that is flushed to disk (``fsync``) before it is renamed into place and the
folder is synced after, so neither a killed process nor a power loss leaves a half-written file under the
final name. Artefacts that are reused later record their content hash (:func:`content_digests`), which
:func:`damaged` compares before each reuse.

Examples:
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "metrics.json"
    >>> write_text_atomically(target, "{}")
    >>> target.read_text()
    '{}'
    >>> digests = content_digests(target.parent)
    >>> damaged(target.parent, digests) is None
    True
    >>> _ = target.write_text("{ }")
    >>> damaged(target.parent, digests)
    'metrics.json: content changed'
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = [
    "content_digests",
    "damaged",
    "file_digest",
    "seal",
    "sync_path",
    "sync_tree",
    "unseal",
    "write_json_atomically",
    "write_text_atomically",
]


def sync_path(path: Path) -> None:
    """Flush ``path`` (a file or a folder's entries) to disk; folders cannot be opened on some systems."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:  # a file system without fsync on folders
        pass
    finally:
        os.close(descriptor)


def sync_tree(folder: Path) -> None:
    """fsync every file under ``folder`` and the folders themselves: call it before renaming ``folder`` into place."""
    folder = Path(folder)
    for root, _, files in os.walk(folder):
        for name in files:
            sync_path(Path(root) / name)
        sync_path(Path(root))


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step, synced to disk; a failed write (a full disk ...) leaves the old file and no
    temporary one. Concurrent processes may write the same file: each writes its own temporary sibling."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        sync_path(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def write_json_atomically(path: Path, value) -> None:
    write_text_atomically(path, json.dumps(value, indent=2, default=str))


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def content_digests(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``folder`` (names in ``skip`` left out)."""
    folder = Path(folder)
    return {
        path.relative_to(folder).as_posix(): file_digest(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in skip
    }


def damaged(folder: Path, digests: dict[str, str]) -> str | None:
    """None if every file of ``digests`` is under ``folder`` with that content; else what is wrong, in a few words."""
    folder = Path(folder)
    if not isinstance(digests, dict) or not digests:
        return "no record of its content"
    for name, expected in digests.items():
        path = folder / name
        if not path.is_file():
            return f"{name}: missing"
        try:
            if file_digest(path) != expected:
                return f"{name}: content changed"
        except OSError as err:
            return f"{name}: unreadable ({err.strerror or err})"
    return None


_SEAL = "record_sha256"


def seal(record: dict) -> dict:
    """``record`` with a hash of its own content, so an edited value (a wrong count ...) is seen by :func:`unseal`."""
    body = {key: value for key, value in record.items() if key != _SEAL}
    return {**body, _SEAL: hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()}


def unseal(text: str) -> dict | None:
    """The record written by :func:`seal`, or None if it cannot be read or was changed since."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or _SEAL not in record:
        return None
    return record if seal(record)[_SEAL] == record[_SEAL] else None
