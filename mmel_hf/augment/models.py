"""The job's two models: which ones (the user's or the task's defaults), checked from their config files, loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from ..adapters import ADAPTER_CONFIG, is_adapter_folder, load_adapter_classifier
from ..embedded import embedded_mlm_path, embedded_teacher_path
from ..tasks.registry import get_task, is_registered
from ..tasks.sources import DataError
from ..utils.files import file_digest
from ..utils.model_limits import check_max_length
from ..utils.privacy import display_name
from .augment_config import AugmentConfig


def model_identity(name_or_path: str, model=None, revision: str | None = None) -> str:
    """A string that changes whenever the weights change: a hash of local files, or the Hub commit."""
    path = Path(name_or_path)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(path.iterdir()):
            if file.suffix in (".safetensors", ".bin", ".json", ".txt", ".model") and file.is_file():
                digest.update(file.name.encode())
                digest.update(file_digest(file).encode())
        return f"local:{digest.hexdigest()[:32]}"
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return f"hub:{name_or_path}@{commit or revision or 'main'}"


def resolve_models(config: AugmentConfig) -> tuple[str, str | None]:
    """The fill-mask model and teacher to use: the user's, else the task's defaults ("embedded" = shipped)."""

    spec = get_task(config.task) if is_registered(config.task) else None
    mlm = config.mlm_model or (spec.default_mlm if spec else "bert-base-uncased")
    if config.augmenter != "fill-mask":
        mlm = None  # no fill-mask model runs
    teacher = config.teacher or (spec.default_teacher if spec else None)
    if config.label_source == "original":
        teacher = None
    elif teacher is None:
        if spec is None and config.text_columns is None:
            get_task(config.task)  # a typo of a known task ('rtee'): that is the error to show, with the known ones
        raise ValueError(
            f"--label-source teacher needs a teacher: task {config.task} has no default one. Give --teacher "
            "PATH_OR_ID (a classifier fine-tuned on the task) or use --label-source original"
        )
    mlm = embedded_mlm_path() if mlm == "embedded" else mlm
    teacher = embedded_teacher_path() if teacher == "embedded" else teacher
    return mlm, teacher


def recorded_teacher_task(teacher_name: str | None, task: str) -> dict | None:
    """The task description that ``mmel-train`` wrote beside a local teacher, if it is of the task ``task``."""
    if teacher_name is None or not Path(teacher_name).is_dir():
        return None
    try:
        recorded = json.loads((Path(teacher_name) / "metrics.json").read_text()).get("task_spec")
    except (OSError, ValueError, AttributeError):
        return None  # a teacher made elsewhere: the flags describe the task
    if not isinstance(recorded, dict) or str(recorded.get("name", "")).lower() != task.lower():
        return None
    return recorded


def model_error(kind: str, name: str, err: Exception) -> DataError:
    return DataError(
        f"could not load the {kind} {display_name(name)!r} ({str(err).splitlines()[0]}). Without Hub access, give a "
        f"local model folder (--{'mlm-model' if kind == 'fill-mask model' else 'teacher'} /path/to/model), or run "
        "the embedded task with its shipped models: --task rt-polarity."
    )


def model_config(name: str, revision: str | None, trust_remote_code: bool):
    """A model's config; for a folder of PEFT adapters without its own ``config.json`` (mmel-train --use-peft on
    a Hub encoder), the config of the base its adapter config names (the labels are the same)."""

    if is_adapter_folder(name) and not (Path(name) / "config.json").exists():
        name = json.loads((Path(name) / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]
        revision = None
    return AutoConfig.from_pretrained(name, revision=revision, trust_remote_code=trust_remote_code)


def teacher_num_labels(config: AugmentConfig, teacher_name: str | None) -> int | None:
    if teacher_name is None:
        return None
    try:
        return model_config(teacher_name, config.teacher_revision, config.trust_remote_code).num_labels
    except (OSError, ValueError, KeyError) as err:
        raise model_error("teacher", teacher_name, err) from err


def check_model_lengths(config: AugmentConfig, mlm_name: str, teacher_name: str | None) -> None:
    """--max-length must fit both models' positions: checked from their config files, before any weights load."""

    for kind, name, revision in (
        ("fill-mask model", mlm_name, config.mlm_revision),
        ("teacher", teacher_name, config.teacher_revision),
    ):
        if name is None:
            continue
        try:
            found = model_config(name, revision, config.trust_remote_code)
        except (OSError, ValueError, KeyError) as err:
            raise model_error(kind, name, err) from err
        check_max_length(found, config.max_length, "--max-length", display_name(name))


def inference_dtype(precision: str, device):
    """The dtype the models are held in: on CUDA, a half precision asked for is the weights' own (autocast around
    fp32 weights converts them at every matmul: the H200 ran Algorithm 2 2x faster with the model cast to bf16);
    elsewhere float32, with autocast where asked (the CPU path as tested).

    >>> import torch
    >>> inference_dtype("bf16", torch.device("cuda")), inference_dtype("bf16", torch.device("cpu"))
    (torch.bfloat16, torch.float32)
    """

    if torch.device(device).type == "cuda" and precision in ("bf16", "fp16"):
        return torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.float32


def _load(config: AugmentConfig, device, kind: str, name: str, revision: str | None, cls=None):
    """(tokenizer, model) of the fill-mask model, the teacher or a generating augmenter's model (``cls``), held in
    the dtype of :func:`inference_dtype`."""

    if cls is None:
        cls = AutoModelForMaskedLM if kind == "fill-mask model" else AutoModelForSequenceClassification
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=config.trust_remote_code)
        options = dict(revision=revision, trust_remote_code=config.trust_remote_code, dtype=torch.float32)
        if cls is AutoModelForSequenceClassification and is_adapter_folder(name):  # mmel-train --use-peft
            model = load_adapter_classifier(name, **options)  # the adapters merged: the teacher that was trained
        else:
            model = cls.from_pretrained(name, **options)  # weights may be stored in half precision
    except OSError as err:
        raise model_error(kind, name, err) from err
    return tokenizer, model.to(device=device, dtype=inference_dtype(config.precision, device))


def load_fill_mask(config: AugmentConfig, device, mlm_name: str):
    """(tokenizer, model) of the fill-mask model."""
    return _load(config, device, "fill-mask model", mlm_name, config.mlm_revision)


def load_teacher(config: AugmentConfig, device, teacher_name: str | None):
    """(tokenizer, model) of the teacher, or None under --label-source original."""
    return None if teacher_name is None else _load(config, device, "teacher", teacher_name, config.teacher_revision)


def load_generator(config: AugmentConfig, device, kind: str, name: str):
    """(tokenizer, model) of a translation or paraphrase model: seq2seq where the config says encoder-decoder, else
    causal; with its identity and display name for the fingerprint and the card."""

    try:
        encoder_decoder = model_config(name, None, config.trust_remote_code).is_encoder_decoder
    except (OSError, ValueError, KeyError) as err:
        raise model_error(kind, name, err) from err
    cls = AutoModelForSeq2SeqLM if encoder_decoder else AutoModelForCausalLM
    pair = _load(config, device, kind, name, None, cls)
    return pair, model_identity(name, pair[1]), display_name(name)
