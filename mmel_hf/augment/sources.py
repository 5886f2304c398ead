"""Loading a task's data: the Hub, local GLUE folders (TSV), CSV, JSON lines and ``save_to_disk`` folders.

Every loader returns a ``DatasetDict`` with a ``train`` split and the task's evaluation splits, each with
the task's text columns and label column, and checks them on the way in: bad input raises
:class:`DataError` with the file, row (line) and column.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.tsv").write_text("sentence\\tlabel\\na fine film\\t1\\ndull\\t0\\n")
    >>> _ = (folder / "dev.tsv").write_text("sentence\\tlabel\\ngreat\\t1\\n")
    >>> data = load_task_data(get_task("sst2"), data_dir=folder)
    >>> data["train"][0]
    {'sentence': 'a fine film', 'label': 1}
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ..errors import DataError
from .tasks import TaskSpec, get_task  # noqa: F401  (get_task: used by the doctest)

__all__ = ["DataError", "check_task_columns", "load_task_data", "read_glue_tsv", "read_table_file"]

csv.field_size_limit(1 << 24)


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not valid UTF-8 (byte {raw[err.start]:#04x}); re-encode the file as UTF-8") from None
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    return text


def _lines(text: str) -> list[str]:
    """Lines split at ``\n`` only (and one trailing ``\r`` removed): ``str.splitlines`` would also break at
    U+2028, U+0085, form feeds ... which are text inside a sentence or a JSON string."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _parse_label(value, spec: TaskSpec, where: str, label_names: tuple[str, ...] | None = None):
    if spec.is_regression:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise DataError(f"{where}: label {value!r} is not a number (task {spec.name} is a regression task)") from None
    if label_names is not None and isinstance(value, str) and value in label_names:
        return label_names.index(value)
    try:
        label = int(value)
        if isinstance(value, float) and value != label:
            raise ValueError
    except (TypeError, ValueError):
        names = f" or one of {list(label_names)}" if label_names else ""
        raise DataError(f"{where}: label {value!r} is not a class id 0..{spec.num_labels - 1}{names}") from None
    if not 0 <= label < spec.num_labels:
        raise DataError(f"{where}: label {label} is outside 0..{spec.num_labels - 1} (task {spec.name})")
    return label


def _rows_to_columns(rows: list[tuple[int, dict]], spec: TaskSpec, path: Path, label_names=None) -> dict:
    """(line number, row) pairs -> the task's columns, with labels parsed."""
    if not rows:
        raise DataError(f"{path}: no data rows")
    columns = {c: [] for c in (*spec.text_columns, spec.label_column)}
    for line, row in rows:
        where = f"{path}: line {line}"
        for column in spec.text_columns:
            value = row[column]
            if not isinstance(value, str):
                raise DataError(f"{where}, column '{column}': expected text, found {type(value).__name__} {value!r}")
            columns[column].append(value)
        columns[spec.label_column].append(
            _parse_label(row[spec.label_column], spec, f"{where}, column '{spec.label_column}'", label_names)
        )
    return columns


def _require_columns(found: list[str], spec: TaskSpec, path: Path, renames: dict[str, str] | None = None) -> None:
    renames = renames or {}
    available = {renames.get(c, c) for c in found}
    missing = [c for c in (*spec.text_columns, spec.label_column) if c not in available]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing} for task {spec.name}; the file has {found}. Name the columns with "
            "--text-columns/--label-column (a custom task) or fix the header."
        )


def read_glue_tsv(path: str | os.PathLike, spec: TaskSpec):
    """One GLUE TSV file as distributed by GLUE (``spec.tsv`` says its quirks) -> ``datasets.Dataset``."""
    from datasets import Dataset

    path = Path(path)
    layout = spec.tsv
    if layout is None:
        raise DataError(f"task {spec.name} has no GLUE TSV layout; use --train-file with CSV or JSON lines")
    lines = _lines(_decode(path))
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = list(layout.columns) if not layout.has_header else next(reader)
    renamed = [layout.source_columns.get(c, c) for c in header]
    _require_columns(header, spec, path, layout.source_columns)
    first_line = 2 if layout.has_header else 1
    rows = []
    for offset, values in enumerate(reader):
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            raise DataError(
                f"{path}: line {first_line + offset} has {len(values)} tab-separated fields, expected {len(header)} "
                f"({header})"
            )
        rows.append((first_line + offset, dict(zip(renamed, values))))
    return Dataset.from_dict(_rows_to_columns(rows, spec, path, layout.label_names))


def read_table_file(path: str | os.PathLike, spec: TaskSpec):
    """A CSV/TSV (with a header) or JSON-lines file with the task's columns -> ``datasets.Dataset``."""
    from datasets import Dataset

    path = Path(path)
    suffix = path.suffix.lower()
    text = _decode(path)
    if suffix in (".jsonl", ".json"):
        rows = []
        for number, line in enumerate(_lines(text), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {number} is not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number} is a JSON {type(row).__name__}, expected an object")
            _require_columns(list(row), spec, path)
            rows.append((number, row))
        return Dataset.from_dict(_rows_to_columns(rows, spec, path))
    if suffix in (".csv", ".tsv", ".txt"):
        if suffix == ".csv":  # standard CSV quoting: quoted fields may hold commas and span lines
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=",")
        else:  # TSV has no quoting (as GLUE's files): a leading '"' is text, one line is one row
            reader = csv.reader(_lines(text), delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        _require_columns(header, spec, path)
        rows = []
        for values in reader:
            if not values:
                continue
            if len(values) != len(header):
                raise DataError(
                    f"{path}: line {reader.line_num} has {len(values)} fields, expected {len(header)} ({header})"
                )
            rows.append((reader.line_num, dict(zip(header, values))))
        return Dataset.from_dict(_rows_to_columns(rows, spec, path))
    raise DataError(f"{path}: unknown file type {suffix!r}; use .csv, .tsv, .jsonl or .json (JSON lines)")


def check_task_columns(dataset, spec: TaskSpec, where: str, require_text: bool = False) -> None:
    """Check a loaded split: the task's columns exist and hold text; with ``require_text`` none is empty."""
    import pyarrow.compute as pc
    from datasets import Value

    missing = [c for c in (*spec.text_columns, spec.label_column) if c not in dataset.column_names]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing} for task {spec.name}; found {dataset.column_names}")
    if len(dataset) == 0:
        raise DataError(f"{where}: the split is empty")
    for column in spec.text_columns:
        feature = dataset.features[column]
        if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
            raise DataError(f"{where}, column '{column}': expected text, found {feature}")
        if require_text:
            values = dataset.data.table[column] if dataset._indices is None else dataset.flatten_indices().data.table[column]
            blank = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0), True)
            bad = pc.indices_nonzero(blank)
            if len(bad):
                raise DataError(
                    f"{where}, row {bad[0].as_py()}, column '{column}': empty text cannot be augmented "
                    f"({len(bad)} such row(s)); remove or fill them"
                )


def load_task_data(
    spec: TaskSpec,
    *,
    data_dir: str | os.PathLike | None = None,
    train_file: str | os.PathLike | None = None,
    validation_files: dict[str, str] | None = None,
    dataset_path: str | os.PathLike | None = None,
    hub_path: str | None = None,
    hub_config: str | None = None,
    revision: str | None = None,
):
    """Load ``spec``'s train and evaluation splits from exactly one source.

    Args:
        data_dir: a GLUE task folder (``train.tsv``, ``dev.tsv`` ... as GLUE distributes them).
        train_file, validation_files: CSV/TSV/JSON-lines files (``validation_files`` maps split -> file).
        dataset_path: a folder written by ``DatasetDict.save_to_disk``.
        hub_path, hub_config, revision: a Hub dataset (default: the task's own, e.g. ``nyu-mll/glue``).
    """
    from datasets import DatasetDict, load_dataset, load_from_disk

    chosen = [name for name, value in (("data_dir", data_dir), ("train_file", train_file), ("dataset_path", dataset_path))
              if value is not None]
    if len(chosen) > 1:
        raise DataError(f"give one data source, got {chosen}")
    if data_dir is not None:
        folder = Path(data_dir)
        if spec.tsv is None:
            raise DataError(f"--data-dir reads GLUE TSV folders; task {spec.name} is not a GLUE task")
        splits = {}
        for split in ("train", *spec.eval_splits):
            file = folder / spec.tsv.files.get(split, f"{split}.tsv")
            if not file.exists():
                if split == "train":
                    raise DataError(f"{file}: not found (expected the GLUE {spec.name} training file)")
                continue
            splits[split] = read_glue_tsv(file, spec)
        data = DatasetDict(splits)
    elif train_file is not None:
        splits = {"train": read_table_file(train_file, spec)}
        for split, file in (validation_files or {}).items():
            splits[split] = read_table_file(file, spec)
        data = DatasetDict(splits)
    elif dataset_path is not None:
        try:
            loaded = load_from_disk(str(dataset_path))
        except FileNotFoundError as err:
            raise DataError(f"{dataset_path}: not a dataset folder written by save_to_disk ({err})") from None
        data = loaded if isinstance(loaded, DatasetDict) else DatasetDict(train=loaded)
    elif spec.local_files and hub_path is None:  # the embedded task: files shipped with mmel_hf
        data = DatasetDict({split: read_table_file(file, spec) for split, file in spec.local_files})
    else:
        path, config = hub_path or spec.hub_path, hub_config or spec.hub_config
        if path is None:
            raise DataError(f"task {spec.name} has no Hub dataset: give --data-dir, --train-file or --dataset-path")
        try:
            data = load_dataset(path, config, revision=revision)
        except Exception as err:  # offline, unknown id, gated ...: say how to go on with local data
            raise DataError(
                f"could not load {path}{'/' + config if config else ''} from the Hugging Face Hub "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). Without Hub access, use local "
                "data: --data-dir (a GLUE task folder of TSV files), --train-file/--validation-file (CSV or JSON lines) "
                "or --dataset-path (a save_to_disk folder), or run the embedded task that ships with mmel_hf: "
                "--task rt-polarity."
            ) from err
    return _checked(data, spec)


def _checked(data, spec: TaskSpec):
    from datasets import DatasetDict

    if "train" not in data:
        raise DataError(f"the data has no 'train' split (splits: {list(data)})")
    keep = ["train", *[s for s in spec.eval_splits if s in data]]
    data = DatasetDict({split: data[split] for split in keep})
    for split, dataset in data.items():
        check_task_columns(dataset, spec, f"split '{split}'", require_text=split == "train")
    return data
