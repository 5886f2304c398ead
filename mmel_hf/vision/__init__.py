"""MMEL for images: views generated on the fly, the paper's CIFAR ResNets, data loading and schedules.

Examples:
    >>> from mmel_hf.vision import CifarResNetConfig, CifarResNetForImageClassification, MMELVisionCollator
    >>> CifarResNetForImageClassification(CifarResNetConfig(depth=20, num_labels=10)).config.depth
    20

Training (``mmel-train-vision``) is the workflow :mod:`mmel_hf.workflows.train_vision`.
"""

from .collator import MMELVisionCollator
from .data import load_cifar, load_image_folder
from .resnet_cifar import CifarResNetConfig, CifarResNetForImageClassification, cifar_resnet
from .schedules import paper_optimizer_and_scheduler
from .views import cifar_views, imagenet_views, normalize

__all__ = [
    "CifarResNetConfig",
    "CifarResNetForImageClassification",
    "MMELVisionCollator",
    "cifar_resnet",
    "cifar_views",
    "imagenet_views",
    "load_cifar",
    "load_image_folder",
    "normalize",
    "paper_optimizer_and_scheduler",
]
