"""AugmentConfig: every option of ``mmel-augment``; the CLI flags and the Python fields are the same."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from typing import Literal

import torch

from ..tasks.registry import DataArguments, HubDataArguments
from ..utils import devices  # device facts by module: the tests model other machines there
from ..utils.hub import check_push_possible
from .augmenter import Augmenter

__all__ = ["AugmentConfig", "resolved_cache_dir"]


def resolved_cache_dir(cache_dir: str | None = None) -> str:
    """The one cache root of every command: ``cache_dir``, else ``$MMEL_HF_CACHE``, else ``~/.cache/mmel_hf``."""
    default = os.environ.get("MMEL_HF_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "mmel_hf"))
    return cache_dir or default


# The batching when none is given. A CPU keeps its tested 256 sequences per pass (and blocks of 256 rows), with no
# token budget. A CUDA GPU with fast bf16 fills each pass by tokens: up to 65,536 tokens (enough to keep an
# H100-class card's matmuls busy at BERT-base width) and at most 4,096 sequences, so short sentences go in large
# batches and long ones in smaller, with blocks of 1,024 rows.
CPU_BATCH, GPU_BATCH, GPU_TOKENS, GPU_BLOCK = 256, 4096, 65536, 1024

# Options that change what is produced; they all go into the cache fingerprint (with the device type, see
# cache.fingerprint_job). The batching is part of the result: a row's numbers depend on the shapes of the
# batches it is computed in (kernels are picked per shape), so the batch sizes and the block size are here.
# The shard size, the number of processes, progress bars and output places are not: they change nothing.
RESULT_FIELDS = (
    "task",
    "text_columns",
    "label_column",
    "class_names",
    "num_labels",
    "label_range",
    "dataset_name",
    "dataset_config",
    "dataset_revision",
    "mlm_model",
    "mlm_revision",
    "teacher",
    "teacher_revision",
    "label_source",
    "augmenter",
    "translation_models",
    "source_language",
    "pivot_language",
    "generator_model",
    "prompt_template",
    "sampling",
    "temperature",
    "top_k",
    "num_candidates",
    "eda_operations",
    "eda_alpha",
    "augmented_file_key",
    "allow_missing_samples",
    "drop_disagreeing",
    "group_size",
    "ratio",
    "search",
    "separate",
    "seed",
    "max_length",
    "precision",
    "max_train_samples",
    "batch_size",
    "teacher_batch_size",
    "max_tokens_per_batch",
    "block_size",
)


# Each augmenter's own options and their defaults: given to another augmenter, they are refused.
AUGMENTER_OPTIONS = {
    "fill-mask": {"mlm_model": None, "mlm_revision": None, "ratio": 0.4, "search": "greedy", "separate": True},
    "file": {"augmented_file": None, "augmented_file_key": None, "allow_missing_samples": False},
    "back-translation": {
        "translation_models": None,
        "source_language": None,
        "pivot_language": None,
        "sampling": "sample",
    },  # fmt: skip
    "generate": {"generator_model": None, "prompt_template": None},
    "eda": {"eda_operations": ["swap", "delete"], "eda_alpha": 0.1},
}
GENERATING = ("back-translation", "generate", "eda")  # take |B| - 1 and --num-candidates
GENERATING_SHARED = {"temperature": 1.0, "top_k": None, "num_candidates": None}  # options of the model-based ones
AUGMENTER_OPTIONS["back-translation"].update(GENERATING_SHARED)
AUGMENTER_OPTIONS["generate"].update(GENERATING_SHARED)
AUGMENTER_OPTIONS["eda"]["num_candidates"] = None


@dataclass
class AugmenterArguments:
    """Which augmenter makes the samples, and the options of the augmenters other than fill-mask (whose options are
    the paper's: --mlm-model, --ratio, --search ...). Shared by ``mmel-augment`` and ``mmel-study``."""

    augmenter: Literal["fill-mask", "file", "back-translation", "generate", "eda"] = field(
        default="fill-mask",
        metadata={
            "help": "Where the augmented samples come from: 'fill-mask' (Algorithm 2 or beam search with --mlm-model, the "
            "paper's), 'file' (samples made anywhere, read from --augmented-file), 'back-translation' (through a "
            "pivot language and back, --translation-models) or 'generate' (paraphrases from a language model, "
            "--generator-model) or 'eda' (EDA's word edits from nlpaug, --eda-operations). The teacher, the cache, the "
            "shards and the card are the same for all. (From "
            "Python, an object implementing mmel_hf.augment.Augmenter also goes here.)",
            "choices": ["fill-mask", "file", "back-translation", "generate", "eda"],
        },
    )
    eda_operations: list[str] = field(
        default_factory=lambda: ["swap", "delete"],
        metadata={
            "help": "--augmenter eda: the edits samples take in turn: swap, delete, synonym, insert (synonym and "
            "insert need nltk's WordNet lexicon).",
            "choices": ["swap", "delete", "synonym", "insert"],
        },
    )
    eda_alpha: float = field(
        default=0.1, metadata={"help": "--augmenter eda: the share of words each edit changes (EDA's alpha)."}
    )
    translation_models: list[str] | None = field(
        default=None,
        metadata={
            "help": "--augmenter back-translation: two translation models (Hub ids or folders), source to pivot and "
            "pivot to source: Helsinki-NLP/opus-mt-en-de Helsinki-NLP/opus-mt-de-en (Marian), or one multilingual "
            "model twice (NLLB, M2M100) with --source-language and --pivot-language.",
            "nargs": 2,
        },
    )
    source_language: str | None = field(
        default=None, metadata={"help": "back-translation with NLLB/M2M100: the texts' language (eng_Latn, __en__)."}
    )
    pivot_language: str | None = field(
        default=None, metadata={"help": "back-translation with NLLB/M2M100: the pivot language (deu_Latn, __de__)."}
    )
    generator_model: str | None = field(
        default=None,
        metadata={
            "help": "--augmenter generate: a causal or seq2seq language model (Hub id or folder) that paraphrases."
        },
    )
    prompt_template: str | None = field(
        default=None,
        metadata={
            "help": "--augmenter generate: the question, with {text} where the text goes (through the tokenizer's "
            "chat template where it has one). Default: 'Paraphrase the sentence, keeping its meaning.\\nSentence: "
            "{text}\\nParaphrase:'."
        },
    )
    sampling: Literal["sample", "beam"] = field(
        default="sample",
        metadata={
            "help": "back-translation: seeded sampling of the pivots (each sample depends only on seed, row and "
            "column) or beam search; generate samples always.",
            "choices": ["sample", "beam"],
        },
    )
    temperature: float = field(default=1.0, metadata={"help": "back-translation and generate: sampling temperature."})
    top_k: int | None = field(
        default=None, metadata={"help": "back-translation and generate: sample among the k likeliest tokens."}
    )
    num_candidates: int | None = field(
        default=None,
        metadata={
            "help": "back-translation and generate: candidates made per text before those equal to the original or "
            "to each other are removed (default: 2 x (|B|-1)); the first |B|-1 left are kept."
        },
    )
    augmented_file: str | None = field(
        default=None,
        metadata={
            "help": "--augmenter file: a JSON-lines file (one object per original: its 'row' or 'id' and a list of "
            "samples per text column) or a CSV/TSV file (one row per sample); see mmel_hf.augment.file_source."
        },
    )
    augmented_file_key: str | None = field(
        default=None,
        metadata={
            "help": "--augmenter file: the field that names each sample's original: 'row' (its 0-based position in "
            "the training split) or an id column the training data keeps. Default: the first of row, id, idx the "
            "file has."
        },
    )
    allow_missing_samples: bool = field(
        default=False,
        metadata={
            "help": "--augmenter file: keep training rows the file gives no sample for (the original alone) instead "
            "of refusing the file."
        },
    )

    @property
    def augmenter_name(self) -> str:
        """``fill-mask``, ``file``, ... or the name of an :class:`~mmel_hf.augment.Augmenter` object from Python."""
        return self.augmenter if isinstance(self.augmenter, str) else self.augmenter.name

    def augmenter_options(self) -> dict:
        """These arguments as keyword arguments (of :class:`AugmentConfig`)."""
        return {f.name: getattr(self, f.name) for f in fields(AugmenterArguments)}


@dataclass
class AugmentConfig(AugmenterArguments, HubDataArguments, DataArguments):
    """Options of the augmentation job (Section 3.3 and Appendix C of the paper).

    The defaults are the paper's: |B| = 5, greedy search, ratio 0.4, each sentence of a pair augmented on
    its own, ``bert-base-uncased`` as the fill-mask model.
    """

    keep_columns: list[str] | None = field(
        default=None,
        metadata={
            "help": "Columns of local files kept beside the task's in every split (as text), to join the results "
            "back to your rows. Default: an 'id' or 'idx' column where the file has one. Hub and save_to_disk "
            "datasets keep all their columns."
        },
    )

    drop_disagreeing: bool = field(
        default=False,
        metadata={
            "help": "Leave out the samples the teacher labels otherwise than their original (another class; for "
            "regression, a prediction more than 0.5 away), so groups become ragged. Off by default: MMEL's soft loss "
            "uses such samples' teacher labels. The share is reported either way (teacher_disagreement)."
        },
    )
    mlm_model: str | None = field(
        default=None,
        metadata={
            "help": "The fill-mask model (Hub id or local folder) for Algorithm 2. Default: the task's, bert-base-uncased "
            "for GLUE and custom tasks, the embedded model for rt-polarity ('embedded' names it anywhere)."
        },
    )
    mlm_revision: str | None = field(default=None, metadata={"help": "Revision of --mlm-model on the Hub."})
    teacher: str | None = field(
        default=None,
        metadata={
            "help": "A sequence-classification model (Hub id or local folder) that labels every sample (Section 3.3). "
            "Default: the task's (the embedded teacher for rt-polarity; none for GLUE)."
        },
    )
    teacher_revision: str | None = field(default=None, metadata={"help": "Revision of --teacher on the Hub."})
    label_source: Literal["teacher", "original"] = field(
        default="teacher",
        metadata={
            "help": "'teacher': the teacher's outputs for every sample; 'original': copy the original label "
            "(the paper's Table 4 ablation; no teacher needed).",
            "choices": ["teacher", "original"],
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow models with custom code from the Hub (off unless you turn it on)."}
    )

    group_size: int = field(
        default=5,
        metadata={"help": "|B|: samples per group, the original included, so |B|-1 augmented samples per example."},
    )
    ratio: float = field(
        default=0.4,
        metadata={"help": "Fraction of word pieces replaced: k = round(ratio * length), ties up, at least 1."},
    )
    search: Literal["greedy", "beam"] = field(
        default="greedy",
        metadata={
            "help": "'greedy' (Algorithm 2) or 'beam' (width |B|-1, Yang et al. 2018).",
            "choices": ["greedy", "beam"],
        },
    )
    separate: bool = field(
        default=True,
        metadata={
            "help": "Augment each sentence of a pair on its own (the paper's choice); --no-separate concatenates them."
        },
    )
    seed: int = field(default=42, metadata={"help": "Seeds the masked positions together with each example's row."})
    max_length: int = field(default=128, metadata={"help": "Longest sequence (in word pieces) the models see."})
    batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Most sequences per forward pass of the fill-mask model (part of the result's fingerprint: a "
            "row's numbers depend on the batch it is computed in). Default: "
            f"{GPU_BATCH} on a CUDA GPU with fast bf16 (with --max-tokens-per-batch {GPU_TOKENS}), else {CPU_BATCH}."
        },
    )
    max_tokens_per_batch: int | None = field(
        default=None,
        metadata={
            "help": "Most tokens (sequences x padded length) per forward pass of either model, beside the sequence "
            "count of --batch-size: short sentences then go in large batches, long ones in small. Part of the "
            f"fingerprint. Default: {GPU_TOKENS} on a CUDA GPU with fast bf16, else none (sequences alone). Set it "
            "lower if a long --max-length runs out of memory."
        },
    )
    teacher_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Sequences per forward pass of the teacher (part of the fingerprint, as --batch-size). Default: "
            "as --batch-size's."
        },
    )
    block_size: int | None = field(
        default=None,
        metadata={
            "help": "Rows batched together: each block of this many rows is sorted by length and batched on its own, "
            "so a row always meets the same batch-mates whatever the shards and processes (part of the "
            f"fingerprint). Default: {GPU_BLOCK} on a CUDA GPU with fast bf16, else {CPU_BATCH}."
        },
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto",
        metadata={
            "help": "Autocast precision for both models: fp32, bf16 (CPU or GPU) or fp16 (GPU); auto: bf16 on a CUDA "
            "GPU with fast bf16 (compute capability 8.0+), else fp32. The resolved value is in the fingerprint and "
            "the summary.",
            "choices": ["auto", "fp32", "bf16", "fp16"],
        },
    )
    device: str | None = field(
        default=None,
        metadata={
            "help": "'cpu', 'cuda', 'cuda:1' ... (default: the accelerator if there is one; under accelerate launch or "
            "torchrun each process its own, as with 'cuda' without an index)."
        },
    )

    output_dir: str | None = field(default=None, metadata={"help": "Also save the result here with save_to_disk."})
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Ignore the cache and rebuild: clears this job's cache folder and the Arrow copies of its input "
            "files (a Hub dataset is downloaded again)."
        },
    )
    verify: int | None = field(
        default=None,
        metadata={
            "help": "Check a finished cache instead of building: recompute N random blocks from the cache's own "
            "settings and compare (text bitwise, teacher outputs to --verify-atol). Exits 1 on a mismatch."
        },
    )
    verify_atol: float | None = field(
        default=None,
        metadata={
            "help": "Largest difference in a teacher output that --verify (and a resume on other hardware) accepts. "
            "Default: 1e-5 for fp32, 5e-2 for bf16/fp16."
        },
    )
    shard_size: int = field(
        default=1024,
        metadata={
            "help": "Examples per shard (rounded up to whole --block-size blocks): how the work is shared out between "
            "processes, shard i to rank i %% N first. It does not change the result; each finished block is "
            "written atomically, so a killed run resumes at the unfinished ones, with any shard size."
        },
    )
    push_to_hub: str | None = field(
        default=None,
        metadata={
            "help": "Push the result to this Hub dataset repo, with a dataset card (token: your HF login or HF_TOKEN)."
        },
    )
    hub_private: bool = field(default=False, metadata={"help": "Create the Hub repo as private."})
    license: str | None = field(
        default=None,
        metadata={
            "help": "The dataset card's license (a Hub license id: mit, cc-by-4.0, other ...). Default: the source's where "
            "mmel_hf knows it (GLUE: other, as nyu-mll/glue; rt-polarity: unknown), else unknown."
        },
    )
    language: list[str] = field(
        default_factory=lambda: ["en"], metadata={"help": "The dataset card's language codes (ISO 639-1)."}
    )
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})

    def __post_init__(self):
        self.check_task_options()
        if self.task is None:
            raise ValueError(
                "--task is required: a GLUE task, rt-polarity, or a name for a custom task (with --text-columns)"
            )
        if not 0 < self.ratio <= 1:
            raise ValueError(f"--ratio {self.ratio}: must be in (0, 1] (the paper uses 0.4)")
        if self.group_size < 2:
            raise ValueError(
                f"--group-size {self.group_size}: |B| must be at least 2 (the original and one augmented sample)"
            )
        if self.max_length < 8:
            raise ValueError(f"--max-length {self.max_length}: too short to hold a sentence")
        for name in ("batch_size", "teacher_batch_size", "max_tokens_per_batch", "shard_size", "block_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")
        if self.verify is not None and self.verify < 1:
            raise ValueError(f"--verify {self.verify}: the number of blocks to recompute must be at least 1")
        if self.verify_atol is not None and not self.verify_atol >= 0:
            raise ValueError(f"--verify-atol {self.verify_atol}: must be a number >= 0")
        if self.verify is not None and (self.overwrite or self.push_to_hub or self.output_dir):
            raise ValueError(
                "--verify only checks a finished cache: it goes without --overwrite, --output-dir and --push-to-hub"
            )
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ValueError(f"--max-train-samples {self.max_train_samples}: must be at least 1")
        if self.push_to_hub:
            check_push_possible()
        if self.drop_disagreeing and self.label_source == "original":
            raise ValueError(
                "--drop-disagreeing needs the teacher's labels: under --label-source original no sample disagrees"
            )
        if self.label_source == "original" and self.teacher is not None:
            raise ValueError(
                "--teacher is not used with --label-source original (the original labels stand in for the teacher's "
                "outputs): drop one of them"
            )
        self.check_augmenter_options()
        self.check_data_sources()

    def check_augmenter_options(self) -> None:
        """Options of one augmenter are refused with another (the fill-mask ones included): a flag that cannot act is
        never ignored."""

        name = self.augmenter if isinstance(self.augmenter, str) else None
        if name is None and not isinstance(self.augmenter, Augmenter) or name not in (None, *AUGMENTER_OPTIONS):
            raise ValueError(
                f"--augmenter {self.augmenter!r}: expected one of {', '.join(AUGMENTER_OPTIONS)}, or (from Python) an "
                "Augmenter object"
            )
        required = {"file": "augmented_file", "back-translation": "translation_models", "generate": "generator_model"}
        if name in required and getattr(self, required[name]) is None:
            flag = "--" + required[name].replace("_", "-")
            raise ValueError(f"--augmenter {name} needs {flag}")
        owners: dict[str, list[str]] = {}
        for owner, options in AUGMENTER_OPTIONS.items():
            for option, default in options.items():
                own = option in AUGMENTER_OPTIONS.get(name, {})  # the temperature of back-translation and generate
                if not own and getattr(self, option) != default:
                    owners.setdefault(option, []).append(owner)
        if name not in ("fill-mask", *GENERATING) and self.group_size != 5:
            owners["group_size"] = ["fill-mask", *GENERATING]
        if owners:
            flags = ", ".join(
                f"--{'no-separate' if option == 'separate' else option.replace('_', '-')} ({' or '.join(found)})"
                for option, found in owners.items()
            )
            raise ValueError(
                f"{flags}: option(s) of another augmenter than {self.augmenter_name}, the one this job runs "
                "(--augmenter; each augmenter's options are in mmel-augment --help)"
            )
        if (self.source_language is None) != (self.pivot_language is None):
            raise ValueError("--source-language and --pivot-language go together (NLLB/M2M100 need both)")
        if not self.temperature > 0:
            raise ValueError(f"--temperature {self.temperature}: must be > 0")
        for option in ("top_k", "num_candidates"):
            if getattr(self, option) is not None and getattr(self, option) < 1:
                raise ValueError(f"--{option.replace('_', '-')} {getattr(self, option)}: must be at least 1")

    @property
    def num_augmented(self) -> int:
        return self.group_size - 1

    def tolerance(self) -> float:
        """The largest teacher-output difference accepted when a block is recomputed (--verify-atol)."""
        if self.verify_atol is not None:
            return self.verify_atol
        return 1e-5 if self.precision == "fp32" else 5e-2

    def resolved_cache_dir(self) -> str:
        return resolved_cache_dir(self.cache_dir)

    def resolved_for(self, device) -> AugmentConfig:
        """This config with the device's defaults filled in (``auto`` precision, unset batching): on a CUDA GPU with
        fast bf16, bf16 and passes of up to 65,536 tokens and 4,096 sequences in blocks of 1,024 rows; elsewhere
        fp32 and 256 sequences, as before. Options the user gave are kept."""

        gpu = torch.device(device).type == "cuda" and devices.cuda_with_fast_bf16()
        batch = GPU_BATCH if gpu else CPU_BATCH
        return dataclasses.replace(
            self,
            precision=("bf16" if gpu else "fp32") if self.precision == "auto" else self.precision,
            batch_size=self.batch_size or batch,
            teacher_batch_size=self.teacher_batch_size or batch,
            max_tokens_per_batch=self.max_tokens_per_batch or (GPU_TOKENS if gpu else None),
            block_size=self.block_size or (GPU_BLOCK if gpu else CPU_BATCH),
        )

    def result_options(self) -> dict:
        """The options that determine the output (hashed into the cache fingerprint)."""
        options = {name: getattr(self, name) for name in RESULT_FIELDS}
        options["augmenter"] = self.augmenter_name  # an object given from Python: its identity is hashed apart
        return options
