"""The mmel-augment job end to end: schema, cache, fingerprint, resume, label sources, Hub card, CLI."""

import json
import os
import subprocess
import sys

import pytest
import torch
from datasets import Dataset, DatasetDict
from fake_hub import FakeHub

from augment_cli.augment import main
from mmel_hf import MMELTrainer, MMELTrainingArguments, validate_augmented_dataset
from mmel_hf.augment import AugmentConfig, get_task, run_augmentation
from mmel_hf.augment import pipeline as pipeline_module
from mmel_hf.augment import transform as transform_module
from mmel_hf.augment.card import build_dataset_card

from builders import RTE_HEADER, make_tiny_bert


def config(models, rte_dir, tmp_path, **overrides):
    settings = dict(
        task="rte",
        data_dir=str(rte_dir),
        mlm_model=models[0],
        teacher=models[1],
        cache_dir=str(tmp_path / "cache"),
        progress=False,
        shard_size=4,
        block_size=2,
        seed=3,
    )
    settings.update(overrides)
    return AugmentConfig(**settings)


def test_job_produces_the_schema_and_the_trainer_trains_on_it(models, rte_dir, tmp_path, tokenizer):
    result = run_augmentation(config(models, rte_dir, tmp_path))
    data = result.dataset
    assert isinstance(data, DatasetDict) and list(data) == ["train", "validation"]
    schema = validate_augmented_dataset(data["train"], num_labels=2)
    assert schema.sample_columns == ("sentence1", "sentence2") and schema.has_teacher
    assert all(len(row["augmented_sentence1"]) == 4 == len(row["teacher_augmented"]) for row in data["train"])
    torch.testing.assert_close(
        torch.tensor(data["train"]["teacher_original"][:]).sum(-1), torch.ones(len(data["train"]))
    )
    assert data["validation"].column_names == ["sentence1", "sentence2", "label"]
    assert result.summary["examples"] == 10 and result.summary["augmented_samples"] == 40
    assert 0 < result.summary["distinct_ratio"] <= 1 and not result.cache_hit

    # The teacher's probabilities are what the teacher model says about each text.
    teacher = make_tiny_bert(tokenizer).eval()
    row = data["train"][0]
    encoded = tokenizer(row["augmented_sentence1"][1], row["augmented_sentence2"][1], return_tensors="pt")
    with torch.no_grad():
        expected = teacher(**encoded).logits.softmax(-1)[0]
    torch.testing.assert_close(torch.tensor(row["teacher_augmented"][1]), expected, rtol=1e-4, atol=1e-5)

    model = make_tiny_bert(tokenizer)
    before = model.classifier.weight.detach().clone()
    args = MMELTrainingArguments(
        output_dir=str(tmp_path / "train"),
        report_to="none",
        max_steps=2,
        per_device_train_batch_size=4,
        use_cpu=True,
        save_strategy="no",
    )
    trainer = MMELTrainer(
        model=model, args=args, train_dataset=data["train"], eval_dataset=data["validation"], processing_class=tokenizer
    )
    trainer.train()
    assert not torch.equal(before, model.classifier.weight)
    assert "eval_loss" in trainer.evaluate()


def test_second_run_is_a_cache_hit_and_options_change_the_fingerprint(models, rte_dir, tmp_path, monkeypatch):
    first = run_augmentation(config(models, rte_dir, tmp_path))
    calls = []
    monkeypatch.setattr(transform_module, "augment_split", lambda *a, **k: calls.append(1))
    again = run_augmentation(config(models, rte_dir, tmp_path, shard_size=6))  # shards only share the work out
    assert again.cache_hit and again.cache_path == first.cache_path and not calls
    assert again.dataset["train"].to_list() == first.dataset["train"].to_list()
    monkeypatch.undo()
    # The batching is part of the result (a row's numbers depend on its batch), so it is in the fingerprint.
    for change in (
        {"ratio": 0.2},
        {"search": "beam"},
        {"seed": 4},
        {"separate": False},
        {"group_size": 3},
        {"batch_size": 3},
        {"teacher_batch_size": 3},
        {"block_size": 5},
        {"precision": "bf16"},
    ):
        other = run_augmentation(config(models, rte_dir, tmp_path, **change))
        assert not other.cache_hit and other.cache_path != first.cache_path, change
    rebuilt = run_augmentation(config(models, rte_dir, tmp_path, overwrite=True))
    assert not rebuilt.cache_hit and rebuilt.dataset["train"].to_list() == first.dataset["train"].to_list()


def test_killed_run_resumes_to_the_same_dataset_with_any_shard_size(models, rte_dir, tmp_path, monkeypatch):
    uninterrupted = run_augmentation(config(models, rte_dir, tmp_path / "a", shard_size=10))
    tables = {split: part.data.table for split, part in uninterrupted.dataset.items()}

    real = transform_module.augment_split
    done = []

    def dies_on_the_third_block(*args, **kwargs):
        if len(done) == 2:
            raise KeyboardInterrupt("killed")
        done.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(transform_module, "augment_split", dies_on_the_third_block)
    with pytest.raises(KeyboardInterrupt):
        run_augmentation(config(models, rte_dir, tmp_path / "b", shard_size=2))
    cache = next((tmp_path / "b" / "cache" / "rte").iterdir())
    assert not (cache / "COMPLETE").exists() and len(list((cache / "blocks").glob("block-?????"))) == 2
    monkeypatch.setattr(transform_module, "augment_split", lambda *a, **k: done.append(1) or real(*a, **k))
    resumed = run_augmentation(config(models, rte_dir, tmp_path / "b", shard_size=6))  # another shard size
    assert len(done) == 2 + 3  # two blocks before the kill, the three missing ones after: none redone
    assert (cache / "COMPLETE").exists() and sorted(p.name for p in cache.iterdir()) == [
        "COMPLETE",
        "config.json",
        "dataset",
        "locks",
    ]  # no blocks, temporaries or shard folders left behind
    assert list((cache / "locks").iterdir()) == [cache / "locks" / "assemble.lock"]
    assert resumed.cache_path.name == uninterrupted.cache_path.name
    for split, table in tables.items():  # the same bits: every row was computed with the same batch-mates
        assert resumed.dataset[split].data.table.equals(table), split


def test_original_label_source_copies_the_label(models, rte_dir, tmp_path):
    result = run_augmentation(config(models, rte_dir, tmp_path, teacher=None, label_source="original"))
    for row in result.dataset["train"]:
        one_hot = [1.0, 0.0] if row["label"] == 0 else [0.0, 1.0]
        assert row["teacher_original"] == one_hot and row["teacher_augmented"] == [one_hot] * 4


def test_output_dir_and_dataset_card_and_push(models, rte_dir, tmp_path, monkeypatch):
    """The exact files the Hub receives, captured under huggingface_hub's API (datasets' push runs unchanged)."""
    import yaml
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    secret = "hf_secretTOKEN123"
    monkeypatch.setenv("HF_TOKEN", secret)
    hub = FakeHub().install(monkeypatch)
    cfg = config(models, rte_dir, tmp_path, output_dir=str(tmp_path / "saved"), push_to_hub="me/rte-mmel")
    result = run_augmentation(cfg)
    assert (tmp_path / "saved" / "dataset_dict.json").exists()
    files = hub.files("me/rte-mmel")
    assert sorted(files) == [
        "README.md",
        "data/train-00000-of-00001.parquet",
        "evaluation/validation-00000-of-00001.parquet",
    ]
    assert hub.private["me/rte-mmel"] is False
    assert not any(secret.encode() in data for data in files.values())
    assert [c["message"] for c in hub.commits] == ["Upload dataset", "Upload dataset", "mmel-augment: dataset card"]

    readme = hub.text("me/rte-mmel", "README.md")
    header = yaml.safe_load(readme.split("---")[1])
    # datasets' own blocks survive the card: the viewer and load_dataset read them.
    # The augmented train split and the untouched evaluation splits have other columns: two configurations.
    assert header["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]},
        {"config_name": "evaluation", "data_files": [{"split": "validation", "path": "evaluation/validation-*"}]},
    ]
    info = header["dataset_info"]
    infos = {i["config_name"]: i for i in info}
    assert infos["default"]["splits"][0]["num_examples"] == 10 and infos["default"]["download_size"] > 0
    assert infos["evaluation"]["splits"][0]["num_examples"] == len(result.dataset["validation"])
    assert "teacher_augmented" in [f["name"] for f in infos["default"]["features"]]
    assert "teacher_augmented" not in [f["name"] for f in infos["evaluation"]["features"]]
    assert header["mmel_hf_provenance"]["mmel_hf_task"] == "rte" and header["mmel_hf_provenance"]["group_size"] == 5
    # The Hub's metadata.
    assert header["license"] == "other" and header["language"] == ["en"]  # GLUE's license, as nyu-mll/glue
    assert header["annotations_creators"] == ["machine-generated"] and header["task_categories"] == [
        "text-classification"
    ]
    assert header["size_categories"] == ["n<1K"] and header["source_datasets"] == ["extended|nyu-mll/glue"]
    assert header["pretty_name"] == "rte augmented for MMEL" and "mmel" in header["tags"]

    card = DatasetCard.load(hub.hf_download_path("me/rte-mmel", "README.md"))
    assert card.data.license == "other" and card.data.to_dict()["dataset_info"] == info
    body = card.text
    assert "Search: greedy, |B| = 5, ratio = 0.4" in body and "mmel_hf 0.1.0" in body
    assert f"Examples: {result.summary['examples']}" in body and "arxiv.org/abs/2103.08933" in body
    assert "@inproceedings{yi2021reweighting" in body and 'load_dataset("me/rte-mmel")' in body
    assert secret not in readme and secret not in json.dumps(result.summary) and str(tmp_path) not in readme

    # What was pushed loads as the Hub serves it (a clone of the repo): the card's configs name the files, and
    # mmel-train reads both configurations back with what made them.
    served = tmp_path / "served"
    for path, data in files.items():
        (served / path).parent.mkdir(parents=True, exist_ok=True)
        (served / path).write_bytes(data)
    loaded = load_dataset(str(served))
    assert (
        list(loaded) == ["train"]
        and loaded["train"]["teacher_augmented"] == result.dataset["train"]["teacher_augmented"]
    )
    from mmel_hf.augment.pipeline import read_provenance
    from mmel_hf.workflows.train import load_augmented

    again = load_augmented(str(served))
    assert sorted(again) == ["train", "validation"] and again["validation"][:] == result.dataset["validation"][:]
    assert read_provenance(again["train"]) == read_provenance(result.dataset["train"])

    # A second push (a rerun) replaces the data and keeps one card with datasets' blocks.
    run_augmentation(config(models, rte_dir, tmp_path, push_to_hub="me/rte-mmel", license="cc-by-4.0"))
    header = yaml.safe_load(hub.text("me/rte-mmel", "README.md").split("---")[1])
    assert header["license"] == "cc-by-4.0" and header["dataset_info"] == info
    assert readme.count("dataset_info:") == hub.text("me/rte-mmel", "README.md").count("dataset_info:") == 1


def test_a_card_before_any_push_names_the_files_push_to_hub_makes(models, rte_dir, tmp_path):
    import yaml

    cfg = config(models, rte_dir, tmp_path)
    result = run_augmentation(cfg)
    card = str(build_dataset_card(cfg, pipeline_module._resolve_task(cfg), result.summary))
    header = yaml.safe_load(card.split("---")[1])
    assert header["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]},
        {"config_name": "evaluation", "data_files": [{"split": "validation", "path": "evaluation/validation-*"}]},
    ]
    assert header["license"] == "other" and "dataset_info" not in header


@pytest.mark.parametrize("rows, bucket", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (392_702, "100K<n<1M")])
def test_size_categories_are_the_hubs_buckets(rows, bucket):
    from mmel_hf.augment.card import size_category

    assert size_category(rows) == bucket


def test_push_fails_clearly_offline(models, rte_dir, tmp_path, monkeypatch):
    import huggingface_hub

    secret = "hf_secretTOKEN456"
    monkeypatch.setenv("HF_TOKEN", secret)
    # HF_HUB_OFFLINE (set for this suite): refused when the options are read, before any work.
    with pytest.raises(ValueError, match="--push-to-hub: HF_HUB_OFFLINE is set"):
        config(models, rte_dir, tmp_path, push_to_hub="me/x")
    # No network: the push fails after the work, saying how to push the saved result, never the token.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(RuntimeError, match="could not push to the Hugging Face Hub repo 'me/x'") as info:
        run_augmentation(config(models, rte_dir, tmp_path, push_to_hub="me/x"))
    assert secret not in str(info.value) and "running the same command again" in str(info.value)


def test_cli_end_to_end_and_errors(models, rte_dir, tmp_path, capsys):
    args = [
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
        "3",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "rte: 10 examples, 20 augmented samples" in out and "cache:" in out
    assert main(args) == 0 and "(cache hit)" in capsys.readouterr().out

    (rte_dir / "train.tsv").write_text(RTE_HEADER + "\n0\tA.\tB.\tmaybe\n")
    cache = tmp_path / "cache2"
    assert (
        main(
            [
                "--task",
                "rte",
                "--data-dir",
                str(rte_dir),
                "--mlm-model",
                models[0],
                "--teacher",
                models[1],
                "--cache-dir",
                str(cache),
                "--no-progress",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "train.tsv: line 2, column 'label': label 'maybe'" in err
    assert not cache.exists()  # nothing written for bad input

    for bad, message in (
        (["--ratio", "1.5"], "--ratio 1.5"),
        (["--group-size", "1"], "at least 2"),
        (["--task", "rtee"], "unknown task 'rtee'"),
    ):
        code = None
        try:
            code = main([*args, *bad])
        except SystemExit as exit_:
            code = exit_.code
        assert code not in (0, None)
        assert message in capsys.readouterr().err


def test_help_runs_as_a_console_script():
    result = subprocess.run(
        [sys.executable, "-m", "augment_cli.augment", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0
    assert "--task" in result.stdout and "--no-separate" in result.stdout and "Algorithm 2" in result.stdout


def test_a_sample_that_reproduces_its_original_is_not_distinct():
    from datasets import DatasetDict

    from mmel_hf.augment.counts import job_counts, shard_counts

    train = Dataset.from_dict({"sentence": ["A Fine Film.", "dull"], "label": [1, 0]})
    new = {"augmented_sentence": [["a fine film.", "a good film."], ["boring", "boring"]]}
    shard = shard_counts(train, new, get_task("sst2"), lambda texts: [t.lower() for t in texts])
    counts = job_counts([shard, shard], DatasetDict(train=train))  # two shards alike: the sums, the same share
    assert counts["augmented_samples"] == 8 and counts["original_duplicates"] == 2 and counts["examples"] == 4
    assert counts["distinct_ratio"] == pytest.approx(2 / 4)  # 'a good film.' and one 'boring'


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
