"""The task registry: what each GLUE task looks like, plus custom tasks for any dataset.

A :class:`TaskSpec` knows a task's text columns (in the order a model takes them), its label column and
type, its number of labels, its metric, its splits on the Hub (``nyu-mll/glue``) and how GLUE distributes
it as TSV files (header or not, which columns, string labels). Section 4.2 of the paper lists the tasks.

Example:
    >>> spec = get_task("rte")
    >>> spec.text_columns, spec.num_labels, spec.metric
    (('sentence1', 'sentence2'), 2, 'accuracy')
    >>> custom_task("reviews", text_columns=["review"], label_column="stars", num_labels=1).is_regression
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["EMBEDDED_TASKS", "GLUE_TASKS", "TaskSpec", "TsvLayout", "custom_task", "get_task", "known_tasks",
           "metric_task", "resolve_task"]


@dataclass(frozen=True)
class TsvLayout:
    """How a GLUE task's TSV files are laid out.

    Attributes:
        has_header: False only for CoLA.
        columns: for headerless files, the name of each column by position.
        source_columns: file column -> dataset column (e.g. MRPC's ``#1 String`` -> ``sentence1``).
        label_names: string labels in id order (``entailment`` -> 0), or None for numeric labels.
        files: split -> file name inside the task folder.
    """

    has_header: bool = True
    columns: tuple[str, ...] = ()
    source_columns: dict[str, str] = field(default_factory=dict)
    label_names: tuple[str, ...] | None = None
    files: dict[str, str] = field(default_factory=lambda: {"train": "train.tsv", "validation": "dev.tsv"})


@dataclass(frozen=True)
class TaskSpec:
    """One task: its columns, labels, metric and where its data lives.

    Attributes:
        name: registry name (``rte``, ``mnli`` ... or a custom name).
        text_columns: one column (single sentence) or two (a pair), in model order.
        label_column: the label column.
        num_labels: number of classes; 1 means regression.
        metric: the metric key the task reports (``accuracy``, ``matthews_correlation``, ``spearmanr`` ...).
        hub_path, hub_config: where ``datasets.load_dataset`` finds it (None for custom tasks).
        eval_splits: the evaluation splits (MNLI has two).
        tsv: the GLUE TSV layout, for local GLUE folders.
        local_files: split -> file shipped with mmel_hf (the embedded task), read when no source is given.
        default_mlm, default_teacher: the models ``mmel-augment`` uses when none is named ("embedded" means
            the models shipped with mmel_hf).
    """

    name: str
    text_columns: tuple[str, ...]
    label_column: str = "label"
    num_labels: int = 2
    metric: str = "accuracy"
    hub_path: str | None = None
    hub_config: str | None = None
    eval_splits: tuple[str, ...] = ("validation",)
    tsv: TsvLayout | None = None
    local_files: tuple[tuple[str, str], ...] = ()
    default_mlm: str = "bert-base-uncased"
    default_teacher: str | None = None

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2


def _glue(name, text_columns, num_labels=2, metric="accuracy", eval_splits=("validation",), tsv=None) -> TaskSpec:
    return TaskSpec(name, tuple(text_columns), "label", num_labels, metric, "nyu-mll/glue", name, eval_splits, tsv)


_NLI = ("entailment", "not_entailment")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

GLUE_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        _glue("cola", ["sentence"], metric="matthews_correlation",
              tsv=TsvLayout(has_header=False, columns=("source", "label", "original_label", "sentence"))),
        _glue("sst2", ["sentence"], tsv=TsvLayout()),
        _glue("mrpc", ["sentence1", "sentence2"], metric="f1",
              tsv=TsvLayout(source_columns={"Quality": "label", "#1 String": "sentence1", "#2 String": "sentence2"})),
        _glue("stsb", ["sentence1", "sentence2"], num_labels=1, metric="spearmanr",
              tsv=TsvLayout(source_columns={"score": "label"})),
        _glue("qqp", ["question1", "question2"], metric="f1",
              tsv=TsvLayout(source_columns={"is_duplicate": "label"})),
        _glue("mnli", ["premise", "hypothesis"], num_labels=3,
              eval_splits=("validation_matched", "validation_mismatched"),
              tsv=TsvLayout(
                  source_columns={"sentence1": "premise", "sentence2": "hypothesis", "gold_label": "label"},
                  label_names=("entailment", "neutral", "contradiction"),
                  files={"train": "train.tsv", "validation_matched": "dev_matched.tsv",
                         "validation_mismatched": "dev_mismatched.tsv"})),
        _glue("qnli", ["question", "sentence"], tsv=TsvLayout(label_names=_NLI)),
        _glue("rte", ["sentence1", "sentence2"], tsv=TsvLayout(label_names=_NLI)),
        _glue("wnli", ["sentence1", "sentence2"], tsv=TsvLayout()),
    )
}

def _rt_polarity() -> TaskSpec:
    from ..embedded import rt_polarity_files

    return TaskSpec("rt-polarity", ("sentence",), "label", 2, "accuracy", None, None, ("validation",), None,
                    tuple(rt_polarity_files().items()), default_mlm="embedded", default_teacher="embedded")


# The embedded task (SST-2-like sentiment on Rotten Tomatoes snippets): runs offline with the shipped models.
EMBEDDED_TASKS: dict[str, TaskSpec] = {"rt-polarity": _rt_polarity()}

_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "glue/rte": "rte", "rt_polarity": "rt-polarity"}


def known_tasks() -> list[str]:
    return sorted([*GLUE_TASKS, *EMBEDDED_TASKS])


def get_task(name: str) -> TaskSpec:
    """The registered task ``name`` (case-insensitive; ``SST-2`` and ``sst2`` both work)."""
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key in EMBEDDED_TASKS:
        return EMBEDDED_TASKS[key]
    if key not in GLUE_TASKS:
        raise ValueError(
            f"unknown task {name!r}; known tasks: {', '.join(known_tasks())}. For another dataset give "
            "--text-columns and --label-column (a custom task)."
        )
    return GLUE_TASKS[key]


def custom_task(
    name: str,
    text_columns: list[str] | tuple[str, ...],
    label_column: str = "label",
    num_labels: int = 2,
    hub_path: str | None = None,
    hub_config: str | None = None,
    eval_splits: tuple[str, ...] = ("validation",),
) -> TaskSpec:
    """A task for any dataset: one or two text columns, a label column, ``num_labels=1`` for regression."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"task name {name!r}: use letters, digits, '.', '_' or '-' (it names a cache folder)")
    text_columns = tuple(text_columns)
    if not 1 <= len(text_columns) <= 2:
        raise ValueError(f"a task has one text column or a pair, got {list(text_columns)}")
    if num_labels < 1:
        raise ValueError(f"num_labels={num_labels} must be >= 1 (1 means regression)")
    metric = "spearmanr" if num_labels == 1 else "accuracy"
    return TaskSpec(name, text_columns, label_column, num_labels, metric, hub_path, hub_config, tuple(eval_splits))


def resolve_task(
    task: str,
    text_columns: list[str] | None = None,
    label_column: str = "label",
    num_labels: int | None = None,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
) -> TaskSpec:
    """The task the command-line options describe: a registered one, or a custom one when columns are given."""
    if text_columns is None:
        spec = get_task(task)
        if dataset_name is None:
            return spec
        return TaskSpec(spec.name, spec.text_columns, spec.label_column, spec.num_labels, spec.metric,
                        dataset_name, dataset_config, spec.eval_splits, spec.tsv)
    if task.lower() in GLUE_TASKS or task.lower() in EMBEDDED_TASKS:
        raise ValueError(f"--task {task} is a registered task: drop --text-columns, or give the custom task another name")
    return custom_task(task, text_columns, label_column, num_labels or 2, dataset_name, dataset_config)


def metric_task(spec: TaskSpec) -> str:
    """The GLUE metric set that fits ``spec`` (a GLUE task's own; accuracy or Pearson/Spearman otherwise)."""
    from ..metrics import GLUE_METRIC_TASKS

    if spec.name in GLUE_METRIC_TASKS:
        return spec.name
    return "stsb" if spec.is_regression else "sst2"
