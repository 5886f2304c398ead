"""Image datasets for the vision adapter: CIFAR from the Hub or from its python pickles, and class folders.

- ``load_cifar("cifar10")`` reads ``uoft-cs/cifar10`` (``uoft-cs/cifar100``) from the Hub; give
  ``data_dir`` to read the python-pickle batches as distributed by the CIFAR authors instead
  (``cifar-10-batches-py``: ``data_batch_1..5``, ``test_batch``; ``cifar-100-python``: ``train``, ``test``).
- ``load_image_folder(path)`` reads ImageNet-style class folders (``train/<class>/*.jpg``,
  ``val/<class>/*.jpg``) with ``datasets``' own ``imagefolder`` builder; images are decoded with Pillow.

Every loader returns a ``DatasetDict`` with ``train`` and ``test`` splits of ``img`` and ``label`` columns.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import datasets
import numpy as np
from datasets import Array3D, ClassLabel, Dataset, DatasetDict, Features, load_dataset
from datasets import Image as ImageFeature
from PIL import Image
from tqdm.auto import tqdm

from ..errors import DataError

__all__ = ["CIFAR_HUB_IDS", "load_cifar", "load_image_folder"]

CIFAR_HUB_IDS = {"cifar10": "uoft-cs/cifar10", "cifar100": "uoft-cs/cifar100"}
_PICKLES = {
    "cifar10": (
        ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"],
        ["test_batch"],
        b"labels",
    ),
    "cifar100": (["train"], ["test"], b"fine_labels"),
}


# What genuine CIFAR batches reference: a dict of bytes keys, lists and NumPy arrays (NumPy 1 and 2 names).
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in protocol-2 pickles (a conversion, it runs nothing)
    ("__builtin__", "bytes"),  # an empty bytes value in a protocol-2 pickle: a constructor, it runs nothing
    ("builtins", "bytes"),
}


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what CIFAR batches contain: a crafted file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only arrays and lists")


def _pixels(raw, path: Path) -> np.ndarray:
    """CIFAR pixels as uint8: integers in 0..255 are taken as they are (whatever their integer type); anything
    else (floats in [0, 1], values beyond 0..255) is refused, naming the file, never cast (which would make black
    images or wrap values around)."""
    data = np.asarray(raw)
    if data.dtype == np.uint8:
        return data
    if data.dtype.kind not in "iu":
        raise DataError(
            f"{path}: pixels are {data.dtype}, not uint8 0..255 as in CIFAR batches (floats in [0, 1]? convert with "
            "(data * 255).round().astype(numpy.uint8))"
        )
    if data.size and (data.min() < 0 or data.max() > 255):
        raise DataError(f"{path}: pixel values run from {data.min()} to {data.max()}, outside 0..255")
    return data.astype(np.uint8)


def _checked_labels(labels: list, path: Path, num_classes: int) -> list[int]:
    """Every label a class id 0..num_classes-1, or one line naming the batch file and row."""
    for row, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < num_classes:
            raise DataError(f"{path}, row {row}: label {label!r} is not a class id 0..{num_classes - 1}")
    return [int(label) for label in labels]


def _read_pickles(folder: Path, names: list[str], label_key: bytes, num_classes: int):
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.exists():
            raise DataError(f"{path}: not found (expected the CIFAR python-pickle batches {names})")
        try:
            with open(path, "rb") as handle:
                batch = _CifarUnpickler(handle, encoding="bytes").load()
            raw = batch[b"data"]
            batch_labels = list(batch[label_key])
        except (pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError, AttributeError) as err:
            raise DataError(f"{path}: not a CIFAR python-pickle batch ({type(err).__name__}: {err})") from None
        try:
            data = _pixels(raw, path)
        except (TypeError, ValueError) as err:
            raise DataError(f"{path}: not a CIFAR python-pickle batch (its data: {err})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(batch_labels) != len(data):
            raise DataError(
                f"{path}: expected data of shape [N, 3072] and N labels, found {data.shape} and {len(batch_labels)}"
            )
        images.append(data.reshape(-1, 3, 32, 32))
        labels.extend(_checked_labels(batch_labels, path, num_classes))
    return np.concatenate(images), labels


def load_cifar(name: str = "cifar10", data_dir: str | os.PathLike | None = None):
    """CIFAR-10/100 as a DatasetDict (``img`` uint8 ``[3, 32, 32]``, ``label``)."""

    if name not in CIFAR_HUB_IDS:
        raise DataError(f"unknown dataset {name!r}; expected one of {list(CIFAR_HUB_IDS)} (or an image folder)")
    if data_dir is None:
        try:
            data = load_dataset(CIFAR_HUB_IDS[name])
        except Exception as err:
            raise DataError(
                f"could not load {CIFAR_HUB_IDS[name]} from the Hugging Face Hub ({type(err).__name__}). Without Hub "
                f"access give --data-dir with the CIFAR python-pickle batches ({', '.join(_PICKLES[name][0] + _PICKLES[name][1])})"
            ) from err
        if name == "cifar100":
            data = data.rename_column("fine_label", "label")
        return DatasetDict({split: data[split].select_columns(["img", "label"]) for split in ("train", "test")})
    train_names, test_names, label_key = _PICKLES[name]
    folder = Path(data_dir)
    features = Features(
        {
            "img": Array3D(shape=(3, 32, 32), dtype="uint8"),
            "label": ClassLabel(num_classes=10 if name == "cifar10" else 100),
        }
    )
    splits = {}
    for split, names in (("train", train_names), ("test", test_names)):
        images, labels = _read_pickles(folder, names, label_key, features["label"].num_classes)
        splits[split] = Dataset.from_dict({"img": images, "label": labels}, features=features)
    return DatasetDict(splits)


def load_image_folder(path: str | os.PathLike, progress: bool = True):
    """ImageNet-style class folders -> DatasetDict(train, test) with ``img`` and ``label``.

    ``train/<class>/`` and ``val/<class>/`` (or ``test/``) are required. Every image file is checked before any
    training (``PIL.Image.verify``: its header and, for PNG, its chunks, so a truncated file is found here, named,
    not deep in an epoch); images are decoded batch by batch by the collator, which names a file it cannot read.
    """

    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of class folders")
    if not (folder / "train").is_dir():
        raise DataError(f"{folder}: expected train/<class>/ and val/<class>/ folders (found no train/)")
    if not any((folder / name).is_dir() for name in ("val", "validation", "test")):
        raise DataError(
            f"{folder}: no val/ (or test/) folder of class folders beside train/: the model is evaluated on it"
        )

    was_disabled = datasets.utils.are_progress_bars_disabled()
    if not progress:
        datasets.disable_progress_bars()
    try:
        data = load_dataset("imagefolder", data_dir=str(folder))
    finally:
        if not progress and not was_disabled:
            datasets.enable_progress_bars()
    if "validation" in data and "test" not in data:
        data["test"] = data.pop("validation")
    data = data.rename_column("image", "img") if "image" in data["train"].column_names else data
    data = DatasetDict(
        {split: data[split].cast_column("img", ImageFeature(decode=False)) for split in ("train", "test")}
    )
    for split in data.values():
        _verify_images(split, progress)
    return data


def _verify_images(dataset, progress: bool) -> None:
    """Open and verify every image file of a split (no pixels decoded), naming the first that is not readable."""

    for row in tqdm(dataset["img"], desc="Checking images", unit=" images", disable=not progress, delay=2.0):
        name = row.get("path") or "an image"
        try:
            with Image.open(row["path"] if row.get("bytes") is None else io.BytesIO(row["bytes"])) as image:
                image.verify()
        except Exception as err:  # PIL raises many kinds (SyntaxError for a bad PNG chunk ...)
            raise DataError(f"{name}: not a readable image ({type(err).__name__}: {err})") from None
