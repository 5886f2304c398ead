"""Caches that check themselves: every reused artefact of mmel-augment is verified before it is used.

Each kind of artefact (a finished block, the final dataset and its COMPLETE record, the Arrow copy of a
source file) is damaged in each way that happens (truncated, a value edited in place, a file deleted) and
the job rerun: it must notice, say so in one line, compute the artefact again and give the same dataset,
bitwise (same machine, same blocks, so the same computation). Blocks made on another machine are compared
before their cache is completed; ``--verify N`` recomputes blocks of a finished cache.
"""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from augment_cli.augment import main
from mmel_hf.augment import AugmentConfig, run_augmentation
from mmel_hf.augment import cache as cache_module
from mmel_hf.augment import pipeline as pipeline_module
from mmel_hf.augment import transform as transform_module
from mmel_hf.augment.numerics import compare_blocks
from mmel_hf.augment.teacher import TeacherLabeler
from mmel_hf.utils.files import seal, unseal


def settings(models, rte_dir, cache, **overrides):
    values = dict(
        task="rte",
        data_dir=str(rte_dir),
        mlm_model=models[0],
        teacher=models[1],
        cache_dir=str(cache),
        progress=False,
        shard_size=2,
        block_size=2,
        seed=3,
    )
    values.update(overrides)
    return values


def tables(result):
    return {split: part.data.table for split, part in result.dataset.items()}


def count_blocks(monkeypatch) -> list:
    """Record every block computed from here on."""
    real, done = transform_module.augment_split, []
    monkeypatch.setattr(transform_module, "augment_split", lambda *a, **k: done.append(a[4]) or real(*a, **k))
    return done


def partial_cache(models, rte_dir, cache, monkeypatch, blocks: int) -> Path:
    """A job killed after ``blocks`` finished blocks; returns its cache folder."""
    real, done = transform_module.augment_split, []

    def dies(*args, **kwargs):
        if len(done) == blocks:
            raise KeyboardInterrupt("killed")
        done.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(transform_module, "augment_split", dies)
    with pytest.raises(KeyboardInterrupt):
        run_augmentation(AugmentConfig(**settings(models, rte_dir, cache)))
    monkeypatch.setattr(transform_module, "augment_split", real)
    return next((cache / "rte").iterdir())


def arrow_file(folder: Path) -> Path:
    return next(folder.rglob("data-*.arrow"))


def flip_a_byte(path: Path, offset_from_end: int = 64) -> None:
    """Change one byte well inside the file, keeping its size (an edit a size check cannot see)."""
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x5A
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture
def reference(models, rte_dir, tmp_path):
    return run_augmentation(AugmentConfig(**settings(models, rte_dir, tmp_path / "reference")))


def test_damaged_blocks_are_discarded_and_computed_again(models, rte_dir, tmp_path, monkeypatch, reference, caplog):
    cache = partial_cache(models, rte_dir, tmp_path / "cache", monkeypatch, blocks=4)
    blocks = sorted((cache / "blocks").glob("block-?????"))
    assert len(blocks) == 4
    truncate(arrow_file(blocks[0]))  # a truncated Arrow file
    flip_a_byte(arrow_file(blocks[1]))  # a value edited in place, same size
    (blocks[2] / "mmel_block.json").unlink()  # the manifest deleted
    manifest = json.loads((blocks[3] / "mmel_block.json").read_text())
    manifest["counts"]["examples"] = 1379  # a wrong count (the record's own hash no longer agrees)
    (blocks[3] / "mmel_block.json").write_text(json.dumps(manifest))

    done = count_blocks(monkeypatch)
    with caplog.at_level(logging.WARNING):
        resumed = run_augmentation(AugmentConfig(**settings(models, rte_dir, tmp_path / "cache")))
    assert sorted(done) == [0, 2, 4, 6, 8]  # the four damaged blocks (rows 0, 2, 4, 6) and the missing one (8)
    damaged = [n for n in resumed.summary["notes"] if "was damaged" in n]
    assert len(damaged) == 4 and all("\n" not in n for n in damaged)
    assert "content changed" in damaged[1] and "missing, unreadable or edited" in damaged[2]
    assert sum("was damaged" in r.message for r in caplog.records) == 4
    assert resumed.summary["examples"] == 10  # not 1379: counts come from intact manifests only
    for split, table in tables(reference).items():
        assert resumed.dataset[split].data.table.equals(table), split


@pytest.mark.parametrize(
    "damage",
    [
        "truncate the final Arrow file",
        "edit a byte of the final Arrow file",
        "delete a file of the final dataset",
        "truncate COMPLETE",
        "edit a count in COMPLETE",
    ],
)
def test_a_damaged_finished_result_is_computed_again(models, rte_dir, tmp_path, monkeypatch, reference, damage):
    cache = reference.cache_path
    expected = {split: part.to_list() for split, part in reference.dataset.items()}  # read before the damage
    if damage == "truncate the final Arrow file":
        truncate(arrow_file(cache / "dataset" / "train"))
    elif damage == "edit a byte of the final Arrow file":
        flip_a_byte(arrow_file(cache / "dataset" / "train"))
    elif damage == "delete a file of the final dataset":
        (cache / "dataset" / "validation" / "state.json").unlink()
    elif damage == "truncate COMPLETE":
        truncate(cache / "COMPLETE")
    else:
        record = json.loads((cache / "COMPLETE").read_text())
        record["counts"]["examples"] = 1379
        (cache / "COMPLETE").write_text(json.dumps(record))
    done = count_blocks(monkeypatch)
    again = run_augmentation(AugmentConfig(**settings(models, rte_dir, tmp_path / "reference")))
    assert not again.cache_hit and len(done) == 5, damage  # recomputed, not loaded and not a traceback
    assert any("finished result" in n and "was damaged" in n for n in again.summary["notes"]), damage
    assert again.summary["examples"] == 10
    assert {split: part.to_list() for split, part in again.dataset.items()} == expected
    assert unseal((cache / "COMPLETE").read_text()) is not None
    third = run_augmentation(AugmentConfig(**settings(models, rte_dir, tmp_path / "reference")))
    assert third.cache_hit and third.summary["notes"] == []  # and intact again


@pytest.mark.parametrize("damage", ["truncate", "edit", "delete the record"])
def test_a_damaged_copy_of_a_source_file_is_read_again(models, rte_dir, tmp_path, reference, damage, caplog):
    copies = sorted((tmp_path / "reference" / "sources").glob("source-*.arrow"))
    assert len(copies) == 2  # train.tsv and dev.tsv
    copy = copies[0]
    if damage == "truncate":
        truncate(copy)
    elif damage == "edit":
        flip_a_byte(copy, offset_from_end=200)
    else:
        copy.with_suffix(".json").unlink()
    with caplog.at_level(logging.WARNING):
        again = run_augmentation(AugmentConfig(**settings(models, rte_dir, tmp_path / "reference")))
    assert any("Arrow copy" in r.message and "was damaged" in r.message for r in caplog.records), damage
    assert again.cache_hit  # the copy read again is the same data: the same fingerprint, the finished result
    assert unseal(copy.with_suffix(".json").read_text()) is not None


def test_overwrite_clears_the_cache_and_the_source_copies(models, rte_dir, tmp_path, reference):
    copies = sorted((tmp_path / "reference" / "sources").glob("source-*.arrow"))
    written = [c.stat().st_mtime_ns for c in copies]
    beside = reference.cache_path.with_name(reference.cache_path.name + "-0123456789ab")  # begun on another machine
    (beside / "blocks").mkdir(parents=True)
    rebuilt = run_augmentation(AugmentConfig(**settings(models, rte_dir, tmp_path / "reference", overwrite=True)))
    assert not rebuilt.cache_hit and not (beside / "blocks").exists()
    assert all(c.stat().st_mtime_ns > w for c, w in zip(copies, written))  # read again from the files
    for split, table in tables(reference).items():
        assert rebuilt.dataset[split].data.table.equals(table), split


def other_machine(monkeypatch, noise: float = 0.0):
    """From here on this process looks like another machine; ``noise`` > 0 also makes its teacher round otherwise."""
    monkeypatch.setattr(
        pipeline_module,
        "describe_numerics",
        lambda device: {"device": "cpu", "name": "Other CPU", "isa": ["avx512f"], "threads": 7},
    )
    if noise:
        real = TeacherLabeler.predict
        monkeypatch.setattr(TeacherLabeler, "predict", lambda self, *a: real(self, *a) + np.float32(noise))


def test_a_cache_begun_on_a_machine_that_computes_alike_is_completed(models, rte_dir, tmp_path, monkeypatch, reference):
    cache = partial_cache(models, rte_dir, tmp_path / "cache", monkeypatch, blocks=2)
    other_machine(monkeypatch)
    done = count_blocks(monkeypatch)
    resumed = run_augmentation(AugmentConfig(**settings(models, rte_dir, tmp_path / "cache")))
    assert resumed.cache_path == cache
    assert len(done) == 1 + 3  # one block recomputed to compare, then the three missing ones
    (note,) = resumed.summary["notes"]
    assert "recomputed here on cpu 'Other CPU'" in note and "matches" in note and "completing it" in note
    record = unseal((cache / "COMPLETE").read_text())
    assert len(record["made_on"]) == 2  # both machines are on record
    for split, table in tables(reference).items():
        assert resumed.dataset[split].data.table.equals(table), split


def test_a_machine_whose_numbers_differ_starts_its_own_cache(models, rte_dir, tmp_path, monkeypatch, reference):
    cache = partial_cache(models, rte_dir, tmp_path / "cache", monkeypatch, blocks=2)
    before = sorted(p.name for p in (cache / "blocks").iterdir())
    other_machine(monkeypatch, noise=1e-3)  # beyond the fp32 tolerance of 1e-5
    resumed = run_augmentation(AugmentConfig(**settings(models, rte_dir, tmp_path / "cache")))
    (note,) = resumed.summary["notes"]
    assert "differs" in note and "teacher" in note and f"starting a new cache at {resumed.cache_path}" in note
    assert resumed.cache_path.name.startswith(cache.name + "-") and (resumed.cache_path / "COMPLETE").exists()
    assert sorted(p.name for p in (cache / "blocks").iterdir()) == before  # the other machine's work is left alone
    assert not (cache / "COMPLETE").exists()
    # No block of the first machine went into this result: every teacher output carries this machine's rounding.
    shifted = np.array(resumed.dataset["train"]["teacher_original"]) - np.array(
        reference.dataset["train"]["teacher_original"]
    )
    np.testing.assert_allclose(shifted, 1e-3, atol=1e-6)


def test_verify_recomputes_blocks_and_reports_a_match_or_a_mismatch(
    models, rte_dir, tmp_path, monkeypatch, reference, capsys
):
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
        str(tmp_path / "reference"),
        "--no-progress",
        "--shard-size",
        "2",
        "--block-size",
        "2",
        "--seed",
        "3",
    ]
    assert main([*args, "--verify", "3"]) == 0
    out = capsys.readouterr().out
    found = json.loads(out.splitlines()[-1])
    assert found["matches"] and len(found["blocks_checked"]) == 3 and found["text_mismatches"] == 0
    assert found["max_abs_difference"] == 0.0  # same machine, same blocks: the same bits
    assert "recomputed block(s)" in out and ": match;" in out

    other_machine(monkeypatch, noise=1e-3)
    assert main([*args, "--verify", "9"]) == 1  # more than there are: every block
    out = capsys.readouterr().out
    found = json.loads(out.splitlines()[-1])
    assert not found["matches"] and found["blocks_checked"] == [0, 1, 2, 3, 4]
    assert found["max_abs_difference"] == pytest.approx(1e-3, rel=1e-3) and "MISMATCH" in out
    assert main([*args, "--verify", "2", "--verify-atol", "0.01"]) == 0  # within a tolerance the user chose

    assert main([*args, "--seed", "4", "--verify", "1"]) == 1  # nothing built for these options
    assert "no finished cache for these options" in capsys.readouterr().err

    complete = next((tmp_path / "reference" / "rte").glob("*/COMPLETE"))
    complete.write_text("edited")  # a damaged record: --verify discards it and says so, computing nothing
    assert main([*args, "--verify", "1"]) == 1
    err = capsys.readouterr().err
    assert "was damaged (COMPLETE: unreadable or edited); it was discarded" in err and "computing it again" not in err


def test_compare_blocks_counts_text_mismatches_and_measures_outputs():
    stored = {"augmented_sentence": [["a b", "c d"], ["e"]], "teacher_augmented": [[[0.2, 0.8]], [[0.5, 0.5]]]}
    same = compare_blocks(stored, stored, ["augmented_sentence"], 0.0)
    assert same == {"matches": True, "rows": 2, "text_mismatches": 0, "max_abs_difference": 0.0, "first_mismatch": None}
    other = {"augmented_sentence": [["a b", "c d"], ["f"]], "teacher_augmented": [[[0.2, 0.8]], [[0.5, 0.5 + 1e-4]]]}
    found = compare_blocks(stored, other, ["augmented_sentence"], 1e-3)
    assert not found["matches"] and found["text_mismatches"] == 1 and "row 1" in found["first_mismatch"]
    assert found["max_abs_difference"] == pytest.approx(1e-4)
    text_same = {**other, "augmented_sentence": stored["augmented_sentence"]}
    assert compare_blocks(stored, text_same, ["augmented_sentence"], 1e-3)["matches"]  # within tolerance
    assert not compare_blocks(stored, text_same, ["augmented_sentence"], 1e-5)["matches"]  # beyond it


def test_seal_sees_any_edit():
    record = seal({"counts": {"examples": 400}, "files": {"a": "00"}})
    assert unseal(json.dumps(record)) == record
    record["counts"]["examples"] = 1379
    assert unseal(json.dumps(record)) is None
    assert unseal("{ truncated") is None and unseal(json.dumps({"counts": 1})) is None


@pytest.mark.parametrize("main_process", [True, False])
def test_a_damaged_cache_is_said_once_by_the_main_process(tmp_path, caplog, monkeypatch, main_process):
    """Every rank finds the same damaged result; the note is logged by the main process alone (accelerate's
    logger), and every rank still records it in the summary's notes."""
    import logging

    from accelerate import PartialState

    from mmel_hf.augment import pipeline

    PartialState(cpu=True)
    monkeypatch.setattr(PartialState, "is_main_process", property(lambda self: main_process))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / pipeline.COMPLETE).write_text("not a sealed record")
    notes = []
    with caplog.at_level(logging.WARNING, logger=cache_module.__name__):
        assert not cache_module.is_finished(cache, notes)
    assert len(notes) == 1 and "damaged" in notes[0] and not (cache / pipeline.COMPLETE).exists()
    logged = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert logged == ([f"[RANK 0] {notes[0]}"] if main_process else [])  # accelerate names the rank
