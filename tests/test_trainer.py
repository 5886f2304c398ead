"""MMELTrainer as a drop-in Trainer: training, accumulation, equality in mode none, eval, resume, logging."""

import inspect
import math

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from mmel_hf import MMELTrainer, MMELTrainingArguments, SchemaError

from builders import (
    assert_same_parameters,
    base_settings,
    make_args,
    make_augmented_dataset,
    make_tiny_bert,
    one_sgd_step,
    parameters,
    run_under_torchrun,
    trainer_for,
)


@pytest.mark.parametrize(
    "mode,label_source",
    [("hard", "teacher"), ("soft", "teacher"), ("uniform", "teacher"), ("max", "original"), ("soft", "original")],
)
def test_parameters_change_after_train(tmp_path, tokenizer, tiny_bert, augmented_dataset, mode, label_source):
    before = parameters(tiny_bert)
    args = make_args(tmp_path, mmel_loss=mode, mmel_label_source=label_source)
    assert args.remove_unused_columns  # the user's default stays on
    trainer = MMELTrainer(model=tiny_bert, args=args, train_dataset=augmented_dataset, processing_class=tokenizer)
    result = trainer.train()
    assert math.isfinite(result.training_loss)
    after = parameters(tiny_bert)
    changed = [n for n in before if not torch.equal(before[n], after[n])]
    assert "classifier.weight" in changed and any("encoder" in n for n in changed)


def test_regression_with_num_labels_1(tmp_path, tokenizer):
    dataset = make_augmented_dataset(regression=True)
    for mode in ("hard", "soft"):
        model = make_tiny_bert(tokenizer, num_labels=1)
        before = parameters(model)
        trainer = MMELTrainer(
            model=model, args=make_args(tmp_path, mmel_loss=mode), train_dataset=dataset, processing_class=tokenizer
        )
        assert math.isfinite(trainer.train().training_loss)
        assert not torch.equal(before["classifier.weight"], model.classifier.weight)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_gradient_accumulation_equals_the_larger_batch(tmp_path, tokenizer, mode):
    # Ragged groups: 2 x 4 groups must give the gradient of 8 groups, whatever the micro-batches' sizes.
    dataset = make_augmented_dataset(num_rows=8, seed=3)
    start = parameters(make_tiny_bert(tokenizer, seed=1))
    full = one_sgd_step(tmp_path, tokenizer, dataset, batch_size=8, accumulation=1, mode=mode)
    accumulated = one_sgd_step(tmp_path, tokenizer, dataset, batch_size=4, accumulation=2, mode=mode)
    assert not torch.equal(full["classifier.weight"], start["classifier.weight"])
    assert_same_parameters(full, accumulated, rtol=1e-5, atol=1e-6)


def test_mode_none_equals_plain_trainer(tmp_path, tokenizer, augmented_dataset):
    plain_model = make_tiny_bert(tokenizer, seed=2, dropout=0.1)
    originals = augmented_dataset.select_columns(["sentence", "label"])
    tokenized = originals.map(lambda row: tokenizer(row["sentence"], truncation=True), remove_columns=["sentence"])
    plain_args = TrainingArguments(**base_settings(tmp_path))
    Trainer(
        model=plain_model,
        args=plain_args,
        train_dataset=tokenized,
        data_collator=DataCollatorWithPadding(tokenizer),
    ).train()

    mmel_model = make_tiny_bert(tokenizer, seed=2, dropout=0.1)
    MMELTrainer(
        model=mmel_model,
        args=make_args(tmp_path, mmel_loss="none"),
        train_dataset=augmented_dataset,
        processing_class=tokenizer,
    ).train()
    assert_same_parameters(parameters(plain_model), parameters(mmel_model), rtol=0, atol=0)


def test_mode_none_on_plain_text_with_declared_text_columns(tmp_path, tokenizer, tiny_bert):
    plain = Dataset.from_dict(
        {"sentence": ["a good film", "a bad film"] * 4, "label": [1, 0] * 4, "idx": list(range(8))}
    )
    before = tiny_bert.classifier.weight.detach().clone()
    trainer = MMELTrainer(
        model=tiny_bert,
        args=make_args(tmp_path, mmel_loss="none", mmel_text_columns=["sentence"]),
        train_dataset=plain,
        processing_class=tokenizer,
    )
    trainer.train()
    assert not torch.equal(before, tiny_bert.classifier.weight)
    with pytest.raises(ValueError, match="mmel_text_columns"):
        make_args(tmp_path, mmel_text_columns=["a", "b", "c"])


def test_evaluate_on_plain_and_on_augmented_batches(tmp_path, tokenizer, tiny_bert, augmented_dataset):
    plain_eval = Dataset.from_dict(
        {"sentence": ["a good film", "a bad film", "good fun", "bad jokes", "fine"], "label": [1, 0, 1, 0, 1]}
    )

    def accuracy(prediction):
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    trainer = MMELTrainer(
        model=tiny_bert,
        args=make_args(tmp_path),
        train_dataset=augmented_dataset,
        eval_dataset={"plain": plain_eval, "augmented": augmented_dataset},
        processing_class=tokenizer,
        compute_metrics=accuracy,
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert {"eval_plain_loss", "eval_plain_accuracy", "eval_augmented_loss", "eval_augmented_accuracy"} <= set(metrics)
    # Plain evaluation is exactly Trainer's: the mean cross-entropy of the model's own loss.
    encoded = tokenizer(list(plain_eval["sentence"]), padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = tiny_bert(**encoded, labels=torch.tensor(list(plain_eval["label"]))).loss.item()
    assert metrics["eval_plain_loss"] == pytest.approx(expected, rel=1e-4)
    # Predictions on augmented rows are one per original, in order.
    prediction = trainer.predict(augmented_dataset)
    assert prediction.predictions.shape == (len(augmented_dataset), 2)
    np.testing.assert_array_equal(prediction.label_ids, np.array(list(augmented_dataset["label"])))


def test_checkpoint_resume_continues_exactly(tmp_path, tokenizer, augmented_dataset):
    common = dict(max_steps=4, save_strategy="steps", save_steps=2, mmel_loss="hard")
    model = make_tiny_bert(tokenizer, seed=4)
    MMELTrainer(
        model=model, args=make_args(tmp_path, **common), train_dataset=augmented_dataset, processing_class=tokenizer
    ).train()
    uninterrupted = parameters(model)
    checkpoint = tmp_path / "out" / "checkpoint-2"
    assert (checkpoint / "model.safetensors").exists() and (checkpoint / "trainer_state.json").exists()

    resumed_model = make_tiny_bert(tokenizer, seed=99)
    resumed = MMELTrainer(
        model=resumed_model,
        args=make_args(tmp_path, **common),
        train_dataset=augmented_dataset,
        processing_class=tokenizer,
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 4
    assert_same_parameters(uninterrupted, parameters(resumed_model), rtol=1e-5, atol=1e-6)


def test_diagnostics_are_logged_and_exact_for_uniform_weights(tmp_path, tokenizer, tiny_bert):
    dataset = make_augmented_dataset(num_rows=8, ragged=False, num_augmented=2)
    # One epoch in one logging window: the logged values cover the whole dataset.
    args = make_args(tmp_path, mmel_loss="uniform", max_steps=-1, num_train_epochs=1, logging_steps=2)
    trainer = MMELTrainer(model=tiny_bert, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    logged = next(entry for entry in trainer.state.log_history if "mmel/weight_entropy" in entry)
    assert logged["mmel/weight_entropy"] == pytest.approx(math.log(3), rel=1e-6)  # uniform over |B| = 3
    assert logged["mmel/max_weight"] == pytest.approx(1 / 3, rel=1e-6)
    assert logged["mmel/normalised_entropy"] == pytest.approx(1.0, rel=1e-6)  # uniform: as far from sharp as can be
    assert logged["mmel/effective_sample_size"] == pytest.approx(3.0, rel=1e-6)  # all three samples count fully
    assert logged["mmel/effective_share"] == pytest.approx(1.0, rel=1e-6)
    teacher_classes = [
        [int(np.argmax(row["teacher_original"])) != int(np.argmax(t)) for t in row["teacher_augmented"]]
        for row in dataset
    ]
    expected = sum(map(sum, teacher_classes)) / sum(map(len, teacher_classes))
    assert logged["mmel/teacher_disagreement"] == pytest.approx(expected)


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_weights_that_are_uniform_read_uniform_in_every_mode(tmp_path, tokenizer, tiny_bert, mode):
    """MMEL-S spreads P* over the |B|-1 augmented samples only (Eq. 9), MMEL-H over all |B|: at lambda_P = 1e6 the
    weights are uniform over those, and the entropy and effective share say 1 (not (|B|-1)/|B|), so the run
    reads "behaved like DA+UNI"."""
    from mmel_hf.diagnostics import trainer_weights

    dataset = make_augmented_dataset(num_rows=8, ragged=False, num_augmented=3)
    args = make_args(tmp_path, mmel_loss=mode, mmel_lambda_p=1e6, max_steps=-1, num_train_epochs=1, logging_steps=2)
    trainer = MMELTrainer(model=tiny_bert, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    logged = next(entry for entry in trainer.state.log_history if "mmel/effective_share" in entry)
    weighed = 3 if mode == "soft" else 4
    assert logged["mmel/normalised_entropy"] == pytest.approx(1.0, abs=1e-4)
    assert logged["mmel/effective_share"] == pytest.approx(1.0, abs=1e-4)
    assert logged["mmel/effective_sample_size"] == pytest.approx(weighed, rel=1e-4)
    assert logged["mmel/max_weight"] == pytest.approx(1 / weighed, rel=1e-4)
    summary = trainer_weights(trainer)
    assert summary["near_uniform"] and "behaved like DA+UNI here: its weights stayed uniform" in summary["warning"]


def test_small_lambda_concentrates_the_logged_weights(tmp_path, tokenizer, augmented_dataset):
    logged = {}
    for mode, lambda_p in (("uniform", 1.0), ("hard", 1.0), ("hard", 0.01), ("max", 1.0)):
        trainer = MMELTrainer(
            model=make_tiny_bert(tokenizer),
            train_dataset=augmented_dataset,
            processing_class=tokenizer,
            args=make_args(tmp_path, mmel_loss=mode, mmel_lambda_p=lambda_p, max_steps=1),
        )
        trainer.train()
        logged[(mode, lambda_p)] = next(e for e in trainer.state.log_history if "mmel/max_weight" in e)
    shares = [logged[k]["mmel/effective_share"] for k in (("uniform", 1.0), ("hard", 1.0), ("hard", 0.01))]
    assert shares[0] == pytest.approx(1.0) and shares[0] > shares[1] > shares[2]
    # MaxUp puts all weight on one sample: entropy 0, one effective sample.
    assert logged[("max", 1.0)]["mmel/normalised_entropy"] == pytest.approx(0.0, abs=1e-6)
    assert logged[("max", 1.0)]["mmel/effective_sample_size"] == pytest.approx(1.0, rel=1e-6)
    # Same model, same first batch: entropy falls and the top weight grows as lambda_P shrinks (Remark 2).
    entropies = [logged[k]["mmel/weight_entropy"] for k in (("uniform", 1.0), ("hard", 1.0), ("hard", 0.01))]
    max_weights = [logged[k]["mmel/max_weight"] for k in (("uniform", 1.0), ("hard", 1.0), ("hard", 0.01))]
    assert entropies[0] > entropies[1] > entropies[2]
    assert max_weights[0] < max_weights[1] < max_weights[2] <= 1


def test_pretokenized_rows_and_a_plain_torch_model(tmp_path, tokenizer, augmented_dataset):
    def encode(row):
        out = tokenizer(row["sentence"])
        aug = tokenizer(row["augmented_sentence"]) if row["augmented_sentence"] else {"input_ids": []}
        return {"input_ids": out["input_ids"], "augmented_input_ids": aug["input_ids"]}

    tokenized = augmented_dataset.map(encode, remove_columns=["sentence", "augmented_sentence"])

    class BagOfWords(torch.nn.Module):  # any model that returns logits
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.EmbeddingBag(tokenizer.vocab_size, 2, mode="mean")

        def forward(self, input_ids, attention_mask=None, labels=None):
            logits = (
                self.embedding(input_ids, per_sample_weights=None)
                if attention_mask is None
                else (
                    (self.embedding.weight[input_ids] * attention_mask.unsqueeze(-1)).sum(1)
                    / attention_mask.sum(1, keepdim=True)
                )
            )
            loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
            return {"loss": loss, "logits": logits}

    model = BagOfWords()
    before = model.embedding.weight.detach().clone()
    trainer = MMELTrainer(
        model=model, args=make_args(tmp_path, learning_rate=0.1), train_dataset=tokenized, processing_class=tokenizer
    )
    trainer.train()
    assert not torch.equal(before, model.embedding.weight)


def test_sentence_pairs_are_encoded_together(tmp_path, tokenizer):
    dataset = make_augmented_dataset(pair=True)
    model = make_tiny_bert(tokenizer)
    trainer = MMELTrainer(model=model, args=make_args(tmp_path), train_dataset=dataset, processing_class=tokenizer)
    assert trainer.data_collator.text_columns == ("question", "sentence")
    batch = trainer.data_collator([dataset[0]])
    assert (batch["token_type_ids"] == 1).any()
    trainer.train()


def test_clear_errors(tmp_path, tokenizer, tiny_bert, augmented_dataset):
    with pytest.raises(TypeError, match="MMELTrainingArguments"):
        MMELTrainer(
            model=tiny_bert,
            args=TrainingArguments(output_dir=str(tmp_path), report_to="none"),
            train_dataset=augmented_dataset,
            processing_class=tokenizer,
        )
    with pytest.raises(ValueError, match="processing_class=tokenizer"):
        MMELTrainer(model=tiny_bert, args=make_args(tmp_path), train_dataset=augmented_dataset)
    with pytest.raises(SchemaError, match="teacher_original"):
        MMELTrainer(
            model=tiny_bert,
            args=make_args(tmp_path),
            processing_class=tokenizer,
            train_dataset=augmented_dataset.remove_columns(["teacher_original", "teacher_augmented"]),
        )
    # ... but original labels need no teacher.
    MMELTrainer(
        model=tiny_bert,
        args=make_args(tmp_path, mmel_label_source="original"),
        processing_class=tokenizer,
        train_dataset=augmented_dataset.remove_columns(["teacher_original", "teacher_augmented"]),
    )
    with pytest.raises(SchemaError, match="augmented_"):
        MMELTrainer(
            model=tiny_bert,
            args=make_args(tmp_path),
            processing_class=tokenizer,
            train_dataset=augmented_dataset.select_columns(["sentence", "label"]),
        )


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"mmel_loss": "hardest"}, "mmel_loss='hardest'"),
        ({"mmel_lambda_p": 0.0}, "mmel_lambda_p=0.0.*'max'"),
        ({"mmel_lambda_p": float("inf")}, "mmel_lambda_p=inf.*'uniform'"),
        ({"mmel_loss": "soft", "mmel_lambda_t": -1.0}, "mmel_lambda_t=-1.0"),
        ({"mmel_label_source": "gold"}, "mmel_label_source='gold'"),
        ({"mmel_regression_threshold": -0.1}, "mmel_regression_threshold"),
        ({"max_length": 0}, "max_length=0"),
        ({"mmel_chunk_size": 0}, "mmel_chunk_size=0"),
    ],
)
def test_arguments_are_validated(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        make_args(tmp_path, **overrides)


def test_arguments_parse_from_the_command_line(tmp_path):
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(MMELTrainingArguments).parse_args_into_dataclasses(
        [
            "--output_dir",
            str(tmp_path),
            "--mmel-loss",
            "soft",
            "--mmel_lambda_t",
            "2",
            "--report_to",
            "none",
            "--mmel_detach_soft_target",
            "false",
        ]
    )
    assert (args.mmel_loss, args.mmel_lambda_t, args.mmel_detach_soft_target) == ("soft", 2.0, False)
    assert make_args(tmp_path, mmel_loss="max").effective_lambda_p == 0.0
    assert make_args(tmp_path, mmel_loss="uniform").effective_lambda_p == math.inf


def test_targets_stay_float32_under_deepspeed_half_precision(tmp_path, tokenizer, monkeypatch):
    """Trainer casts every floating tensor of a batch to DeepSpeed's dtype; teacher outputs and float labels are
    targets and keep float32 (bf16 would flip near-tie teachers and move STS-B labels by up to 1/64)."""
    from types import SimpleNamespace

    from mmel_hf.collator import TEACHER_KEY

    dataset = make_augmented_dataset(num_rows=2, seed=0)
    trainer = MMELTrainer(
        model=make_tiny_bert(tokenizer), args=make_args(tmp_path), train_dataset=dataset, processing_class=tokenizer
    )
    plugin = SimpleNamespace(hf_ds_config=SimpleNamespace(dtype=lambda: torch.bfloat16))
    monkeypatch.setattr(trainer, "accelerator", SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin)))
    monkeypatch.setattr(trainer, "is_deepspeed_enabled", True)
    teacher = torch.tensor([[0.5001, 0.4999], [0.2, 0.8]])
    batch = {
        "input_ids": torch.tensor([[101, 102]]),
        "labels": torch.tensor([2.3456, 4.9]),
        TEACHER_KEY: teacher,
        "pixel_values": torch.ones(1, 2),
    }
    prepared = trainer._prepare_inputs(batch)
    assert prepared["pixel_values"].dtype == torch.bfloat16  # the stub is DeepSpeed's cast: model inputs are cast
    assert prepared[TEACHER_KEY].dtype == torch.float32 and torch.equal(prepared[TEACHER_KEY], teacher)
    assert prepared["labels"].dtype == torch.float32 and torch.equal(prepared["labels"], batch["labels"])
    assert prepared["input_ids"].dtype == torch.long


def test_transformers_older_than_5_19_are_refused():
    """Before 5.19 Trainer divided the group-normalised loss by the accumulation steps again (no
    ``loss_is_scaled_for_ga``): refused with the fix, and setup.cfg admits no such version."""
    import configparser
    from pathlib import Path

    from mmel_hf.trainer import MIN_TRANSFORMERS, _require_transformers_with_ga_flag

    with pytest.raises(ImportError, match=r"transformers >= 5.19 \(found 5.17.0\)"):
        _require_transformers_with_ga_flag("5.17.0")
    _require_transformers_with_ga_flag("5.19.0")
    _require_transformers_with_ga_flag()  # the installed one
    import transformers

    assert "loss_is_scaled_for_ga" in inspect.getsource(transformers.Trainer.training_step)
    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    floor = next(line for line in setup["options"]["install_requires"].splitlines() if line.startswith("transformers"))
    assert floor.startswith("transformers>=" + ".".join(map(str, MIN_TRANSFORMERS)))


def _padded_tokens(trainer) -> int:
    return sum(batch["input_ids"].numel() for batch in trainer.get_train_dataloader())


@pytest.mark.parametrize("strategy", ["group_by_length", "batch_rebalance"])
def test_length_grouped_sampling_measures_groups_by_their_longest_sample(tmp_path, tokenizer, strategy):
    # Trainer alone cannot measure raw-text rows (no input_ids) and would take the original alone for a group.
    data = make_augmented_dataset(num_rows=40, seed=5, num_augmented=4)
    data = data.map(
        lambda row, i: {"augmented_sentence": [s + " so very much" * (i % 9) for s in row["augmented_sentence"]]},
        with_indices=True,
    )
    model = make_tiny_bert(tokenizer)
    grouped = MMELTrainer(
        model=model,
        args=make_args(tmp_path, train_sampling_strategy=strategy),
        train_dataset=data,
        processing_class=tokenizer,
    )
    sampler = grouped._get_train_sampler()
    measured = grouped.data_collator.lengths(data)
    if strategy == "group_by_length":
        assert sampler.lengths == measured
        shuffled = MMELTrainer(model=model, args=make_args(tmp_path), train_dataset=data, processing_class=tokenizer)
        torch.manual_seed(0)
        random_tokens = _padded_tokens(shuffled)
        torch.manual_seed(0)
        assert _padded_tokens(grouped) < random_tokens  # batches of similar groups pad less
    assert sorted(
        i for batch in (sampler if strategy == "batch_rebalance" else [list(sampler)]) for i in batch
    ) == list(range(40))
    before = parameters(model)
    grouped.train()
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())


def test_length_grouped_sampling_keeps_user_lengths(tmp_path, tokenizer, monkeypatch):
    import transformers.trainer

    seen = []

    class Recording(transformers.trainer.LengthGroupedSampler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.lengths)

    monkeypatch.setattr(transformers.trainer, "LengthGroupedSampler", Recording)
    data = make_augmented_dataset(num_rows=12, seed=1).add_column("length", list(range(12)))
    trainer = MMELTrainer(
        model=make_tiny_bert(tokenizer),
        args=make_args(tmp_path, train_sampling_strategy="group_by_length"),
        train_dataset=data,
        processing_class=tokenizer,
    )
    batch = next(iter(trainer.get_train_dataloader()))  # through Trainer's column pruning, as in training
    assert seen == [list(range(12))]
    assert "length" not in batch


# -- Trainer options that act inside Trainer's own loss: honoured in mode none, refused in the group modes ------


@pytest.mark.parametrize(
    "option,value,match",
    [
        ("label_smoothing_factor", 0.1, "label_smoothing_factor=0.1"),
        ("use_liger_kernel", True, "use_liger_kernel=True.*logits"),
    ],
)
@pytest.mark.parametrize("mode", ["hard", "soft", "uniform", "max", "long"])
def test_options_of_trainers_own_loss_are_refused_in_group_modes(tmp_path, option, value, match, mode):
    with pytest.raises(ValueError, match=match):
        make_args(tmp_path, mmel_loss=mode, **{option: value})


def test_label_smoothing_is_trainers_own_in_mode_none(tmp_path, tokenizer, augmented_dataset):
    # mode none trains through Trainer.compute_loss: the smoothed loss of plain Trainer, to the bit.
    originals = augmented_dataset.select_columns(["sentence", "label"])
    tokenized = originals.map(lambda row: tokenizer(row["sentence"], truncation=True), remove_columns=["sentence"])
    plain_model, mmel_model = make_tiny_bert(tokenizer, seed=2), make_tiny_bert(tokenizer, seed=2)
    Trainer(
        model=plain_model,
        args=TrainingArguments(**base_settings(tmp_path), label_smoothing_factor=0.2),
        train_dataset=tokenized,
        data_collator=DataCollatorWithPadding(tokenizer),
    ).train()
    MMELTrainer(
        model=mmel_model,
        args=make_args(tmp_path, mmel_loss="none", label_smoothing_factor=0.2),
        train_dataset=augmented_dataset,
        processing_class=tokenizer,
    ).train()
    assert_same_parameters(parameters(plain_model), parameters(mmel_model), rtol=0, atol=0)
    unsmoothed = make_tiny_bert(tokenizer, seed=2)
    MMELTrainer(
        model=unsmoothed,
        args=make_args(tmp_path, mmel_loss="none"),
        train_dataset=augmented_dataset,
        processing_class=tokenizer,
    ).train()
    assert not torch.equal(unsmoothed.classifier.weight, mmel_model.classifier.weight)  # the option did something


def test_compute_loss_func_is_refused_in_group_modes(tmp_path, tokenizer, tiny_bert, augmented_dataset):
    def custom(outputs, labels, num_items_in_batch=None):
        return outputs.logits.sum() * 0

    with pytest.raises(ValueError, match="compute_loss_func"):
        MMELTrainer(
            model=tiny_bert,
            args=make_args(tmp_path),
            train_dataset=augmented_dataset,
            processing_class=tokenizer,
            compute_loss_func=custom,
        )
    used = []
    trainer = MMELTrainer(
        model=tiny_bert,
        args=make_args(tmp_path, mmel_loss="none", max_steps=1),
        train_dataset=augmented_dataset,
        processing_class=tokenizer,
        compute_loss_func=lambda *a, **k: used.append(1) or custom(*a, **k),
    )
    trainer.train()
    assert used  # mode none: Trainer's loss path calls it


def test_input_tokens_seen_count_every_sample_of_every_group(tmp_path, tokenizer, augmented_dataset):
    # include_num_input_tokens_seen counts what the model reads: the flattened batch, |B| samples per group.
    trainer = MMELTrainer(
        model=make_tiny_bert(tokenizer),
        processing_class=tokenizer,
        train_dataset=augmented_dataset,
        args=make_args(tmp_path, include_num_input_tokens_seen="non_padding", max_steps=2, dataloader_drop_last=True),
    )
    torch.manual_seed(0)
    batches = list(trainer.get_train_dataloader())[:2]
    trainer.train()
    assert trainer.state.num_input_tokens_seen == sum(int(b["attention_mask"].sum()) for b in batches)
    assert sum(b["input_ids"].shape[0] for b in batches) > 2 * 4  # more samples than originals were counted


def test_accumulation_mean_follows_trainers_data_parallel_rule(
    tmp_path, tokenizer, tiny_bert, augmented_dataset, monkeypatch
):
    # sum / num_items, times num_processes // tp_size (Trainer.compute_loss's rule), when averaging across devices.
    trainer = MMELTrainer(
        model=tiny_bert,
        args=make_args(tmp_path, average_tokens_across_devices=True),
        train_dataset=augmented_dataset,
        processing_class=tokenizer,
    )
    losses = torch.tensor([1.0, 2.0, 6.0])
    monkeypatch.setattr(type(trainer.accelerator), "num_processes", property(lambda self: 8))
    monkeypatch.setattr(trainer, "get_tp_size", lambda: 2)
    assert trainer._accumulation_mean(losses, torch.tensor(12)).item() == pytest.approx(9.0 / 12 * 4)
    assert trainer.loss_is_scaled_for_ga is True
    trainer.args.average_tokens_across_devices = False
    assert trainer._accumulation_mean(losses, torch.tensor(12)).item() == pytest.approx(9.0 / 12)
    assert trainer._accumulation_mean(losses, None).item() == pytest.approx(3.0)
    assert trainer.loss_is_scaled_for_ga is False


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_eager_and_sdpa_attention_give_the_same_group_loss(tmp_path, tokenizer, augmented_dataset, mode):
    # Ragged groups pad inside the flattened batch: both attention kernels must mask the padding alike.
    from mmel_hf.collator import MMELDataCollator

    batch = MMELDataCollator(tokenizer)([augmented_dataset[i] for i in range(6)])
    losses = {}
    for kernel in ("eager", "sdpa"):
        model = make_tiny_bert(tokenizer, seed=4)
        model.set_attn_implementation(kernel)
        model.eval()
        trainer = MMELTrainer(
            model=model,
            args=make_args(tmp_path, mmel_loss=mode),
            train_dataset=augmented_dataset,
            processing_class=tokenizer,
        )
        losses[kernel] = trainer.compute_loss(model, dict(batch)).item()
    assert losses["eager"] == pytest.approx(losses["sdpa"], rel=1e-5, abs=1e-6)  # float tolerance: other kernels


def test_torch_compile_trains_as_the_uncompiled_model(tmp_path, tokenizer, augmented_dataset):
    # torch_compile=True wraps the model; the group losses read its logits as before (backend "eager": no C++
    # toolchain needed, the same graph capture). Float tolerance: compiled graphs may reorder operations.
    results = {}
    for compiled in (False, True):
        model = make_tiny_bert(tokenizer, seed=6)
        settings = dict(torch_compile=True, torch_compile_backend="eager") if compiled else {}
        MMELTrainer(
            model=model,
            args=make_args(tmp_path, max_steps=2, **settings),
            train_dataset=augmented_dataset,
            processing_class=tokenizer,
        ).train()
        results[compiled] = parameters(model)
    assert_same_parameters(results[False], results[True], rtol=1e-4, atol=1e-5)


def test_the_trainer_tags_its_model_and_writes_the_mmel_card(tmp_path, tokenizer, tiny_bert, augmented_dataset):
    """As TRL's trainers: model.add_model_tags, and create_model_card (what Trainer.push_to_hub uploads) renders
    the method, lambdas, last evaluation and whole-run weight diagnostics from the template."""
    from huggingface_hub import ModelCard

    args = make_args(
        tmp_path, mmel_loss="soft", mmel_lambda_p=0.5, mmel_lambda_t=2.0, eval_strategy="steps", eval_steps=3
    )
    trainer = MMELTrainer(
        model=tiny_bert,
        args=args,
        train_dataset=augmented_dataset,
        eval_dataset=augmented_dataset,
        processing_class=tokenizer,
    )
    assert "mmel" in tiny_bert.model_tags
    trainer.train()
    trainer.create_model_card(model_name="tiny-mmel-s", dataset_name="me/augmented", tags="extra")
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert {"mmel", "extra"} <= set(card.data.tags) and card.data.datasets == ["me/augmented"]
    assert card.text.startswith("\n# tiny-mmel-s") or "# tiny-mmel-s" in card.text
    assert "**MMEL-S**" in card.text and "lambda_P = 0.5, lambda_T = 2.0" in card.text
    assert "effective sample share" in card.text and '"eval_loss"' in card.text
    assert "@inproceedings{yi2021reweighting" in card.text


@pytest.mark.slow
def test_fsdp_that_would_silently_run_as_ddp_is_refused(tmp_path):
    """Two gloo ranks, fsdp=True, use_cpu=True: accelerate would train with plain DDP; MMELTrainer says so."""
    import json

    target = tmp_path / "outcome.json"
    run_under_torchrun("fsdp_step.py", target)
    found = json.loads(target.read_text())
    assert found["world_size"] == 2
    assert found["refused"] and "fall back to DDP" in found["refused"] and "MULTI_CPU" in found["refused"]


def test_trainer_trains_soft_on_a_batch_whose_rows_have_no_samples(tmp_path, tokenizer):
    ds = make_augmented_dataset(num_rows=8, ragged=True, num_augmented=2)
    ds = ds.map(
        lambda row, i: {
            "augmented_sentence": [] if i < 4 else row["augmented_sentence"],
            "teacher_augmented": [] if i < 4 else row["teacher_augmented"],
        },
        with_indices=True,
    )
    trainer = trainer_for(tmp_path, tokenizer, ds, mmel_loss="soft", max_steps=2)
    batch = trainer.data_collator([ds[i] for i in range(4)])  # the first four rows: no samples at all
    trainer.model.train()
    assert torch.isfinite(trainer.compute_loss(trainer.model, batch))
    trainer.log({"loss": 0.0})  # diagnostics over an empty reweighted set do not crash


def test_regression_logs_teacher_shift_not_disagreement(tmp_path, tokenizer):
    ds = make_augmented_dataset(num_rows=8, regression=True)
    trainer = trainer_for(tmp_path, tokenizer, ds, num_labels=1, mmel_loss="soft")
    trainer.train()
    logged = {k for entry in trainer.state.log_history for k in entry}
    assert "mmel/teacher_shift" in logged and "mmel/teacher_disagreement" not in logged


def test_a_users_own_log_call_runs_no_collective_and_keeps_the_diagnostics(tmp_path, tokenizer, monkeypatch):
    ds = make_augmented_dataset(num_rows=8)
    trainer = trainer_for(tmp_path, tokenizer, ds, mmel_loss="hard")
    batch = trainer.data_collator([ds[i] for i in range(4)])
    trainer.model.train()
    trainer.compute_loss(trainer.model, batch)
    monkeypatch.setattr(type(trainer.args), "world_size", property(lambda self: 2))
    calls = []
    monkeypatch.setattr(trainer.accelerator, "reduce", lambda tensor, reduction: calls.append(reduction) or tensor)
    trainer.log({"my_metric": 1.0})  # on one process only: must not reach a collective
    assert calls == [] and trainer._diagnostics["train"] is not None
    trainer.log({"loss": 0.5})  # Trainer's own logging step, on every process
    assert calls == ["sum"] and trainer._diagnostics["train"] is None
    assert "mmel/weight_entropy" in trainer.state.log_history[-1]


def test_eval_diagnostics_drop_the_rows_accelerate_repeats(tmp_path, tokenizer, monkeypatch):
    ds = make_augmented_dataset(num_rows=4, ragged=False, num_augmented=2)
    trainer = trainer_for(tmp_path, tokenizer, ds, mmel_loss="uniform")
    monkeypatch.setattr(type(trainer.args), "world_size", property(lambda self: 2))
    monkeypatch.setattr(trainer.accelerator, "gather_for_metrics", lambda rows: rows[:3])  # one repeated row dropped
    trainer.model.eval()
    trainer.compute_loss(trainer.model, trainer.data_collator([ds[i] for i in range(4)]), return_outputs=True)
    assert trainer._diagnostics["eval"][0].item() == 3  # groups counted once each
