"""Every bad input a user can produce, fed to the library and the CLIs: a typed error or a non-zero exit, one
clear message naming the file/column/row, no traceback from a CLI, nothing written or deleted.
(Issue "Hardening"; each case failed before its fix.)"""

import math

import numpy as np
import pytest
import torch
from datasets import Dataset

from mmel_hf import MMELDataCollator, MMELTrainer, MMELTrainingArguments, SchemaError
from mmel_hf.augment import get_task
from mmel_hf.augment.fill_mask import FillMaskAugmenter, num_positions
from mmel_hf.losses import mmel_hard_loss, mmel_soft_loss, sample_losses
from mmel_hf.tasks.sources import load_task_data, read_table_file

from builders import make_augmented_dataset, make_tiny_bert, make_tiny_mlm


def trainer_for(tmp_path, tokenizer, dataset, num_labels=2, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "out"),
        report_to="none",
        use_cpu=True,
        max_steps=1,
        per_device_train_batch_size=4,
        disable_tqdm=True,
        save_strategy="no",
        logging_steps=1,
    )
    settings.update(overrides)
    return MMELTrainer(
        model=make_tiny_bert(tokenizer, num_labels=num_labels),
        args=MMELTrainingArguments(**settings),
        train_dataset=dataset,
        processing_class=tokenizer,
    )


# -- 1. Soft loss on groups without augmented samples ---------------------------------------------------


def test_soft_loss_weights_keep_one_slot_per_group_without_augmented_samples():
    out = mmel_soft_loss(torch.zeros(2, 1, 3), torch.ones(2, 1, dtype=torch.bool), torch.tensor([0, 2]))
    assert out.weights.shape == (2, 1) and out.loss.shape == (2,)
    assert torch.isfinite(out.loss).all()


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


# -- 2. Bad labels and teacher outputs: validated once, at the door, with column and row ----------------


def with_column(ds, name, values):
    return ds.remove_columns(name).add_column(name, values)


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


# -- 3. Numerics -----------------------------------------------------------------------------------------


def test_float64_logits_stay_float64_and_minus_inf_logits_are_finite():
    logits = torch.tensor([[[2.0, 0.0], [0.5, 0.1]]], dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    out = mmel_hard_loss(logits, mask, torch.tensor([0]))
    assert out.loss.dtype == torch.float64 and out.sample_losses.dtype == torch.float64
    minus_inf = torch.tensor([[3.0, -math.inf, 0.0]])
    loss = sample_losses(minus_inf, torch.tensor([[1.0, 0.0, 0.0]]), regression=False)
    expected = torch.nn.functional.cross_entropy(minus_inf, torch.tensor([0]), reduction="none")
    assert torch.isfinite(loss).all()
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("lambda_p", [1e39, 1e-46, 1e300])
def test_lambda_p_outside_float32_range_is_refused(lambda_p):
    with pytest.raises(ValueError, match="mmel_lambda_p"):
        MMELTrainingArguments(output_dir="x", mmel_loss="hard", mmel_lambda_p=lambda_p)


@pytest.mark.parametrize("lambda_p", [1e-30, 1e30])
def test_lambda_p_at_the_accepted_bounds_gives_finite_losses(lambda_p):
    MMELTrainingArguments(output_dir="x", mmel_loss="soft", mmel_lambda_p=lambda_p)
    logits = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(0))
    out = mmel_hard_loss(logits, torch.ones(3, 4, dtype=torch.bool), torch.tensor([0, 1, 0]), lambda_p=lambda_p)
    assert torch.isfinite(out.loss).all() and torch.isfinite(out.weights).all()


# -- 4. Collator: regression labels of any numeric type ---------------------------------------------------


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


# -- 5. The logged teacher diagnostic says what it measures -----------------------------------------------


def test_regression_logs_teacher_shift_not_disagreement(tmp_path, tokenizer):
    ds = make_augmented_dataset(num_rows=8, regression=True)
    trainer = trainer_for(tmp_path, tokenizer, ds, num_labels=1, mmel_loss="soft")
    trainer.train()
    logged = {k for entry in trainer.state.log_history for k in entry}
    assert "mmel/teacher_shift" in logged and "mmel/teacher_disagreement" not in logged


# -- 11-12. Parsers ---------------------------------------------------------------------------------------


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


# -- 19-20. Augmentation details ---------------------------------------------------------------------------


@pytest.mark.parametrize("ratio,length,k", [(0.35, 90, 32), (0.7, 45, 32), (0.7, 85, 60), (0.35, 85, 30), (0.5, 3, 2)])
def test_num_positions_rounds_exact_ties_up(ratio, length, k):
    assert num_positions(length, ratio) == k


def test_vocabulary_smaller_than_the_group_is_refused(tokenizer):
    mlm = make_tiny_mlm(tokenizer)
    with pytest.raises(ValueError, match="fewer than the 40000 augmented samples"):
        FillMaskAugmenter(mlm, tokenizer, num_augmented=40000)


# -- 13. CIFAR pickles cannot run code --------------------------------------------------------------------


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_crafted_cifar_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    import pickle

    from mmel_hf.errors import DataError
    from mmel_hf.vision.data import load_cifar

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": _Exploit(), "labels": [0]}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_1: .*refusing to load posix.system"):
        load_cifar("cifar10", folder)
    assert not (tmp_path / "PWNED").exists()


def test_genuine_style_cifar_pickles_still_load(tmp_path):
    import pickle

    from mmel_hf.vision.data import load_cifar

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        batch = {b"data": rng.integers(0, 255, (2, 3072), dtype=np.uint8), b"labels": [1, 2], b"batch_label": b"x"}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    data = load_cifar("cifar10", folder)
    assert len(data["train"]) == 10 and data["test"]["label"][:] == [1, 2]


# -- 6-10, 14. mmel-augment never loses user files, checks before work, exits cleanly -------------------------


def augment_args(models, rte_dir, tmp_path, *extra):
    return [
        "--task",
        "rte",
        "--data-dir",
        str(rte_dir),
        "--mlm-model",
        models[0],
        "--teacher",
        models[1],
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
        "--group-size",
        "2",
        *extra,
    ]


def run_augment(capsys, argv):
    from augment_cli.augment import main

    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


def test_output_dir_with_user_files_or_equal_to_the_input_is_refused(models, rte_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_augment(capsys, augment_args(models, rte_dir, tmp_path, "--output-dir", str(out)))[0] == 0
    (out / "notes.txt").write_text("mine")
    code, err = run_augment(capsys, augment_args(models, rte_dir, tmp_path, "--output-dir", str(out)))
    assert code == 1 and "holds 'notes.txt'" in err and (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    assert run_augment(capsys, augment_args(models, rte_dir, tmp_path, "--output-dir", str(out)))[0] == 0  # ours: ok

    saved = tmp_path / "saved"
    load_task_data(get_task("rte"), data_dir=rte_dir).save_to_disk(str(saved))
    before = sorted(p.name for p in saved.rglob("*"))
    args = [
        "--task",
        "rte",
        "--dataset-path",
        str(saved),
        "--mlm-model",
        models[0],
        "--teacher",
        models[1],
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
        "--output-dir",
        str(saved),
    ]
    code, err = run_augment(capsys, args)
    assert code == 1 and "overlaps --dataset-path" in err and sorted(p.name for p in saved.rglob("*")) == before


def test_output_dir_that_is_a_file_under_a_file_or_a_symlink(models, rte_dir, tmp_path, capsys):
    file = tmp_path / "file.txt"
    file.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    for target, message in ((file, "is a file"), (file / "sub", "lies under a file"), (link, "symbolic link")):
        code, err = run_augment(capsys, augment_args(models, rte_dir, tmp_path, "--output-dir", str(target)))
        assert code == 1 and message in err, err
    assert not (tmp_path / "cache").exists()  # refused before any work


def test_full_disk_leaves_no_temporary_copy(models, rte_dir, tmp_path, capsys, monkeypatch):
    import errno

    from datasets import Dataset as HFDataset

    def full(self, path, *args, **kwargs):
        import os

        os.makedirs(path, exist_ok=True)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(HFDataset, "save_to_disk", full)
    code, err = run_augment(capsys, augment_args(models, rte_dir, tmp_path))
    assert code == 1 and "No space left on device" in err
    assert not list((tmp_path / "cache").rglob("*.tmp-*"))


def test_custom_task_names_cannot_reach_outside_the_cache(models, rte_dir, tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    for name in (str(victim), "../victim", "a/b"):
        code, err = run_augment(
            capsys,
            [
                "--task",
                name,
                "--text-columns",
                "sentence1",
                "--train-file",
                str(rte_dir / "train.tsv"),
                "--label-source",
                "original",
                "--mlm-model",
                models[0],
                "--cache-dir",
                str(tmp_path / "cache"),
                "--overwrite",
            ],
        )
        assert code != 0 and "names a cache folder" in err, err
    assert (victim / "keep.txt").read_text() == "keep"


def test_ctrl_c_prints_one_line_and_exits_130(models, rte_dir, tmp_path, capsys, monkeypatch):
    from mmel_hf.augment import pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.FillMaskAugmenter, "augment", interrupted)
    code, err = run_augment(capsys, augment_args(models, rte_dir, tmp_path))
    assert code == 130 and err.strip().splitlines()[-1].startswith("mmel-augment: interrupted; rerun")
    assert not list((tmp_path / "cache").rglob("*.tmp-*"))


def test_bad_data_is_reported_before_any_model_is_loaded(rte_dir, tmp_path, capsys):
    (rte_dir / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tmaybe\n")
    code, err = run_augment(
        capsys,
        [
            "--task",
            "rte",
            "--data-dir",
            str(rte_dir),
            "--mlm-model",
            "no/such-model",
            "--teacher",
            "no/such-teacher",
            "--cache-dir",
            str(tmp_path / "c"),
            "--no-progress",
        ],
    )
    assert code == 1 and "label 'maybe'" in err and "such" not in err


def test_dataset_card_names_models_without_local_paths(models, rte_dir, tmp_path):
    from mmel_hf.augment import AugmentConfig, run_augmentation
    from mmel_hf.augment.card import build_dataset_card
    from mmel_hf.augment.pipeline import _resolve_task

    config = AugmentConfig(
        task="rte",
        data_dir=str(rte_dir),
        mlm_model=models[0],
        teacher=models[1],
        cache_dir=str(tmp_path / "cache"),
        progress=False,
        group_size=2,
    )
    result = run_augmentation(config)
    card = str(build_dataset_card(config, _resolve_task(config), result.summary))
    assert str(tmp_path) not in card and models[0] not in card and "local:mlm" in card


# -- 18. distinct_ratio compares like with like ------------------------------------------------------------


def test_a_sample_that_reproduces_its_original_is_not_distinct():
    from datasets import DatasetDict

    from mmel_hf.augment.pipeline import _job_counts, _shard_counts

    train = Dataset.from_dict({"sentence": ["A Fine Film.", "dull"], "label": [1, 0]})
    new = {"augmented_sentence": [["a fine film.", "a good film."], ["boring", "boring"]]}
    shard = _shard_counts(train, new, get_task("sst2"), lambda texts: [t.lower() for t in texts])
    counts = _job_counts([shard, shard], DatasetDict(train=train))  # two shards alike: the sums, the same share
    assert counts["augmented_samples"] == 8 and counts["original_duplicates"] == 2 and counts["examples"] == 4
    assert counts["distinct_ratio"] == pytest.approx(2 / 4)  # 'a good film.' and one 'boring'


# -- 15-16. Vision schedule and views ------------------------------------------------------------------------


def test_short_runs_decay_at_their_fractions_and_the_optimizer_takes_the_users_settings():
    from mmel_hf.vision.schedules import paper_optimizer_and_scheduler

    optimizer, scheduler = paper_optimizer_and_scheduler(
        torch.nn.Linear(1, 1), "cifar", steps_per_epoch=10, epochs=2, lr=0.05, weight_decay=1e-4
    )
    assert optimizer.param_groups[0]["lr"] == 0.05 and optimizer.param_groups[0]["weight_decay"] == 1e-4
    factors = [scheduler.lr_lambdas[0](step) for step in (0, 5, 6, 12, 16, 19)]
    assert factors == pytest.approx([1.0, 1.0, 0.2, 0.04, 0.008, 0.008])  # 30/60/80% of 20 steps


def test_train_vision_counts_every_process_in_the_steps_per_epoch(tmp_path, monkeypatch):
    from mmel_hf.vision.data import load_cifar
    from mmel_hf.workflows import train_vision as vision_train

    from builders import write_cifar10

    seen = {}

    def spy(model, kind, steps_per_epoch, epochs, lr=None, weight_decay=None):
        seen.update(steps_per_epoch=steps_per_epoch, lr=lr, weight_decay=weight_decay)
        raise RuntimeError("stop")

    monkeypatch.setattr("mmel_hf.vision.schedules.paper_optimizer_and_scheduler", spy)
    data = load_cifar("cifar10", write_cifar10(tmp_path / "c10", per_batch=8))  # 40 training images
    args = MMELTrainingArguments(
        output_dir=str(tmp_path / "o"),
        mmel_label_source="original",
        use_cpu=True,
        per_device_train_batch_size=4,
        learning_rate=0.03,
        weight_decay=2e-4,
        report_to="none",
    )
    monkeypatch.setattr(type(args), "world_size", property(lambda self: 2))
    with pytest.raises(RuntimeError, match="stop"):
        vision_train.train_vision(vision_train.VisionConfig(), args, data=data)
    assert seen == {"steps_per_epoch": 5, "lr": 0.03, "weight_decay": 2e-4}  # 40 / (4 x 2 processes)


def test_every_process_draws_its_own_views():
    from mmel_hf.vision.collator import MMELVisionCollator

    rows = [{"img": np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8), "label": 1}] * 4
    rank0 = MMELVisionCollator(num_views=4, seed=0, process_index=0)(rows)["pixel_values"]
    rank1 = MMELVisionCollator(num_views=4, seed=0, process_index=1)(rows)["pixel_values"]
    again = MMELVisionCollator(num_views=4, seed=0, process_index=0)(rows)["pixel_values"]
    assert torch.equal(rank0, again) and not torch.equal(rank0, rank1)


def test_vision_training_resumed_from_a_checkpoint_matches_the_uninterrupted_run(tmp_path):
    from mmel_hf.vision.data import load_cifar
    from mmel_hf.workflows import train_vision as vision_train

    from builders import write_cifar10

    data = load_cifar("cifar10", write_cifar10(tmp_path / "c10", per_batch=8))  # 40 images: 5 steps of 8 per epoch

    def args(out):
        return MMELTrainingArguments(
            output_dir=str(out),
            mmel_loss="hard",
            mmel_label_source="original",
            use_cpu=True,
            per_device_train_batch_size=8,
            num_train_epochs=2,
            learning_rate=0.05,
            save_strategy="steps",
            save_steps=3,
            report_to="none",
            disable_tqdm=True,
            seed=3,
        )

    config = vision_train.VisionConfig(num_views=3, schedule="trainer")
    vision_train.train_vision(config, args(tmp_path / "a"), data=data)
    uninterrupted = _weights(tmp_path / "a" / "checkpoint-10")
    resumed = _train_vision_from(config, args(tmp_path / "a"), data, tmp_path / "a" / "checkpoint-3", tmp_path / "b")
    for name, value in uninterrupted.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-5, atol=1e-6, msg=name)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _train_vision_from(config, args, data, checkpoint, out):
    from mmel_hf.vision.collator import MMELVisionCollator
    from mmel_hf.workflows.train_vision import build_model

    args.output_dir = str(out)
    model = build_model(config.model, 10)
    collator = MMELVisionCollator(num_views=config.num_views, seed=args.seed)
    trainer = MMELTrainer(model=model, args=args, data_collator=collator, train_dataset=data["train"])
    trainer.train(resume_from_checkpoint=str(checkpoint))
    return {name: p.detach() for name, p in model.state_dict().items()}


# -- 17. Multi-process diagnostics ---------------------------------------------------------------------------


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


def test_unwritable_output_dir_is_refused_before_any_work(models, rte_dir, tmp_path, capsys, monkeypatch):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(locked) else real_access(path, mode))
    code, err = run_augment(capsys, augment_args(models, rte_dir, tmp_path, "--output-dir", str(locked / "out")))
    assert code == 1 and f"{locked} is not writable" in err and not (tmp_path / "cache").exists()


SHARED_MRPC = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "glue" / "MRPC" / "train.tsv"


@pytest.mark.skipif(not SHARED_MRPC.exists(), reason="../shared/glue is not present")
def test_real_mrpc_file_reads_as_a_custom_tsv_task():
    from mmel_hf.tasks.registry import custom_task

    spec = custom_task("paraphrase", ["#1 String", "#2 String"], label_column="Quality", num_labels=2)
    data = read_table_file(SHARED_MRPC, spec)
    assert len(data) == 3668  # the official size: no row merged or split by quote handling


def test_label_validation_sees_a_selected_view(tmp_path, tokenizer):
    plain = Dataset.from_dict({"sentence": ["a", "b", "c", "d"], "label": [0, 7, 1, 0]})
    trainer_for(tmp_path, tokenizer, plain.select([0, 2, 3]), mmel_loss="none", mmel_text_columns=["sentence"])
    with pytest.raises(SchemaError, match="row 1, column 'label': label 7"):
        trainer_for(tmp_path, tokenizer, plain.select([3, 1]), mmel_loss="none", mmel_text_columns=["sentence"])
