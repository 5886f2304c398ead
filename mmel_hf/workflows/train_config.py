"""TrainConfig: the data and model options of ``mmel-train`` (the training options are MMELTrainingArguments').

``mmel-train`` parses ``TrainConfig`` and :class:`~mmel_hf.MMELTrainingArguments` together with
``HfArgumentParser``, so every field of both is a flag (``--num-layers 2 --mmel-loss hard``) and a key of a
YAML/JSON config file. :func:`paper_defaults` holds the paper's fine-tuning settings (Appendix D), which the
CLI uses wherever the user gives no value.

Examples:
    >>> paper_defaults("mnli")["num_train_epochs"], paper_defaults("rte")["num_train_epochs"]
    (3, 10)
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

from ..tasks.registry import DataArguments, HubDataArguments

__all__ = ["TrainConfig", "paper_defaults"]

# Appendix D: AdamW, lr 3e-5, batch 32, no weight decay, linear decay without warm-up; 3 epochs on the two
# large tasks and 10 on the others; lambda_P = lambda_T = 1.
_PAPER = dict(
    learning_rate=3e-5,
    per_device_train_batch_size=32,
    weight_decay=0.0,
    lr_scheduler_type="linear",
    warmup_steps=0,
    mmel_lambda_p=1.0,
    mmel_lambda_t=1.0,
)
_LARGE_TASKS = ("mnli", "qqp")


def paper_defaults(task: str) -> dict:
    """The paper's GLUE fine-tuning settings (Appendix D) for ``task``, as MMELTrainingArguments fields."""
    return {**_PAPER, "num_train_epochs": 3 if task.lower() in _LARGE_TASKS else 10}


@dataclass
class TrainConfig(HubDataArguments, DataArguments):
    """What to train on and what to train (``mmel-train``).

    Data: the task's original data through the readers of ``mmel-augment`` (``--data-dir``, ``--train-file``,
    ``--dataset-path``, the Hub), or an augmented dataset made by ``mmel-augment`` (``--augmented``), which the
    grouped modes (``uniform``, ``max``, ``hard``, ``soft``, ``long``) need.
    """

    model: str = field(
        default="embedded",
        metadata={
            "help": "Any AutoModelForSequenceClassification Hub id or folder (a fresh head with the task's labels is "
            "added to encoders), or 'embedded' for the encoder that ships with mmel_hf."
        },
    )
    model_revision: str | None = field(default=None, metadata={"help": "Revision of --model on the Hub."})
    num_layers: int | None = field(
        default=None, metadata={"help": "Keep only the first N encoder layers of --model (a smaller, faster student)."}
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={
            "help": "Attention kernel of the model (transformers' attn_implementation: eager, sdpa ...; default: its own)."
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow models with custom code from the Hub (off unless you turn it on)."}
    )

    # PEFT, with TRL's flag names (trl.ModelConfig): LoRA adapters for sequence classification.
    use_peft: bool = field(
        default=False,
        metadata={
            "help": "Train LoRA adapters (and the classification head) instead of every weight; saves the adapter. "
            "Needs pip install 'mmel_hf[peft]'."
        },
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (with --use-peft)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (with --use-peft)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout (with --use-peft)."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Module names the adapters wrap (with --use-peft; default: PEFT's choice for the architecture, "
            "e.g. query and value for BERT)."
        },
    )
    lora_modules_to_save: list[str] | None = field(
        default=None,
        metadata={
            "help": "Further modules trained in full and saved with the adapter (the classification head always is)."
        },
    )

    augmented: str | None = field(
        default=None,
        metadata={
            "help": "An augmented dataset made by mmel-augment: a save_to_disk folder (--output-dir of mmel-augment, "
            "or its cache folder) or a Hub dataset id. Needed by every mode but 'none'."
        },
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on the first N examples of each evaluation split (quick runs)."}
    )
    save_model: bool = field(
        default=True,
        metadata={"help": "Save the trained model and tokenizer in --output-dir (--no-save-model keeps only metrics)."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train into an --output-dir that holds other files, replacing them (run_glue.py's meaning); without "
            "it such a folder is refused before any work."
        },
    )

    def peft_config(self, new_modules: list[str] | None = None):
        """The ``peft.LoraConfig`` of ``--use-peft`` (None without it). ``new_modules``: backbone modules the base's
        checkpoint lacked, trained and saved with the adapters (as the head is) so that the folder reloads exactly."""
        if not self.use_peft:
            return None
        try:
            from peft import LoraConfig  # noqa: PLC0415  (optional dependency (the peft extra))
        except ImportError:
            raise ValueError("--use-peft needs the peft package: pip install 'mmel_hf[peft]'") from None
        return LoraConfig(
            task_type="SEQ_CLS",
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=self.lora_target_modules,
            modules_to_save=list(dict.fromkeys([*(self.lora_modules_to_save or []), *(new_modules or [])])) or None,
        )

    def __post_init__(self):
        self.check_task_options()
        if self.task is None and self.augmented is None:
            raise ValueError("--task is required (it is optional only with --augmented, whose dataset records it)")
        lora_flags = [
            f"--{f.name.replace('_', '-')}"
            for f in fields(self)
            if f.name.startswith("lora_") and getattr(self, f.name) != (f.default if f.default is not MISSING else None)
        ]
        if not self.use_peft and lora_flags:
            raise ValueError(f"{' '.join(lora_flags)} set(s) the LoRA adapters: add --use-peft, or drop it")
        if self.lora_r < 1:
            raise ValueError(f"--lora-r {self.lora_r}: the rank of the adapters must be at least 1")
        if not self.lora_alpha > 0:
            raise ValueError(f"--lora-alpha {self.lora_alpha}: must be positive (the adapters are scaled by alpha / r)")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"--lora-dropout {self.lora_dropout}: must be in [0, 1)")
        if self.num_layers is not None and self.num_layers < 1:
            raise ValueError(f"--num-layers {self.num_layers}: keep at least one layer")
        for name in ("max_train_samples", "max_eval_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")
        self.check_data_sources("augmented")
