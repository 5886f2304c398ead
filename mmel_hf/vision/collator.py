"""MMELVisionCollator: decode a batch of images once, cut |B| views of each, hand MMELTrainer one flat batch.

Training batches hold ``pixel_values`` ``[S*|B|, C, H, W]``, ``labels`` ``[S]`` and ``mmel_group_mask``
``[S, |B|]``. Every view takes the original image's label (Section 4.1: crops and flips do not change it),
so vision needs no teacher: train with ``mmel_label_source="original"``. Evaluation batches (the trainer
asks :meth:`for_evaluation`) hold the plain images: CIFAR as they are, ImageNet resized to 256 and
centre-cropped to 224, as usual.

Views are random but reproducible: each call draws from a generator seeded by ``(seed, process, worker,
epoch, batch number in the epoch)``, so a run with the same seed, batch order and number of data-loader
workers sees the same views, each process of a multi-process run draws its own, and a run resumed from a
checkpoint (MMELTrainer tells the collator where the epoch starts, :meth:`start_epoch`) draws the views the
uninterrupted run would have drawn (exact with ``dataloader_num_workers=0``, the default).

Examples:
    >>> import numpy as np
    >>> rows = [{"img": np.zeros((32, 32, 3), dtype=np.uint8), "label": 3}] * 2
    >>> batch = MMELVisionCollator(num_views=5)(rows)
    >>> batch["pixel_values"].shape, batch["mmel_group_mask"].shape, batch["labels"].tolist()
    (torch.Size([10, 3, 32, 32]), torch.Size([2, 5]), [3, 3])
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..collator import GROUP_MASK_KEY
from ..schema import LABEL_COLUMNS
from .views import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD, cifar_views, imagenet_views, normalize

__all__ = ["IMAGE_COLUMNS", "IMAGE_LABEL_COLUMNS", "MMELVisionCollator"]

IMAGE_COLUMNS = ("img", "image", "pixels")
IMAGE_LABEL_COLUMNS = (*LABEL_COLUMNS, "fine_label")  # the schema's, and CIFAR-100's fine labels


def _decoded(image: dict):
    """An image ``datasets`` left undecoded (``{"path", "bytes"}``), decoded with Pillow; a file that cannot be read
    is named in the error."""

    source = image.get("path") or "an image"
    try:
        with Image.open(io.BytesIO(image["bytes"]) if image.get("bytes") is not None else image["path"]) as opened:
            return opened.convert("RGB")
    except Exception as err:  # PIL raises OSError ("image file is truncated"), SyntaxError ...
        raise ValueError(f"{source}: not a readable image ({type(err).__name__}: {err})") from None


def _to_chw_uint8(image: Any) -> np.ndarray:
    if isinstance(image, dict) and ("path" in image or "bytes" in image):
        image = _decoded(image)
    if hasattr(image, "convert"):  # PIL
        array = np.asarray(image.convert("RGB"))
    else:
        array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim == 3 and array.shape[-1] in (1, 3) and array.shape[0] not in (1, 3):
        array = array.transpose(2, 0, 1)  # HWC -> CHW
    if array.shape[0] == 1:
        array = np.repeat(array, 3, axis=0)
    return np.ascontiguousarray(array)


@dataclass
class MMELVisionCollator:
    """Groups of |B| views per image for MMEL (or one view for the plain DA baseline).

    Args:
        num_views: |B| (10 in the paper); 1 gives the ordinary one-random-view-per-image batch of
            Baseline(DA) with ``original_first=False``.
        kind: ``"cifar"`` (pad-4 crop + flip at native size) or ``"imagenet"`` (random-resized crop + flip).
        image_size: output size for ``"imagenet"`` (224).
        base_size: ImageNet images are first resized (shorter side) and centre-cropped to this square; default
            ``image_size`` x 256/224, the ImageNet recipe's ratio (256 for 224), so that evaluation's centre crop
            keeps the same share of the picture (87.5%) at any ``image_size``.
        padding: CIFAR crops are cut from the image padded by this many pixels (4 in the paper).
        original_first: slot 0 is the un-augmented image (x_i of the soft loss) instead of a random view.
        seed: seeds the views.
        process_index: this process's rank; every process draws its own views.
        training: False gives evaluation batches (no views, no groups).
    """

    num_views: int = 10
    kind: str = "cifar"
    image_size: int = 224
    base_size: int | None = None
    padding: int = 4
    original_first: bool = True
    seed: int = 0
    process_index: int = 0
    training: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    _calls: int = field(default=0, repr=False)
    _epoch: int = field(default=0, repr=False)

    def __post_init__(self):
        if self.kind not in ("cifar", "imagenet"):
            raise ValueError(f"kind={self.kind!r} must be 'cifar' or 'imagenet'")
        if self.num_views < 1:
            raise ValueError(f"num_views={self.num_views} must be at least 1")
        if self.base_size is None:
            self.base_size = round(self.image_size * 256 / 224)
        if self.base_size < self.image_size:
            raise ValueError(f"base_size={self.base_size} must be at least image_size={self.image_size}")
        default_mean, default_std = (CIFAR_MEAN, CIFAR_STD) if self.kind == "cifar" else (IMAGENET_MEAN, IMAGENET_STD)
        self.mean, self.std = self.mean or default_mean, self.std or default_std

    signature_columns = [*IMAGE_COLUMNS, *IMAGE_LABEL_COLUMNS]

    def for_evaluation(self) -> MMELVisionCollator:
        return replace(self, training=False)

    def start_epoch(self, epoch: int, batches_done: int = 0) -> None:
        """Where the next batch stands: its epoch and how many of the epoch's batches came before it."""
        self._epoch, self._calls = epoch, batches_done

    def _generator(self) -> torch.Generator:
        info = torch.utils.data.get_worker_info()
        self._calls += 1
        key = (self.seed, self.process_index, info.id if info else -1, self._epoch, self._calls)
        return torch.Generator().manual_seed(hash(key) % (2**63))

    def _images(self, rows: list[dict]) -> torch.Tensor:
        key = next((k for k in IMAGE_COLUMNS if k in rows[0]), None)
        if key is None:
            raise ValueError(f"no image column: expected one of {list(IMAGE_COLUMNS)}, the rows have {sorted(rows[0])}")
        arrays = [_to_chw_uint8(row[key]) for row in rows]
        if self.kind == "imagenet":
            arrays = [self._square(a, self.base_size) for a in arrays]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"images of one batch must share a shape for kind='cifar', found {sorted(shapes)}")
        return torch.from_numpy(np.stack(arrays))

    @staticmethod
    def _square(array: np.ndarray, size: int) -> np.ndarray:
        """Resize the shorter side to ``size`` and centre-crop a square."""
        image = torch.from_numpy(array).float().unsqueeze(0)
        h, w = array.shape[1:]
        scale = size / min(h, w)
        image = F.interpolate(
            image,
            size=(max(size, round(h * scale)), max(size, round(w * scale))),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        top, left = (image.shape[2] - size) // 2, (image.shape[3] - size) // 2
        return image[0, :, top : top + size, left : left + size].round().clamp(0, 255).to(torch.uint8).numpy()

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        images = self._images(rows)
        label_key = next((k for k in IMAGE_LABEL_COLUMNS if k in rows[0]), None)
        batch: dict[str, torch.Tensor] = {}
        if label_key is not None:
            batch["labels"] = torch.tensor([row[label_key] for row in rows], dtype=torch.long)
        if not self.training:
            x = images.float() / 255
            if self.kind == "imagenet":
                offset = (x.shape[-1] - self.image_size) // 2
                x = x[..., offset : offset + self.image_size, offset : offset + self.image_size]
            batch["pixel_values"] = normalize(x, self.mean, self.std)
            return batch
        if label_key is None:
            raise ValueError(f"training rows need a label column, one of {list(IMAGE_LABEL_COLUMNS)}")
        generator = self._generator()
        if self.kind == "cifar":
            views = cifar_views(images, self.num_views, generator, self.padding, original_first=self.original_first)
        else:
            views = imagenet_views(
                images, self.num_views, generator, self.image_size, original_first=self.original_first
            )
        batch["pixel_values"] = normalize(views, self.mean, self.std).flatten(0, 1)
        if self.num_views > 1:
            batch[GROUP_MASK_KEY] = torch.ones(len(rows), self.num_views, dtype=torch.bool)
        return batch
