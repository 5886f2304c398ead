"""Training MMEL on images: models, data and the paper's schedules behind one call.

``train_vision(VisionConfig(...), MMELTrainingArguments(...))`` is what ``mmel-train-vision`` runs:
load the data, build the model, the views collator and (with ``schedule="paper"``) the paper's SGD
schedule, then train and evaluate with the unchanged :class:`~mmel_hf.MMELTrainer`.

Memory: a step holds batch x |B| images (128 x 10 for CIFAR is small; the paper's 256 x 10 ImageNet
setting is 2,560 images of 224 x 224 per step). Where that does not fit, lower
``per_device_train_batch_size`` and raise ``gradient_accumulation_steps``: MMELTrainer normalises by the
number of groups in the whole accumulated batch, so the gradient is that of the full batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..vision.collator import MMELVisionCollator
from ..vision.resnet_cifar import CifarResNetConfig, CifarResNetForImageClassification

__all__ = ["VisionConfig", "build_model", "train_vision"]

CIFAR_MODELS = {"resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56}
IMAGENET_MODELS = {
    "resnet18": ([2, 2, 2, 2], "basic"),
    "resnet34": ([3, 4, 6, 3], "basic"),
    "resnet50": ([3, 4, 6, 3], "bottleneck"),
}


@dataclass
class VisionConfig:
    """Data, model and views of ``mmel-train-vision`` (the MMEL loss options are MMELTrainingArguments')."""

    dataset: str = field(
        default="cifar10",
        metadata={
            "help": "cifar10, cifar100 (Hub uoft-cs/*, or --data-dir with the python pickles) or imagefolder "
            "(--data-dir with train/<class>/ and val/<class>/ folders)."
        },
    )
    data_dir: str | None = field(default=None, metadata={"help": "Local data (see --dataset)."})
    model: str = field(
        default="resnet20",
        metadata={
            "help": "resnet20/32/44/56 (CIFAR ResNets of He et al. 2016) or resnet18/34/50 (ImageNet, transformers' ResNet)."
        },
    )
    num_views: int = field(default=10, metadata={"help": "|B|, views per image (10 in the paper)."})
    original_first: bool = field(
        default=True,
        metadata={
            "help": "Slot 0 of each group is the un-augmented image (x_i of the soft loss) instead of a random view."
        },
    )
    schedule: str = field(
        default="paper",
        metadata={
            "help": "'paper': SGD momentum 0.9 with --learning-rate and --weight-decay (mmel-train-vision's defaults "
            "are the paper's 0.1 and 5e-4), x0.2 at 60/120/160 of 200 epochs (CIFAR) or 30/60/90 of 100 "
            "(ImageNet), milestones at the same fractions of the run's optimizer steps; 'trainer': the "
            "TrainingArguments optimizer and scheduler.",
            "choices": ["paper", "trainer"],
        },
    )
    image_size: int = field(default=224, metadata={"help": "Crop size for image folders."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training images."})


def build_model(name: str, num_labels: int):
    """A freshly initialised model of the paper: CIFAR ResNet-20..56 or ImageNet ResNet-18/34/50."""
    if name in CIFAR_MODELS:
        return CifarResNetForImageClassification(CifarResNetConfig(depth=CIFAR_MODELS[name], num_labels=num_labels))
    if name in IMAGENET_MODELS:
        from transformers import ResNetConfig, ResNetForImageClassification

        depths, layer_type = IMAGENET_MODELS[name]
        hidden = [64, 128, 256, 512] if layer_type == "basic" else [256, 512, 1024, 2048]
        return ResNetForImageClassification(
            ResNetConfig(depths=depths, layer_type=layer_type, hidden_sizes=hidden, num_labels=num_labels)
        )
    raise ValueError(f"model={name!r}: expected one of {[*CIFAR_MODELS, *IMAGENET_MODELS]}")


def load_vision_data(config: VisionConfig):
    from ..vision.data import load_cifar, load_image_folder

    if config.dataset == "imagefolder":
        if config.data_dir is None:
            raise ValueError("--dataset imagefolder needs --data-dir")
        data = load_image_folder(config.data_dir)
    else:
        data = load_cifar(config.dataset, config.data_dir)
    if config.max_train_samples:
        data["train"] = data["train"].select(range(min(config.max_train_samples, len(data["train"]))))
    return data


def train_vision(config: VisionConfig, args, data=None) -> dict:
    """Train and evaluate; returns the final evaluation metrics."""
    from ..trainer import MMELTrainer

    if args.mmel_label_source != "original":
        raise ValueError("vision views keep the image's label (Section 4.1): use --mmel_label_source original")
    from .train import resolve_resume_checkpoint

    resume = resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir)  # checked before any work
    data = data if data is not None else load_vision_data(config)
    num_labels = (
        data["train"].features["label"].num_classes
        if hasattr(data["train"].features["label"], "num_classes")
        else len(set(data["train"]["label"][:]))
    )
    from transformers import set_seed

    set_seed(args.seed)  # the fresh model is initialised under the run's seed: the same run in any process
    model = build_model(config.model, num_labels)
    kind = "cifar" if config.model in CIFAR_MODELS else "imagenet"
    baseline = args.mmel_loss == "none"
    collator = MMELVisionCollator(
        num_views=1 if baseline else config.num_views,
        kind=kind,
        image_size=config.image_size,
        original_first=config.original_first and not baseline,
        seed=args.seed,
        process_index=args.process_index,
    )
    optimizers = (None, None)
    if config.schedule == "paper":
        from ..vision.schedules import paper_optimizer_and_scheduler

        # Images per optimizer step over every process (torchrun/accelerate) and accumulation step.
        per_step = args.train_batch_size * args.world_size * args.gradient_accumulation_steps
        steps_per_epoch = math.ceil(len(data["train"]) / per_step)
        optimizers = paper_optimizer_and_scheduler(
            model, kind, steps_per_epoch, args.num_train_epochs, lr=args.learning_rate, weight_decay=args.weight_decay
        )
    trainer = MMELTrainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=data["train"],
        eval_dataset=data["test"],
        optimizers=optimizers,
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
    )
    trainer.train(resume_from_checkpoint=resume)
    from ..weight_report import run_weights

    weights = run_weights(trainer)  # how far P* moved from uniform; a warning if it stayed there
    metrics = trainer.evaluate()
    if weights:
        metrics.update({f"mmel_weights/{k}": v for k, v in weights.items() if isinstance(v, float)})
    trainer.save_model()
    return metrics
