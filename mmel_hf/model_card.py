"""The model card of a model trained by ``mmel-train``, and the push of its folder to the Hub.

The card names the method, the lambdas, the augmented dataset and its teacher, the training settings and the
metrics. Local paths are shown by their last component only (no user or machine folder names), and no
token is ever handled here: ``huggingface_hub`` takes it from the login, ``HF_TOKEN`` or ``--hub-token``.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import __version__
from .augment.pipeline import display_name

__all__ = ["build_model_card", "push_folder"]


def build_model_card(summary: dict, spec, args, config) -> str:
    """Markdown with a YAML header for the folder written by ``run_training``."""
    provenance = summary.get("augmented_dataset") or {}
    mode = summary["mmel_loss"]
    lines = [
        "---", f"library_name: {'peft' if getattr(config, 'use_peft', False) else 'transformers'}", "tags:", "- mmel",
        "- text-classification", f"- {spec.name}", *(["- lora"] if getattr(config, "use_peft", False) else []), "---", "",
        f"# {spec.name}: {summary['method']}", "",
        f"Trained with `mmel-train` (mmel_hf {__version__}), the Hugging Face implementation of MMEL (\"Reweighting "
        "Augmented Samples by Minimizing the Maximal Expected Loss\", Yi et al., ICLR 2021).", "",
        f"- Method: **{summary['method']}** (`--mmel-loss {mode}`"
        + (f", labels of augmented samples: {args.mmel_label_source})" if mode != "none" else ")"),
    ]
    if mode in ("hard", "soft"):
        lines.append(f"- lambda_P = {args.mmel_lambda_p}" + (f", lambda_T = {args.mmel_lambda_t}" if mode == "soft" else ""))
    weights = summary.get("mmel_weights")
    if weights:
        lines.append(f"- Weights P* over the whole run: normalised entropy {weights['normalised_entropy']:.3f}, effective "
                     f"sample share {weights['effective_share']:.3f} (1 = uniform, as DA+UNI)"
                     + (f". **{weights['warning']}.**" if weights["warning"] else ""))
    lines += [
        f"- Base model: `{display_name(config.model) if config.model != 'embedded' else 'mmel_hf embedded encoder'}`"
        + (f", first {config.num_layers} layer(s)" if config.num_layers else "")
        + (f"; this folder holds LoRA adapters (r = {config.lora_r}, alpha = {config.lora_alpha}) and the "
           "classification head: load them with `peft.AutoPeftModelForSequenceClassification.from_pretrained`"
           if getattr(config, "use_peft", False) else ""),
        f"- Training data: {summary['train_examples']} examples of `{spec.name}`"
        + (f" from the augmented dataset `{display_name(config.augmented)}`" if config.augmented else ""),
    ]
    if provenance:
        lines.append(f"- Augmentation: fill-mask model `{provenance.get('mlm_model')}`, {provenance.get('search')} "
                     f"search, |B| = {provenance.get('group_size')}, ratio {provenance.get('ratio')}; teacher "
                     f"`{provenance.get('teacher') or 'none (original labels)'}`")
    lines += [
        f"- Settings: learning rate {args.learning_rate}, batch {args.per_device_train_batch_size}, "
        f"{args.num_train_epochs:g} epochs, weight decay {args.weight_decay}, {getattr(args.lr_scheduler_type, 'value', args.lr_scheduler_type)} schedule, "
        f"seed {args.seed}",
        f"- Training time: {summary['train_seconds']:.0f} s", "", "## Evaluation", "", "```json",
        json.dumps(summary["metrics"], indent=2), "```", "",
    ]
    return "\n".join(lines)


# What a trained folder shares: the model, its tokenizer, the card, metrics and log, and the (token-free,
# path-free) training arguments. Checkpoints (optimizer state, RNG state) and anything else a user keeps in the
# folder stay local.
PUSHED_FILES = ["*.safetensors", "*.json", "*.txt", "*.model", "README.md", "log.jsonl", "training_args.bin"]
NEVER_PUSHED = ["checkpoint-*", "checkpoint-*/**", ".*", "**/.*", "*.tmp*"]


def push_folder(folder: Path, repo_id: str, private: bool | None = None, token: str | None = None) -> None:
    """Upload ``folder``'s model, tokenizer, card and metrics (:data:`PUSHED_FILES`) to the Hub model repo ``repo_id``.

    ``private=None`` keeps the Hub's default visibility for the account, as ``Trainer`` does with
    ``hub_private_repo=None``."""
    from huggingface_hub import HfApi

    try:
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="mmel-train",
                          allow_patterns=list(PUSHED_FILES), ignore_patterns=list(NEVER_PUSHED))  # hf extends it in place
    except Exception as err:  # offline, no login, no rights: say so without echoing any credential
        raise RuntimeError(
            f"could not push to the Hugging Face Hub repo {repo_id!r} ({type(err).__name__}). Check the network and "
            f"your login (`hf auth login` or HF_TOKEN). Everything is saved in {folder}; push it later with "
            "huggingface_hub's upload_folder."
        ) from None
