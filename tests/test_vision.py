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
    with pytest.raises(ValueError, match="mmel_label_source original"):
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
    from pathlib import Path

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
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]),
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
