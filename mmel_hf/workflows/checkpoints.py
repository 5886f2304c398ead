"""Is a Trainer checkpoint whole? Checked before ``--resume-from-checkpoint`` loads it.

``Trainer`` writes a checkpoint file by file (the weights, then the optimizer, scheduler, scaler and RNG
states, ``trainer_state.json`` last) without syncing them to disk, and its attempts to make the save atomic
were reverted (transformers #35782, #36112). A process killed during a save, or a power loss after one, can
leave a folder whose files are missing or cut short; resuming from it either fails deep inside ``torch.load``
or, worse, resumes from half the weights. :func:`checkpoint_problem` reads each file's own structure (the
safetensors header against the file size; the zip directory and CRCs of ``torch.save`` files) without
loading any tensor.

Examples:
    >>> import pathlib, tempfile
    >>> checkpoint_problem(pathlib.Path(tempfile.mkdtemp()))
    'trainer_state.json: missing'
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

__all__ = ["checkpoint_problem"]

_WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_STATES = ("optimizer.pt", "scheduler.pt", "scaler.pt")


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return "cut short"
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            return "cut short"
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            return "its header is damaged"
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        return f"cut short ({size} of {expected} bytes)"
    return None


def _torch_file_problem(path: Path) -> str | None:
    """torch.save writes a zip archive: its directory at the end (so a cut is seen) and a CRC per record."""
    if not zipfile.is_zipfile(path):
        return "cut short or not a torch.save file"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f"damaged ({err})"
    return None if bad is None else f"damaged (record {bad} fails its CRC)"


def _file_problem(path: Path) -> str | None:
    if path.stat().st_size == 0:
        return "empty"
    return _safetensors_problem(path) if path.suffix == ".safetensors" else _torch_file_problem(path)


def checkpoint_problem(folder: Path) -> str | None:
    """None if ``folder`` holds a whole Trainer checkpoint; else the first file that is missing or damaged."""
    folder = Path(folder)
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
    except FileNotFoundError:
        return "trainer_state.json: missing"
    except (OSError, ValueError):
        return "trainer_state.json: cut short or unreadable"
    if not isinstance(state, dict) or "global_step" not in state:
        return "trainer_state.json: not a Trainer state"
    files = [folder / name for name in _WEIGHTS if (folder / name).is_file()]
    for index in (folder / name for name in _INDEXES):
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, AttributeError):
                return f"{index.name}: cut short or unreadable"
            missing = [name for name in shards if not (folder / name).is_file()]
            if missing:
                return f"{missing[0]}: missing (listed in {index.name})"
            files += [folder / name for name in shards]
    if not files:
        return "no model weights (model.safetensors ...)"
    files += [folder / name for name in _STATES if (folder / name).is_file()]
    files += sorted(folder.glob("rng_state*.pth"))
    for path in files:
        problem = _file_problem(path)
        if problem is not None:
            return f"{path.name}: {problem}"
    return None
