"""Loading a task's data: the Hub, local GLUE folders (TSV), CSV, JSON lines and ``save_to_disk`` folders.

Every loader returns a ``DatasetDict`` with a ``train`` split and the task's evaluation splits, each with
the task's text columns and label column, and checks them on the way in: bad input raises
:class:`DataError` with the file, row (line) and column.

Examples:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.tsv").write_text("sentence\\tlabel\\na fine film\\t1\\ndull\\t0\\n")
    >>> _ = (folder / "dev.tsv").write_text("sentence\\tlabel\\ngreat\\t1\\n")
    >>> data = load_task_data(get_task("sst2"), data_dir=folder)
    >>> data["train"][0]
    {'sentence': 'a fine film', 'label': 1}
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import datasets.config
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, load_dataset, load_from_disk
from datasets.arrow_writer import ArrowWriter
from datasets.fingerprint import Hasher
from datasets.utils import are_progress_bars_disabled
from filelock import FileLock
from tqdm.auto import tqdm

from ..errors import DataError
from ..utils.files import damaged, file_digest, seal, sync_path, unseal, write_text_atomically
from .registry import TaskSpec, get_task  # noqa: F401  (get_task: used by the doctest)

__all__ = [
    "DataError",
    "check_task_columns",
    "delimited_reader",
    "file_lines",
    "load_task_data",
    "read_glue_tsv",
    "read_header",
    "read_table_file",
]

csv.field_size_limit(1 << 24)

logger = logging.getLogger(__name__)


SOURCE_FORMAT = 2  # bump when parsing a file changes: it keys the Arrow copies of local files (2: numeric class names)


def file_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for every line of ``path``, streamed: split at ``\n`` only (``str.splitlines`` would
    also break at U+2028, U+0085, form feeds ... which are text inside a sentence or a JSON string), one
    trailing ``\r`` removed, each line checked as UTF-8 (a leading byte-order mark is dropped)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path}: line {number} is not valid UTF-8 (byte {raw[err.start]:#04x}); re-encode the "
                    "file as UTF-8"
                ) from None
            text = text[:-1] if text.endswith("\n") else text
            yield number, text[:-1] if text.endswith("\r") else text


def _csv_lines(path: Path) -> Iterator[str]:
    """The lines of a CSV file with their ``\n``, as ``csv.reader`` needs them for quoted fields that span lines."""
    for _, text in file_lines(path):
        yield text + "\n"


FLOAT32_MAX = 3.4028234663852886e38


def check_regression_label(value: float, spec: TaskSpec, where: str) -> float:
    """A regression label must be a finite float32 number, inside the task's range (STS-B: 0-5) when it has one."""

    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise DataError(f"{where}: regression label {value!r} is not a finite number")
    if spec.label_range is not None and not spec.label_range[0] <= value <= spec.label_range[1]:
        low, high = spec.label_range
        raise DataError(f"{where}: regression label {value!r} is outside {low:g}..{high:g} (task {spec.name})")
    return value


# With class names that read as numbers every label is a name (TaskSpec.names_are_numbers), on every path.
_NOT_A_NAME = (
    "is not one of the classes {names} (the class names are numbers, so every label is read as a class name, "
    "never as a class id)"
)


def _parse_label(value, spec: TaskSpec, where: str):
    if isinstance(value, bool):  # JSON true/false: not a class id
        raise DataError(
            f"{where}: label {value!r} is a boolean; give class ids 0..{spec.num_labels - 1}"
            + ("" if spec.is_regression else " or name the classes with --class-names")
        )
    if spec.is_regression:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(
                f"{where}: label {value!r} is not a number (task {spec.name} is a regression task)"
            ) from None
        return check_regression_label(number, spec, where)
    label_names = spec.label_names
    named = spec.class_of(value)
    if named is not None:
        return named
    if spec.names_are_numbers:
        raise DataError(f"{where}: label {value!r} {_NOT_A_NAME.format(names=list(label_names))}")
    try:
        label = int(value)
        if isinstance(value, float) and value != label:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        names = (
            f" or one of {list(label_names)}"
            if label_names
            else " (string labels: name the classes with --class-names)"
        )
        raise DataError(f"{where}: label {value!r} is not a class id 0..{spec.num_labels - 1}{names}") from None
    if not 0 <= label < spec.num_labels:
        raise DataError(f"{where}: label {label} is outside 0..{spec.num_labels - 1} (task {spec.name})")
    return label


def _parse_row(
    line: int, row: dict, spec: TaskSpec, path: Path, file_columns: dict | None = None, kept: tuple[str, ...] = ()
) -> tuple[int, dict]:
    """One file row -> ``(its line, the task's columns with the label parsed)``; errors name the file, line and
    column as the file names it (``file_columns``: task column -> the file's, e.g. STS-B's ``label`` is ``score``)."""
    where = f"{path}: line {line}"
    named = file_columns or {}
    parsed = {}
    for column in spec.text_columns:
        value = row[column]
        if not isinstance(value, str):
            raise DataError(
                f"{where}, column '{named.get(column, column)}': expected text, found {type(value).__name__} {value!r}"
            )
        parsed[column] = value
    label = spec.label_column
    parsed[label] = _parse_label(row[label], spec, f"{where}, column '{named.get(label, label)}'")
    for column in kept:  # an id to join the results back: as text, one type whatever the file
        value = row.get(column)
        parsed[column] = None if value is None else str(value)
    return line, parsed


def _require_columns(found: list[str], spec: TaskSpec, path: Path, renames: dict[str, str] | None = None) -> None:
    renames = renames or {}
    available = {renames.get(c, c) for c in found}
    missing = [c for c in (*spec.text_columns, spec.label_column) if c not in available]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing} for task {spec.name}; the file has {found}. Name the columns with "
            "--text-columns/--label-column (a custom task) or fix the header."
        )


class _Reader:
    """``csv.reader`` whose parse errors (a carriage return inside an unquoted field, CR-only line endings, an
    unclosed quote) become a one-line :class:`DataError` naming the file and line."""

    def __init__(self, lines, path: Path, **options):
        self._reader, self._path = csv.reader(lines, **options), path

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def __iter__(self):
        return self

    def __next__(self) -> list[str]:
        try:
            return next(self._reader)
        except csv.Error as err:
            hint = (
                (
                    "a carriage return (\\r) inside a field, or CR-only line endings: convert the file to LF line "
                    "endings (e.g. with dos2unix or mac2unix)"
                )
                if "new-line" in str(err)
                else "fix the quoting"
            )
            reason = "a line break inside a field" if "new-line" in str(err) else str(err)
            raise DataError(
                f"{self._path}: line {max(self._reader.line_num, 1)} cannot be parsed ({reason}); {hint}"
            ) from None


def read_header(reader, path: Path) -> list[str]:
    try:
        return next(reader)
    except StopIteration:
        raise DataError(f"{path}: the file is empty") from None


def _glue_rows(path: Path, spec: TaskSpec, kept: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """The rows of a GLUE TSV file (``spec.tsv`` says its quirks): no quoting, so one line is one row."""
    layout = spec.tsv
    reader = _Reader((text for _, text in file_lines(path)), path, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = list(layout.columns) if not layout.has_header else read_header(reader, path)
    renamed = [layout.source_columns.get(c, c) for c in header]
    file_columns = {task: file for file, task in zip(header, renamed) if task != file}
    _require_columns(header, spec, path, layout.source_columns)
    first_line = 2 if layout.has_header else 1
    for offset, values in enumerate(reader):
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            raise DataError(
                f"{path}: line {first_line + offset} has {len(values)} tab-separated fields, expected {len(header)} "
                f"({header})"
            )
        yield _parse_row(first_line + offset, dict(zip(renamed, values)), spec, path, file_columns, kept)


def _table_rows(path: Path, spec: TaskSpec, kept: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """The rows of a CSV/TSV file with a header, or of a JSON-lines file."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        for number, line in file_lines(path):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {number} is not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number} is a JSON {type(row).__name__}, expected an object")
            _require_columns(list(row), spec, path)
            yield _parse_row(number, row, spec, path, kept=kept)
        return
    reader = delimited_reader(path)
    header = read_header(reader, path)
    _require_columns(header, spec, path)
    for values in reader:
        if not values:
            continue
        if len(values) != len(header):
            raise DataError(
                f"{path}: line {reader.line_num} has {len(values)} fields, expected {len(header)} ({header})"
            )
        yield _parse_row(reader.line_num, dict(zip(header, values)), spec, path, kept=kept)


def delimited_reader(path: Path) -> _Reader:
    """The rows of a CSV file (standard quoting: quoted fields may hold commas and span lines) or of a TSV file (no
    quoting, as GLUE's files: a leading '"' is text, one line is one row)."""
    if path.suffix.lower() == ".csv":
        return _Reader(_csv_lines(path), path, delimiter=",")
    return _Reader((text for _, text in file_lines(path)), path, delimiter="\t", quoting=csv.QUOTE_NONE)


_READERS = {"glue": _glue_rows, "table": _table_rows}


# Columns kept beside the task's where a file has them, so that results can be joined back to the user's rows.
ID_COLUMNS = ("id", "idx")


def _header_columns(path: Path, reader: str, spec: TaskSpec) -> list[str]:
    """The columns a file has, as the task names them: its header (GLUE's renamed), or the first JSON object's keys."""
    if reader == "table" and path.suffix.lower() in (".jsonl", ".json"):
        for _, line in file_lines(path):
            if line.strip():
                try:
                    first = json.loads(line)
                except json.JSONDecodeError:
                    return []  # the reader reports it, with its line
                return list(first) if isinstance(first, dict) else []
        return []
    layout = spec.tsv if reader == "glue" else None
    if layout is not None and not layout.has_header:
        return list(layout.columns)
    header = read_header(delimited_reader(path), path)
    return [layout.source_columns.get(c, c) for c in header] if layout is not None else header


def _kept_columns(path: Path, reader: str, spec: TaskSpec, keep: tuple[str, ...] | None) -> tuple[str, ...]:
    """The extra columns read from ``path``: ``keep`` (each must be there), or by default the id columns it has."""
    found = _header_columns(path, reader, spec)
    task_columns = (*spec.text_columns, spec.label_column)
    if keep is None:
        return tuple(c for c in ID_COLUMNS if c in found and c not in task_columns)
    missing = [c for c in keep if c not in found]
    if missing:
        raise DataError(f"{path}: --keep-columns {' '.join(missing)}: no such column; the file has {found}")
    return tuple(c for c in dict.fromkeys(keep) if c not in task_columns)


def _line_of_row(path: Path, reader: str, spec: TaskSpec, row: int) -> int | None:
    """The line of ``path`` where data row ``row`` (0-based, as the Arrow copy holds it) starts: read again, for
    errors found after parsing (blank texts), so that they name the file and line as every other file error."""
    for index, (line, _) in enumerate(_READERS[reader](path, spec)):
        if index == row:
            return line
    return None


def _intact_copy(final: Path, record: Path) -> bool:
    """Whether the Arrow copy ``final`` is whole and unchanged since written (its sealed ``record`` agrees);
    a damaged copy is deleted, with a one-line warning, so it is read again from the source file."""
    if not final.exists() and not record.exists():
        return False
    try:
        written = unseal(record.read_text())
    except OSError:
        written = None
    problem = "its record is missing or edited" if written is None else damaged(final.parent, written.get("files"))
    if problem is None:
        return True
    logger.warning("the Arrow copy %s was damaged (%s); reading the source file again", final, problem)
    final.unlink(missing_ok=True)
    record.unlink(missing_ok=True)
    return False


def _stream_to_arrow(
    path: Path,
    reader: str,
    spec: TaskSpec,
    cache_dir: str | None,
    refresh: bool = False,
    keep: tuple[str, ...] | None = None,
):
    """Parse ``path`` row by row into an Arrow file and memory-map it, so no file is ever held in memory whole.

    The copy lives in ``cache_dir`` (default: the ``datasets`` cache, ``mmel_hf_sources``), named by the file's
    bytes and how they are parsed, and is reused while they do not change. It is written to a temporary file
    renamed into place when complete; bad input leaves nothing behind (not even the folders it created).
    """
    if not path.is_file():
        raise DataError(f"{path}: not found")
    if not any(text.strip() for _, text in file_lines(path)):  # stops at the first line with text
        raise DataError(f"{path}: the file is empty")
    kept = _kept_columns(path, reader, spec, keep)
    key = _source_key(path, reader, spec, kept)
    folder = Path(cache_dir) if cache_dir else Path(datasets.config.HF_DATASETS_CACHE) / "mmel_hf_sources"
    final = folder / f"source-{key}.arrow"
    record = final.with_suffix(".json")
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / f"source-{key}.lock"))  # the ranks of one job read the same files at once
    temporary = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    try:
        with lock:
            if refresh:
                final.unlink(missing_ok=True)
                record.unlink(missing_ok=True)
            if not _intact_copy(final, record):
                rows = _write_rows(path, reader, spec, kept, temporary)
                sync_path(temporary)
                os.replace(temporary, final)
                write_text_atomically(
                    record, json.dumps(seal({"rows": rows, "files": {final.name: file_digest(final)}}))
                )
    except BaseException as err:  # bad input, Ctrl-C, a full disk ...: no half-written copy, no new folders
        temporary.unlink(missing_ok=True)
        if created:
            Path(lock.lock_file).unlink(missing_ok=True)
        for made in created:
            try:
                made.rmdir()
            except OSError:  # not empty: another process wrote there meanwhile
                break
        if isinstance(err, OSError):
            raise DataError(f"could not write {final} ({err.strerror or err}); nothing was left behind") from None
        raise
    dataset = Dataset.from_file(str(final))
    dataset._fingerprint = key
    return dataset


def _source_key(path: Path, reader: str, spec: TaskSpec, kept: list[str]) -> str:
    """The Arrow copy's name: the file's content (not its place) and how it is parsed; the cache fingerprint of
    mmel-augment builds on it."""
    return Hasher.hash(
        [
            "mmel_hf source",
            SOURCE_FORMAT,
            reader,
            file_digest(path),
            spec.text_columns,
            spec.label_column,
            spec.num_labels,
            spec.label_names,
            *([spec.label_range] if spec.label_range else []),
            *([["kept", *kept]] if kept else []),
        ]
    )


def _write_rows(path: Path, reader: str, spec: TaskSpec, kept: list[str], temporary: Path) -> int:
    """The rows of ``path`` parsed into the Arrow file ``temporary``, a batch of rows at a time: their count."""
    features = Features(
        {
            **{c: Value("string") for c in spec.text_columns},
            spec.label_column: Value("float64" if spec.is_regression else "int64"),
            **{c: Value("string") for c in kept},
        }
    )
    rows = 0
    with ArrowWriter(features=features, path=str(temporary), writer_batch_size=1000) as writer:
        for _, row in tqdm(
            _READERS[reader](path, spec, kept),
            desc=f"Reading {path.name}",
            unit=" rows",
            leave=False,
            disable=are_progress_bars_disabled(),
            delay=1.0,
        ):  # none if quick
            writer.write(row)
            rows += 1
        if rows == 0:
            raise DataError(f"{path}: no data rows")
        writer.finalize()
    return rows


def read_glue_tsv(
    path: str | os.PathLike,
    spec: TaskSpec,
    cache_dir: str | None = None,
    refresh: bool = False,
    keep: tuple[str, ...] | None = None,
):
    """One GLUE TSV file as distributed by GLUE (``spec.tsv`` says its quirks) -> ``datasets.Dataset``."""
    if spec.tsv is None:
        raise DataError(f"task {spec.name} has no GLUE TSV layout; use --train-file with CSV or JSON lines")
    return _stream_to_arrow(Path(path), "glue", spec, cache_dir, refresh, keep)


def read_table_file(
    path: str | os.PathLike,
    spec: TaskSpec,
    cache_dir: str | None = None,
    refresh: bool = False,
    keep: tuple[str, ...] | None = None,
):
    """A CSV/TSV (with a header) or JSON-lines file with the task's columns -> ``datasets.Dataset``; ``keep``: more
    columns kept as text (default: an ``id`` or ``idx`` column where the file has one)."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".tsv", ".txt", ".jsonl", ".json"):
        raise DataError(
            f"{path}: unknown file type {path.suffix.lower()!r}; use .csv, .tsv, .jsonl or .json (JSON lines)"
        )
    return _stream_to_arrow(path, "table", spec, cache_dir, refresh, keep)


def check_task_columns(dataset, spec: TaskSpec, where: str, require_text: bool = False, locate=None) -> None:
    """Check a loaded split: the task's columns exist and hold text; with ``require_text`` none is empty.
    ``locate(row)``: where a row is, for a split read from a file (``<file>: line N``)."""

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
            _refuse_blank_text(dataset, column, where, locate)


def _refuse_blank_text(dataset, column: str, where: str, locate=None, batch_size: int = 10_000) -> None:
    """Refuse empty or blank texts in ``column``, batch by batch (memory does not grow with the rows)."""

    offset, first, count = 0, None, 0
    for batch in dataset.select_columns([column]).with_format("arrow").iter(batch_size=batch_size):
        values = batch[column]
        blank = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0), True)
        bad = pc.indices_nonzero(blank)
        if len(bad) and first is None:
            first = offset + bad[0].as_py()
        count += len(bad)
        offset += len(values)
    if count:
        at = locate(first) if locate is not None else None
        raise DataError(
            f"{at or f'{where}, row {first}'}, column '{column}': empty text cannot be augmented ({count} such "
            "row(s)); remove or fill them"
        )


def load_task_data(  # noqa: PLR0913  (keyword-only: one option per data source)
    spec: TaskSpec,
    *,
    data_dir: str | os.PathLike | None = None,
    train_file: str | os.PathLike | None = None,
    validation_files: dict[str, str] | None = None,
    dataset_path: str | os.PathLike | None = None,
    hub_path: str | None = None,
    hub_config: str | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    refresh: bool = False,
    keep_columns: list[str] | tuple[str, ...] | None = None,
):
    """Load ``spec``'s train and evaluation splits from exactly one source.

    Args:
        data_dir: a GLUE task folder (``train.tsv``, ``dev.tsv`` ... as GLUE distributes them).
        train_file, validation_files: CSV/TSV/JSON-lines files (``validation_files`` maps split -> file).
        dataset_path: a folder written by ``DatasetDict.save_to_disk``.
        hub_path, hub_config, revision: a Hub dataset (default: the task's own, e.g. ``nyu-mll/glue``).
        cache_dir: where local files are copied to Arrow (default: the ``datasets`` cache). Files are read
            row by row into a memory-mapped Arrow file, so no source is ever held in memory whole.
        refresh: read local files again, and download a Hub dataset again, whatever is cached (``--overwrite``).
        keep_columns: columns kept beside the task's, so that results can be joined back (files keep them as
            text; default: an ``id`` or ``idx`` column where a file has one). Hub and ``save_to_disk`` datasets
            keep all their columns.
    """

    chosen = [
        name
        for name, value in (("data_dir", data_dir), ("train_file", train_file), ("dataset_path", dataset_path))
        if value is not None
    ]
    if len(chosen) > 1:
        raise DataError(f"give one data source, got {chosen}")
    keep = tuple(keep_columns) if keep_columns is not None else None
    # files: split -> (path, reader), read by this module's file readers, which parse every label on the way in
    if data_dir is not None:
        data, files = _from_glue_folder(Path(data_dir), spec, cache_dir, refresh, keep)
    elif train_file is not None:
        splits = {"train": train_file, **(validation_files or {})}
        data, files = _from_files({split: Path(file) for split, file in splits.items()}, spec, cache_dir, refresh, keep)
    elif dataset_path is not None:
        data, files = _from_saved(dataset_path), {}
    elif spec.local_files and hub_path is None:  # the embedded task: files shipped with mmel_hf
        local = {split: Path(file) for split, file in spec.local_files}
        data, files = _from_files(local, spec, cache_dir, refresh, keep)
    else:
        data, files = _from_hub(spec, hub_path, hub_config, revision, refresh), {}
    for split, dataset in data.items() if keep and not files else ():
        missing = [c for c in keep if c not in dataset.column_names]
        if missing:
            raise DataError(
                f"split '{split}': --keep-columns {' '.join(missing)}: no such column ({dataset.column_names})"
            )
    return _checked(data, spec, f"{dataset_path}: " if dataset_path is not None else "", files)


def _from_glue_folder(folder: Path, spec: TaskSpec, cache_dir, refresh: bool, keep):
    """A GLUE task folder: its training file and whichever evaluation files it has."""
    if spec.tsv is None:
        raise DataError(f"--data-dir reads GLUE TSV folders; task {spec.name} is not a GLUE task")
    splits, files = {}, {}
    for split in ("train", *spec.eval_splits):
        file = folder / spec.tsv.files.get(split, f"{split}.tsv")
        if not file.exists():
            if split == "train":
                raise DataError(f"{file}: not found (expected the GLUE {spec.name} training file)")
            continue
        splits[split], files[split] = read_glue_tsv(file, spec, cache_dir, refresh, keep), (file, "glue")
    return DatasetDict(splits), files


def _from_files(paths: dict[str, Path], spec: TaskSpec, cache_dir, refresh: bool, keep):
    """CSV/TSV/JSON-lines files, one per split."""
    files = {split: (path, "table") for split, path in paths.items()}
    data = DatasetDict({split: read_table_file(path, spec, cache_dir, refresh, keep) for split, path in paths.items()})
    return data, files


def _from_saved(dataset_path) -> DatasetDict:
    """A ``save_to_disk`` folder (one dataset is its training split)."""
    try:
        loaded = load_from_disk(str(dataset_path))
    except FileNotFoundError as err:
        raise DataError(f"{dataset_path}: not a dataset folder written by save_to_disk ({err})") from None
    return loaded if isinstance(loaded, DatasetDict) else DatasetDict(train=loaded)


def _from_hub(spec: TaskSpec, hub_path, hub_config, revision, refresh: bool):
    """A Hub dataset, by default the task's own; offline, the error says how to go on with local data."""
    path, config = hub_path or spec.hub_path, hub_config or spec.hub_config
    if path is None:
        raise DataError(f"task {spec.name} has no Hub dataset: give --data-dir, --train-file or --dataset-path")
    try:
        return load_dataset(path, config, revision=revision, download_mode="force_redownload" if refresh else None)
    except Exception as err:  # offline, unknown id, gated ...: say how to go on with local data
        raise DataError(
            f"could not load {path}{'/' + config if config else ''} from the Hugging Face Hub "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). Without Hub access, use local "
            "data: --data-dir (a GLUE task folder of TSV files), --train-file/--validation-file (CSV or JSON lines) "
            "or --dataset-path (a save_to_disk folder), or run the embedded task that ships with mmel_hf: "
            "--task rt-polarity."
        ) from err


def _checked(data, spec: TaskSpec, source: str = "", files: dict | None = None):
    """The train split and the task's evaluation splits, their columns checked and labels normalised.

    ``files``: split -> ``(path, reader)`` for the splits this module's file readers read; they parsed every label
    already (their Arrow copies hold class ids, not read a second time), and errors name their file and line."""

    if "train" not in data:
        raise DataError(f"{source}the data has no 'train' split (splits: {list(data)})")
    keep = ["train", *[s for s in spec.eval_splits if s in data]]
    data = DatasetDict({split: data[split] for split in keep})
    files = files or {}
    for split, dataset in data.items():
        where = f"{source}split '{split}'"
        locate = None
        if split in files:
            path, reader = files[split]

            def locate(row, path=path, reader=reader):
                line = _line_of_row(path, reader, spec, row)
                return None if line is None else f"{path}: line {line}"

        check_task_columns(dataset, spec, where, require_text=split == "train", locate=locate)
        if split not in files:
            data[split] = normalise_labels(dataset, spec, where)
    return data


def normalise_labels(dataset, spec: TaskSpec, where: str):
    """The label column as the trainer needs it (int64 class ids, or finite float regression targets), or a
    one-line error naming the first bad row. String labels go through ``spec.label_names``; a ``ClassLabel``
    must name the task's classes; booleans, fractional class ids and ids out of range are refused.

    Reads only the label column (one number per row), vectorised; a column already right is returned as is.
    """
    column = spec.label_column
    at = f"{where}, column '{column}'"
    feature = dataset.features[column]
    table = dataset.select_columns([column]).with_format("arrow")[:][column]
    values = table.combine_chunks() if isinstance(table, pa.ChunkedArray) else table
    if values.null_count:
        raise DataError(
            f"{where}, row {pc.indices_nonzero(pc.is_null(values))[0].as_py()}, column '{column}': missing label"
        )
    if isinstance(feature, ClassLabel):
        _check_class_label(feature, spec, at)
    dtype = feature.dtype if isinstance(feature, Value) else None
    text = dtype in ("string", "large_string")
    numeric = (dtype or "").startswith(("int", "uint", "float"))
    if text or (numeric and spec.names_are_numbers and not isinstance(feature, ClassLabel)):
        array = _classes_of_names(values, spec, where, at)
    elif dtype == "bool":
        raise DataError(
            f"{at}: labels are booleans; give class ids 0..{spec.num_labels - 1}"
            + ("" if spec.is_regression else " (or strings named by --class-names)")
        )
    elif isinstance(feature, ClassLabel) or numeric:
        array = values.to_numpy(zero_copy_only=False)
    else:
        raise DataError(f"{at}: labels must be numbers (class ids, or floats for regression), found {feature}")
    target = _checked_targets(array, spec, lambda row: f"{where}, row {row}, column '{column}'")
    wanted = "float64" if spec.is_regression else "int64"
    unchanged = dtype == wanted or (isinstance(feature, ClassLabel) and not spec.is_regression)
    if unchanged and not (numeric and spec.names_are_numbers):  # numbers read as names were mapped to ids
        return dataset
    return (
        dataset.remove_columns(column)
        .add_column(column, target.tolist(), feature=Value(wanted))
        .select_columns(dataset.column_names)
    )


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_class_label(feature: ClassLabel, spec: TaskSpec, at: str) -> None:
    """A ``ClassLabel`` column must name the task's classes, in id order."""
    if spec.is_regression:
        raise DataError(f"{at}: class labels ({feature.names}) but task {spec.name} is a regression task")
    if feature.num_classes != spec.num_labels:
        raise DataError(
            f"{at}: {feature.num_classes} classes ({feature.names}) but task {spec.name} has {spec.num_labels}"
        )
    if spec.label_names and list(feature.names) != list(spec.label_names):
        raise DataError(f"{at}: classes {feature.names} are not the task's {list(spec.label_names)} (in id order)")


def _classes_of_names(values: pa.Array, spec: TaskSpec, where: str, at: str) -> np.ndarray:
    """Labels that are class names (or numbers read as names) as class ids; each distinct value is looked up once
    (:meth:`TaskSpec.class_of`: the one meaning every reader uses)."""
    if spec.is_regression:
        raise DataError(f"{at}: labels are text but task {spec.name} is a regression task")
    names = list(spec.label_names or [])
    column = spec.label_column
    if not names:
        raise DataError(
            f"{where}, row 0, column '{column}': label {values[0].as_py()!r} is text; name the "
            "classes in id order with --class-names"
        )
    distinct, inverse = np.unique(values.to_numpy(zero_copy_only=False), return_inverse=True)
    classes = np.array([-1 if (c := spec.class_of(v)) is None else c for v in distinct.tolist()], np.int64)
    array = classes[inverse.reshape(-1)]
    if (array < 0).any():
        row = _first_bad(array < 0)
        why = _NOT_A_NAME.format(names=names) if spec.names_are_numbers else f"is not one of {names}"
        raise DataError(f"{where}, row {row}, column '{column}': label {values[row].as_py()!r} {why}")
    return array


def _checked_targets(array: np.ndarray, spec: TaskSpec, at_row: Callable[[int], str]) -> np.ndarray:
    """Finite float64 regression targets within the task's range, or int64 class ids 0..num_labels-1; ``at_row(row)``
    names the first bad one."""
    numbers = array.astype(np.float64)
    if spec.is_regression:
        bad = ~np.isfinite(numbers) | (np.abs(numbers) > FLOAT32_MAX)
        if spec.label_range is not None:
            bad |= (numbers < spec.label_range[0]) | (numbers > spec.label_range[1])
        if bad.any():
            row = _first_bad(bad)
            check_regression_label(float(numbers[row]), spec, at_row(row))
        return numbers
    bad = (numbers != np.round(numbers)) | (numbers < 0) | (numbers >= spec.num_labels) | ~np.isfinite(numbers)
    if bad.any():
        row = _first_bad(bad)
        raise DataError(
            f"{at_row(row)}: label {array[row].item()!r} is not a class id 0..{spec.num_labels - 1} (task {spec.name})"
        )
    return numbers.astype(np.int64)
