"""The task registry: what each GLUE task looks like, plus custom tasks for any dataset.

A :class:`TaskSpec` knows a task's text columns (in the order a model takes them), its label column and
type, its number of labels, its metric, its splits on the Hub (``nyu-mll/glue``) and how GLUE distributes
it as TSV files (header or not, which columns, string labels). Section 4.2 of the paper lists the tasks.

Examples:
    >>> spec = get_task("rte")
    >>> spec.text_columns, spec.num_labels, spec.metric
    (('sentence1', 'sentence2'), 2, 'accuracy')
    >>> custom_task("reviews", text_columns=["review"], label_column="stars", num_labels=1).is_regression
    True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from ..embedded import rt_polarity_files
from ..errors import DataError
from ..schema import read_provenance
from .metrics import GLUE_METRIC_TASKS

__all__ = [
    "DataArguments",
    "HubDataArguments",
    "EMBEDDED_TASKS",
    "GLUE_TASKS",
    "TaskArguments",
    "TaskSpec",
    "TsvLayout",
    "custom_task",
    "describe_task",
    "get_task",
    "is_registered",
    "known_tasks",
    "metric_task",
    "reconcile_task",
    "resolve_task",
    "task_from_description",
]


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
        label_names: class names in id order (``entailment`` -> 0): string labels in any source are mapped
            through them, and a fresh classification head is named with them.
        label_range: regression only: the closed range every label must lie in (STS-B: 0-5); labels are always
            finite float32 numbers.
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
    label_names: tuple[str, ...] | None = None
    label_range: tuple[float, float] | None = None

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def names_are_numbers(self) -> bool:
        """Whether a class name reads as a number (``--class-names 1 2 3 4 5``): then every label, in every
        source, is read as a class *name* (the number 1, the text "1" and 1.0 all name class "1"), never as a
        class id, so a value means one class whatever the file type."""
        return bool(self.label_names) and any(_as_number(name) is not None for name in self.label_names)

    def class_of(self, value) -> int | None:
        """The class id a label value names through ``label_names``, or None if it names none.

        A text label is looked up as written; with :attr:`names_are_numbers`, a number (or a text that reads as
        one) is matched by value, so ``1``, ``"1"``, ``1.0`` and ``"01"`` all name class ``"1"``.

            >>> spec = custom_task("reviews", ["review"], "stars", label_names=["1", "2", "3"])
            >>> [spec.class_of(v) for v in (1, "1", 2.0, "3", 0, "four")]
            [0, 0, 1, 2, None, None]
        """
        if not self.label_names:
            return None
        if isinstance(value, str) and value in self.label_names:
            return self.label_names.index(value)
        if not self.names_are_numbers or isinstance(value, bool):
            return None
        number = _as_number(value)
        return None if number is None else _numeric_names(self.label_names).get(number)


def _as_number(value) -> float | None:
    """``value`` as a finite float if it is a number or a text that reads as one, else None."""

    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _numeric_names(label_names: tuple[str, ...]) -> dict[float, int]:
    """Class names that read as numbers, by value -> class id."""
    return {number: i for i, name in enumerate(label_names) if (number := _as_number(name)) is not None}


def _glue(
    name, text_columns, num_labels=2, metric="accuracy", eval_splits=("validation",), tsv=None, label_range=None
) -> TaskSpec:
    return TaskSpec(
        name,
        tuple(text_columns),
        "label",
        num_labels,
        metric,
        "nyu-mll/glue",
        name,
        eval_splits,
        tsv,
        label_names=tsv.label_names if tsv else None,
        label_range=label_range,
    )


_NLI = ("entailment", "not_entailment")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

GLUE_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        _glue(
            "cola",
            ["sentence"],
            metric="matthews_correlation",
            tsv=TsvLayout(has_header=False, columns=("source", "label", "original_label", "sentence")),
        ),
        _glue("sst2", ["sentence"], tsv=TsvLayout()),
        _glue(
            "mrpc",
            ["sentence1", "sentence2"],
            metric="f1",
            tsv=TsvLayout(source_columns={"Quality": "label", "#1 String": "sentence1", "#2 String": "sentence2"}),
        ),
        _glue(
            "stsb",
            ["sentence1", "sentence2"],
            num_labels=1,
            metric="spearmanr",
            tsv=TsvLayout(source_columns={"score": "label"}),
            label_range=(0.0, 5.0),
        ),
        _glue("qqp", ["question1", "question2"], metric="f1", tsv=TsvLayout(source_columns={"is_duplicate": "label"})),
        _glue(
            "mnli",
            ["premise", "hypothesis"],
            num_labels=3,
            eval_splits=("validation_matched", "validation_mismatched"),
            tsv=TsvLayout(
                source_columns={"sentence1": "premise", "sentence2": "hypothesis", "gold_label": "label"},
                label_names=("entailment", "neutral", "contradiction"),
                files={
                    "train": "train.tsv",
                    "validation_matched": "dev_matched.tsv",
                    "validation_mismatched": "dev_mismatched.tsv",
                },
            ),
        ),
        _glue("qnli", ["question", "sentence"], tsv=TsvLayout(label_names=_NLI)),
        _glue("rte", ["sentence1", "sentence2"], tsv=TsvLayout(label_names=_NLI)),
        _glue("wnli", ["sentence1", "sentence2"], tsv=TsvLayout()),
    )
}


def _rt_polarity() -> TaskSpec:

    return TaskSpec(
        "rt-polarity",
        ("sentence",),
        "label",
        2,
        "accuracy",
        None,
        None,
        ("validation",),
        None,
        tuple(rt_polarity_files().items()),
        default_mlm="embedded",
        default_teacher="embedded",
    )


# The embedded task (SST-2-like sentiment on Rotten Tomatoes snippets): runs offline with the shipped models.
EMBEDDED_TASKS: dict[str, TaskSpec] = {"rt-polarity": _rt_polarity()}

_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "glue/rte": "rte", "rt_polarity": "rt-polarity"}


def known_tasks() -> list[str]:
    return sorted([*GLUE_TASKS, *EMBEDDED_TASKS])


def is_registered(name: str) -> bool:
    """Whether ``name`` is a registered task (GLUE or embedded), aliases included."""
    return _canonical(name) in GLUE_TASKS or _canonical(name) in EMBEDDED_TASKS


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
    num_labels: int | None = None,
    hub_path: str | None = None,
    hub_config: str | None = None,
    eval_splits: tuple[str, ...] = ("validation",),
    label_names: list[str] | tuple[str, ...] | None = None,
    label_range: list[float] | tuple[float, float] | None = None,
) -> TaskSpec:
    """A task for any dataset: one or two text columns, a label column, ``num_labels=1`` for regression.

    ``label_names`` (class names in id order) let the data spell its labels as strings; they also give the
    number of classes. Without either, a classification task has 2 classes.
    """
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"task name {name!r}: use letters, digits, '.', '_' or '-' (it names a cache folder)")
    text_columns = tuple(text_columns)
    if not 1 <= len(text_columns) <= 2:
        raise ValueError(f"a task has one text column or a pair, got {list(text_columns)}")
    if len(set(text_columns)) != len(text_columns):
        raise ValueError(f"--text-columns {' '.join(text_columns)}: a column is given twice")
    if label_column in text_columns:
        raise ValueError(f"--label-column {label_column} is also a text column")
    if label_names is not None:
        label_names = tuple(str(n) for n in label_names)
        if len(label_names) < 2 or len(set(label_names)) != len(label_names):
            raise ValueError(f"--class-names {list(label_names)}: give two or more distinct class names, in id order")
        numeric = [name for name in label_names if _as_number(name) is not None]
        if len(_numeric_names(label_names)) != len(numeric):
            raise ValueError(f"--class-names {list(label_names)}: two names are the same number ({numeric})")
        if num_labels is not None and num_labels != len(label_names):
            raise ValueError(f"--num-labels {num_labels} but --class-names names {len(label_names)} classes")
        num_labels = len(label_names)
    num_labels = 2 if num_labels is None else num_labels
    if num_labels < 1:
        raise ValueError(f"num_labels={num_labels} must be >= 1 (1 means regression)")
    if label_range is not None:
        label_range = tuple(float(v) for v in label_range)
        if num_labels != 1:
            raise ValueError("--label-range is for regression tasks (--num-labels 1)")
        if len(label_range) != 2 or not label_range[0] < label_range[1]:
            raise ValueError(f"--label-range {list(label_range)}: give LOW HIGH with LOW < HIGH")
    metric = "spearmanr" if num_labels == 1 else "accuracy"
    return TaskSpec(
        name,
        text_columns,
        label_column,
        num_labels,
        metric,
        hub_path,
        hub_config,
        tuple(eval_splits),
        label_names=label_names,
        label_range=label_range,
    )


def resolve_task(
    task: str,
    text_columns: list[str] | None = None,
    label_column: str | None = None,
    num_labels: int | None = None,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    label_names: list[str] | None = None,
    label_range: list[float] | None = None,
) -> TaskSpec:
    """The task the command-line options describe: a registered one, or a custom one when columns are given."""
    if text_columns is None:
        spec = get_task(task)
        given = {
            "label_column": label_column,
            "num_labels": num_labels,
            "label_names": label_names,
            "label_range": label_range,
        }
        differs = _first_disagreement(given, spec)
        if differs is not None:
            flag, value, own = differs
            raise ValueError(
                f"{flag} {value} does not fit the registered task {spec.name} ({flag} "
                f"{own}); drop it, or give --text-columns and another task name for a custom task"
            )
        if dataset_name is None:
            return spec
        return replace(spec, hub_path=dataset_name, hub_config=dataset_config)
    if is_registered(task):
        raise ValueError(
            f"--task {task} is a registered task: drop --text-columns, or give the custom task another name"
        )
    return custom_task(
        task,
        text_columns,
        label_column or "label",
        num_labels,
        dataset_name,
        dataset_config,
        label_names=label_names,
        label_range=label_range,
    )


def _normalised(value):
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


# -- One task description for every command ---------------------------------------------------------------

# Description key -> (field of TaskArguments, its flag). The class names are --class-names because
# TrainingArguments already has a label_names field (the batch keys that hold labels).
TASK_FLAGS = {
    "text_columns": ("text_columns", "--text-columns"),
    "label_column": ("label_column", "--label-column"),
    "label_names": ("class_names", "--class-names"),
    "num_labels": ("num_labels", "--num-labels"),
    "label_range": ("label_range", "--label-range"),
}


def describe_task(spec: TaskSpec) -> dict:
    """What a task is, as JSON: recorded in augmented datasets and trained models, read back by the next command.

    Examples:
        >>> describe_task(custom_task("reviews", ["review"], "stars", label_names=["neg", "neu", "pos"]))["num_labels"]
        3
    """
    return {
        "name": spec.name,
        "text_columns": list(spec.text_columns),
        "label_column": spec.label_column,
        "label_names": list(spec.label_names) if spec.label_names else None,
        "num_labels": spec.num_labels,
        "label_range": list(spec.label_range) if spec.label_range else None,
    }


def task_from_description(
    description: dict, dataset_name: str | None = None, dataset_config: str | None = None
) -> TaskSpec:
    """The :class:`TaskSpec` a :func:`describe_task` dict names (a registered task by its name)."""
    name = description["name"]
    if is_registered(name):
        return resolve_task(name, dataset_name=dataset_name, dataset_config=dataset_config)
    return custom_task(
        name,
        description["text_columns"],
        description.get("label_column") or "label",
        description.get("num_labels"),
        dataset_name,
        dataset_config,
        label_names=description.get("label_names"),
        label_range=description.get("label_range"),
    )


def reconcile_task(
    options,
    recorded: dict | None,
    where: str,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    num_labels_fallback: int | None = None,
) -> TaskSpec:
    """The task of a command: the one ``recorded`` (by mmel-augment in a dataset, by mmel-train in a model) when
    there is one, checked against the flags given again; else the one the flags describe.

    ``options`` has the fields of :class:`TaskArguments` (``task``, ``text_columns`` ...; None = not given).
    A flag that disagrees with the record is refused in one line that names it; nothing needs repeating.
    """

    if recorded is None:
        if options.task is None:
            raise ValueError("--task is required (a registered task, or a name for a custom task with --text-columns)")
        num_labels = options.num_labels
        if num_labels is None and options.text_columns is not None and not options.class_names:
            num_labels = num_labels_fallback
        return resolve_task(
            options.task,
            options.text_columns,
            options.label_column,
            num_labels,
            dataset_name,
            dataset_config,
            options.class_names,
            options.label_range,
        )
    spec = task_from_description(recorded, dataset_name, dataset_config)
    if options.task is not None and _canonical(options.task) != _canonical(spec.name):
        raise DataError(f"{where}: made for task {spec.name!r}, not {options.task!r}")
    differs = _first_disagreement(
        {name: getattr(options, attribute, None) for name, (attribute, _) in TASK_FLAGS.items()}, spec
    )
    if differs is not None:
        flag, value, recorded_value = differs
        raise DataError(
            f"{where}: {flag} {_shown(value)} differs from the task it records ({spec.name}: {flag} "
            f"{_shown(recorded_value)}); drop {flag}, or give data of that task"
        )
    return spec


def _first_disagreement(given: dict, spec: TaskSpec) -> tuple[str, object, object] | None:
    """The first task flag given (not None) whose value is not ``spec``'s: ``(flag, given, spec's)``.
    ``given`` is keyed as :func:`describe_task` is."""
    described = describe_task(spec)
    for name, value in given.items():
        if value is not None and _normalised(list(value) if isinstance(value, tuple) else value) != _normalised(
            described[name]
        ):
            return TASK_FLAGS[name][1], value, described[name]
    return None


def _canonical(name: str) -> str:
    key = name.lower()
    return _ALIASES.get(key, key)


def _shown(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


@dataclass
class TaskArguments:
    """The task description every command takes with the same flags (``mmel-train``, ``mmel-augment``,
    ``mmel-study``). A registered task needs only ``--task``; a custom one names its columns and labels.
    Datasets made by ``mmel-augment`` and models made by ``mmel-train`` record it, so later commands read it
    back: flags given again must agree."""

    task: str | None = field(
        default=None,
        metadata={
            "help": "A GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli), rt-polarity (embedded), or a name "
            "for a custom task given with --text-columns. Optional where an augmented dataset records it."
        },
    )
    text_columns: list[str] | None = field(
        default=None, metadata={"help": "Custom task: the text column, or the two columns of a pair, in model order."}
    )
    label_column: str | None = field(default=None, metadata={"help": "Custom task: the label column (default: label)."})
    class_names: list[str] | None = field(
        default=None,
        metadata={
            "help": "Custom task: the class names in id order (string labels in the data are mapped to their ids; "
            "they also give --num-labels)."
        },
    )
    num_labels: int | None = field(
        default=None,
        metadata={
            "help": "Custom task: number of classes, 1 = regression (default: --class-names' count, the teacher's, else 2)."
        },
    )
    label_range: list[float] | None = field(
        default=None,
        metadata={
            "help": "Custom regression task: LOW HIGH, the range every label must lie in (labels are always finite)."
        },
    )

    def check_task_options(self) -> None:
        """The checks that need no data (called by ``__post_init__`` of the configs)."""
        if self.text_columns is not None and not 1 <= len(self.text_columns) <= 2:
            raise ValueError(f"--text-columns {self.text_columns}: give one column or the two of a pair")
        if self.num_labels is not None and self.num_labels < 1:
            raise ValueError(f"--num-labels {self.num_labels}: must be >= 1 (1 means regression)")


def metric_task(spec: TaskSpec) -> str:
    """The GLUE metric set that fits ``spec`` (a GLUE task's own; accuracy or Pearson/Spearman otherwise)."""

    if spec.name in GLUE_METRIC_TASKS:
        return spec.name
    return "stsb" if spec.is_regression else "sst2"


@dataclass
class DataArguments(TaskArguments):
    """The task flags and where its local data lives: shared by ``mmel-augment``, ``mmel-train`` and ``mmel-study``
    (as TRL's configs share a base), so the flags, their help and their checks are written once.

    Examples:
        >>> DataArguments(task="reviews", train_file="train.csv", data_dir="glue/RTE").check_data_sources()
        Traceback (most recent call last):
        ...
        ValueError: give one data source, got ['--data-dir', '--train-file']
    """

    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "A local GLUE task folder with train.tsv, dev.tsv (dev_matched.tsv ... for MNLI) as GLUE distributes them."
        },
    )
    train_file: str | None = field(default=None, metadata={"help": "A local CSV/TSV or JSON-lines training file."})
    validation_file: str | None = field(
        default=None, metadata={"help": "A local CSV/TSV or JSON-lines validation file (with --train-file)."}
    )
    dataset_path: str | None = field(default=None, metadata={"help": "A folder written by save_to_disk."})
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Use only the first N training examples (quick runs; every command takes the same rows)."},
    )
    cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "mmel_hf's cache, shared by every command: augmentation results and parsed copies of local data "
            "files (default: $MMEL_HF_CACHE or ~/.cache/mmel_hf)."
        },
    )

    def data_sources(self) -> dict:
        """The local-source flags, as the next command takes them (``mmel-study`` hands them on)."""
        return {name: getattr(self, name) for name in ("data_dir", "train_file", "validation_file", "dataset_path")}

    def check_data_sources(self, *others: str) -> None:
        """At most one source (``others``: a config's own source fields, e.g. ``augmented``), and a validation file
        only beside a training file."""
        given = [
            name for name in (*others, "data_dir", "train_file", "dataset_path") if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give one data source, got {['--' + name.replace('_', '-') for name in given]}")
        if self.validation_file is not None and self.train_file is None:
            raise ValueError("--validation-file goes with --train-file")
        local = [
            name for name in (*others, "data_dir", "train_file", "dataset_path") if getattr(self, name) is not None
        ]
        hub = [name for name in HUB_FIELDS if getattr(self, name, None) is not None]
        if local and hub:
            flag, source = (f"--{name.replace('_', '-')}" for name in (hub[0], local[0]))
            raise ValueError(f"{flag} names a Hub dataset, but the data comes from {source}: drop one of them")


HUB_FIELDS = ("dataset_name", "dataset_config", "dataset_revision")


@dataclass
class HubDataArguments:
    """A Hub dataset in place of the task's own (``mmel-augment``, ``mmel-train``)."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "A Hub dataset id (default for GLUE tasks: nyu-mll/glue)."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    dataset_revision: str | None = field(default=None, metadata={"help": "The Hub dataset's revision."})


def recorded_task(dataset) -> dict | None:
    """The task description an augmented split records (mmel-augment writes it), or None for data made elsewhere."""

    found = read_provenance(dataset)
    if isinstance(found.get("task"), dict):
        return found["task"]
    name = found.get("mmel_hf_task")  # made by an older mmel_hf: the name alone, enough for a registered task
    if name is not None and is_registered(name):
        return {"name": name}
    return None
