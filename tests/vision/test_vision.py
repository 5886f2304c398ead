"""The vision adapter: CIFAR ResNets, batched views, the collator, data loaders, schedules and training."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForImageClassification

from augment_cli.train_vision import main as vision_cli
from mmel_hf import MMELTrainer, MMELTrainingArguments
from mmel_hf.errors import DataError
from mmel_hf.vision.collator import MMELVisionCollator
from mmel_hf.vision.data import load_cifar, load_image_folder
from mmel_hf.vision.resnet_cifar import cifar_resnet
from mmel_hf.vision.schedules import paper_optimizer_and_scheduler
from mmel_hf.vision.views import cifar_views, imagenet_views
from mmel_hf.workflows.train_vision import VisionConfig, build_model, train_vision

import builders
from builders import write_cifar10


@pytest.mark.parametrize("depth,millions", [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85)])
def test_cifar_resnets_have_the_papers_sizes(depth, millions):
    model = cifar_resnet(depth, num_labels=10)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == millions


def test_resnet_saves_loads_and_returns_loss(tmp_path):
    model = cifar_resnet(20, num_labels=100).eval()
    x, labels = torch.randn(3, 3, 32, 32), torch.tensor([1, 2, 99])
    output = model(pixel_values=x, labels=labels)
    torch.testing.assert_close(output.loss, F.cross_entropy(output.logits, labels))
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(pixel_values=x).logits, output.logits)
    with pytest.raises(ValueError, match="6n\\+2"):
        cifar_resnet(21)
    assert build_model("resnet18", 10).config.depths == [2, 2, 2, 2]


def test_cifar_views_are_padded_crops_and_flips_and_reproducible():
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    views = cifar_views(images, 6, torch.Generator().manual_seed(1))
    again = cifar_views(images, 6, torch.Generator().manual_seed(1))
    assert torch.equal(views, again)
    padded = F.pad(images.float() / 255, (4, 4, 4, 4))
    flips = 0
    for s in range(4):
        assert torch.equal(views[s, 0], images[s].float() / 255)  # the original first
        for v in range(1, 6):
            matches = [
                (dy, dx, flip)
                for dy in range(9)
                for dx in range(9)
                for flip in (False, True)
                if torch.equal(
                    views[s, v],
                    padded[s, :, dy : dy + 32, dx : dx + 32].flip(-1)
                    if flip
                    else padded[s, :, dy : dy + 32, dx : dx + 32],
                )
            ]
            assert matches
            flips += matches[0][2]
    assert 0 < flips < 20
    random_first = cifar_views(images, 2, torch.Generator().manual_seed(2), original_first=False)
    assert not torch.equal(random_first[:, 0], images.float() / 255)


def test_imagenet_views_shapes_and_full_crop():
    images = torch.randint(0, 256, (2, 3, 40, 60), dtype=torch.uint8)
    views = imagenet_views(images, 3, torch.Generator().manual_seed(0), size=24)
    assert views.shape == (2, 3, 3, 24, 24) and 0 <= views.min() and views.max() <= 1
    full = imagenet_views(images, 2, torch.Generator().manual_seed(0), size=24, scale=(1.0, 1.0), ratio=(1.5, 1.5))
    assert torch.isfinite(full).all()


def test_views_stay_on_the_images_device_with_a_cpu_generator():
    """Every tensor the views make is created on the images' device (reproduced before with ``meta``: indices and
    thetas on the CPU); the random numbers come from the generator's device, so a seed gives the same views."""
    from mmel_hf.vision.views import CIFAR_MEAN, CIFAR_STD, normalize

    for make, size in ((cifar_views, 32), (lambda x, v, g: imagenet_views(x, v, g, size=24), 24)):
        views = make(torch.zeros(2, 3, 32, 32, dtype=torch.uint8, device="meta"), 3, torch.Generator().manual_seed(0))
        assert views.device.type == "meta" and views.shape == (2, 3, 3, size, size)
    normalised = normalize(torch.zeros(2, 3, 4, 4, device="meta"), CIFAR_MEAN, CIFAR_STD)
    assert normalised.device.type == "meta" and normalised.shape == (2, 3, 4, 4)


def test_collator_train_and_evaluation_batches():
    from PIL import Image

    rows = [{"img": Image.fromarray(np.full((32, 32, 3), 40 * i, dtype=np.uint8)), "label": i} for i in range(3)]
    collator = MMELVisionCollator(num_views=4, seed=3)
    batch = collator(rows)
    assert batch["pixel_values"].shape == (12, 3, 32, 32) and batch["mmel_group_mask"].all()
    evaluation = collator.for_evaluation()(rows)
    assert evaluation["pixel_values"].shape == (3, 3, 32, 32) and "mmel_group_mask" not in evaluation
    torch.testing.assert_close(evaluation["pixel_values"], batch["pixel_values"].view(3, 4, 3, 32, 32)[:, 0])
    single = MMELVisionCollator(num_views=1, original_first=False)(rows)
    assert single["pixel_values"].shape == (3, 3, 32, 32) and "mmel_group_mask" not in single
    imagenet = MMELVisionCollator(num_views=2, kind="imagenet", image_size=16, base_size=20)(
        [{"image": np.zeros((30, 50, 3), dtype=np.uint8), "label": 0}]
    )
    assert imagenet["pixel_values"].shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="no image column"):
        collator([{"picture": 1, "label": 0}])


def test_cifar_pickles_and_image_folders(tmp_path):
    data = load_cifar("cifar10", write_cifar10(tmp_path / "c10"))
    assert {s: len(d) for s, d in data.items()} == {"train": 40, "test": 8}
    assert np.asarray(data["train"][0]["img"]).shape == (3, 32, 32)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_1: not a CIFAR python-pickle batch"):
        load_cifar("cifar10", tmp_path / "bad")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "data_batch_1").write_bytes((tmp_path / "c10" / "data_batch_1").read_bytes())
    with pytest.raises(DataError, match="data_batch_2: not found"):
        load_cifar("cifar10", tmp_path / "partial")

    from PIL import Image

    for split in ("train", "val"):
        for label in ("cat", "dog"):
            folder = tmp_path / "images" / split / label
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((20, 24, 3), i * 50, dtype=np.uint8)).save(folder / f"{i}.png")
    images = load_image_folder(tmp_path / "images")
    assert {s: len(d) for s, d in images.items()} == {"train": 6, "test": 6}
    assert images["train"].features["label"].names == ["cat", "dog"]


def test_cifar_from_the_hub_fails_clearly_offline():
    with pytest.raises(DataError, match="uoft-cs/cifar10 from the Hugging Face Hub.*--data-dir"):
        load_cifar("cifar10")


def test_paper_schedule_scales_milestones():
    _, scheduler = paper_optimizer_and_scheduler(torch.nn.Linear(1, 1), "cifar", steps_per_epoch=5, epochs=20)
    factors = [scheduler.lr_lambdas[0](epoch * 5) for epoch in (5, 6, 12, 16)]
    assert factors == pytest.approx([1.0, 0.2, 0.04, 0.008])


@pytest.mark.parametrize("mode", ["hard", "soft", "uniform", "none"])
def test_train_vision_end_to_end(tmp_path, mode):
    data = load_cifar("cifar10", write_cifar10(tmp_path / "c10", per_batch=8))
    args = MMELTrainingArguments(
        output_dir=str(tmp_path / "out"),
        mmel_loss=mode,
        mmel_label_source="original",
        per_device_train_batch_size=8,
        num_train_epochs=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        seed=0,
    )
    metrics = train_vision(VisionConfig(model="resnet20", num_views=3), args, data=data)
    assert 0 <= metrics["eval_accuracy"] <= 1 and "eval_loss" in metrics
    with pytest.raises(ValueError, match="--mmel-label-source original"):
        train_vision(VisionConfig(), MMELTrainingArguments(output_dir=str(tmp_path), report_to="none"), data=data)


def test_vision_cli(tmp_path, capsys):
    folder = write_cifar10(tmp_path / "c10", per_batch=4)
    code = vision_cli(
        [
            "--dataset",
            "cifar10",
            "--data-dir",
            str(folder),
            "--model",
            "resnet20",
            "--mmel-loss",
            "hard",
            "--num-views",
            "2",
            "--num-train-epochs",
            "1",
            "--per-device-train-batch-size",
            "8",
            "--output-dir",
            str(tmp_path / "out"),
            "--use-cpu",
            "--save-strategy",
            "no",
        ]
    )
    assert code == 0 and "eval_accuracy" in capsys.readouterr().out
    assert (
        vision_cli(
            [
                "--dataset",
                "cifar10",
                "--model",
                "resnet21",
                "--data-dir",
                str(folder),
                "--output-dir",
                str(tmp_path / "o2"),
            ]
        )
        == 1
    )


def test_vision_cli_resumes_a_killed_run_to_the_uninterrupted_weights(tmp_path, capsys):
    import json
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    from builders import kill_after_save_script

    folder = write_cifar10(tmp_path / "c10", per_batch=4)  # 20 training images: 3 steps per epoch at batch 8
    argv = [
        "--dataset",
        "cifar10",
        "--data-dir",
        str(folder),
        "--model",
        "resnet20",
        "--mmel-loss",
        "hard",
        "--num-views",
        "2",
        "--num-train-epochs",
        "2",
        "--per-device-train-batch-size",
        "8",
        "--use-cpu",
        "--save-strategy",
        "epoch",
        "--eval-strategy",
        "no",
        "--disable-tqdm",
        "true",
    ]
    assert vision_cli([*argv, "--output-dir", str(tmp_path / "reference")]) == 0
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(builders.REPO), str(builders.TESTS)]),
    }
    killed = tmp_path / "killed"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            kill_after_save_script(3, "augment_cli.train_vision"),
            *argv,
            "--output-dir",
            str(killed),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == -9, result.stderr[-2000:]
    assert [p.name for p in killed.glob("checkpoint-*")] == ["checkpoint-3"]
    capsys.readouterr()
    assert vision_cli([*argv, "--output-dir", str(killed), "--resume-from-checkpoint"]) == 0
    state = json.loads((killed / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    expected, resumed = (
        load_file(str(tmp_path / "reference" / "model.safetensors")),
        load_file(str(killed / "model.safetensors")),
    )
    for name in expected:
        torch.testing.assert_close(resumed[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)
    # The run's summary covers the whole run after the resume (the checkpoint carries the diagnostics and loss).
    summaries = [json.loads((f / "metrics.json").read_text()) for f in (tmp_path / "reference", killed)]
    for key in ("normalised_entropy", "effective_share", "max_weight"):
        assert summaries[1]["mmel_weights"][key] == pytest.approx(summaries[0]["mmel_weights"][key], rel=1e-5)
    losses = [
        next(e for e in map(json.loads, (f / "log.jsonl").read_text().splitlines()) if "train_runtime" in e)
        for f in (tmp_path / "reference", killed)
    ]
    assert losses[1]["train_loss"] == pytest.approx(losses[0]["train_loss"], rel=1e-5)
    capsys.readouterr()
    code = vision_cli([*argv, "--output-dir", str(tmp_path / "x"), "--resume-from-checkpoint", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 1 and "--resume-from-checkpoint" in err and len(err.strip().splitlines()) == 1


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

    monkeypatch.setattr("mmel_hf.workflows.train_vision.paper_optimizer_and_scheduler", spy)  # where it is used
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


def _train_vision_from(config, args, data, checkpoint, out):
    from mmel_hf.vision.collator import MMELVisionCollator
    from mmel_hf.workflows.train_vision import build_model

    args.output_dir = str(out)
    model = build_model(config.model, 10)
    collator = MMELVisionCollator(num_views=config.num_views, seed=args.seed)
    trainer = MMELTrainer(model=model, args=args, data_collator=collator, train_dataset=data["train"])
    trainer.train(resume_from_checkpoint=str(checkpoint))
    return {name: p.detach() for name, p in model.state_dict().items()}


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


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


# -- mmel-train-vision at the level of mmel-train: guards, checks before training, outputs -----------------------

TINY = ["--model", "resnet20", "--num-train-epochs", "1", "--per-device-train-batch-size", "8", "--use-cpu",
        "--save-strategy", "no", "--eval-strategy", "no", "--logging-steps", "1", "--disable-tqdm", "true"]  # fmt: skip


def run_vision(capsys, argv) -> tuple[int, str]:
    try:
        code = vision_cli([str(a) for a in argv])
    except SystemExit as exit_:  # refused while the options are read
        code = exit_.code
    return code, capsys.readouterr().err


def write_image_folder(root, splits=("train", "val"), size=(40, 48)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in splits:
        for label in ("cat", "dog"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(4):
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def test_a_finished_vision_run_is_kept_and_the_folder_holds_what_mmel_train_writes(tmp_path, capsys):
    """A rerun into a finished run's folder is refused (the guard mmel-train uses), unless --overwrite-output-dir;
    the folder holds metrics.json, log.jsonl, a card and a config naming the image folder's classes."""
    import json

    from transformers import AutoConfig

    images = write_image_folder(tmp_path / "images")
    out = tmp_path / "out"
    argv = ["--dataset", "imagefolder", "--data-dir", images, "--model", "resnet18", "--image-size", "32",
            "--mmel-loss", "hard", "--num-views", "2", *TINY[2:], "--output-dir", out]  # fmt: skip
    code, err = run_vision(capsys, argv)
    assert code == 0, err
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["method"] == "MMEL-H" and summary["class_names"] == ["cat", "dog"]
    assert 0 <= summary["metrics"]["test"]["eval_accuracy"] <= 1 and summary["mmel_weights"]["effective_share"] > 0
    assert (out / "log.jsonl").read_text().count("\n") >= 2 and "pipeline_tag: image-classification" in (
        out / "README.md"
    ).read_text()
    assert AutoConfig.from_pretrained(out).id2label == {0: "cat", 1: "dog"}
    weights = (out / "model.safetensors").read_bytes()
    code, err = run_vision(capsys, [*argv, "--max-steps", "1"])
    assert code == 1 and "holds files" in err and "--overwrite-output-dir" in err, err
    assert (out / "model.safetensors").read_bytes() == weights  # the finished model is untouched
    code, err = run_vision(capsys, [*argv, "--max-steps", "1", "--overwrite-output-dir"])
    assert code == 0, err


def test_image_folders_are_evaluated_on_the_picture_training_sees_at_any_size():
    """At --image-size 32 the image is first resized to 37 (the ImageNet recipe's 256/224), so evaluation's centre
    crop keeps 86% of the width, not the 12.5% of a 256 resize; a mark 10% from the edge stays in the picture."""
    from PIL import Image

    collator = MMELVisionCollator(kind="imagenet", image_size=32, num_views=2)
    assert collator.base_size == 37 and MMELVisionCollator(kind="imagenet").base_size == 256
    picture = np.zeros((100, 100, 3), dtype=np.uint8)
    picture[:, 10:12] = 255  # a white stripe 10% from the left edge
    batch = collator.for_evaluation()([{"img": Image.fromarray(picture), "label": 0}])
    assert batch["pixel_values"].shape == (1, 3, 32, 32)
    white = batch["pixel_values"][0, 0] > batch["pixel_values"][0, 0].min() + 1
    assert white.any()  # the stripe is seen, as every training view of the whole image sees it


@pytest.mark.parametrize(
    "damage,named",
    [
        (
            lambda batch: batch.update({b"data": batch[b"data"].astype(np.float32) / 255}),
            "pixels are float32, not uint8",
        ),
        (lambda batch: batch.update({b"data": batch[b"data"].astype(np.int32) + 300}), "outside 0..255"),
        (lambda batch: batch[b"labels"].__setitem__(3, -1), "test_batch, row 3: label -1 is not a class id 0..9"),
    ],
)
def test_cifar_pixels_and_labels_are_checked_before_training(tmp_path, capsys, damage, named):
    import pickle

    folder = write_cifar10(tmp_path / "c10", per_batch=4)
    with open(folder / "test_batch", "rb") as handle:
        batch = pickle.load(handle)
    damage(batch)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump(batch, handle)
    out = tmp_path / "out"
    code, err = run_vision(capsys, ["--dataset", "cifar10", "--data-dir", folder, *TINY, "--output-dir", out])
    assert code == 1 and named in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_image_folders_without_val_or_with_a_truncated_file_are_one_line_before_training(tmp_path, capsys):
    images = write_image_folder(tmp_path / "images", splits=("train",))
    out = tmp_path / "out"
    argv = ["--dataset", "imagefolder", "--data-dir", images, *TINY, "--output-dir", out]
    code, err = run_vision(capsys, argv)
    assert code == 1 and "no val/ (or test/) folder" in err and len(err.strip().splitlines()) == 1, err
    write_image_folder(tmp_path / "whole")
    broken = tmp_path / "whole" / "val" / "dog" / "2.png"
    broken.write_bytes(broken.read_bytes()[:200])  # cut short
    code, err = run_vision(capsys, [*argv[:3], tmp_path / "whole", *argv[4:]])
    assert code == 1 and f"{broken}: not a readable image" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--mmel-loss", "long"], "--mmel-loss long (Baseline(DA+Long)) trains on a fixed set"),
        (["--mmel-loss", "hard", "--num-views", "1"], "a group needs at least 2 views"),
        (["--max-length", "64"], "--max-length is for text"),
    ],
)
def test_vision_options_that_cannot_work_are_refused(tmp_path, capsys, flags, named):
    folder = write_cifar10(tmp_path / "c10", per_batch=4)
    code, err = run_vision(
        capsys, ["--dataset", "cifar10", "--data-dir", folder, *TINY, *flags, "--output-dir", tmp_path / "o"]
    )
    assert code != 0 and named in err.strip().splitlines()[-1], err
    assert not (tmp_path / "o").exists()


def test_vision_help_shows_no_text_options_and_says_what_none_does(capsys):
    with pytest.raises(SystemExit):
        vision_cli(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert "--max_length" not in out and "--mmel_text_columns" not in out
    assert "none: Baseline(DA), one random crop+flip view per image" in out


def test_an_empty_bytes_value_in_a_cifar_pickle_is_a_shape_error_not_a_security_refusal(tmp_path):
    import pickle

    folder = write_cifar10(tmp_path / "c10", per_batch=4)
    with open(folder / "data_batch_2", "wb") as handle:
        pickle.dump({b"data": b"", b"labels": []}, handle, protocol=2)
    with pytest.raises(DataError, match="data_batch_2: ") as info:
        load_cifar("cifar10", folder)
    assert "refusing to load" not in str(info.value)


def test_soft_views_that_weigh_uniformly_read_uniform(tmp_path):
    """MMEL-S weighs the |B|-1 views beside the clean image (Eq. 9): at lambda_P = 1e6 and |B| = 4 the run reads
    normalised entropy and effective share 1 (not 0.79 / 0.75), so "behaved like DA+UNI" can fire."""
    data = load_cifar("cifar10", write_cifar10(tmp_path / "c10", per_batch=4))
    args = MMELTrainingArguments(
        output_dir=str(tmp_path / "out"), mmel_loss="soft", mmel_lambda_p=1e6, mmel_label_source="original",
        per_device_train_batch_size=8, num_train_epochs=1, report_to="none", use_cpu=True, save_strategy="no", seed=0,
    )  # fmt: skip
    metrics = train_vision(VisionConfig(model="resnet20", num_views=4), args, data=data)
    assert metrics["mmel_weights/normalised_entropy"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["mmel_weights/effective_share"] == pytest.approx(1.0, abs=1e-4)
