"""MMELTrainer: a drop-in `transformers.Trainer` whose training loss is MMEL (Yi et al., ICLR 2021).

Swap ``Trainer`` for :class:`MMELTrainer` and ``TrainingArguments`` for
:class:`~mmel_hf.MMELTrainingArguments`; give it a training set in the augmented schema
(:mod:`mmel_hf.schema`) and the tokenizer as ``processing_class``. Each step runs **one** forward pass over
the flattened batch of sum |B(x_i)| samples, then the pure loss functions of :mod:`mmel_hf.losses`
(Algorithm 1, lines 5-8). Evaluation and prediction on plain examples work as with ``Trainer``.

With ``mmel_chunk_size`` the flattened batch is run in chunks under activation checkpointing: the forward
pass over the whole group keeps no activations, the losses, P* and the objective are computed from its
outputs, and the backward pass recomputes one chunk at a time (random state replayed), so the gradients
are the one-pass gradients and the peak activation memory is one chunk's.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import torch
import transformers
from packaging.version import Version
from transformers import PreTrainedTokenizerBase, Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .adapters import model_from_name, tokenizer_from_name, with_adapters
from .chunking import chunked_forward, flat_size, logits_of, refuse_batch_statistics
from .collator import GROUP_MASK_KEY, TARGET_KEY, TEACHER_KEY, MMELDataCollator
from .da_long import flatten_groups
from .losses import mmel_hard_loss, mmel_soft_loss, sample_losses, teacher_disagreement, to_groups, weight_entropy
from .model_card import MODEL_TAGS, MMELCardData, render_model_card, trainer_card_data
from .schema import (
    LABEL_COLUMNS,
    SchemaError,
    find_sample_columns,
    label_column_named_label,
    validate_augmented_dataset,
    validate_labels,
)
from .tasks.registry import recorded_task
from .training_args import MMELTrainingArguments
from .utils.attention import without_cudnn_attention

if TYPE_CHECKING:  # the constructor's types, as Trainer's (peft is optional: not needed to import this module)
    from peft import PeftConfig
    from transformers import BaseImageProcessor, DataCollator, PreTrainedModel, ProcessorMixin

__all__ = ["MMELTrainer", "NonFiniteTrainingError"]


class NonFiniteTrainingError(RuntimeError):
    """The loss or the gradients of a training step were NaN or infinite; the run stops where it happened."""


logger = logging.getLogger(__name__)

# Sums gathered over processes between two logging steps: groups with reweighted samples, their entropy of
# P* and their largest weight; augmented samples with a teacher output and how many the teacher disagrees on;
# groups of 2+ samples, their entropy of P* over ln(group size) and their effective sample size 1 / sum(w^2),
# in samples and as a share of the group's size (1 for uniform weights, 1/n for one sample taking all).
_DIAGNOSTICS = (
    "groups",
    "entropy",
    "max_weight",
    "augmented",
    "disagreements",
    "sized_groups",
    "normalised_entropy",
    "effective_samples",
    "effective_share",
)


def _warn_half_precision_weights(model, args) -> None:
    """Trainable weights in float16/bfloat16 without mixed precision: AdamW's updates below the weights' resolution
    are lost (a model whose config says ``"dtype": "float16"`` loads so by default); say so before training."""
    if not isinstance(model, torch.nn.Module) or args.fp16 or args.bf16:
        return
    half = {str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.requires_grad} & {
        "float16",
        "bfloat16",
    }
    if half:
        logger.warning(
            "the model's trainable weights are %s and mixed precision is off: updates smaller than their resolution "
            "are lost. Load the model with dtype=torch.float32 (and set bf16=True or fp16=True for mixed precision)",
            "/".join(sorted(half)),
        )


def padding_multiple(device) -> int | None:
    """What the default collator pads batch lengths to: a multiple of 8 on CUDA (a bounded set of shapes for training
    and evaluation, as tensor cores like them), the exact longest length elsewhere (the CPU path as tested).

    >>> padding_multiple(torch.device("cuda")), padding_multiple(torch.device("cpu"))
    (8, None)
    """
    return 8 if torch.device(device).type == "cuda" else None


def recorded_label_column(train_dataset) -> str | None:
    """The label column of the task an augmented training set records (``mmel-augment`` keeps the task's own
    column, ``stars`` ...), or None for data that records no task."""

    return (recorded_task(train_dataset) or {}).get("label_column") if hasattr(train_dataset, "info") else None


def _named_label(dataset, column: str | None):
    """``dataset`` (or a dict of them) with the task's label column ``column`` renamed ``label``."""
    if column is None:
        return dataset
    if isinstance(dataset, dict):
        return {name: label_column_named_label(d, column) for name, d in dataset.items()}
    return label_column_named_label(dataset, column)


class MMELTrainer(Trainer):
    """`transformers.Trainer` with the MMEL losses.

    Args:
        model: a model, as for `transformers.Trainer`, or a Hub id / folder: the sequence classifier is loaded
            with the label count and names the augmented ``train_dataset`` records (or its teacher outputs'
            width), plus ``model_init_kwargs`` (e.g. ``{"torch_dtype": "bfloat16"}``).
        train_dataset: as for `transformers.Trainer`: an augmented dataset (:mod:`mmel_hf.schema`) in the grouped
            modes, plain rows in mode ``none``.
        eval_dataset: as for `transformers.Trainer`.
        processing_class: the tokenizer, as for `transformers.Trainer`; for a ``model`` given by name it defaults
            to that model's own tokenizer (as TRL's trainers load it).
        args: an :class:`~mmel_hf.MMELTrainingArguments`.
        peft_config: a ``peft`` config (``LoraConfig(r=8, ...)``): the model is wrapped with those adapters and
            only they (and the classification head) train, as with TRL's ``peft_config``; see
            :mod:`mmel_hf.adapters`. Needs ``pip install "mmel_hf[peft]"``.
        model_init_kwargs: keyword arguments of ``from_pretrained`` when ``model`` is a name.
        **kwargs: every other argument of `transformers.Trainer` (``compute_metrics``, ``callbacks`` ...).
        data_collator: defaults to :class:`~mmel_hf.MMELDataCollator` built from ``processing_class``.
            A custom collator (images, for example) must emit the flat model inputs, ``labels`` ``[S]``,
            ``mmel_group_mask`` ``[S, B]`` and optionally ``mmel_teacher``; a ``signature_columns``
            attribute lists the dataset columns it reads.

    Logged at every logging step (train and eval): ``mmel/weight_entropy`` (mean entropy of P* in nats),
    ``mmel/max_weight`` (mean largest weight of a group), ``mmel/normalised_entropy`` (entropy over
    ln(group size): 1 = uniform, as DA+UNI), ``mmel/effective_sample_size`` (mean 1 / sum(w^2), Kish's
    effective number of samples) and ``mmel/effective_share`` (that over the group's size) and, for
    classification,
    ``mmel/teacher_disagreement`` (fraction of augmented samples whose teacher class differs from the
    teacher's class for their original: the samples whose soft-loss target the teacher replaces); for
    regression ``mmel/teacher_shift`` (fraction whose teacher prediction differs from the teacher's
    prediction for the original by more than ``mmel_regression_threshold``; the soft rule itself compares
    with the student's f(x_i), which changes as it trains).
    """

    # Batch entries that are targets, never model inputs: kept in float32 under DeepSpeed's half precision.
    FLOAT32_KEYS = ("labels", TEACHER_KEY, TARGET_KEY)

    # Trainer's own attribute, read by training_step after compute_loss, set by compute_loss to what it did:
    # None (plain batch: Trainer decides), True (normalised by the groups of the whole accumulated batch), False
    # (a per-batch mean; Trainer divides by the accumulation steps).
    loss_is_scaled_for_ga: bool | None = None

    def __init__(
        self,
        model: PreTrainedModel | torch.nn.Module | str | None = None,
        args: MMELTrainingArguments | None = None,
        data_collator: DataCollator | None = None,
        train_dataset: datasets.Dataset | torch.utils.data.Dataset | None = None,
        eval_dataset: datasets.Dataset | torch.utils.data.Dataset | dict[str, datasets.Dataset] | None = None,
        processing_class: PreTrainedTokenizerBase | ProcessorMixin | BaseImageProcessor | None = None,
        peft_config: PeftConfig | None = None,
        model_init_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        _require_transformers_with_ga_flag()
        if args is None:
            args = MMELTrainingArguments(output_dir="trainer_output")
        # The library reads the task its datasets record, as mmel-train does: MMELTrainer(train_dataset=
        # augmented["train"], eval_dataset=augmented["validation"]) on a task whose labels are in `stars` ...
        label_column = recorded_label_column(train_dataset)
        train_dataset, eval_dataset = (
            _named_label(train_dataset, label_column),
            _named_label(eval_dataset, label_column),
        )
        if isinstance(model, str) and processing_class is None:  # as TRL's trainers: the named model's tokenizer
            processing_class = tokenizer_from_name(model, model_init_kwargs)
        model = self._prepare_model(model, args, train_dataset, peft_config, model_init_kwargs)
        if kwargs.get("compute_loss_func") is not None and args.mmel_loss != "none":
            raise ValueError(
                f"compute_loss_func replaces Trainer's loss, and so does mmel_loss={args.mmel_loss!r} (the group losses "
                "of Eq. 6-9): pass one of them — a custom loss with mmel_loss='none', or no compute_loss_func"
            )
        num_labels = getattr(getattr(model, "config", None), "num_labels", None)  # checks labels and teacher widths
        train_dataset, text_columns = self._prepare_dataset(train_dataset, args, num_labels, data_collator is None)
        if data_collator is None:
            data_collator = self._default_collator(args, processing_class, text_columns)
        self._group_lengths: dict[tuple, list[int]] = {}  # length-grouped sampling: measured once per dataset
        self._teacher_is_regression = False  # what the disagreement diagnostic is called (set by the first group)
        # What the card says beyond what the trainer knows (set fields win): see mmel_hf.model_card.MMELCardData.
        self.model_card_data: MMELCardData | None = None
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            **kwargs,
        )
        if args.fsdp and not getattr(self, "is_fsdp_enabled", False):
            # Seen with use_cpu=True under torchrun: accelerate runs plain DDP (MULTI_CPU) and Trainer says nothing.
            raise ValueError(
                f"fsdp={args.fsdp!r} was asked for, but accelerate runs {self.accelerator.distributed_type} without FSDP "
                "(on the CPU transformers and accelerate fall back to DDP): drop fsdp, or run on GPUs"
            )
        if args.mmel_chunk_size is not None:
            self._refuse_chunks_under_sharding_or_replicas()
        self._recorded_label_column = label_column  # and the sets given later to evaluate() and predict()
        # Running sums per mode, kept on the model's device so that logging never forces a sync per step.
        self._diagnostics: dict[str, torch.Tensor | None] = {"train": None, "eval": None}
        self._train_run_sums: torch.Tensor | None = None

    def _refuse_chunks_under_sharding_or_replicas(self) -> None:
        """Engines under which the chunked forward is not the one-pass computation, refused before any work."""
        engine = None
        if getattr(self, "is_fsdp_enabled", False):
            engine = "FSDP"
        elif getattr(self, "is_deepspeed_enabled", False):
            stage = (
                self.args.hf_deepspeed_config.config.get("zero_optimization", {}).get("stage")
                if getattr(self.args, "hf_deepspeed_config", None) is not None
                else None
            )
            engine = "DeepSpeed ZeRO-3" if stage == 3 else None
        elif self.args.n_gpu > 1:
            engine = "DataParallel (several GPUs without a launcher)"
        if engine is not None:
            # FSDP/ZeRO-3 gather the parameters per forward: every chunk and recomputation gathers them again,
            # and ranks with different chunk counts (ragged groups) wait for each other for ever. DataParallel's
            # replicas copy the forward patched onto the GPU-0 module.
            raise ValueError(
                f"mmel_chunk_size is not supported under {engine}: the chunks would gather the sharded parameters "
                "once per chunk (and deadlock when ranks hold different numbers of chunks) or run on one replica. "
                "Leave mmel_chunk_size unset (lower the batch size or use gradient accumulation), or use DDP "
                "(torchrun / accelerate launch --multi_gpu), where chunks are tested"
            )

    @staticmethod
    def _prepare_model(model, args, train_dataset, peft_config, model_init_kwargs):
        """The model to train: built from a name (as TRL's trainers take it) with the task's labels, adapters added
        from ``peft_config``, tagged for the Hub; arguments and models MMELTrainer cannot honour are refused here,
        before any work."""
        if isinstance(model, str):  # a Hub id or folder
            model = model_from_name(model, train_dataset, model_init_kwargs)
        elif model_init_kwargs:
            raise ValueError(
                "model_init_kwargs is for a model given by name (model='bert-base-uncased'); the model "
                "passed is already built"
            )
        if peft_config is not None:
            model = with_adapters(model, peft_config)
        _warn_half_precision_weights(model, args)
        if not isinstance(args, MMELTrainingArguments):
            raise TypeError(
                f"MMELTrainer needs MMELTrainingArguments, got {type(args).__name__}; build the arguments with "
                "mmel_hf.MMELTrainingArguments(...) (it takes every TrainingArguments field)"
            )
        if hasattr(model, "add_model_tags"):  # the Hub lists the model under these tags (as TRL's trainers tag theirs)
            model.add_model_tags(MODEL_TAGS)
        if args.mmel_chunk_size is not None and isinstance(model, torch.nn.Module):
            refuse_batch_statistics(model)  # before any work, not at the first step
        return model

    @staticmethod
    def _prepare_dataset(train_dataset, args: MMELTrainingArguments, num_labels: int | None, checked: bool):
        """What the training set is in this mode, decided once (TRL's ``_prepare_dataset``): under
        ``mmel_loss='long'`` the groups become independent examples (Baseline(DA+Long)) before anything else sees
        them; the set is checked against the schema (grouped modes) or its labels (``none``). Returns the set and
        the text columns the default collator tokenizes (None: pre-tokenized rows, or a dataset without column
        names). ``checked=False``: a collator of the user's reads the rows its own way, only the labels are
        checked."""
        columns = getattr(train_dataset, "column_names", None)
        if args.mmel_loss == "long" and columns is not None and TARGET_KEY not in columns:
            if num_labels is None:
                raise ValueError("mmel_loss='long' needs model.config.num_labels to build the per-sample targets")
            train_dataset = flatten_groups(train_dataset, num_labels, args.mmel_label_source)
            columns = train_dataset.column_names
        text_columns = tuple(args.mmel_text_columns) if args.mmel_text_columns else None
        if columns is None:
            if checked and args.mmel_loss != "none" and train_dataset is not None:
                logger.warning("the training set has no column names (an IterableDataset?); its schema is not checked")
            return train_dataset, text_columns
        if not checked or args.mmel_loss == "none":
            if checked:
                text_columns = text_columns or find_sample_columns(list(columns)) or None
            if num_labels is not None and hasattr(train_dataset, "data"):
                validate_labels(train_dataset, num_labels)
        elif args.mmel_loss == "long":
            text_columns = text_columns or tuple(c for c in columns if c not in (*LABEL_COLUMNS, TARGET_KEY))
        else:
            schema = validate_augmented_dataset(
                train_dataset, require_teacher=args.mmel_label_source == "teacher", num_labels=num_labels
            )
            text_columns = text_columns or schema.sample_columns
        if text_columns and "input_ids" in text_columns:
            text_columns = None  # pre-tokenized: nothing to tokenize
        return train_dataset, text_columns

    @staticmethod
    def _default_collator(args: MMELTrainingArguments, processing_class, text_columns) -> MMELDataCollator:
        """The grouped collator of the prepared training set (:meth:`_prepare_dataset`'s text columns)."""
        if not isinstance(processing_class, PreTrainedTokenizerBase):
            raise ValueError(
                "MMELTrainer builds its grouped data collator from a tokenizer: pass processing_class=tokenizer, "
                "or a data_collator that emits grouped batches (see MMELTrainer's docstring)"
            )
        return MMELDataCollator(
            processing_class,
            text_columns=text_columns,
            max_length=args.max_length,
            include_augmented=args.mmel_loss not in ("none", "long"),
            pad_to_multiple_of=padding_multiple(args.device),
        )

    # -- Data -------------------------------------------------------------------------------------------

    def _set_signature_columns_if_needed(self) -> None:
        # Users never have to set remove_unused_columns=False: keep the columns the collator reads.
        if self._signature_columns is None:
            super()._set_signature_columns_if_needed()
            extra = list(getattr(self.data_collator, "signature_columns", ()))
            if self.args.train_sampling_strategy in self._LENGTH_SAMPLERS:
                extra.append(self.args.length_column_name)  # precomputed lengths reach the sampler (never the model)
            self._signature_columns += [c for c in extra if c not in self._signature_columns]

    def _get_dataloader(
        self, dataset, description, batch_size, sampler_fn=None, is_training=False, dataloader_key=None
    ):
        dataset = _named_label(dataset, self._recorded_label_column)
        # A collator that makes training views (images) offers plain batches for evaluation and prediction.
        collator = self.data_collator
        if not is_training and hasattr(collator, "for_evaluation"):
            self.data_collator = collator.for_evaluation()
        try:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn, is_training, dataloader_key)
        finally:
            self.data_collator = collator

    # Length-grouped sampling measures what a grouped batch pads to: the longest sample of each group.
    _LENGTH_SAMPLERS = ("group_by_length", "batch_rebalance")

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        return super()._get_train_sampler(self._with_group_lengths(dataset))

    def _get_eval_sampler(self, eval_dataset):
        return super()._get_eval_sampler(self._with_group_lengths(eval_dataset))

    def _with_group_lengths(self, dataset):
        """``dataset`` with a ``length_column_name`` column of its groups' lengths, under length-grouped sampling.

        Trainer measures ``len(input_ids)`` of each row, which raw-text rows lack and which for a group would be
        its original alone, while the collator pads every sample of every group to the longest one. Rows that
        already have the length column keep it (the user's precomputed lengths). Measured once per dataset.
        """

        if (
            self.args.train_sampling_strategy not in self._LENGTH_SAMPLERS
            or not isinstance(dataset, datasets.Dataset)
            or self.args.length_column_name in dataset.column_names
            or not hasattr(self.data_collator, "lengths")
        ):
            return dataset
        cache = self._group_lengths
        key = (dataset._fingerprint, len(dataset))
        if key not in cache:
            logger.info(
                "%s: measuring the tokens of the longest sample of %d rows",
                self.args.train_sampling_strategy,
                len(dataset),
            )
            cache[key] = self.data_collator.lengths(dataset)
        return dataset.add_column(self.args.length_column_name, cache[key])

    def _prepare_inputs(self, inputs):
        # Trainer casts every floating tensor of a batch to DeepSpeed's bf16/fp16: the targets would be rounded
        # (near-tie teacher probabilities flip, STS-B labels move by up to 1/64). They stay float32; the model's
        # floating inputs (pixel values ...) are cast as Trainer does.
        targets = {
            key: inputs[key]
            for key in self.FLOAT32_KEYS
            if isinstance(inputs.get(key), torch.Tensor) and inputs[key].is_floating_point()
        }
        prepared = super()._prepare_inputs(inputs)
        for key, value in targets.items():
            prepared[key] = value.to(device=self.args.device, dtype=torch.float32)
        return prepared

    def _run_epoch(self, *args, **kwargs):
        # Collators that draw random views (images) learn where the epoch starts, so a resumed run draws the
        # views of the uninterrupted one (Trainer skips the batches it already trained on without collating).
        # Trainer's arguments by name, bound to its signature: a renamed one fails here, loudly.
        start_epoch = getattr(self.data_collator, "start_epoch", None)
        if start_epoch is not None:
            given = inspect.signature(super()._run_epoch).bind(*args, **kwargs).arguments
            resumed = given["epoch"] == given["epochs_trained"] and given["resume_from_checkpoint"]
            start_epoch(given["epoch"], given["steps_trained_in_current_epoch"] if resumed else 0)
        return super()._run_epoch(*args, **kwargs)

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        # The unit of the MMEL objective is a group (Algorithm 1, line 8 averages over the S originals), so
        # gradient accumulation normalises by the number of groups in the whole accumulated batch.
        if not batch_samples or GROUP_MASK_KEY not in batch_samples[0]:
            return super()._get_num_items_in_batch(batch_samples, device)
        num_groups = torch.tensor(sum(b[GROUP_MASK_KEY].shape[0] for b in batch_samples), device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            # Tensor-parallel ranks hold the same batch: count it once per data-parallel replica (as Trainer does).
            num_groups = self.accelerator.gather(num_groups).sum() // self._tp_size()
        return num_groups

    # -- Loss -------------------------------------------------------------------------------------------

    # Trainer's steps, with scaled-dot-product attention kept off cuDNN's per-shape plans on CUDA (forward, backward and
    # the chunked recomputation alike; see mmel_hf.utils.attention). A no-op on other devices.
    def training_step(self, model, inputs, num_items_in_batch=None):
        with without_cudnn_attention(self.args.device):
            return super().training_step(model, inputs, num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        with without_cudnn_attention(self.args.device):
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        if TARGET_KEY in inputs and model.training:
            return self._long_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = {k: v for k, v in inputs.items() if k != TARGET_KEY}
        if GROUP_MASK_KEY not in inputs:  # plain batches: evaluation, prediction, mmel_loss="none"
            self.loss_is_scaled_for_ga = None
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        args: MMELTrainingArguments = self.args
        inputs = dict(inputs)
        group_mask = inputs.pop(GROUP_MASK_KEY)
        teacher_flat = inputs.pop(TEACHER_KEY, None)
        labels = inputs.pop("labels")
        logits, outputs = self._forward(model, inputs)
        # A model spread over devices (device_map) returns its logits from the last one: the targets follow them.
        group_mask, labels = group_mask.to(logits.device), labels.to(logits.device)
        teacher_flat = None if teacher_flat is None else teacher_flat.to(logits.device)
        grouped_logits = to_groups(logits, group_mask)
        teacher = None if teacher_flat is None else to_groups(teacher_flat, group_mask)
        if args.mmel_loss == "none":
            # A custom collator sent groups although the user asked for the originals only: weigh slot 0 alone.
            group_mask = group_mask & (torch.arange(group_mask.shape[1], device=group_mask.device) == 0)
        use_teacher = teacher if args.mmel_label_source == "teacher" else None
        if use_teacher is None and args.mmel_label_source == "teacher" and args.mmel_loss != "none":
            raise SchemaError(
                "mmel_label_source='teacher' but the batch has no teacher outputs ('teacher_original' and "
                "'teacher_augmented' columns); label the data with a teacher or set mmel_label_source='original'"
            )

        if args.mmel_loss == "soft":
            result = mmel_soft_loss(
                grouped_logits,
                group_mask,
                labels,
                use_teacher,
                lambda_p=args.effective_lambda_p,
                lambda_t=args.mmel_lambda_t,
                detach_target=args.mmel_detach_soft_target,
                regression_threshold=args.mmel_regression_threshold,
            )
        else:
            result = mmel_hard_loss(grouped_logits, group_mask, labels, use_teacher, lambda_p=args.effective_lambda_p)

        loss = self._accumulation_mean(result.loss, num_items_in_batch)
        weighed = group_mask
        if args.mmel_loss == "soft":  # MMEL-S spreads P* over the |B|-1 augmented samples (Eq. 9); x_i has its own term
            weighed = group_mask & (torch.arange(group_mask.shape[1], device=group_mask.device) > 0)
        self._record_diagnostics(result.weights, teacher, group_mask, weighed, model.training)
        if return_outputs:
            # Predictions and metrics are about the originals: expose their logits, one row per group.
            outputs["logits"] = grouped_logits[:, 0]
            return loss, outputs
        return loss

    def _forward(self, model, inputs: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        """The logits of the flattened batch, in one pass or in ``mmel_chunk_size`` chunks (see the module doc)."""
        chunk = self.args.mmel_chunk_size
        if chunk is not None and flat_size(inputs) > chunk:
            # The chunks run inside the model's own forward, so a DistributedDataParallel wrapper sees one forward
            # (one buffer broadcast, one gradient reduction) and the recomputation in backward calls no wrapper.
            with chunked_forward(self.accelerator.unwrap_model(model), chunk):
                outputs = model(**inputs)
        else:
            outputs = model(**inputs)
        return logits_of(outputs), outputs

    def _long_loss(self, model, inputs, return_outputs, num_items_in_batch):
        """Baseline(DA+Long): the per-sample loss of Eq. 7 against each row's own target, averaged over rows."""
        inputs = dict(inputs)
        targets = inputs.pop(TARGET_KEY)
        inputs.pop("labels", None)
        outputs = model(**inputs)
        logits = logits_of(outputs)
        targets = targets.to(logits.device)  # device_map: the logits come from the model's last device
        regression = logits.shape[-1] == 1
        losses = sample_losses(logits, targets.squeeze(-1) if regression else targets, regression)
        loss = self._accumulation_mean(losses, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def _tp_size(self) -> int:
        # Trainer.get_tp_size appeared with tensor parallelism in Trainer; before it no rank shares a batch.
        return self.get_tp_size() if hasattr(self, "get_tp_size") else 1

    def _accumulation_mean(self, losses: torch.Tensor, num_items_in_batch) -> torch.Tensor:
        """The mean of per-item losses (a group's, or a DA+Long row's) over the whole accumulated batch.

        With ``num_items_in_batch`` (the items of every accumulation step, summed over the data-parallel
        processes when ``average_tokens_across_devices``): ``sum / num_items``, times the data-parallel processes
        whose gradients DDP averages — Trainer's own rule, ``num_processes // tp_size`` (tensor-parallel ranks
        share one batch). Trainer then divides no further (``loss_is_scaled_for_ga``). Without it: the batch's
        mean, which Trainer divides by the accumulation steps.
        """
        if num_items_in_batch is None:
            self.loss_is_scaled_for_ga = False
            return losses.mean()
        loss = losses.sum() / num_items_in_batch
        if self.args.average_tokens_across_devices:
            loss = loss * (self.accelerator.num_processes // self._tp_size())
        self.loss_is_scaled_for_ga = True
        return loss

    def create_model_card(
        self,
        model_name: str | None = None,
        dataset_name: str | None = None,
        tags: str | list[str] | None = None,
        **kwargs,
    ) -> None:
        """Write ``README.md`` into ``args.output_dir`` from ``templates/model_card.md`` (as TRL's trainers do):
        method, lambdas, data provenance, the last evaluation, the whole-run weight diagnostics, the paper and its
        BibTeX. ``Trainer.push_to_hub`` calls it before uploading; Trainer's other card fields (``language``,
        ``license``, ``finetuned_from`` ...) are not used."""
        if not self.is_world_process_zero():
            return

        tags = [tags] if isinstance(tags, str) else list(tags or [])
        data = trainer_card_data(self, model_name=model_name, dataset_name=dataset_name, tags=tags)
        card = render_model_card(data, self.args)
        Path(self.args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(self.args.output_dir) / "README.md").write_text(card)

    # -- Diagnostics ------------------------------------------------------------------------------------

    @torch.no_grad()
    def _record_diagnostics(self, weights, teacher, group_mask, weighed, training: bool) -> None:
        """Add a batch's diagnostics to the running sums. ``weighed``: ``[S, B]`` the samples the mode spreads P*
        over (the normalisers of the entropy and the effective share: uniform weights read 1 in every mode)."""
        reweighted = weights.sum(dim=1) > 0
        zeros = torch.zeros_like(reweighted, dtype=torch.float32)
        per_group = [  # one row per group, so evaluation can drop the rows accelerate repeats
            reweighted.float(),
            torch.where(reweighted, weight_entropy(weights).float(), zeros),
            torch.where(reweighted, weights.amax(dim=1).float(), zeros),
        ]
        if teacher is not None and group_mask.shape[1] > 1:
            regression = teacher.shape[-1] == 1
            disagree = teacher_disagreement(teacher, group_mask, regression, self.args.mmel_regression_threshold)
            self._teacher_is_regression = regression
            per_group += [group_mask[:, 1:].sum(dim=1).float(), disagree.sum(dim=1).float()]
        else:
            per_group += [zeros, zeros]
        sizes = weighed.sum(dim=1).float()
        sized = reweighted & (sizes >= 2)  # a group of one has nothing to spread its weight over
        effective = 1.0 / weights.float().pow(2).sum(dim=1).clamp_min(torch.finfo(torch.float32).tiny)
        per_group += [
            sized.float(),
            torch.where(sized, weight_entropy(weights).float() / sizes.clamp_min(2).log(), zeros),
            torch.where(sized, effective, zeros),
            torch.where(sized, effective / sizes.clamp_min(1), zeros),
        ]
        rows = torch.stack(per_group, dim=1)  # float32: MPS has no float64
        if not training and self.args.world_size > 1:
            # Evaluation: gathered per batch like the predictions, without the samples accelerate repeats to
            # even out the last batch (every process runs every evaluation step, so this collective is safe).
            rows = self.accelerator.gather_for_metrics(rows)
        totals = rows.sum(dim=0)
        mode = "train" if training else "eval"
        previous = self._diagnostics[mode]
        self._diagnostics[mode] = totals if previous is None else previous + totals

    def _get_grad_norm(self, model, grad_norm=None):
        # Called by Trainer once per optimizer step, after gradients are reduced over processes and before the
        # optimizer steps: the norm is the same on every rank, so every rank stops together, before the weights
        # take a non-finite gradient (a NaN model is never saved).
        grad_norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        if grad_norm is not None and not math.isfinite(float(grad_norm)):
            raise NonFiniteTrainingError(
                f"the gradients became {float(grad_norm)} at optimizer step {self.state.global_step + 1} (epoch "
                f"{self.state.epoch or 0:.2f}); training stopped before the weights took them. Check the labels "
                "(regression targets far from the model's scale?), the learning rate, or the precision (fp16 overflows)"
            )
        return grad_norm

    # -- A run resumed from a checkpoint reports the whole run, not its resumed part ----------------------------

    RUN_STATE = "mmel_run_state.json"  # beside Trainer's own files in every checkpoint-* folder

    def _save_checkpoint(self, model, trial) -> None:
        """Trainer's checkpoint, plus what the run-level summary needs to cover the whole run after a resume: the
        diagnostics' sums (logged and pending, reduced over processes) and the training loss summed over steps."""
        super()._save_checkpoint(model, trial)
        pending = self._diagnostics["train"]
        if pending is None:
            pending = torch.zeros(len(_DIAGNOSTICS), device=self.args.device)
        if self.args.world_size > 1:  # every process saves a checkpoint: the collective is safe here
            pending = self.accelerator.reduce(pending, reduction="sum")
        logged = self._train_run_sums if self._train_run_sums is not None else torch.zeros_like(pending)
        if not self.is_world_process_zero():
            return

        folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        tr_loss = getattr(self, "_tr_loss", None)  # the summed step losses since the last log
        record = {
            "global_step": self.state.global_step,
            "diagnostic_sums": (logged + pending).tolist(),
            "loss_sum": getattr(self, "_run_state", {}).get("loss_sum", 0.0)  # the steps before a resume
            + float(getattr(self, "_total_loss_scalar", 0.0))
            + (float(tr_loss.item()) if isinstance(tr_loss, torch.Tensor) else float(tr_loss or 0.0)),
        }
        if folder.is_dir():
            (folder / self.RUN_STATE).write_text(json.dumps(record))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)

        path = Path(resume_from_checkpoint) / self.RUN_STATE
        if not path.is_file():  # a checkpoint of an older mmel_hf: the summary covers the resumed part
            return
        record = json.loads(path.read_text())
        sums = torch.tensor(record["diagnostic_sums"], dtype=torch.float32, device=self.args.device)
        self._train_run_sums = sums  # reduced sums: every process holds the same, as after a log
        self._diagnostics["train"] = None
        self._run_state = {"loss_sum": record["loss_sum"], "steps_before": record["global_step"]}

    def _whole_run_train_loss(self, logs: dict) -> dict:
        """``train_loss`` of the final summary over every step of the run, the steps before a resume included
        (Trainer's own covers the steps of this call)."""
        state, self._run_state = getattr(self, "_run_state", None), None  # used once: a later train() starts afresh
        if not state or "train_loss" not in logs:
            return logs
        steps_now = self.state.global_step - state["steps_before"]
        total = state["loss_sum"] + logs["train_loss"] * steps_now
        logs["train_loss"] = total / max(self.state.global_step, 1)  # the same dict Trainer returns as metrics
        return logs

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Trainer logs training ("loss", "train_runtime") and evaluation ("eval_*") from every process; only those
        # calls carry the diagnostics, so a user's own trainer.log(...) on one process never waits on the others.
        is_eval = any(key.startswith("eval_") for key in logs)
        if not (is_eval or "loss" in logs or "train_runtime" in logs):
            return super().log(logs, start_time)
        mode = "eval" if is_eval else "train"
        sums = self._diagnostics[mode]
        if sums is None:
            sums = torch.zeros(len(_DIAGNOSTICS), device=self.args.device)
        if self.args.world_size > 1 and mode == "train":  # eval sums are already gathered
            sums = self.accelerator.reduce(sums, reduction="sum")
        if mode == "train":
            # The run's sums so far: the final summary (train_runtime) reports the whole run, as its train_loss does.
            self._train_run_sums = sums if self._train_run_sums is None else self._train_run_sums + sums
            if "train_runtime" in logs:
                sums, self._train_run_sums = self._train_run_sums, None
                logs = self._whole_run_train_loss(logs)
        totals = dict(zip(_DIAGNOSTICS, sums.tolist()))
        prefix = "eval_" if mode == "eval" else ""
        metrics = {}
        if totals["groups"] > 0:
            metrics[f"{prefix}mmel/weight_entropy"] = totals["entropy"] / totals["groups"]
            metrics[f"{prefix}mmel/max_weight"] = totals["max_weight"] / totals["groups"]
        if totals["sized_groups"] > 0:
            metrics[f"{prefix}mmel/normalised_entropy"] = totals["normalised_entropy"] / totals["sized_groups"]
            metrics[f"{prefix}mmel/effective_sample_size"] = totals["effective_samples"] / totals["sized_groups"]
            metrics[f"{prefix}mmel/effective_share"] = totals["effective_share"] / totals["sized_groups"]
        if totals["augmented"] > 0:
            # Regression compares the teacher with itself (z vs x_i), not with f(x_i) as the soft rule does: its
            # own name, so it is not read as the share of targets replaced.
            name = "teacher_shift" if self._teacher_is_regression else "teacher_disagreement"
            metrics[f"{prefix}mmel/{name}"] = totals["disagreements"] / totals["augmented"]
        self._diagnostics[mode] = None
        super().log({**logs, **metrics}, start_time)


# Trainer.training_step reads ``loss_is_scaled_for_ga`` from 5.19 on; before, it divided MMEL's group-normalised
# loss by the accumulation steps again for models whose forward has no **kwargs (gradients too small by that factor).
MIN_TRANSFORMERS = (5, 19)


def _require_transformers_with_ga_flag(found: str | None = None) -> None:

    found = found or transformers.__version__
    if Version(found).release[:2] < MIN_TRANSFORMERS:
        wanted = ".".join(map(str, MIN_TRANSFORMERS))
        raise ImportError(
            f"MMELTrainer needs transformers >= {wanted} (found {found}): older Trainers scale the MMEL "
            f"loss for gradient accumulation twice; pip install 'transformers>={wanted}'"
        )
