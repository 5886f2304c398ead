"""Augmenters other than fill-mask: --augmenter file (samples made anywhere, keyed by row or id) and an Augmenter
object from Python, each labelled by the teacher, cached, carded and trained on like fill-mask's samples."""

import json

import pytest
from datasets import load_from_disk

from mmel_hf.schema import augmented_column

from builders import PAIRS


def run_augment(capsys, argv):
    from augment_cli.augment import main

    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


def common(models, rte_dir, tmp_path, *extra):
    return ["--task", "rte", "--data-dir", str(rte_dir), "--teacher", models[1], "--cache-dir", str(tmp_path / "cache"),
            "--no-progress", *extra]  # fmt: skip


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_fill_mask_samples_written_out_and_read_back_give_the_same_dataset(models, rte_dir, tmp_path, capsys):
    """The file augmenter is the fill-mask augmenter's samples made elsewhere: written to a file and read back
    (keyed by row), the teacher labels them alike, and the training columns are the same."""
    made = tmp_path / "fill-mask"
    argv = common(models, rte_dir, tmp_path, "--mlm-model", models[0], "--group-size", "3", "--output-dir", str(made))
    assert run_augment(capsys, argv)[0] == 0
    train = load_from_disk(str(made))["train"]
    samples = tmp_path / "samples.jsonl"
    write_jsonl(samples, [{"row": i, "sentence1": row[augmented_column("sentence1")],
                           "sentence2": row[augmented_column("sentence2")]} for i, row in enumerate(train)])  # fmt: skip
    read = tmp_path / "from-file"
    argv = common(models, rte_dir, tmp_path, "--augmenter", "file", "--augmented-file", str(samples),
                  "--output-dir", str(read))  # fmt: skip
    assert run_augment(capsys, argv)[0] == 0
    again = load_from_disk(str(read))["train"]
    for column in train.column_names:
        assert again[column] == train[column], column
    made_by = json.loads(again.info.description)["augmenter"]
    assert made_by["augmenter"] == "file" and made_by["augmented_file"] == "local:samples.jsonl"
    assert made_by["key"] == "row" and len(made_by["augmented_file_sha256"]) == 64
    assert str(tmp_path) not in again.info.description


def test_the_pushed_card_names_the_file_and_no_local_path(models, rte_dir, tmp_path, capsys, monkeypatch):
    from fake_hub import FakeHub

    hub = FakeHub().install(monkeypatch)
    samples = write_jsonl(tmp_path / "samples.jsonl", [{"row": i, "sentence2": ["a paraphrase."]} for i in range(10)])
    argv = common(models, rte_dir, tmp_path, "--augmenter", "file", "--augmented-file", str(samples),
                  "--push-to-hub", "me/rte-paraphrased")  # fmt: skip
    code, err = run_augment(capsys, argv)
    assert code == 0, err
    files = hub.files("me/rte-paraphrased")
    card = files["README.md"].decode()
    assert "Augmenter: `file`: samples from `local:samples.jsonl`" in card and "keyed by `row`" in card
    assert "Fill-mask model" not in card and "Search:" not in card
    assert all(str(tmp_path).encode() not in data for data in files.values())


def test_keys_beyond_max_train_samples_are_skipped_and_counted(models, rte_dir, tmp_path, capsys):
    samples = write_jsonl(tmp_path / "samples.jsonl", [{"row": i, "sentence2": ["a paraphrase."]} for i in range(10)])
    out = tmp_path / "out"
    argv = common(models, rte_dir, tmp_path, "--augmenter", "file", "--augmented-file", str(samples),
                  "--max-train-samples", "4", "--output-dir", str(out))  # fmt: skip
    assert run_augment(capsys, argv)[0] == 0
    train = load_from_disk(str(out))["train"]
    assert len(train) == 4 and json.loads(train.info.description)["augmenter"]["lines_skipped"] == 6


def test_ragged_samples_by_id_from_a_csv_train_the_mmel_trainer(models, rte_dir, tmp_path, capsys):
    """A CSV keyed by the data's own id column (RTE's `index`), one row per sample, some rows with one sample and others with three, a
    hypothesis-only paraphrase (sentence1 left out: the original's), through the CLI into mmel-train."""
    from augment_cli.train import main as train_main

    samples = tmp_path / "samples.csv"
    lines = ["index,sentence2"]  # RTE's own id column, kept with --keep-columns
    for i, (_, hypothesis, _) in enumerate(PAIRS * 2):
        for j in range(1 + 2 * (i % 2)):
            lines.append(f'{i},"{hypothesis.rstrip(".")}, variant {j}."')
    samples.write_text("\n".join(lines) + "\n")
    out = tmp_path / "augmented"
    argv = common(models, rte_dir, tmp_path, "--augmenter", "file", "--augmented-file", str(samples),
                  "--augmented-file-key", "index", "--keep-columns", "index", "--output-dir", str(out))  # fmt: skip
    code, err = run_augment(capsys, argv)
    assert code == 0, err
    train = load_from_disk(str(out))["train"]
    assert [len(group) for group in train[augmented_column("sentence2")]] == [1, 3] * 5
    assert train[augmented_column("sentence1")][1] == [train["sentence1"][1]] * 3  # left out: the original's text
    assert [len(t) for t in train["teacher_augmented"]] == [1, 3] * 5
    code = train_main(["--task", "rte", "--augmented", str(out), "--model", models[0], "--num-layers", "1",
                       "--mmel-loss", "hard", "--max-steps", "2", "--per-device-train-batch-size", "4",
                       "--output-dir", str(tmp_path / "student"), "--use-cpu", "true", "--disable-tqdm", "true",
                       "--no-save-model"])  # fmt: skip
    assert code == 0 and json.loads((tmp_path / "student" / "metrics.json").read_text())["train_examples"] == 10


@pytest.mark.parametrize(
    "records,extra,message",
    [
        ([{"row": 99, "sentence2": ["x"]}], [], "row 99 is not in the training split"),
        ([{"row": 0, "sentence2": ["x"]}, {"row": 0, "sentence2": ["y"]}], [], "appeared before, on line 1"),
        ([{"row": 0, "sentence1": ["a", "b"], "sentence2": ["c"]}], [], "different numbers of samples"),
        ([{"row": 0, "sentence2": ["  "]}], [], "an empty sample in 'sentence2'"),
        ([{"row": 0, "sentence2": [3]}], [], "must be a string or a list of strings"),
        ([{"row": 0, "label": "x"}], [], "no text column of the task"),
        ([{"sentence2": ["x"]}], [], "has no key"),
        ([{"uid": 5, "sentence2": ["x"]}], ["--augmented-file-key", "uid"], "not a column of the training data"),
        ([{"row": i, "sentence2": ["x"]} for i in range(9)], [], "1 of 10 training rows have no sample (row 9)"),
        ("not json\n", [], "not a JSON object"),
    ],
)
def test_a_bad_file_is_one_line_naming_its_line_and_nothing_is_written(
    models, rte_dir, tmp_path, capsys, records, extra, message
):
    samples = tmp_path / "samples.jsonl"
    samples.write_text(records) if isinstance(records, str) else write_jsonl(samples, records)
    out = tmp_path / "out"
    argv = common(models, rte_dir, tmp_path, "--augmenter", "file", "--augmented-file", str(samples),
                  "--output-dir", str(out), *extra)  # fmt: skip
    code, err = run_augment(capsys, argv)
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert str(samples) in err or "--augmented-file" in err
    assert not out.exists() and not (tmp_path / "cache" / "rte").exists()


def test_missing_rows_allowed_keep_the_original_alone_and_options_that_cannot_act_are_refused(
    models, rte_dir, tmp_path, capsys
):
    samples = write_jsonl(tmp_path / "samples.jsonl", [{"row": i, "sentence2": ["a paraphrase."]} for i in range(6)])
    out = tmp_path / "out"
    argv = common(models, rte_dir, tmp_path, "--augmenter", "file", "--augmented-file", str(samples),
                  "--allow-missing-samples", "--output-dir", str(out))  # fmt: skip
    assert run_augment(capsys, argv)[0] == 0
    train = load_from_disk(str(out))["train"]
    assert [len(g) for g in train[augmented_column("sentence2")]] == [1] * 6 + [0] * 4
    assert json.loads(train.info.description)["augmenter"]["rows_without_samples"] == 4

    for flags, message in (
        (["--augmenter", "file"], "needs --augmented-file"),
        (["--augmented-file", str(samples)], "--augmented-file (file): option(s) of another augmenter than fill-mask"),
        (["--augmenter", "file", "--augmented-file", str(samples), "--mlm-model", models[0]], "--mlm-model"),
        (["--augmenter", "file", "--augmented-file", str(samples), "--ratio", "0.2"], "--ratio"),
    ):
        with pytest.raises(SystemExit) as exit_:
            run_augment(capsys, common(models, rte_dir, tmp_path, *flags))
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert exit_.value.code == 2 and last.startswith("mmel-augment: error: ") and message in last, (flags, last)
    code, err = run_augment(capsys, common(models, rte_dir, tmp_path, "--augmenter", "file", "--augmented-file",
                                           str(tmp_path / "none.jsonl")))  # fmt: skip
    assert code == 1 and "no such file" in err and len(err.strip().splitlines()) == 1


def test_an_augmenter_object_from_python_runs_the_whole_job(models, rte_dir, tmp_path):
    """AugmentConfig(augmenter=<an Augmenter>): a user's own augmenter (here: the halves of each text swapped, one or
    two samples per example) goes through the same blocks, teacher, cache and provenance; its identity keys the
    cache."""
    from mmel_hf.augment import AugmentConfig, Augmenter, run_augmentation

    class Swap(Augmenter):
        name = "swap-halves"

        def __init__(self, salt):
            self.salt = salt

        def augment_rows(self, columns, example_ids):
            def swap(text, k):
                words = text.split()
                cut = (len(words) + k) // 2
                return " ".join(words[cut:] + words[:cut])

            return [
                [tuple(swap(column[i], k) for column in columns) for k in range(1 + row % 2)]
                for i, row in enumerate(example_ids)
            ]

        def identity(self):
            return {"salt": self.salt}

    def run(salt, block_size):
        config = AugmentConfig(task="rte", data_dir=str(rte_dir), teacher=models[1], augmenter=Swap(salt),
                               cache_dir=str(tmp_path / "cache"), progress=False, block_size=block_size)  # fmt: skip
        return run_augmentation(config)

    first = run(1, 4)
    train = first.dataset["train"]
    assert [len(g) for g in train[augmented_column("sentence1")]] == [1, 2] * 5
    assert train[augmented_column("sentence1")][0][0] != train["sentence1"][0]
    made = json.loads(train.info.description)["augmenter"]
    assert made == {"augmenter": "swap-halves"} and first.summary["augmenter"] == made
    assert run(1, 4).cache_hit  # the same object and options: the cached result
    other = run(2, 4)  # another identity: another cache
    assert not other.cache_hit and other.cache_path != first.cache_path
    with pytest.raises(ValueError, match="--mlm-model"):
        AugmentConfig(task="rte", data_dir=str(rte_dir), augmenter=Swap(1), mlm_model=models[0])
    with pytest.raises(ValueError, match="expected one of fill-mask, file, back-translation, generate"):
        AugmentConfig(task="rte", data_dir=str(rte_dir), augmenter="paraphrase")


# -- Label safety (issue 20, part 3) ---------------------------------------------------------------------------


def test_the_summary_reports_how_often_the_teacher_disagrees_and_drop_disagreeing_leaves_those_out(
    models, rte_dir, tmp_path, capsys
):
    """The share of samples the teacher labels another class than their original, counted as the trainer's
    mmel/teacher_disagreement counts it; --drop-disagreeing leaves exactly those out (groups become ragged)."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mmel_hf.augment import AugmentConfig, run_augmentation

    # A sharper tiny teacher: a random one gives every text nearly the same output, so its class would never change.
    # Its margin scaled up and centred on the training pairs' median: the class then depends on the words.
    tokenizer = AutoTokenizer.from_pretrained(models[1])
    teacher = AutoModelForSequenceClassification.from_pretrained(models[1]).eval()
    encoded = tokenizer([a for a, _, _ in PAIRS], [b for _, b, _ in PAIRS], padding=True, return_tensors="pt")
    with torch.no_grad():
        teacher.classifier.weight.mul_(1e4)
        teacher.classifier.bias.zero_()
        logits = teacher(**encoded).logits
        teacher.classifier.bias[1] = -(logits[:, 1] - logits[:, 0]).median()
    teacher.save_pretrained(tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    settings = dict(task="rte", data_dir=str(rte_dir), mlm_model=models[0], teacher=str(tmp_path / "teacher"),
                    group_size=5, cache_dir=str(tmp_path / "cache"), progress=False)  # fmt: skip
    kept = run_augmentation(AugmentConfig(**settings))
    train = kept.dataset["train"]
    originals = np.argmax(np.array(train["teacher_original"]), axis=-1)
    flags = [np.argmax(np.array(group), axis=-1) != o for group, o in zip(train["teacher_augmented"], originals)]
    share = sum(f.sum() for f in flags) / sum(len(f) for f in flags)
    assert kept.summary["teacher_disagreement"] == pytest.approx(share)
    assert 0 < share < 1  # the tiny random teacher disagrees on some samples, not all: the test can fail both ways

    dropped = run_augmentation(AugmentConfig(**settings, drop_disagreeing=True))
    assert not dropped.cache_hit and dropped.cache_path != kept.cache_path
    assert dropped.summary["dropped_disagreeing"] == sum(f.sum() for f in flags)
    left = dropped.dataset["train"]
    for group, original, flag in zip(left["teacher_augmented"], originals, flags):
        assert len(group) == int((~flag).sum())
        assert all(np.argmax(sample) == original for sample in group)
    assert left[augmented_column("sentence1")][0] == [t for t, f in zip(train[augmented_column("sentence1")][0],
                                                                         flags[0]) if not f]  # fmt: skip

    with pytest.raises(ValueError, match="--drop-disagreeing needs the teacher"):
        AugmentConfig(task="rte", data_dir=str(rte_dir), label_source="original", drop_disagreeing=True)


def test_regression_groups_count_predictions_more_than_half_a_point_away():
    from mmel_hf.augment.counts import label_safety
    from mmel_hf.augment.transform import disagreeing, label_counts

    originals = [[2.0], [4.0], [1.0]]
    augmented = [[[2.4], [2.6]], [], [[0.2], [1.0], [1.5]]]
    flags = disagreeing(originals, augmented, regression=True)
    assert flags == [[False, True], [], [True, False, False]]
    counts = label_counts(originals, augmented, flags, regression=True)
    assert counts == {"teacher_labelled_samples": 5, "teacher_disagreements": 2,
                      "teacher_shift_sum": pytest.approx(0.4 + 0.6 + 0.8 + 0.0 + 0.5)}  # fmt: skip
    found = label_safety([counts])
    assert found == {"teacher_shift": 0.4, "teacher_mean_shift": pytest.approx(2.3 / 5)}
    assert disagreeing([[0.9, 0.1]], [[[0.2, 0.8], [0.6, 0.4]]], regression=False) == [[True, False]]


def test_copied_labels_come_with_a_warning_about_what_mmel_weights_up(models, rte_dir, tmp_path):
    from mmel_hf.augment import AugmentConfig, run_augmentation

    result = run_augmentation(AugmentConfig(task="rte", data_dir=str(rte_dir), mlm_model=models[0],
                                            label_source="original", cache_dir=str(tmp_path / "cache"),
                                            progress=False))  # fmt: skip
    assert any("Table 4" in note and "copied label is wrong" in note for note in result.summary["notes"])
    assert "teacher_disagreement" not in result.summary  # no teacher: nothing to report
