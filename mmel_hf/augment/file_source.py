"""``--augmenter file``: augmented samples made anywhere (an LLM, back-translation, nlpaug, TextAttack, a script), read
from a file keyed by the original's row or id; the teacher, the cache, the counts and the card as for fill-mask.

Two layouts:

- **JSON lines** (``.jsonl``/``.json``): one object per original, its key and, per text column, a list of samples
  (or one string)::

      {"row": 0, "sentence": ["a great film", "a fine movie"]}
      {"id": "ex-17", "sentence1": ["..."], "sentence2": ["..."]}

  Lists of one object have the same length; a text column the object leaves out keeps the original's text in
  every sample (a pair task whose hypotheses alone were paraphrased). A key appears once.
- **CSV/TSV** (``.csv`` quoted, ``.tsv`` unquoted as GLUE's): a header with the key and text columns, one row per
  sample, an original's rows in the order its samples go.

The key is ``row`` (the original's 0-based position in the training split) or an id column that the training
data keeps (``id`` or ``idx`` by default, see ``--keep-columns``; ``--augmented-file-key`` names another); the
first of ``row``, ``id``, ``idx`` the file has is used unless one is named. Every key must name a training row
(with ``--max-train-samples``, keys beyond the rows kept are skipped and counted), and every row needs at least one
sample unless ``--allow-missing-samples`` (its group is then the original alone). Counts may differ between rows:
the trainer handles ragged groups. Every error is one line naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..tasks.registry import TaskSpec
from ..tasks.sources import DataError, delimited_reader, file_lines, read_header
from ..utils.files import file_digest
from ..utils.privacy import display_name
from .augmenter import Augmenter

__all__ = ["FileAugmenter"]

KEYS = ("row", "id", "idx")  # what a file's key may be, in the order one is looked for
JSON_SUFFIXES, TABLE_SUFFIXES = (".jsonl", ".json"), (".csv", ".tsv")


class FileAugmenter(Augmenter):
    """Samples read from ``path`` (see the module's doc), checked against the training split ``train`` whole before
    any work: a bad line is an error before a model is loaded or anything is written.

    Args:
        path: the file.
        spec: the task (its text columns).
        train: the training split the samples are for (its rows, and its id column where the key is one).
        key: the file's key field (default: the first of ``row``, ``id``, ``idx`` it has).
        allow_missing: rows without a sample keep the original alone instead of being an error.
        limited: the training split is the first rows of a larger one (``--max-train-samples``): keys of other rows
            are skipped (counted in :attr:`skipped`) instead of being an error.
    """

    name = "file"

    def __init__(
        self,
        path: str | Path,
        spec: TaskSpec,
        train,
        key: str | None = None,
        allow_missing: bool = False,
        limited: bool = False,
    ):
        self.path, self.spec = Path(path), spec
        if not self.path.is_file():
            raise DataError(f"--augmented-file {self.path}: no such file")
        suffix = self.path.suffix.lower()
        if suffix not in JSON_SUFFIXES + TABLE_SUFFIXES:
            raise DataError(
                f"--augmented-file {self.path}: expected a .jsonl/.json (JSON lines) or .csv/.tsv file, not {suffix!r}"
            )
        self.digest = file_digest(self.path)
        self.skipped = 0
        self._train, self._limited = train, limited
        self._key = key
        self._rows: dict[str, int] | None = None
        records = self._json_records() if suffix in JSON_SUFFIXES else self._table_records()
        self.samples = self._collect(records)
        missing = [row for row in range(len(train)) if not self.samples.get(row)]
        if missing and not allow_missing:
            shown = ", ".join(self._name_of(row) for row in missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise DataError(
                f"--augmented-file {self.path}: {len(missing)} of {len(train)} training rows have no sample ({shown}); "
                "add them, or pass --allow-missing-samples to keep those originals alone"
            )
        self.missing = len(missing)

    # -- Reading ----------------------------------------------------------------------------------------------

    def _json_records(self):
        """(line, key value, {column: [samples]}) per object of a JSON-lines file."""
        columns = self.spec.text_columns
        for number, text in file_lines(self.path):
            if not text.strip():
                continue
            where = f"{self.path}:{number}"
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(f"{where}: not a JSON object ({err.msg}); one object per line") from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: not a JSON object; one object per line, with its key and text columns")
            key = self._key_field(list(record), where)
            if key not in record:
                raise DataError(f"{where}: the key {key!r} is missing (the file's first line has it)")
            given = {}
            for column in columns:
                if column not in record:
                    continue
                value = record[column]
                value = [value] if isinstance(value, str) else value
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise DataError(f"{where}: {column!r} must be a string or a list of strings")
                given[column] = value
            if not given:
                raise DataError(f"{where}: no text column of the task ({', '.join(columns)}) is given")
            counts = {len(v) for v in given.values()}
            if len(counts) > 1:
                shown = ", ".join(f"{c} {len(v)}" for c, v in given.items())
                raise DataError(f"{where}: the text columns give different numbers of samples ({shown})")
            yield number, record[key], given

    def _table_records(self):
        """(line, key value, {column: [one sample]}) per row of a CSV/TSV file."""
        reader = delimited_reader(self.path)
        header = read_header(reader, self.path)
        key = self._key_field(header, f"{self.path}: the header")
        present = [c for c in self.spec.text_columns if c in header]
        if not present:
            raise DataError(
                f"{self.path}: the header has no text column of the task ({', '.join(self.spec.text_columns)}); "
                f"it has {', '.join(header)}"
            )
        index = {name: header.index(name) for name in [key, *present]}
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            where = f"{self.path}:{reader.line_num}"
            if len(fields) != len(header):
                raise DataError(f"{where}: {len(fields)} fields, the header has {len(header)}")
            yield reader.line_num, fields[index[key]], {c: [fields[index[c]]] for c in present}

    def _key_field(self, names: list[str], where: str) -> str:
        if self._key is None:
            found = next((k for k in KEYS if k in names), None)
            if found is None:
                raise DataError(
                    f"{where} has no key: give each original's 'row' (its 0-based position in the training split) "
                    "or its 'id'/'idx', or name the key with --augmented-file-key"
                )
            self._key = found
        elif self._key not in names and where.endswith("the header"):
            raise DataError(f"{where} has no column {self._key!r} (--augmented-file-key)")
        return self._key

    def _row_of(self, value, where: str) -> int | None:
        """The training row a key names (None: beyond --max-train-samples, skipped)."""
        if self._key == "row":
            try:
                row = int(value)
                if isinstance(value, float) or str(value).strip() != str(row):
                    raise ValueError
            except (TypeError, ValueError):
                raise DataError(f"{where}: row {value!r} is not a whole number") from None
            if 0 <= row < len(self._train):
                return row
            if self._limited and row >= 0:
                return None
            raise DataError(f"{where}: row {row} is not in the training split ({len(self._train)} rows: 0 to "
                            f"{len(self._train) - 1})")  # fmt: skip
        if self._rows is None:
            if self._key not in self._train.column_names:
                raise DataError(
                    f"{where}: the key {self._key!r} is not a column of the training data "
                    f"({', '.join(self._train.column_names)}); keep it with --keep-columns {self._key}, or key the "
                    "file by 'row'"
                )
            self._rows = {}
            for row, found in enumerate(self._train[self._key]):
                if str(found) in self._rows:
                    raise DataError(
                        f"the training data's {self._key!r} column holds {found!r} twice (rows {self._rows[str(found)]} "
                        f"and {row}): it cannot key the samples; key the file by 'row'"
                    )
                self._rows[str(found)] = row
        row = self._rows.get(str(value))
        if row is None and not self._limited:
            raise DataError(f"{where}: {self._key} {value!r} is not in the training data")
        return row

    def _collect(self, records) -> dict[int, list[tuple[str, ...]]]:
        """Per training row, its samples as tuples of texts (an absent column keeps the original's text)."""
        columns = self.spec.text_columns
        originals = {c: self._train[c] for c in columns}
        samples: dict[int, list[tuple[str, ...]]] = {}
        first_line: dict[int, int] = {}
        json_file = self.path.suffix.lower() in JSON_SUFFIXES
        for number, value, given in records:
            where = f"{self.path}:{number}"
            row = self._row_of(value, where)
            if row is None:
                self.skipped += 1
                continue
            if json_file and row in first_line:
                raise DataError(f"{where}: {self._key} {value!r} appeared before, on line {first_line[row]}")
            first_line.setdefault(row, number)
            count = len(next(iter(given.values())))
            for j in range(count):
                sample = []
                for column in columns:
                    text = given[column][j] if column in given else originals[column][row]
                    if not text.strip():
                        raise DataError(f"{where}: an empty sample in {column!r}")
                    sample.append(text)
                samples.setdefault(row, []).append(tuple(sample))
        return samples

    def _name_of(self, row: int) -> str:
        if self._key in (None, "row") or self._key not in self._train.column_names:
            return f"row {row}"
        return f"{self._key} {self._train[row][self._key]!r}"

    # -- The augmenter interface ------------------------------------------------------------------------------

    def augment_rows(self, columns: Sequence[Sequence[str]], example_ids: Sequence[int]) -> list[list[tuple[str, ...]]]:
        return [list(self.samples.get(row, [])) for row in example_ids]

    def identity(self) -> dict:
        return {"file_sha256": self.digest, "key": self._key}

    def describe(self) -> dict:
        return {
            "augmenter": self.name,
            "augmented_file": display_name(str(self.path)),
            "augmented_file_sha256": self.digest,
            "key": self._key,
            "rows_without_samples": self.missing,
            "lines_skipped": self.skipped,  # keys of rows beyond --max-train-samples
        }
