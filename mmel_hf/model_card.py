"""The model card of a model trained by ``mmel-train``, and the push of its folder to the Hub.

The card names the method, the lambdas, the augmented dataset and its teacher, the training settings and the
metrics. Local paths are shown by their last component only (no user or machine folder names), and no
token is ever handled here: ``huggingface_hub`` takes it from the login, ``HF_TOKEN`` or ``--hub-token``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, ModelCardData
from huggingface_hub.utils import filter_repo_objects
from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

from .adapters import ADAPTER_CONFIG, adapter_config_naming, is_adapter_folder
from .diagnostics import trainer_weights
from .schema import read_provenance
from .templates import template_path
from .training_args import method_name
from .utils.citation import PAPER_BIBTEX, PAPER_TITLE, PAPER_URL
from .utils.privacy import display_name
from .version import __version__

__all__ = ["MODEL_TAGS", "MMELCardData", "push_folder", "render_model_card", "run_card_data", "trainer_card_data"]


MODEL_TAGS = ["mmel", "text-classification", "data-augmentation"]


@dataclass
class MMELCardData:
    """What a model card says beyond the training arguments (sentence-transformers'
    ``SentenceTransformerModelCardData`` is the model). :class:`~mmel_hf.MMELTrainer` fills it from what it knows
    (:func:`trainer_card_data`); a workflow that knows more (``mmel-train``: the task, the final metrics of every
    split, the layers kept, the LoRA rank) sets ``trainer.model_card_data``, whose set fields win."""

    title: str | None = None
    trained_with: str = "`MMELTrainer`"
    base_model: str | None = None  # a Hub id or a display name (privacy.display_name), never a local path
    metrics: dict = field(default_factory=dict)
    data_text: str = ""
    num_layers: int | None = None
    adapters: str | None = None  # "r = 8, alpha = 16": the repo holds LoRA adapters
    train_seconds: float | None = None
    tags: list[str] = field(default_factory=list)
    dataset_id: str | None = None  # a Hub dataset id
    pipeline_tag: str = "text-classification"
    weights: dict | None = None  # diagnostics.summarise_weights
    provenance: dict | None = None  # schema.read_provenance of the training set

    def merged(self, over: MMELCardData | None) -> MMELCardData:
        """This card data with the fields ``over`` sets (not None, not empty, not a default) put over it; tags add up.

        Examples:
            >>> found = MMELCardData(title="rte: MMEL-H", tags=["rte"]).merged(MMELCardData(num_layers=2, tags=["mine"]))
            >>> found.title, found.num_layers, found.tags
            ('rte: MMEL-H', 2, ['rte', 'mine'])
        """
        if over is None:
            return self
        defaults = MMELCardData()
        given = {f.name: getattr(over, f.name) for f in fields(over)}
        chosen = {k: v for k, v in given.items() if v not in (None, "", [], {}) and v != getattr(defaults, k)}
        chosen["tags"] = list(dict.fromkeys([*self.tags, *over.tags]))
        return replace(self, **chosen)


def render_model_card(data: MMELCardData, args) -> str:
    """The model card (Markdown with its YAML header) from ``templates/model_card.md``: the method and its
    settings from the training arguments ``args``, the rest from ``data``."""
    hub_base = data.base_model if data.base_model and not data.base_model.startswith(("local:", "mmel_hf")) else None
    label_source = args.mmel_label_source
    if label_source == "teacher" and (data.provenance or {}).get("label_source") == "original":
        # The dataset's "teacher" columns hold the original labels (mmel-augment --label-source original).
        label_source = "the original labels (the augmented dataset was made with --label-source original)"
    mode = args.mmel_loss
    lambdas = None
    if mode in ("hard", "soft"):
        lambdas = f"lambda_P = {args.mmel_lambda_p}" + (f", lambda_T = {args.mmel_lambda_t}" if mode == "soft" else "")
    base_tags = [data.pipeline_tag if tag == "text-classification" else tag for tag in MODEL_TAGS]
    card_data = ModelCardData(
        library_name="peft" if data.adapters else "transformers",
        pipeline_tag=data.pipeline_tag,
        tags=list(dict.fromkeys([*base_tags, *data.tags, *(["lora"] if data.adapters else [])])),
        base_model=hub_base,
        datasets=[data.dataset_id] if data.dataset_id else None,
    )
    method = method_name(mode, args.mmel_label_source)
    card = ModelCard.from_template(
        card_data,
        template_path=template_path("model_card.md"),
        title=data.title or method,
        trained_with=data.trained_with,
        version=__version__,
        paper_title=PAPER_TITLE,
        paper_url=PAPER_URL,
        bibtex=PAPER_BIBTEX,
        mode=mode,
        method=method,
        label_source=label_source,
        lambdas=lambdas,
        weights=data.weights,
        base_model_text=data.base_model or "unknown",
        num_layers=data.num_layers,
        adapters=data.adapters,
        data_text=data.data_text or "not recorded",
        augmentation=data.provenance or None,
        settings=training_settings(args),
        train_seconds=data.train_seconds,
        metrics=data.metrics,
        metrics_json=json.dumps(data.metrics, indent=2),
    )
    return str(card)


def training_settings(args) -> str:
    """One line of the settings that shape a run."""
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    return (
        f"learning rate {args.learning_rate}, batch {args.per_device_train_batch_size}, {args.num_train_epochs:g} "
        f"epochs, weight decay {args.weight_decay}, {schedule} schedule, seed {args.seed}"
    )


def run_card_data(summary: dict, spec, config) -> MMELCardData:
    """What ``mmel-train`` knows of its run beyond the trainer: the task, every split's final metrics, the base
    model as named, the layers kept, the LoRA settings, the augmented dataset."""
    use_peft = getattr(config, "use_peft", False)
    data_text = f"{summary['train_examples']} examples of `{spec.name}`" + (
        f" from the augmented dataset `{display_name(config.augmented)}`" if config.augmented else ""
    )
    return MMELCardData(
        title=f"{spec.name}: {summary['method']}",
        trained_with="`mmel-train`",
        base_model=display_name(config.model) if config.model != "embedded" else "mmel_hf embedded encoder",
        metrics=summary["metrics"],
        data_text=data_text,
        num_layers=config.num_layers,
        adapters=f"r = {config.lora_r}, alpha = {config.lora_alpha}" if use_peft else None,
        train_seconds=summary["train_seconds"],
        tags=[spec.name],
        dataset_id=config.augmented if config.augmented and not Path(config.augmented).exists() else None,
        weights=summary.get("mmel_weights"),
        provenance=summary.get("augmented_dataset"),  # the data as given (Baseline(DA+Long) trains on a flattening)
    )


def trainer_card_data(trainer, model_name: str | None = None, dataset_name: str | None = None, tags=()) -> MMELCardData:
    """What a trained :class:`~mmel_hf.MMELTrainer` knows for its card: the base model (and its adapters), the data
    provenance, the last evaluation, the whole-run weight diagnostics; ``trainer.model_card_data``'s set fields
    over it."""
    model = trainer.accelerator.unwrap_model(trainer.model) if hasattr(trainer, "accelerator") else trainer.model
    base = getattr(getattr(model, "config", None), "_name_or_path", None) or None
    peft_config = getattr(model, "peft_config", None)
    adapters = None
    if peft_config:
        first = next(iter(peft_config.values()))
        base = getattr(first, "base_model_name_or_path", None) or base
        adapters = f"{type(first).__name__}" + (f", r = {first.r}" if hasattr(first, "r") else "")
    provenance = read_provenance(trainer.train_dataset) if trainer.train_dataset is not None else {}
    evaluations = [e for e in trainer.state.log_history if any(k.startswith("eval_") for k in e)]
    metrics = {
        k: v
        for k, v in (evaluations[-1] if evaluations else {}).items()
        if k.startswith("eval_") and not k.endswith(("_runtime", "_per_second"))
    }
    rows = len(trainer.train_dataset) if trainer.train_dataset is not None else None
    task = provenance.get("mmel_hf_task")
    data_text = (
        (f"{rows} examples" if rows is not None else "")
        + (f" of `{task}`" if task else "")
        + (f" (`{dataset_name}`)" if dataset_name else "")
    )
    method = method_name(trainer.args.mmel_loss, trainer.args.mmel_label_source)
    found = MMELCardData(
        title=model_name or (f"{task}: {method}" if task else method),
        base_model=display_name(base) if base else None,
        metrics=metrics,
        data_text=data_text,
        adapters=adapters,
        tags=[*tags, *([task] if task else [])],
        dataset_id=dataset_name,
        pipeline_tag="image-classification"
        if getattr(model, "main_input_name", "") == "pixel_values"
        else "text-classification",
        weights=trainer_weights(trainer),
        provenance=provenance or None,
    )
    return found.merged(getattr(trainer, "model_card_data", None))


# What a trained folder shares: the model, its tokenizer, the card, metrics and log, and the (token-free,
# path-free) training arguments. Checkpoints (optimizer state, RNG state) and anything else a user keeps in the
# folder stay local.
PUSHED_FILES = ["*.safetensors", "*.json", "*.txt", "*.model", "README.md", "log.jsonl", "training_args.bin"]
NEVER_PUSHED = ["checkpoint-*", "checkpoint-*/**", ".*", "**/.*", "*.tmp*"]


def push_folder(folder: Path, repo_id: str, private: bool | None = None, token: str | None = None) -> None:
    """Upload ``folder``'s model, tokenizer, card and metrics (:data:`PUSHED_FILES`) to the Hub model repo ``repo_id``.

    ``private=None`` keeps the Hub's default visibility for the account, as ``Trainer`` does with
    ``hub_private_repo=None``."""

    folder = Path(folder)
    files = filter_repo_objects(
        sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()),
        allow_patterns=list(PUSHED_FILES),
        ignore_patterns=[*NEVER_PUSHED, *DEFAULT_IGNORE_PATTERNS],  # what upload_folder leaves out too
    )
    base_in_folder = is_adapter_folder(str(folder)) and (folder / "config.json").exists()
    try:
        api = HfApi(token=token)
        full_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id  # with the namespace
        operations = [
            CommitOperationAdd(
                path_in_repo=name,
                # adapters whose base is in the folder name the repo as their base, never a local path
                path_or_fileobj=adapter_config_naming(folder, full_id)
                if name == ADAPTER_CONFIG and base_in_folder
                else str(folder / name),
            )
            for name in files
        ]
        api.create_commit(full_id, operations=operations, commit_message="mmel-train")  # one commit, all or nothing
    except Exception as err:  # offline, no login, no rights: say so without echoing any credential
        raise RuntimeError(
            f"could not push to the Hugging Face Hub repo {repo_id!r} ({type(err).__name__}). Check the network and "
            f"your login (`hf auth login` or HF_TOKEN). Everything is saved in {folder}; push the same files later with "
            f"mmel_hf.model_card.push_folder({folder.name!r}, {repo_id!r}) (the model, tokenizer, card, metrics.json, "
            "log.jsonl, predictions.json and training_args.bin; never checkpoint-*)."
        ) from None
