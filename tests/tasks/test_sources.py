"""The task registry and every data source, with GLUE's TSV quirks and the errors for bad input."""

import json

import pytest
from datasets import DatasetDict

from mmel_hf.tasks.registry import GLUE_TASKS, custom_task, get_task, known_tasks
from mmel_hf.tasks.sources import DataError, load_task_data, read_table_file

# Headers and a row of each GLUE task as GLUE distributes it (tab-separated).
GLUE_FILES = {
    "cola": (None, "gj04\t1\t\tOur friends won't buy this analysis."),
    "sst2": ("sentence\tlabel", "it 's a charming journey \t1"),
    "mrpc": ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", "1\t702876\t702977\tHe said so.\tHe said it."),
    "stsb": (
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
        "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000",
    ),
    "qqp": ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", "1\t3\t4\tHow do I learn?\tHow can I learn?\t1"),
    "mnli": (
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
        "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label",
        "0\t31193\t31193n\tgovernment\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tConceptually cream skimming has two "
        "basic dimensions.\tProduct and geography are what make cream skimming work.\tneutral\tneutral",
    ),
    "qnli": ("index\tquestion\tsentence\tlabel", "0\tWhat came into force?\tThe law did.\tnot_entailment"),
    "rte": ("index\tsentence1\tsentence2\tlabel", "0\tNo weapons were found.\tWeapons were found.\tnot_entailment"),
    "wnli": ("index\tsentence1\tsentence2\tlabel", "0\tI put the cake away.\tThe cake was put away.\t1"),
}
EXPECTED_LABEL = {"cola": 1, "sst2": 1, "mrpc": 1, "stsb": 5.0, "qqp": 1, "mnli": 1, "qnli": 1, "rte": 1, "wnli": 1}


def write_glue_folder(folder, task, rows=3):
    header, row = GLUE_FILES[task]
    spec = get_task(task)
    lines = ([header] if header else []) + [row] * rows
    for file in spec.tsv.files.values():
        (folder / file).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return spec


def test_registry_knows_every_glue_task():
    assert known_tasks() == sorted(
        ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "rt-polarity"]
    )
    assert get_task("SST-2") is GLUE_TASKS["sst2"] and get_task("stsb").is_regression
    assert get_task("mnli").eval_splits == ("validation_matched", "validation_mismatched")
    assert get_task("mnli").num_labels == 3 and get_task("cola").metric == "matthews_correlation"
    with pytest.raises(ValueError, match="unknown task 'rtee'; known tasks: cola, mnli"):
        get_task("rtee")
    with pytest.raises(ValueError, match="one text column or a pair"):
        custom_task("x", ["a", "b", "c"])


@pytest.mark.parametrize("task", sorted(GLUE_FILES))
def test_glue_tsv_folders_load_with_each_tasks_quirks(tmp_path, task):
    spec = write_glue_folder(tmp_path, task)
    data = load_task_data(spec, data_dir=tmp_path)
    assert list(data) == ["train", *spec.eval_splits]
    row = data["train"][0]
    assert set(row) == {*spec.text_columns, "label", *(["id"] if task == "qqp" else [])}  # QQP's id column is kept
    assert row["label"] == EXPECTED_LABEL[task]
    assert all(isinstance(row[c], str) and row[c] for c in spec.text_columns)
    assert len(data["train"]) == 3


def test_csv_and_jsonl_and_save_to_disk(tmp_path):
    spec = custom_task("reviews", ["review"], label_column="stars", num_labels=3)
    (tmp_path / "train.csv").write_text('review,stars\n"good, really",2\n"multi\nline",0\n', encoding="utf-8")
    (tmp_path / "dev.jsonl").write_text(json.dumps({"review": "ok", "stars": 1}) + "\n\n", encoding="utf-8")
    data = load_task_data(
        spec, train_file=tmp_path / "train.csv", validation_files={"validation": tmp_path / "dev.jsonl"}
    )
    assert data["train"]["review"][:] == ["good, really", "multi\nline"] and data["validation"][0]["stars"] == 1
    data.save_to_disk(str(tmp_path / "saved"))
    again = load_task_data(spec, dataset_path=tmp_path / "saved")
    assert isinstance(again, DatasetDict) and again["train"].to_list() == data["train"].to_list()


def test_hub_failure_says_how_to_use_local_files(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="nyu-mll/glue/rte from the Hugging Face Hub.*--data-dir.*--train-file"):
        load_task_data(get_task("rte"))


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("a.csv", "", r"a.csv: the file is empty"),
        ("a.csv", "text,label\n", r"a.csv: no data rows"),
        ("a.csv", "sentence,label\nfine,1\n", r"missing column\(s\) \['text'\]"),
        ("a.csv", "text,label\nfine,1\nbad,1,extra\n", r"a.csv: line 3 has 3 fields, expected 2"),
        ("a.csv", "text,label\nfine,one\n", r"a.csv: line 2, column 'label': label 'one' is not a class id 0..1"),
        ("a.csv", "text,label\nfine,7\n", r"label 7 is outside 0..1"),
        ("a.jsonl", '{"text": "fine", "label": 1}\n{"text": "bad", "label": 0\n', r"a.jsonl: line 2 is not valid JSON"),
        ("a.jsonl", '["fine", 1]\n', r"line 1 is a JSON list, expected an object"),
        ("a.jsonl", '{"text": 3, "label": 1}\n', r"line 1, column 'text': expected text"),
        ("a.parquet", "x", r"unknown file type '.parquet'"),
    ],
)
def test_bad_files_are_located(tmp_path, name, content, match):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        read_table_file(tmp_path / name, custom_task("t", ["text"]))


def test_non_utf8_ragged_tsv_empty_text_and_bad_regression_labels(tmp_path):
    (tmp_path / "latin.csv").write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.csv: line 2 is not valid UTF-8"):
        read_table_file(tmp_path / "latin.csv", custom_task("t", ["text"]))
    spec = write_glue_folder(tmp_path, "rte")
    (tmp_path / "train.tsv").write_text(GLUE_FILES["rte"][0] + "\n0\tonly two\tfields\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.tsv: line 2 has 3 tab-separated fields, expected 4"):
        load_task_data(spec, data_dir=tmp_path)
    (tmp_path / "train.tsv").write_text(GLUE_FILES["rte"][0] + "\n0\tA.\tB.\tmaybe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"label 'maybe' is not a class id 0..1 or one of \['entailment'"):
        load_task_data(spec, data_dir=tmp_path)
    (tmp_path / "train.tsv").write_text(
        GLUE_FILES["rte"][0] + "\n0\tA.\tB.\tentailment\n1\t \tC.\tentailment\n", encoding="utf-8"
    )
    # Found after parsing, named as every file error: the file and its line (the header is line 1).
    with pytest.raises(DataError, match=r"train.tsv: line 3, column 'sentence1': empty text"):
        load_task_data(spec, data_dir=tmp_path)
    (tmp_path / "t.jsonl").write_text('{"text": "a", "label": 1}\n\n{"text": "  ", "label": 0}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"t.jsonl: line 3, column 'text': empty text"):  # the blank line counts
        load_task_data(custom_task("t", ["text"]), train_file=tmp_path / "t.jsonl", cache_dir=str(tmp_path / "c"))
    # STS-B's label is the file's `score`: errors name the column as the file does.
    stsb_dir = tmp_path / "STS-B"
    stsb_dir.mkdir()
    write_glue_folder(stsb_dir, "stsb")
    header, row = GLUE_FILES["stsb"]
    (stsb_dir / "train.tsv").write_text(f"{header}\n{row[: -len('5.000')]}high\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.tsv: line 2, column 'score': label 'high' is not a number"):
        load_task_data(get_task("stsb"), data_dir=stsb_dir, cache_dir=str(tmp_path / "c"))
    stsb = get_task("stsb")
    (tmp_path / "s.csv").write_text("sentence1,sentence2,label\na,b,high\n", encoding="utf-8")
    with pytest.raises(DataError, match="label 'high' is not a number"):
        read_table_file(tmp_path / "s.csv", stsb)
    with pytest.raises(DataError, match="train.tsv: not found"):
        load_task_data(get_task("sst2"), data_dir=tmp_path / "nowhere")


# -- Large files: streamed into memory-mapped Arrow, keyed by the file's bytes -------------------------------


def test_local_files_are_streamed_into_a_memory_mapped_copy(tmp_path, monkeypatch):
    from pathlib import Path

    spec = get_task("sst2")
    (tmp_path / "a").mkdir()
    file = tmp_path / "a" / "train.tsv"
    file.write_text("sentence\tlabel\n" + "".join(f"row {i}\t{i % 2}\n" for i in range(2500)), encoding="utf-8")
    # Never the whole file at once: reading it whole would fail here.
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read whole"))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: pytest.fail(f"{self} read whole"))
    dataset = read_table_file(file, spec, cache_dir=str(tmp_path / "cache"))
    assert len(dataset) == 2500 and dataset[2499] == {"sentence": "row 2499", "label": 1}
    assert dataset.cache_files and all(f["filename"].startswith(str(tmp_path / "cache")) for f in dataset.cache_files)
    monkeypatch.undo()

    # The same bytes elsewhere are the same data (same fingerprint); other bytes are other data, never a stale copy.
    (tmp_path / "b").mkdir()
    elsewhere = tmp_path / "b" / "train.tsv"
    elsewhere.write_bytes(file.read_bytes())
    assert read_table_file(elsewhere, spec, cache_dir=str(tmp_path / "other"))._fingerprint == dataset._fingerprint
    file.write_text("sentence\tlabel\nchanged\t0\n", encoding="utf-8")
    changed = read_table_file(file, spec, cache_dir=str(tmp_path / "cache"))
    assert changed.to_list() == [{"sentence": "changed", "label": 0}] and changed._fingerprint != dataset._fingerprint


def test_a_bad_row_deep_in_a_file_leaves_no_copy_behind(tmp_path):
    spec = get_task("sst2")
    file = tmp_path / "train.tsv"
    file.write_text("sentence\tlabel\n" + "".join(f"row {i}\t1\n" for i in range(1500)) + "bad\tmaybe\n")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"train.tsv: line 1502, column 'label': label 'maybe' is not a class id"):
        read_table_file(file, spec, cache_dir=str(cache))
    assert not cache.exists()  # nothing half-written for the next run to trust, not even a folder
    for content, message in (
        ("", "the file is empty"),
        ("  \n\n", "the file is empty"),
        ("sentence\tlabel\n", "no data rows"),
    ):
        file.write_text(content)
        with pytest.raises(DataError, match=message):
            read_table_file(file, spec, cache_dir=str(cache))


def test_custom_tsv_keeps_quotes_and_reports_true_line_numbers(tmp_path):
    spec = get_task("sst2")
    file = tmp_path / "train.tsv"
    file.write_text('sentence\tlabel\n"Hello," he said.\t1\nfine\t0\nbroken\n')
    with pytest.raises(Exception, match="line 4 has 1 fields"):
        read_table_file(file, spec)
    file.write_text('sentence\tlabel\n"Hello," he said.\t1\nfine\t0\n')
    assert read_table_file(file, spec)["sentence"] == ['"Hello," he said.', "fine"]
    csv_file = tmp_path / "train.csv"
    csv_file.write_text('sentence,label\n"Hello, world",1\n')
    assert read_table_file(csv_file, spec)["sentence"] == ["Hello, world"]  # CSV keeps standard quoting


def test_lines_split_at_newline_only(tmp_path):
    spec = get_task("sst2")
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text('{"sentence": "one\u2028two", "label": 1}\r\n{"sentence": "three", "label": 0}\n')
    assert read_table_file(jsonl, spec)["sentence"] == ["one\u2028two", "three"]
    folder = tmp_path / "SST-2"
    folder.mkdir()
    (folder / "train.tsv").write_text("sentence\tlabel\na caf\x85 scene\t1\nfine\t0\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\nok\t1\n")
    assert load_task_data(spec, data_dir=folder)["train"]["sentence"] == ["a caf\x85 scene", "fine"]


SHARED_MRPC = __import__("builders").SHARED / "glue" / "MRPC" / "train.tsv"


@pytest.mark.skipif(not SHARED_MRPC.exists(), reason="../shared/glue is not present")
def test_real_mrpc_file_reads_as_a_custom_tsv_task():
    from mmel_hf.tasks.registry import custom_task

    spec = custom_task("paraphrase", ["#1 String", "#2 String"], label_column="Quality", num_labels=2)
    data = read_table_file(SHARED_MRPC, spec)
    assert len(data) == 3668  # the official size: no row merged or split by quote handling


@pytest.mark.parametrize("kind", ["augment", "train", "study"])
def test_every_command_checks_its_data_sources_the_same_way(kind):
    """One DataArguments base: the same flags, help and checks in mmel-augment, mmel-train and mmel-study."""
    from mmel_hf.augment import AugmentConfig
    from mmel_hf.tasks.registry import DataArguments
    from mmel_hf.workflows.study import StudyConfig
    from mmel_hf.workflows.train_config import TrainConfig

    config_class = {"augment": AugmentConfig, "train": TrainConfig, "study": StudyConfig}[kind]
    assert issubclass(config_class, DataArguments)
    with pytest.raises(ValueError, match=r"give one data source, got \['--data-dir', '--dataset-path'\]"):
        config_class(task="rte", data_dir="glue/RTE", dataset_path="saved")
    with pytest.raises(ValueError, match="--validation-file goes with --train-file"):
        config_class(task="rte", validation_file="dev.csv")
    assert config_class(task="rte", train_file="t.csv", validation_file="d.csv").data_sources() == {
        "data_dir": None,
        "train_file": "t.csv",
        "validation_file": "d.csv",
        "dataset_path": None,
    }


def test_id_columns_are_kept_as_text_and_keep_columns_names_more(tmp_path):
    """An `id`/`idx` column of a file is kept beside the task's (one type, text, whatever the file: JSON 7 is "7"),
    so results join back to the user's rows; --keep-columns names others, each required in every file."""
    spec = custom_task("t", ["text"])
    (tmp_path / "a.jsonl").write_text(
        '{"id": 7, "text": "a", "label": 1, "note": "x"}\n{"id": "b8", "text": "b", "label": 0, "note": null}\n'
    )
    (tmp_path / "b.tsv").write_text("id\ttext\tlabel\nq1\tc\t1\n")
    data = load_task_data(spec, train_file=tmp_path / "a.jsonl", validation_files={"validation": str(tmp_path / "b.tsv")},
                          cache_dir=str(tmp_path / "c"))  # fmt: skip
    assert data["train"]["id"][:] == ["7", "b8"] and data["validation"]["id"][:] == ["q1"]
    assert "note" not in data["train"].column_names
    kept = load_task_data(spec, train_file=tmp_path / "a.jsonl", keep_columns=["note"], cache_dir=str(tmp_path / "c"))
    assert kept["train"]["note"][:] == ["x", None] and "id" not in kept["train"].column_names
    with pytest.raises(DataError, match=r"b.tsv: --keep-columns note: no such column"):
        load_task_data(spec, train_file=tmp_path / "a.jsonl", validation_files={"validation": str(tmp_path / "b.tsv")},
                       keep_columns=["note"], cache_dir=str(tmp_path / "c"))  # fmt: skip


def test_the_hub_flags_are_one_set_honoured_by_every_command_that_takes_them(monkeypatch):
    """--dataset-name/--dataset-config/--dataset-revision are written once (HubDataArguments): mmel-augment and
    mmel-train both pass them to the Hub, and beside a local source they are refused (they would change nothing)."""
    import pytest

    from mmel_hf.augment import AugmentConfig
    from mmel_hf.errors import DataError
    from mmel_hf.workflows.train import load_data
    from mmel_hf.workflows.train_config import TrainConfig

    for config in (AugmentConfig, TrainConfig):
        with pytest.raises(
            ValueError, match="--dataset-revision names a Hub dataset, but the data comes from --data-dir"
        ):
            config(task="rte", data_dir="glue/RTE", dataset_revision="v1")
    asked = {}

    def offline(path, name=None, revision=None, **kwargs):
        asked.update(path=path, name=name, revision=revision)
        raise ConnectionError("offline")

    monkeypatch.setattr("mmel_hf.tasks.sources.load_dataset", offline)
    with pytest.raises(DataError, match="could not load me/rte-copy"):
        load_data(TrainConfig(task="rte", dataset_name="me/rte-copy", dataset_config="rte", dataset_revision="v1"))
    assert asked == {"path": "me/rte-copy", "name": "rte", "revision": "v1"}
