"""How MMELTrainer gets its model: by name (as TRL's trainers take it) and wrapped with PEFT adapters.

MMEL changes the loss, not the model, so parameter-efficient fine-tuning composes with it unchanged: the group
losses of Eq. 6-9 are computed from the logits of the adapted model, and only the adapter weights and the
classification head receive gradients.

Example (needs ``pip install "mmel_hf[peft]"``):
    >>> from peft import LoraConfig
    >>> trainer = MMELTrainer(model="bert-base-uncased", args=args, train_dataset=augmented["train"],
    ...                       processing_class=tokenizer,
    ...                       peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"]))
    ...                                                                                  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from .embedded import resolve_model_path
from .schema import TEACHER_ORIGINAL_COLUMN, read_provenance
from .tasks.registry import task_from_description
from .utils.files import write_json_atomically

__all__ = ["labels_of", "model_from_name", "tokenizer_from_name", "with_adapters"]

logger = logging.getLogger(__name__)

SEQUENCE_CLASSIFICATION = "SEQ_CLS"


def labels_of(train_dataset) -> tuple[int, list[str] | None]:
    """``(num_labels, label names or None)`` of an augmented training set: the task ``mmel-augment`` recorded in
    it, else the width of its teacher outputs (1 = regression)."""

    recorded = read_provenance(train_dataset).get("task") if train_dataset is not None else None
    if isinstance(recorded, dict):
        spec = task_from_description(recorded)
        return spec.num_labels, list(spec.label_names) if spec.label_names else None
    columns = getattr(train_dataset, "column_names", None) or []
    if TEACHER_ORIGINAL_COLUMN in columns and len(train_dataset):
        return len(train_dataset[0][TEACHER_ORIGINAL_COLUMN]), None
    raise ValueError(
        "model given by name, but the training set records no task (it was not made by mmel-augment) and has no "
        f"'{TEACHER_ORIGINAL_COLUMN}' column to count the labels: pass model_init_kwargs={{'num_labels': N}} or a "
        "built model"
    )


def tokenizer_from_name(name: str, model_init_kwargs: dict | None = None):
    """The tokenizer of a model given by name (as TRL's trainers load it when no ``processing_class`` is passed);
    the revision and ``trust_remote_code`` of ``model_init_kwargs`` apply to it too."""

    options = {k: v for k, v in (model_init_kwargs or {}).items() if k in ("revision", "trust_remote_code")}
    return AutoTokenizer.from_pretrained(resolve_model_path(name), **options)


def model_from_name(name: str, train_dataset, model_init_kwargs: dict | None = None):
    """``AutoModelForSequenceClassification.from_pretrained(name)`` with the training set's labels (``name`` may be
    ``"embedded"``: the encoder that ships with mmel_hf).

    ``model_init_kwargs`` go to ``from_pretrained`` and win over what the dataset says (``num_labels`` ...);
    ``trust_remote_code`` stays off unless they turn it on.
    """

    name = resolve_model_path(name)  # "embedded", as every command takes it
    options = dict(model_init_kwargs or {})
    if "num_labels" not in options:
        num_labels, names = labels_of(train_dataset)
        found = AutoConfig.from_pretrained(name, trust_remote_code=options.get("trust_remote_code", False))
        is_classifier = any(a.endswith("ForSequenceClassification") for a in (found.architectures or []))
        if is_classifier and found.num_labels != num_labels:
            raise ValueError(
                f"{name!r} is a classifier with {found.num_labels} label(s) but the training set has "
                f"{num_labels} (1 = regression): give an encoder (a fresh head is added) or a classifier "
                "of this task"
            )
        options["num_labels"] = num_labels
        if names and "id2label" not in options:
            options.update(id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    if "problem_type" not in options:
        options["problem_type"] = "regression" if options["num_labels"] == 1 else "single_label_classification"
    options.setdefault("trust_remote_code", False)
    return AutoModelForSequenceClassification.from_pretrained(name, **options)


def with_adapters(model, peft_config):
    """``model`` wrapped by ``peft.get_peft_model`` for sequence classification.

    ``task_type`` must be ``"SEQ_CLS"`` (PEFT then trains and saves the classification head, ``classifier`` or
    ``score``, beside the adapters); a config without one is copied with it set. A model that already is a
    ``PeftModel`` is refused (it would be wrapped twice).
    """
    try:
        import peft  # noqa: PLC0415  (optional dependency (the peft extra))
    except ImportError:
        raise ImportError('peft_config needs the peft package: pip install "mmel_hf[peft]"') from None
    if isinstance(model, peft.PeftModel):
        raise ValueError("the model is already a PeftModel: pass it without peft_config, or the base model with it")
    task = getattr(peft_config, "task_type", None)
    task = getattr(task, "value", task)
    if task is None:
        peft_config = copy.copy(peft_config)
        peft_config.task_type = SEQUENCE_CLASSIFICATION
        logger.info("peft_config has no task_type: using SEQ_CLS, so the classification head trains with the adapters")
    elif task != SEQUENCE_CLASSIFICATION:
        raise ValueError(
            f"peft_config.task_type={task!r}: MMELTrainer trains sequence classifiers; use "
            f"task_type='{SEQUENCE_CLASSIFICATION}' (the head then trains and is saved with the adapters)"
        )
    return peft.get_peft_model(model, peft_config)


# -- Folders of adapters that load back into the model that was trained -------------------------------------------
#
# peft.AutoPeftModelForSequenceClassification.from_pretrained(folder) builds the base from the adapter config's
# base_model_name_or_path alone (no label count, no depth), then loads the adapters and the modules_to_save. So a
# folder reloads the trained model exactly only if (1) every newly initialised weight of the base trained and was
# saved with the adapters, and (2) the base it names gives the trained shapes. mmel-train sees to both.

ADAPTER_CONFIG = "adapter_config.json"
HEAD_MODULES = ("classifier", "score")  # what PEFT's SEQ_CLS saves beside the adapters


def newly_initialised_modules(missing_keys: list[str]) -> list[str]:
    """The modules of the backbone whose weights a checkpoint lacked (a fill-mask checkpoint has no pooler): they
    were initialised at random, so they must train and be saved with the adapters (``modules_to_save``), as the
    classification head is. The head itself is PEFT's to save.

    >>> newly_initialised_modules(["bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight"])
    ['bert.pooler.dense']
    """
    modules = sorted({key.rsplit(".", 1)[0] for key in missing_keys if "." in key})
    return [m for m in modules if not set(m.split(".")) & set(HEAD_MODULES)]


def is_adapter_folder(name: str) -> bool:
    """Whether ``name`` is a local folder of PEFT adapters (``adapter_config.json``)."""

    return (Path(name) / ADAPTER_CONFIG).is_file()


def name_base_in_adapter_config(folder, base: str) -> None:
    """Set the ``base_model_name_or_path`` the folder's adapter config names (what PEFT's loader builds)."""

    path = Path(folder) / ADAPTER_CONFIG
    settings = json.loads(path.read_text())
    settings["base_model_name_or_path"] = base
    write_json_atomically(path, settings)


def adapter_config_naming(folder, base: str) -> bytes:
    """The folder's adapter config with ``base_model_name_or_path`` set to ``base`` (for a push: the repo id, never
    a local path), as bytes; the file itself is left as it is."""

    settings = json.loads((Path(folder) / ADAPTER_CONFIG).read_text())
    settings["base_model_name_or_path"] = base
    return (json.dumps(settings, indent=2, sort_keys=True) + "\n").encode()


def load_adapter_classifier(folder: str, **options):
    """The sequence classifier a folder of adapters holds, with the adapters merged into its weights: what
    ``AutoPeftModelForSequenceClassification.from_pretrained(folder)`` builds, as a plain model (a teacher that
    only predicts needs no adapter layers)."""
    try:
        from peft import AutoPeftModelForSequenceClassification  # noqa: PLC0415  (optional dependency (the peft extra))
    except ImportError:
        raise ImportError(f'{folder} holds PEFT adapters; loading them needs: pip install "mmel_hf[peft]"') from None
    return AutoPeftModelForSequenceClassification.from_pretrained(folder, **options).merge_and_unload()
