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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import ResNetConfig, ResNetForImageClassification, set_seed

from ..diagnostics import run_weights
from ..trainer import MMELTrainer
from ..training_args import method_name
from ..utils.privacy import public_options
from ..vision.collator import MMELVisionCollator
from ..vision.data import load_cifar, load_image_folder
from ..vision.resnet_cifar import CifarResNetConfig, CifarResNetForImageClassification
from ..vision.schedules import paper_optimizer_and_scheduler
from .train import CurveCallback, resolve_resume_checkpoint, training_output, write_run_files

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
    image_size: int = field(
        default=224,
        metadata={
            "help": "Crop size for image folders; images are first resized to image_size x 256/224 (the ImageNet "
            "recipe's ratio), so evaluation's centre crop sees what training's crops see at any size."
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training images."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train into an --output-dir that holds other files, replacing them; without it such a folder "
            "(a finished run's) is refused before any work, as mmel-train does."
        },
    )

    def __post_init__(self):
        if self.num_views < 1:
            raise ValueError(f"--num-views {self.num_views}: must be at least 1")
        if self.image_size < 8:
            raise ValueError(f"--image-size {self.image_size}: too small to crop")


# MMELTrainingArguments' options that only text has: hidden from --help and refused when given.
TEXT_ONLY_OPTIONS = {
    "mmel_text_columns": None,
    "max_length": None,
    "mmel_regression_threshold": 0.5,
}


def check_vision_options(config: VisionConfig, args) -> None:
    """Options the image command cannot honour, refused in one line before any work."""
    if args.mmel_label_source != "original":
        raise ValueError("vision views keep the image's label (Section 4.1): use --mmel-label-source original")
    if args.mmel_loss == "long":
        raise ValueError(
            "--mmel-loss long (Baseline(DA+Long)) trains on a fixed set of augmented text samples; image views are "
            "drawn afresh each batch: use none (Baseline(DA): one random view per image), uniform, max, hard or soft"
        )
    if args.mmel_loss != "none" and config.num_views < 2:
        raise ValueError(
            f"--mmel-loss {args.mmel_loss} --num-views {config.num_views}: a group needs at least 2 views (the clean "
            "image and one augmented view); for one random view per image use --mmel-loss none"
        )
    for name, default in TEXT_ONLY_OPTIONS.items():
        if getattr(args, name) != default:
            raise ValueError(f"--{name.replace('_', '-')} is for text (mmel-train); images have no such option")


def build_model(name: str, num_labels: int, class_names: list[str] | None = None):
    """A freshly initialised model of the paper: CIFAR ResNet-20..56 or ImageNet ResNet-18/34/50; its config names
    the classes (``id2label``) when they are known."""
    names = {}
    if class_names:
        names = dict(id2label=dict(enumerate(class_names)), label2id={n: i for i, n in enumerate(class_names)})
    if name in CIFAR_MODELS:
        return CifarResNetForImageClassification(
            CifarResNetConfig(depth=CIFAR_MODELS[name], num_labels=num_labels, **names)
        )
    if name in IMAGENET_MODELS:
        depths, layer_type = IMAGENET_MODELS[name]
        hidden = [64, 128, 256, 512] if layer_type == "basic" else [256, 512, 1024, 2048]
        return ResNetForImageClassification(
            ResNetConfig(depths=depths, layer_type=layer_type, hidden_sizes=hidden, num_labels=num_labels, **names)
        )
    raise ValueError(f"model={name!r}: expected one of {[*CIFAR_MODELS, *IMAGENET_MODELS]}")


def load_vision_data(config: VisionConfig, progress: bool = True):

    if config.dataset == "imagefolder":
        if config.data_dir is None:
            raise ValueError("--dataset imagefolder needs --data-dir")
        data = load_image_folder(config.data_dir, progress=progress)
    else:
        data = load_cifar(config.dataset, config.data_dir)
    if config.max_train_samples:
        data["train"] = data["train"].select(range(min(config.max_train_samples, len(data["train"]))))
    return data


def train_vision(config: VisionConfig, args, data=None) -> dict:
    """Train and evaluate; returns the final evaluation metrics. The folder gets what ``mmel-train`` writes, from
    the same code: the model (its config naming the classes), ``metrics.json`` (last, so its presence means the
    run finished), ``log.jsonl``, the curve and a model card; a finished run's folder is refused (one guard)."""
    check_vision_options(config, args)
    resume = resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir)  # checked before any work
    output = Path(args.output_dir)
    with training_output(output, overwrite=config.overwrite_output_dir, resuming=resume is not None):
        return _train_vision(config, args, data, resume, output)


def _train_vision(config: VisionConfig, args, data, resume, output) -> dict:
    """One run: the data, the model under the run's seed, its collator and optimizer, training, the final
    evaluation; the run's files on the main process."""
    started = time.perf_counter()
    data = data if data is not None else load_vision_data(config, progress=not args.disable_tqdm)
    feature = data["train"].features["label"]
    class_names = list(feature.names) if hasattr(feature, "names") else None
    num_labels = len(class_names) if class_names else len(set(data["train"]["label"][:]))
    set_seed(args.seed)  # the fresh model is initialised under the run's seed: the same run in any process
    model = build_model(config.model, num_labels, class_names)
    curve = CurveCallback(resume)
    trainer = MMELTrainer(
        model=model,
        args=args,
        data_collator=_vision_collator(config, args),
        train_dataset=data["train"],
        eval_dataset=data["test"],
        optimizers=_optimizers(config, args, model, len(data["train"])),
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
        callbacks=[curve],
    )
    train_output = trainer.train(resume_from_checkpoint=resume)
    weights = run_weights(trainer)  # how far P* moved from uniform; a warning if it stayed there
    metrics = trainer.evaluate()
    if weights:
        metrics.update({f"mmel_weights/{k}": v for k, v in weights.items() if isinstance(v, float)})
    trainer.save_model()
    if trainer.is_world_process_zero():
        summary = {
            "task": config.dataset,
            "method": method_name(args.mmel_loss),  # views keep the image's label: the paper's plain names
            "mmel_loss": args.mmel_loss,
            "metrics": {"test": {k: v for k, v in metrics.items() if not k.endswith(("_runtime", "_per_second"))}},
            "train_seconds": round(curve.train_seconds_total(train_output.metrics.get("train_runtime")), 2),
            "total_seconds": round(time.perf_counter() - started, 2),
            "train_examples": len(data["train"]),
            "processes": args.world_size,
            "curve": curve.points,
            "mmel_weights": weights,
            "class_names": class_names,
            "config": {"data": public_options(asdict(config)), "training": public_options(args.to_dict())},
        }
        trainer.create_model_card(model_name=f"{config.dataset}: {summary['method']}", tags=["image-classification"])
        write_run_files(output, trainer, summary)
    return metrics


def _vision_collator(config: VisionConfig, args) -> MMELVisionCollator:
    """The views of each image (one for the Baseline), drawn per process and epoch from the run's seed."""
    baseline = args.mmel_loss == "none"
    return MMELVisionCollator(
        num_views=1 if baseline else config.num_views,
        kind=_image_kind(config),
        image_size=config.image_size,
        original_first=config.original_first and not baseline,
        seed=args.seed,
        process_index=args.process_index,
    )


def _optimizers(config: VisionConfig, args, model, train_rows: int):
    """The paper's SGD and step schedule (``--schedule paper``), or Trainer's own (``(None, None)``)."""
    if config.schedule != "paper":
        return None, None
    # Images per optimizer step over every process (torchrun/accelerate) and accumulation step.
    per_step = args.train_batch_size * args.world_size * args.gradient_accumulation_steps
    steps_per_epoch = math.ceil(train_rows / per_step)
    return paper_optimizer_and_scheduler(
        model,
        _image_kind(config),
        steps_per_epoch,
        args.num_train_epochs,
        lr=args.learning_rate,
        weight_decay=args.weight_decay,
    )


def _image_kind(config: VisionConfig) -> str:
    """Which views and schedule: the CIFAR ones for the CIFAR ResNets, the ImageNet ones otherwise."""
    return "cifar" if config.model in CIFAR_MODELS else "imagenet"
