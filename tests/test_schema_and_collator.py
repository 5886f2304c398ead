"""The augmented-dataset schema's validator and the grouped collator."""

import math

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict, concatenate_datasets
from transformers import DataCollatorWithPadding

from mmel_hf import MMELDataCollator, SchemaError, validate_augmented_dataset

from builders import make_augmented_dataset, trainer_for


def test_valid_dataset_is_described():
    schema = validate_augmented_dataset(make_augmented_dataset())
    assert schema.sample_columns == ("sentence",)
    assert (schema.label_column, schema.has_teacher, schema.teacher_width) == ("label", True, 2)
    pair = validate_augmented_dataset(make_augmented_dataset(pair=True, regression=True))
    assert pair.sample_columns == ("question", "sentence") and pair.teacher_width == 1


def with_column(dataset, name, values):
    return (
        dataset.remove_columns([name]).add_column(name, values)
        if name in dataset.column_names
        else dataset.add_column(name, values)
    )


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: DatasetDict(train=d), r"did you mean dataset\['train'\]"),
        (lambda d: d.select([]), "empty"),
        (lambda d: d.rename_column("label", "target"), "no label column"),
        (lambda d: d.remove_columns(["sentence"]), r"\['augmented_sentence'\].*\['sentence'\]"),
        (lambda d: d.remove_columns(["augmented_sentence"]), "no augmented samples.*mmel-augment"),
        (lambda d: d.remove_columns(["teacher_augmented"]), r"missing teacher column\(s\) \['teacher_augmented'\]"),
        (lambda d: with_column(d, "augmented_sentence", ["x"] * len(d)), "must be a list"),
    ],
)
def test_schema_errors_say_what_is_missing(mutate, match):
    with pytest.raises(SchemaError, match=match):
        validate_augmented_dataset(mutate(make_augmented_dataset()))


def test_schema_errors_name_the_first_bad_row():
    dataset = make_augmented_dataset(pair=True, ragged=False, num_augmented=2)
    rows = dataset.to_list()
    rows[5]["augmented_question"] = rows[5]["augmented_question"][:1]
    with pytest.raises(SchemaError, match="row 5: 'augmented_sentence' has 2 samples but 'augmented_question' has 1"):
        validate_augmented_dataset(Dataset.from_list(rows))

    rows = make_augmented_dataset(ragged=False, num_augmented=2).to_list()
    rows[3]["teacher_augmented"] = rows[3]["teacher_augmented"][:1]
    with pytest.raises(SchemaError, match="row 3: 'teacher_augmented' has 1 entries but there are 2"):
        validate_augmented_dataset(Dataset.from_list(rows))

    rows = make_augmented_dataset(ragged=False, num_augmented=2).to_list()
    rows[7]["teacher_augmented"][1] = [0.2, 0.3, 0.5]
    with pytest.raises(SchemaError, match="row 7: an entry of 'teacher_augmented' has 3 values, expected 2"):
        validate_augmented_dataset(Dataset.from_list(rows))

    with pytest.raises(SchemaError, match="row 0: 'teacher_original' has 2 values, expected 3"):
        validate_augmented_dataset(make_augmented_dataset(), num_labels=3)

    # Row numbers stay global across Arrow chunks.
    chunked = concatenate_datasets([make_augmented_dataset(ragged=False, num_augmented=2)] * 2)
    rows = chunked.to_list()
    rows[20]["teacher_augmented"][0] = [1.0]
    with pytest.raises(SchemaError, match="row 20"):
        validate_augmented_dataset(concatenate_datasets([Dataset.from_list(rows[:16]), Dataset.from_list(rows[16:])]))


def test_teacher_is_optional_for_original_labels():
    dataset = make_augmented_dataset().remove_columns(["teacher_original", "teacher_augmented"])
    assert validate_augmented_dataset(dataset, require_teacher=False).has_teacher is False


def test_collator_flattens_groups_in_order(tokenizer):
    dataset = make_augmented_dataset(num_rows=6, seed=5)
    rows = [dataset[i] for i in range(6)]
    batch = MMELDataCollator(tokenizer)(rows)
    sizes = [1 + len(r["augmented_sentence"]) for r in rows]
    assert batch["mmel_group_mask"].sum(1).tolist() == sizes
    assert batch["input_ids"].shape[0] == sum(sizes) == batch["mmel_teacher"].shape[0]
    assert batch["labels"].tolist() == [r["label"] for r in rows] and batch["labels"].dtype == torch.long
    texts = [t for r in rows for t in [r["sentence"], *r["augmented_sentence"]]]
    decoded = tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    assert decoded == texts
    teacher = [t for r in rows for t in [r["teacher_original"], *r["teacher_augmented"]]]
    torch.testing.assert_close(batch["mmel_teacher"], torch.tensor(teacher))


def test_collator_plain_rows_match_data_collator_with_padding(tokenizer):
    rows = [{"sentence": "a good film", "label": 1}, {"sentence": "the plot is bad and long", "label": 0}]
    ours = MMELDataCollator(tokenizer, text_columns=("sentence",))(rows)
    reference = DataCollatorWithPadding(tokenizer)(
        [{**tokenizer(r["sentence"], truncation=True), "label": r["label"]} for r in rows]
    )
    assert ours.keys() == reference.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], reference[key])
    regression = MMELDataCollator(tokenizer, text_columns=("sentence",))([{"sentence": "x", "label": 2.5}])
    assert regression["labels"].dtype == torch.float32


def test_collator_without_augmented_samples_and_truncation(tokenizer):
    rows = [make_augmented_dataset()[0]]
    plain = MMELDataCollator(tokenizer, include_augmented=False)(rows)
    assert "mmel_group_mask" not in plain and plain["input_ids"].shape[0] == 1
    short = MMELDataCollator(tokenizer, max_length=4)(
        [{"sentence": "one two three four five six", "label": 0, "augmented_sentence": ["seven eight nine ten eleven"]}]
    )
    assert short["input_ids"].shape == (2, 4)


def test_collator_errors(tokenizer):
    with pytest.raises(SchemaError, match="neither 'input_ids' nor the text columns"):
        MMELDataCollator(tokenizer)([{"text": "a", "label": 0}])
    with pytest.raises(SchemaError, match="different numbers of samples"):
        MMELDataCollator(tokenizer)([{"q": "a", "s": "b", "label": 0, "augmented_q": ["c"], "augmented_s": []}])
    with pytest.raises(SchemaError, match="gold label"):
        MMELDataCollator(tokenizer)([{"s": "a", "augmented_s": ["b"]}])


@pytest.mark.parametrize("pair", [False, True])
@pytest.mark.parametrize("include_augmented", [True, False])
def test_collator_lengths_are_the_longest_sample_of_each_group(tokenizer, pair, include_augmented):
    # Measured independently: each sample tokenized alone, as the collator would truncate it.
    data = make_augmented_dataset(num_rows=23, seed=4, pair=pair)
    data = data.map(lambda row, i: {"sentence": row["sentence"] + " really" * (i % 7)}, with_indices=True)
    columns = ("question", "sentence") if pair else ("sentence",)
    collator = MMELDataCollator(tokenizer, text_columns=columns, max_length=12, include_augmented=include_augmented)

    def tokens(*texts):
        return len(tokenizer(*texts, truncation=True, max_length=12)["input_ids"])

    expected = []
    for row in data:
        samples = [tuple(row[c] for c in columns)]
        if include_augmented:
            samples += list(zip(*(row[f"augmented_{c}"] for c in columns)))
        expected.append(max(tokens(*sample) for sample in samples))
    assert collator.lengths(data, batch_size=5) == expected
    assert collator.lengths(data) == expected  # the batching of the measurement changes nothing
    assert len(set(expected)) > 2  # the rows differ in length: the check can tell rows apart


@pytest.mark.parametrize(
    "mutate,message",
    [
        (
            lambda ds: with_column(ds, "teacher_original", [[math.nan, 1.0]] + ds["teacher_original"][1:]),
            "row 0: 'teacher_original' holds a non-finite value",
        ),
        (
            lambda ds: with_column(ds, "teacher_original", [[2.5, -1.5]] + ds["teacher_original"][1:]),
            "not a probability vector",
        ),
        (
            lambda ds: with_column(ds, "teacher_original", [[v[1]] for v in ds["teacher_original"]]),
            "expected 2 (the number of labels",
        ),
        (
            lambda ds: with_column(ds, "label", [0, 1, 2] + ds["label"][3:]),
            "row 2, column 'label': label 2 is not a class id",
        ),
        (lambda ds: with_column(ds, "label", [-100] + ds["label"][1:]), "row 0, column 'label': label -100"),
        (lambda ds: with_column(ds, "label", ["pos"] * len(ds)), "column 'label': labels must be numbers"),
        (
            lambda ds: Dataset.from_dict(
                {
                    "sentence": ["a", "b"],
                    "label": [0, 1],
                    "augmented_sentence": [[], []],
                    "teacher_original": [[0.5, 0.5]] * 2,
                    "teacher_augmented": [[], []],
                }
            ),
            "every row's list is empty",
        ),
    ],
)
def test_bad_labels_and_teacher_outputs_are_named_at_load(tmp_path, tokenizer, mutate, message):
    ds = mutate(make_augmented_dataset(num_rows=8, ragged=False, num_augmented=2))
    with pytest.raises(SchemaError) as info:
        trainer_for(tmp_path, tokenizer, ds, mmel_loss="hard")
    assert message in str(info.value)


def test_teacher_logits_in_an_augmented_entry_name_the_row(tmp_path, tokenizer):
    ds = make_augmented_dataset(num_rows=6, ragged=False, num_augmented=2)
    entries = list(ds["teacher_augmented"])
    entries[4] = [[3.0, -2.0], entries[4][1]]
    with pytest.raises(SchemaError, match="row 4: 'teacher_augmented' is"):
        trainer_for(tmp_path, tokenizer, with_column(ds, "teacher_augmented", entries), mmel_loss="soft")


def test_nan_regression_label_and_plain_mode_labels_are_checked(tmp_path, tokenizer):
    ds = make_augmented_dataset(num_rows=6, regression=True, ragged=False, num_augmented=2)
    labels = list(ds["label"])
    labels[3] = math.nan
    with pytest.raises(SchemaError, match="row 3, column 'label': regression label nan"):
        trainer_for(tmp_path, tokenizer, with_column(ds, "label", labels), num_labels=1, mmel_loss="hard")
    plain = Dataset.from_dict({"sentence": ["a", "b", "c"], "label": [0, 1, 5]})
    with pytest.raises(SchemaError, match="row 2, column 'label': label 5"):
        trainer_for(tmp_path, tokenizer, plain, mmel_loss="none", mmel_text_columns=["sentence"])


@pytest.mark.parametrize("make", [np.float32, lambda v: torch.tensor(v), np.float64, float])
def test_collator_takes_regression_labels_of_any_numeric_type(tokenizer, make):
    rows = [
        {"sentence": "a fine film", "label": make(4.5), "augmented_sentence": ["a good film"]},
        {"sentence": "dull", "label": make(1.0), "augmented_sentence": ["boring"]},
    ]
    batch = MMELDataCollator(tokenizer)(rows)
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [4.5, 1.0]
    plain = MMELDataCollator(tokenizer, text_columns=["sentence"])([{"sentence": "a", "label": np.int64(1)}])
    assert plain["labels"].dtype == torch.long


def test_collator_names_the_column_of_text_labels(tokenizer):
    with pytest.raises(SchemaError, match="column 'label': labels must be numbers"):
        MMELDataCollator(tokenizer)([{"sentence": "a", "label": "pos", "augmented_sentence": ["b"]}])


def test_label_validation_sees_a_selected_view(tmp_path, tokenizer):
    plain = Dataset.from_dict({"sentence": ["a", "b", "c", "d"], "label": [0, 7, 1, 0]})
    trainer_for(tmp_path, tokenizer, plain.select([0, 2, 3]), mmel_loss="none", mmel_text_columns=["sentence"])
    with pytest.raises(SchemaError, match="row 1, column 'label': label 7"):
        trainer_for(tmp_path, tokenizer, plain.select([3, 1]), mmel_loss="none", mmel_text_columns=["sentence"])
