"""Image datasets for the vision adapter: CIFAR from the Hub or from its python pickles, and class folders.

- ``load_cifar("cifar10")`` reads ``uoft-cs/cifar10`` (``uoft-cs/cifar100``) from the Hub; give
  ``data_dir`` to read the python-pickle batches as distributed by the CIFAR authors instead
  (``cifar-10-batches-py``: ``data_batch_1..5``, ``test_batch``; ``cifar-100-python``: ``train``, ``test``).
- ``load_image_folder(path)`` reads ImageNet-style class folders (``train/<class>/*.jpg``,
  ``val/<class>/*.jpg``) with ``datasets``' own ``imagefolder`` builder; images are decoded with Pillow.

Every loader returns a ``DatasetDict`` with ``train`` and ``test`` splits of ``img`` and ``label`` columns.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

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
}


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what CIFAR batches contain: a crafted file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only arrays and lists")


def _read_pickles(folder: Path, names: list[str], label_key: bytes):
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.exists():
            raise DataError(f"{path}: not found (expected the CIFAR python-pickle batches {names})")
        try:
            with open(path, "rb") as handle:
                batch = _CifarUnpickler(handle, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            batch_labels = list(batch[label_key])
        except (pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError, AttributeError) as err:
            raise DataError(f"{path}: not a CIFAR python-pickle batch ({type(err).__name__}: {err})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(batch_labels) != len(data):
            raise DataError(
                f"{path}: expected data of shape [N, 3072] and N labels, found {data.shape} and {len(batch_labels)}"
            )
        images.append(data.reshape(-1, 3, 32, 32))
        labels.extend(batch_labels)
    return np.concatenate(images), labels


def load_cifar(name: str = "cifar10", data_dir: str | os.PathLike | None = None):
    """CIFAR-10/100 as a DatasetDict (``img`` uint8 ``[3, 32, 32]``, ``label``)."""
    from datasets import Array3D, ClassLabel, Dataset, DatasetDict, Features, load_dataset

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
        images, labels = _read_pickles(folder, names, label_key)
        splits[split] = Dataset.from_dict({"img": images, "label": labels}, features=features)
    return DatasetDict(splits)


def load_image_folder(path: str | os.PathLike):
    """ImageNet-style class folders -> DatasetDict(train, test) with ``img`` (PIL) and ``label``."""
    from datasets import DatasetDict, load_dataset

    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of class folders")
    data = load_dataset("imagefolder", data_dir=str(folder))
    if "validation" in data and "test" not in data:
        data["test"] = data.pop("validation")
    data = data.rename_column("image", "img") if "image" in data["train"].column_names else data
    return DatasetDict({split: data[split] for split in ("train", "test") if split in data})
