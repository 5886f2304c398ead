"""|B| augmented views per image as batched tensor operations (Section 4.1 and Appendix B of the paper).

- CIFAR: random crop of the image padded by 4 pixels (zeros) + horizontal flip with probability 1/2.
- ImageNet: random-resized crop (scale 0.08-1, aspect ratio 3/4-4/3) to ``size`` + horizontal flip.
All views of a batch are cut in one indexing (CIFAR) or one ``grid_sample`` (ImageNet) call, then
normalised. Slot 0 of each group plays x_i in the soft loss; by default it is the un-augmented image
(``original_first=True``) so that MMEL-S compares the views with the clean image, as the text task does;
set it to False to make every slot a random view.

Examples:
    >>> images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    >>> views = cifar_views(images, num_views=4, generator=torch.Generator().manual_seed(0))
    >>> views.shape, torch.equal(views[:, 0], images.float() / 255)
    (torch.Size([2, 4, 3, 32, 32]), True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["CIFAR_MEAN", "CIFAR_STD", "IMAGENET_MEAN", "IMAGENET_STD", "cifar_views", "imagenet_views", "normalize"]

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """(x - mean) / std over the channel dimension (third from last)."""
    shape, like = (-1, 1, 1), dict(dtype=images.dtype, device=images.device)
    return (images - torch.tensor(mean, **like).view(shape)) / torch.tensor(std, **like).view(shape)


def _draw(sample, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Random numbers drawn on the generator's own device, then moved to the images' device: the same views for
    a seed whichever device the images are on (a CPU generator cannot fill a CUDA tensor)."""
    return sample(generator.device).to(device)


def _flip(views: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flips = _draw(lambda on: torch.rand(views.shape[:2], generator=generator, device=on), generator, views.device) < 0.5
    return torch.where(flips[..., None, None, None], views.flip(-1), views)


def cifar_views(
    images: torch.Tensor, num_views: int, generator: torch.Generator, padding: int = 4, original_first: bool = True
) -> torch.Tensor:
    """``[S, C, H, W]`` uint8 -> ``[S, V, C, H, W]`` float in [0, 1]: padded random crops + flips."""
    x = images.float() / 255
    s, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    device = x.device
    offsets = _draw(
        lambda on: torch.randint(0, 2 * padding + 1, (s, num_views, 2), generator=generator, device=on),
        generator,
        device,
    )
    rows = (offsets[..., 0, None] + torch.arange(h, device=device))[:, :, None, :, None]  # [S, V, 1, H, 1]
    cols = (offsets[..., 1, None] + torch.arange(w, device=device))[:, :, None, None, :]  # [S, V, 1, 1, W]
    views = padded[
        torch.arange(s, device=device)[:, None, None, None, None],
        torch.arange(c, device=device)[None, None, :, None, None],
        rows,
        cols,
    ]
    views = _flip(views, generator)
    if original_first:
        views[:, 0] = x
    return views


def imagenet_views(
    images: torch.Tensor,
    num_views: int,
    generator: torch.Generator,
    size: int = 224,
    scale=(0.08, 1.0),
    ratio=(3 / 4, 4 / 3),
    original_first: bool = True,
) -> torch.Tensor:
    """``[S, C, H, W]`` uint8 -> ``[S, V, C, size, size]``: random-resized crops + flips (bilinear)."""
    x = images.float() / 255
    s, c, h, w = x.shape
    n = s * num_views
    device = x.device
    area = _draw(
        lambda on: torch.empty(n, device=on).uniform_(scale[0], scale[1], generator=generator), generator, device
    )
    log_ratio = _draw(
        lambda on: torch.empty(n, device=on).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator),
        generator,
        device,
    )
    aspect = torch.exp(log_ratio) * (h / w)  # crop width / height in the image's own normalised units
    crop_w = torch.sqrt(area * aspect).clamp(max=1.0)
    crop_h = torch.sqrt(area / aspect).clamp(max=1.0)
    center_x = (_draw(lambda on: torch.rand(n, generator=generator, device=on), generator, device) * 2 - 1) * (
        1 - crop_w
    )
    center_y = (_draw(lambda on: torch.rand(n, generator=generator, device=on), generator, device) * 2 - 1) * (
        1 - crop_h
    )
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = crop_w, center_x, crop_h, center_y
    grid = F.affine_grid(theta, (n, c, size, size), align_corners=False)
    source = x.unsqueeze(1).expand(-1, num_views, -1, -1, -1).reshape(n, c, h, w)
    views = F.grid_sample(source, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    views = _flip(views.view(s, num_views, c, size, size), generator)
    if original_first:
        views[:, 0] = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return views
