"""The CIFAR ResNets of He et al. (2016), Section 4.2: ResNet-20/32/44/56 as transformers models.

Depth 6n+2: a 3x3 convolution with 16 filters, three stages of n basic blocks with 16, 32 and 64 filters
(the first block of stages 2 and 3 halves the resolution), global average pooling and a linear
classifier. Shortcuts are identities; where the shape changes they subsample and pad the new channels with
zeros ("option A" of the paper, the one used on CIFAR), so the model has 0.27 M (ResNet-20) to 0.85 M
(ResNet-56) parameters. These are the models of Table 1 of Yi et al. (ICLR 2021).

Examples:
    >>> model = CifarResNetForImageClassification(CifarResNetConfig(depth=20, num_labels=10))
    >>> round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
    0.27
    >>> model(pixel_values=torch.zeros(2, 3, 32, 32)).logits.shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForImageClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

__all__ = ["CifarResNetConfig", "CifarResNetForImageClassification", "cifar_resnet"]


class CifarResNetConfig(PretrainedConfig):
    """Configuration of a CIFAR ResNet.

    Args:
        depth: 6n+2 layers (20, 32, 44, 56, 110 ...).
        num_labels: classes (10 for CIFAR-10, 100 for CIFAR-100).
        num_channels: input channels.
        widths: filters of the three stages.
    """

    model_type = "cifar_resnet"

    def __init__(self, depth: int = 20, num_channels: int = 3, widths: tuple[int, int, int] = (16, 32, 64), **kwargs):
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"depth={depth}: CIFAR ResNets have 6n+2 layers (20, 32, 44, 56, 110 ...)")
        self.depth = depth
        self.num_channels = num_channels
        self.widths = list(widths)
        super().__init__(**kwargs)


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride, self.extra_channels = stride, out_channels - in_channels

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and self.extra_channels == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]  # option A: subsample, then zero-pad the new channels
        half = self.extra_channels // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra_channels - half))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNetForImageClassification(PreTrainedModel):
    """CIFAR ResNet returning ``ImageClassifierOutput(loss, logits)`` like any transformers classifier."""

    config_class = CifarResNetConfig
    base_model_prefix = "resnet"
    main_input_name = "pixel_values"

    def __init__(self, config: CifarResNetConfig):
        super().__init__(config)
        blocks = (config.depth - 2) // 6
        w1, w2, w3 = config.widths
        self.stem = nn.Sequential(
            nn.Conv2d(config.num_channels, w1, 3, 1, 1, bias=False), nn.BatchNorm2d(w1), nn.ReLU()
        )
        layers, channels = [], w1
        for stage, width in enumerate((w1, w2, w3)):
            for index in range(blocks):
                layers.append(_BasicBlock(channels, width, 2 if stage > 0 and index == 0 else 1))
                channels = width
        self.stages = nn.Sequential(*layers)
        self.classifier = nn.Linear(w3, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=5**0.5)
            nn.init.zeros_(module.bias)

    def forward(
        self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, **kwargs
    ) -> ImageClassifierOutput:
        features = self.stages(self.stem(pixel_values)).mean(dim=(2, 3))
        logits = self.classifier(features)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return ImageClassifierOutput(loss=loss, logits=logits)


def cifar_resnet(depth: int = 20, num_labels: int = 10) -> CifarResNetForImageClassification:
    """A freshly initialised ResNet-``depth`` for CIFAR."""
    return CifarResNetForImageClassification(CifarResNetConfig(depth=depth, num_labels=num_labels))


AutoConfig.register("cifar_resnet", CifarResNetConfig)
AutoModelForImageClassification.register(CifarResNetConfig, CifarResNetForImageClassification)
