"""The mmel-augment command as a user meets it: user files never lost, checks before any work, one-line errors and clean exits."""

from mmel_hf.augment import get_task
from mmel_hf.tasks.sources import load_task_data


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
    from mmel_hf.augment.fill_mask import FillMaskAugmenter

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(FillMaskAugmenter, "augment", interrupted)
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


def test_unwritable_output_dir_is_refused_before_any_work(models, rte_dir, tmp_path, capsys, monkeypatch):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(locked) else real_access(path, mode))
    code, err = run_augment(capsys, augment_args(models, rte_dir, tmp_path, "--output-dir", str(locked / "out")))
    assert code == 1 and f"{locked} is not writable" in err and not (tmp_path / "cache").exists()
