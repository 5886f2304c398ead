"""The dataset card and the push to the Hugging Face Hub.

The card records the task, both models, every generation option, the counts and this project's version.
The token is never handled here: ``datasets``/``huggingface_hub`` take it from the usual login or from
``HF_TOKEN``, so it cannot end up in a card, a log line or an error message of ours.
"""

from __future__ import annotations

import json

from .. import __version__
from .augment_config import AugmentConfig
from .tasks import TaskSpec

__all__ = ["build_dataset_card", "push_to_hub"]


def build_dataset_card(config: AugmentConfig, spec: TaskSpec, summary: dict) -> str:
    """Markdown with a YAML header, describing how the augmented dataset was made."""
    options = {k: v for k, v in config.result_options().items() if v is not None}
    # Models by the same display names as the summary: never a local path (user or machine folder names).
    options.update({k: summary[k] for k in ("mlm_model", "teacher") if k in options and summary.get(k)})
    splits = summary.get("splits", {})
    return f"""---
tags:
- mmel
- data-augmentation
- {spec.name}
configs:
- config_name: default
  data_files:
{chr(10).join(f"  - split: {split}{chr(10)}    path: data/{split}-*" for split in splits)}
---

# {spec.name}: augmented with MMEL's Algorithm 2

Produced by `mmel-augment` (mmel_hf {__version__}) for MMEL ("Reweighting Augmented Samples by Minimizing
the Maximal Expected Loss", Yi et al., ICLR 2021). The `train` split has one row per original example
with its {config.group_size - 1} augmented samples (`augmented_*` columns) and the
{"teacher's outputs" if config.label_source == "teacher" else "original label copied"} for the original and
each sample (`teacher_original`, `teacher_augmented`); the evaluation splits are untouched.

- Task: `{spec.name}` (text columns {list(spec.text_columns)}, {"regression" if spec.is_regression else f"{spec.num_labels} classes"})
- Fill-mask model: `{summary.get("mlm_model", config.mlm_model)}`
- Teacher: `{summary.get("teacher") or "none (original labels)"}`
- Search: {config.search}, |B| = {config.group_size}, ratio = {config.ratio}, sentence pairs {"augmented separately" if config.separate else "concatenated"}, seed = {config.seed}
- Examples: {summary.get("examples")}, augmented samples: {summary.get("augmented_samples")}, distinct ratio: {summary.get("distinct_ratio", 0):.4f}
- Splits: {json.dumps(splits)}

## All options

```json
{json.dumps(options, indent=2, default=str)}
```
"""


def push_to_hub(dataset, config: AugmentConfig, spec: TaskSpec, summary: dict) -> None:
    """Push ``dataset`` with ``datasets``' own ``push_to_hub``, then its card. Fails with a clear message."""
    from huggingface_hub import DatasetCard

    card = build_dataset_card(config, spec, summary)
    try:
        dataset.push_to_hub(config.push_to_hub, private=config.hub_private)
        DatasetCard(card).push_to_hub(config.push_to_hub, repo_type="dataset")
    except Exception as err:  # offline, no login, no rights: say so without echoing any credential
        raise RuntimeError(
            f"could not push to the Hugging Face Hub repo {config.push_to_hub!r} ({type(err).__name__}). Check the "
            "network and your login (`hf auth login` or HF_TOKEN). The dataset is saved in the cache"
            f"{' and in ' + config.output_dir if config.output_dir else ''}; push it later with "
            "DatasetDict.load_from_disk(...).push_to_hub(...)."
        ) from None
