"""Writing a dataset where a user asked: atomically, and never over data that is not ours to replace."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..tasks.sources import DataError
from ..utils.files import content_digests, seal, sync_path, sync_tree
from .shards import MANIFEST


def atomic_save(dataset, target: Path, manifest: dict | None = None) -> None:
    """Write to a temporary sibling, sync it to disk, then rename over ``target``; a failure (a full disk ...)
    leaves nothing.

    ``manifest``: written into the folder before the rename as :data:`~.shards.MANIFEST`, with the row count and
    the sha256 of every file saved added, and sealed (:func:`~mmel_hf.utils.files.seal`), so an edit is seen too."""
    temporary = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        dataset.save_to_disk(str(temporary))
        if manifest is not None:
            record = seal({**manifest, "num_rows": len(dataset), "files": content_digests(temporary)})
            (temporary / MANIFEST).write_text(json.dumps(record))
        sync_tree(temporary)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(temporary, target)
        sync_path(target.parent)  # the rename itself
    except BaseException as err:  # a full disk, Ctrl-C ...: no half-written copy is left behind
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(err, OSError):
            raise DataError(f"could not write {target} ({err.strerror or err}); nothing was left behind") from None
        raise


# What DatasetDict.save_to_disk writes: a folder holding only these is a dataset we may replace.


# What DatasetDict.save_to_disk writes: a folder holding only these is a dataset we may replace.
_SAVED_FILES = ("dataset_dict.json",)
_SPLIT_FILES = ("dataset_info.json", "state.json")


def _is_replaceable_dataset(folder: Path) -> str | None:
    """None if ``folder`` holds only a saved DatasetDict; else the first entry that is not part of one."""
    for entry in sorted(folder.iterdir()):
        if entry.name in _SAVED_FILES:
            continue
        if not entry.is_dir() or entry.is_symlink():
            return entry.name
        for inner in entry.iterdir():
            if not (inner.name in _SPLIT_FILES or (inner.name.startswith("data-") and inner.suffix == ".arrow")):
                return f"{entry.name}/{inner.name}"
    return None


def check_output_dir(output_dir: str, dataset_path: str | None = None) -> None:
    """Refuse, before any work, an --output-dir that cannot be written or whose replacement would lose data."""
    output = Path(output_dir)
    where = f"--output-dir {output_dir}"
    if output.is_symlink():
        raise DataError(f"{where}: is a symbolic link; give the real folder")
    for parent in [output, *output.parents]:
        if parent.exists() and not parent.is_dir():
            raise DataError(f"{where}: {'is' if parent == output else 'lies under'} a file ({parent})")
        if parent.exists():
            if not os.access(parent, os.W_OK):
                raise DataError(f"{where}: {parent} is not writable")
            break
    if dataset_path is not None:
        source, target = Path(dataset_path).resolve(), output.resolve()
        if source == target or source in target.parents or target in source.parents:
            raise DataError(f"{where}: overlaps --dataset-path {dataset_path}, the input; write the result elsewhere")
    if output.is_dir() and any(output.iterdir()):
        if not (output / "dataset_dict.json").exists():
            raise DataError(f"{where}: exists and is not a saved dataset; choose an empty or new folder")
        foreign = _is_replaceable_dataset(output)
        if foreign is not None:
            raise DataError(
                f"{where}: holds '{foreign}', which is not part of a saved dataset; it would be deleted "
                "when the result replaces the folder. Choose an empty or new folder"
            )
