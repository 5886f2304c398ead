"""MMELTrainingArguments: TrainingArguments plus the knobs of MMEL (Yi et al., ICLR 2021)."""

from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Literal

from transformers import TrainingArguments

from .utils import devices  # device facts by module: the tests model other machines there
from .utils.privacy import shareable_state

__all__ = ["GROUPED_LOSSES", "METHOD_NAMES", "MMEL_LOSSES", "MMELTrainingArguments", "method_name"]

logger = logging.getLogger(__name__)

# The paper's name of each mode (Tables 3-4).
METHOD_NAMES = {
    "none": "Baseline",
    "long": "Baseline(DA+Long)",
    "uniform": "Baseline(DA+UNI)",
    "max": "MaxUp",
    "hard": "MMEL-H",
    "soft": "MMEL-S",
}


def method_name(mode: str, label_source: str = "teacher") -> str:
    """The paper's name for a mode (Tables 3-4).

    >>> method_name("hard"), method_name("soft", "original")
    ('MMEL-H', 'MMEL-S, original labels')
    """
    name = METHOD_NAMES[mode]
    return f"{name}, original labels" if label_source == "original" and mode != "none" else name


MMEL_LOSSES = ("none", "uniform", "hard", "soft", "max", "long")  # the one list of modes (also in the Literal below)
GROUPED_LOSSES = tuple(mode for mode in MMEL_LOSSES if mode != "none")  # the modes that train on groups
LABEL_SOURCES = ("teacher", "original")
# lambda_P values the float32 losses can be divided by without overflow or underflow to 0 (the losses are
# shifted by their group maximum first, so only the ratio l / lambda_P matters; see losses.reweighting).
LAMBDA_P_RANGE = (1e-30, 1e30)


@dataclass
class MMELTrainingArguments(TrainingArguments):
    r"""
    [`~transformers.TrainingArguments`] for [`MMELTrainer`]. Every field is also a command-line flag when
    parsed by [`~transformers.HfArgumentParser`] (``--mmel_loss`` or ``--mmel-loss``).

    > MMEL loss

    mmel_loss (`str`, *optional*, defaults to `"hard"`):
        How the samples of each group B(x_i) are combined: `"hard"` (MMEL-H, Eq. 6-7), `"soft"` (MMEL-S,
        Eq. 8-9), `"uniform"` (the plain mean, DA+UNI, the lambda_P -> inf limit of Eq. 6), `"max"` (MaxUp,
        the lambda_P -> 0 limit), `"none"` (train on the originals only, exactly like `Trainer`) or `"long"`
        (Baseline(DA+Long) of Table 3: every augmented sample an independent example, labelled as MMEL-H labels
        it, so |B| times the steps at the same batch size; see :mod:`mmel_hf.da_long`).
    mmel_lambda_p (`float`, *optional*, defaults to `1.0`):
        lambda_P, the KL coefficient of Eq. 3: larger values keep P* closer to uniform (Remark 2). The paper
        uses 1.0 for CIFAR and GLUE.
    mmel_lambda_t (`float`, *optional*, defaults to `1.0`):
        lambda_T of Eq. 8, the weight of the augmented term in the soft loss (paper: 1.0 on GLUE,
        {0.5, 1, 2} on CIFAR).
    mmel_label_source (`str`, *optional*, defaults to `"teacher"`):
        `"teacher"`: augmented samples take the teacher's outputs as targets (Section 3.3); `"original"`:
        they take the original's gold label (the ablation of Table 4).
    mmel_detach_soft_target (`bool`, *optional*, defaults to `True`):
        Whether f(x_i) is a fixed target in the soft loss (as in UDA), so the augmented term never moves the
        prediction on the original.
    mmel_regression_threshold (`float`, *optional*, defaults to `0.5`):
        Regression (Section 4.2): in the soft loss the target f(x_i) of z is replaced by the teacher's
        prediction for z when they differ by more than this.

    > Data

    mmel_text_columns (`list[str]` or `None`, *optional*, defaults to `None`):
        The text column(s) the collator tokenizes, in model order (one, or the two of a pair). By default they
        are the columns with an `augmented_*` companion in the training set; give them for plain text
        datasets (e.g. training a teacher with `mmel_loss="none"`).
    max_length (`int` or `None`, *optional*, defaults to `None`):
        Truncate every sequence to this many tokens when the collator tokenizes text (`None`: the
        tokenizer's maximum).

    > Memory

    mmel_chunk_size (`int` or `None`, *optional*, defaults to `None`):
        Memory-bounded groups: run the model over the flattened batch of sum |B(x_i)| samples in chunks of
        this many samples. The losses, P* and the objective come from a pass over the whole group that keeps
        no activations; backward then runs forward again chunk by chunk with those fixed (per-chunk activation
        checkpointing, random state replayed so dropout draws the same masks; the last chunk keeps its
        activations, as backward starts there), so the gradients are those of the one-pass loss while the peak
        activation memory is that of one chunk, for about one more forward pass per step. `None`: one pass.
        Models with BatchNorm are refused (each chunk would be normalised with its own statistics).
    """

    mmel_loss: Literal["none", "uniform", "hard", "soft", "max", "long"] = field(
        default="hard",
        metadata={
            "help": "Group loss: 'hard' (MMEL-H, Eq. 6-7), 'soft' (MMEL-S, Eq. 8-9), 'uniform' (DA+UNI, lambda_P -> inf), "
            "'max' (MaxUp, lambda_P -> 0), 'none' (originals only, as plain Trainer) or 'long' (DA+Long: every "
            "augmented sample an independent example).",
            "choices": list(MMEL_LOSSES),
        },
    )
    mmel_lambda_p: float = field(
        default=1.0,
        metadata={"help": "lambda_P, the KL coefficient of Eq. 3-9; larger keeps the weights P* closer to uniform."},
    )
    mmel_lambda_t: float = field(
        default=1.0, metadata={"help": "lambda_T of Eq. 8: weight of the augmented term of the soft loss."}
    )
    mmel_label_source: Literal["teacher", "original"] = field(
        default="teacher",
        metadata={
            "help": "Targets of augmented samples: the teacher's outputs (Section 3.3) or the original's gold label "
            "(Table 4 ablation).",
            "choices": list(LABEL_SOURCES),
        },
    )
    mmel_detach_soft_target: bool = field(
        default=True,
        metadata={"help": "Treat f(x_i) as a constant target in the soft loss (Eq. 8), as UDA does."},
    )
    mmel_regression_threshold: float = field(
        default=0.5,
        metadata={
            "help": "Regression soft loss (Section 4.2): use the teacher's prediction for z as its target when it "
            "differs from f(x_i) by more than this."
        },
    )
    mmel_text_columns: list[str] | None = field(
        default=None,
        metadata={"help": "Text column(s) to tokenize, in model order (default: those with augmented_* companions)."},
    )
    max_length: int | None = field(
        default=None,
        metadata={"help": "Truncate tokenized text to this many tokens (default: the tokenizer's maximum)."},
    )

    mmel_chunk_size: int | None = field(
        default=None,
        metadata={
            "help": "Memory-bounded groups: samples per forward/backward chunk of the flattened batch (P* from a "
            "gradient-free pass over the whole group; same gradients as one pass, peak memory of one chunk, "
            "one more forward per step). Default: one pass."
        },
    )

    def __post_init__(self):
        self._join_a_cpu_launch()
        super().__post_init__()
        if self.mmel_loss not in MMEL_LOSSES:
            raise ValueError(f"mmel_loss={self.mmel_loss!r} is not one of {list(MMEL_LOSSES)}")
        if self.mmel_label_source not in LABEL_SOURCES:
            raise ValueError(f"mmel_label_source={self.mmel_label_source!r} is not one of {list(LABEL_SOURCES)}")
        if self.mmel_loss in ("hard", "soft") and not (LAMBDA_P_RANGE[0] <= self.mmel_lambda_p <= LAMBDA_P_RANGE[1]):
            raise ValueError(
                f"mmel_lambda_p={self.mmel_lambda_p!r} must lie in [{LAMBDA_P_RANGE[0]:g}, {LAMBDA_P_RANGE[1]:g}] for "
                f"mmel_loss={self.mmel_loss!r} (outside it float32 losses divided by lambda_P overflow or vanish); "
                "for the limits use mmel_loss='uniform' (lambda_P -> inf) or 'max' (lambda_P -> 0)"
            )
        if self.mmel_loss == "soft" and not (0 < self.mmel_lambda_t < math.inf):
            raise ValueError(
                f"mmel_lambda_t={self.mmel_lambda_t!r} must be a positive finite number (lambda_T > 0 in Eq. 8)"
            )
        if not (0 <= self.mmel_regression_threshold < math.inf):
            raise ValueError(f"mmel_regression_threshold={self.mmel_regression_threshold!r} must be >= 0 and finite")
        if self.mmel_text_columns is not None and not 1 <= len(self.mmel_text_columns) <= 2:
            raise ValueError(
                f"mmel_text_columns={self.mmel_text_columns!r}: give one text column or the two of a sentence pair"
            )
        if self.mmel_chunk_size is not None and self.mmel_chunk_size < 1:
            raise ValueError(f"mmel_chunk_size={self.mmel_chunk_size!r} must be a positive number of samples, or None")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length={self.max_length!r} must be a positive number of tokens, or None")
        if self.mmel_loss != "none":
            self._refuse_options_the_group_loss_replaces()
        if self.mmel_chunk_size is not None and self.torch_compile:
            # The chunks replace the inner model's forward; the compile wrapper stays bound to the DDP object, so
            # under DDP every chunk and every recomputation would call DDP.forward again (a deadlock).
            raise ValueError(
                "mmel_chunk_size cannot be combined with torch_compile=True (the chunked forward runs inside the "
                "model, past the compiled wrapper; under DDP it deadlocks): drop one of them, or lower the batch "
                "size instead of chunking"
            )

    def _join_a_cpu_launch(self) -> None:
        """Processes started by ``torchrun``/``accelerate launch`` on a machine without an accelerator train as
        one DDP run over gloo.

        Trainer asks for that only with ``use_cpu=True``: without it each process trains a separate copy of the
        run into the same folder (transformers logs "process group is initialized, but parallel_mode !=
        ParallelMode.DISTRIBUTED"). There is no device but the CPU to choose from, so the launch means DDP on
        the CPU; say so once, from the main process."""

        processes = devices.launched_processes()
        if self.use_cpu or processes < 2 or not devices.runs_on_cpu(None):
            return
        self.use_cpu = True
        if os.environ.get("RANK", "0") == "0":
            logger.info(
                "%d processes were launched on a machine without an accelerator: use_cpu=True, so they train one "
                "run with DDP over gloo",
                processes,
            )

    def _refuse_options_the_group_loss_replaces(self) -> None:
        """Options that act inside ``Trainer.compute_loss``, which the group losses replace: refused, never ignored.

        ``mmel_loss="none"`` trains through Trainer's own loss, where they keep their meaning.
        """
        if self.label_smoothing_factor:
            raise ValueError(
                f"label_smoothing_factor={self.label_smoothing_factor} is applied by Trainer's own loss, which "
                f"mmel_loss={self.mmel_loss!r} replaces (the targets of augmented samples are the teacher's "
                "probabilities, already soft): set it to 0, or train with mmel_loss='none'"
            )
        if self.use_liger_kernel:
            raise ValueError(
                f"use_liger_kernel=True: Liger's fused losses return no logits, and mmel_loss={self.mmel_loss!r} needs "
                "the logits of every sample of a group to weigh them (Eq. 6-9): turn it off, or use mmel_loss='none'"
            )

    @property
    def effective_lambda_p(self) -> float:
        """lambda_P as the losses take it: inf for 'uniform' (and 'none'), 0 for 'max', mmel_lambda_p otherwise."""
        return {"uniform": math.inf, "none": math.inf, "long": math.inf, "max": 0.0}.get(
            self.mmel_loss, self.mmel_lambda_p
        )

    # -- Pickling (training_args.bin) ------------------------------------------------------------------------
    # Trainer pickles its arguments into every checkpoint and saved model folder (training_args.bin), which
    # users upload. What is pickled holds no secret and no local path: tokens are dropped and absolute paths
    # are cut to their last component. Copies (copy.copy, deepcopy) keep everything, so a run in progress still
    # has its token and folders.

    def __getstate__(self):

        return shareable_state(self.__dict__)

    def __copy__(self):
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __deepcopy__(self, memo):

        clone = object.__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return clone
