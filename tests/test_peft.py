"""MMELTrainer with PEFT adapters (peft_config, mmel-train --use-peft) and with a model given by name."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmel_hf import MMELTrainer, MMELTrainingArguments

from builders import make_augmented_dataset, make_tiny_bert

peft = pytest.importorskip("peft")


def lora(**overrides):
    return peft.LoraConfig(
        **{
            "task_type": "SEQ_CLS",
            "r": 4,
            "lora_alpha": 8,
            "lora_dropout": 0.0,
            "target_modules": ["query", "value"],
            **overrides,
        }
    )


def make_args(tmp_path, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "out"),
        report_to="none",
        per_device_train_batch_size=4,
        max_steps=3,
        learning_rate=1e-2,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    return MMELTrainingArguments(**{**settings, **overrides})


def base_parameters(model):
    """Parameters by their name in the base model, whether or not ``model`` is wrapped by PEFT."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("mode", ["hard", "soft", "uniform", "long"])
def test_only_adapters_and_head_train(tmp_path, tokenizer, mode):
    data = make_augmented_dataset(num_rows=12, seed=2)
    trainer = MMELTrainer(
        model=make_tiny_bert(tokenizer, seed=3),
        args=make_args(tmp_path, mmel_loss=mode),
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora(),
    )
    assert isinstance(trainer.model, peft.PeftModel)
    before = base_parameters(trainer.model)
    trainer.train()
    after = base_parameters(trainer.model)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any("lora_" in name for name in changed) and any("classifier" in name for name in changed)
    assert all("lora_" in name or "classifier" in name for name in changed), sorted(changed)
    frozen = [name for name, p in trainer.model.named_parameters() if not p.requires_grad]
    assert any("encoder.layer.0.attention.self.query.base_layer.weight" in name for name in frozen)


def one_sgd_step(tmp_path, tokenizer, data, batch_size, accumulation):
    trainer = MMELTrainer(
        model=make_tiny_bert(tokenizer, seed=1),
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora(),
        args=make_args(
            tmp_path,
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
            optim="sgd",
            learning_rate=0.5,
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            weight_decay=0.0,
        ),
    )
    trainer.train()
    return base_parameters(trainer.model)


def test_gradient_accumulation_equals_the_larger_batch(tmp_path, tokenizer):
    data = make_augmented_dataset(num_rows=8, seed=3)  # ragged groups
    full = one_sgd_step(tmp_path, tokenizer, data, batch_size=8, accumulation=1)
    accumulated = one_sgd_step(tmp_path, tokenizer, data, batch_size=4, accumulation=2)
    for name in full:  # float tolerance: the sums are ordered differently
        torch.testing.assert_close(full[name], accumulated[name], rtol=1e-5, atol=1e-6, msg=name)


def test_resume_from_an_adapter_checkpoint_continues_exactly(tmp_path, tokenizer):
    data = make_augmented_dataset(num_rows=16, seed=4)
    common = dict(max_steps=4, save_strategy="steps", save_steps=2)
    straight = MMELTrainer(
        model=make_tiny_bert(tokenizer, seed=5),
        args=make_args(tmp_path, **common),
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora(),
    )
    straight.train()
    checkpoint = tmp_path / "out" / "checkpoint-2"
    assert (checkpoint / "adapter_model.safetensors").exists() and not (checkpoint / "model.safetensors").exists()
    resumed = MMELTrainer(
        model=make_tiny_bert(tokenizer, seed=5),
        args=make_args(tmp_path, **common),
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora(),
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 4
    expected, found = base_parameters(straight.model), base_parameters(resumed.model)
    for name in expected:  # the same computation in the same order: equal to float rounding of the reload only
        torch.testing.assert_close(expected[name], found[name], rtol=1e-5, atol=1e-6, msg=name)


def test_peft_configs_are_checked(tmp_path, tokenizer):
    data = make_augmented_dataset(num_rows=4)
    with pytest.raises(ValueError, match="task_type='CAUSAL_LM'.*SEQ_CLS"):
        MMELTrainer(
            model=make_tiny_bert(tokenizer),
            args=make_args(tmp_path),
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=lora(task_type="CAUSAL_LM"),
        )
    untyped = lora(task_type=None)
    trainer = MMELTrainer(
        model=make_tiny_bert(tokenizer),
        args=make_args(tmp_path),
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=untyped,
    )
    assert untyped.task_type is None  # the user's config is left as given
    assert any("classifier" in n and p.requires_grad for n, p in trainer.model.named_parameters())
    with pytest.raises(ValueError, match="already a PeftModel"):
        MMELTrainer(
            model=trainer.model,
            args=make_args(tmp_path),
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=lora(),
        )


def test_model_given_by_name_takes_the_datasets_labels(tmp_path, tokenizer):
    folder, classifier = tmp_path / "base", tmp_path / "classifier"
    make_tiny_bert(tokenizer).bert.save_pretrained(folder)  # an encoder: a fresh head with the dataset's labels
    make_tiny_bert(tokenizer, num_labels=2).save_pretrained(classifier)
    three = make_augmented_dataset(num_rows=6)
    three = three.map(
        lambda row: {
            "label": row["label"] + 1,
            "teacher_original": [0.2, 0.3, 0.5],
            "teacher_augmented": [[0.2, 0.3, 0.5]] * len(row["augmented_sentence"]),
        }
    )
    trainer = MMELTrainer(
        model=str(folder), args=make_args(tmp_path, max_steps=1), train_dataset=three, processing_class=tokenizer
    )
    assert trainer.model.config.num_labels == 3 and trainer.model.classifier.out_features == 3
    trainer.train()
    regression = MMELTrainer(
        model=str(folder),
        args=make_args(tmp_path, max_steps=1),
        train_dataset=make_augmented_dataset(num_rows=6, regression=True),
        processing_class=tokenizer,
    )
    assert regression.model.config.num_labels == 1 and regression.model.config.problem_type == "regression"
    with pytest.raises(ValueError, match="num_labels"):
        MMELTrainer(
            model=str(folder),
            args=make_args(tmp_path),
            processing_class=tokenizer,
            train_dataset=three.remove_columns(["teacher_original", "teacher_augmented"]),
        )
    with pytest.raises(ValueError, match="classifier with 2 label.*has 3"):
        MMELTrainer(model=str(classifier), args=make_args(tmp_path), train_dataset=three, processing_class=tokenizer)
    # No processing_class: a model given by name brings its own tokenizer (as TRL's trainers load it).
    tokenizer.save_pretrained(folder)
    named = MMELTrainer(model=str(folder), args=make_args(tmp_path, max_steps=1), train_dataset=three)
    assert named.processing_class.get_vocab() == tokenizer.get_vocab()
    assert named.train().global_step == 1
    with pytest.raises(ValueError, match="model_init_kwargs"):
        MMELTrainer(
            model=make_tiny_bert(tokenizer),
            args=make_args(tmp_path),
            train_dataset=three,
            processing_class=tokenizer,
            model_init_kwargs={"num_labels": 3},
        )


@pytest.mark.slow
def test_mmel_train_use_peft_saves_a_loadable_adapter(tmp_path, tokenizer):
    # The CLI flow: a LoRA student on an augmented dataset; the folder loads back with PEFT's own loader and
    # predicts what the trained model predicted.
    from datasets import DatasetDict

    data = make_augmented_dataset(num_rows=16, seed=7)
    folder = tmp_path / "augmented"
    DatasetDict(train=data, validation=data.select_columns(["sentence", "label"])).save_to_disk(str(folder))
    base = tmp_path / "base"
    make_tiny_bert(tokenizer).save_pretrained(base)
    tokenizer.save_pretrained(base)
    output = tmp_path / "student"
    command = [
        sys.executable,
        "-m",
        "augment_cli.train",
        "--task",
        "reviews",
        "--text-columns",
        "sentence",
        "--num-labels",
        "2",
        "--augmented",
        str(folder),
        "--model",
        str(base),
        "--mmel-loss",
        "hard",
        "--use-peft",
        "--lora-r",
        "4",
        "--lora-alpha",
        "8",
        "--lora-target-modules",
        "query",
        "value",
        "--output-dir",
        str(output),
        "--max-steps",
        "3",
        "--per-device-train-batch-size",
        "4",
        "--use-cpu",
        "--report-to",
        "none",
        "--disable-tqdm",
        "true",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (output / "adapter_config.json").exists() and (output / "adapter_model.safetensors").exists()
    # A local base cannot be named on the Hub: the folder holds it, and the adapter config names the folder.
    assert (output / "model.safetensors").exists() and (output / "config.json").exists()
    assert json.loads((output / "adapter_config.json").read_text())["base_model_name_or_path"] == str(output.resolve())
    card = (output / "README.md").read_text()
    assert "library_name: peft" in card and "LoRA adapters (r = 4" in card
    adapter = json.loads((output / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and sorted(adapter["target_modules"]) == ["query", "value"]

    loaded = peft.AutoPeftModelForSequenceClassification.from_pretrained(str(output)).eval()
    fresh = make_tiny_bert(tokenizer).eval()
    batch = tokenizer(["a fine film", "a dull film"], return_tensors="pt", padding=True)
    with torch.no_grad():
        assert not torch.allclose(loaded(**batch).logits, fresh(**batch).logits)  # the adapter and head were loaded
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["config"]["data"]["use_peft"] is True


RELOAD_AND_SCORE = """
import json, sys, torch
from peft import AutoPeftModelForSequenceClassification
from transformers import AutoTokenizer
folder, rows = sys.argv[1], json.loads(sys.argv[2])
model = AutoPeftModelForSequenceClassification.from_pretrained(folder).eval()
tokenizer = AutoTokenizer.from_pretrained(folder)
batch = tokenizer([r[0] for r in rows], return_tensors="pt", padding=True)
with torch.no_grad():
    out = model(**batch, labels=torch.tensor([r[1] for r in rows]))
print(json.dumps({"loss": out.loss.item(), "num_labels": model.config.num_labels,
                  "layers": model.config.num_hidden_layers, "probabilities": out.logits.softmax(-1).tolist()}))
"""


def test_a_peft_folder_loads_back_into_the_trained_model_and_teaches(tmp_path, capsys):
    """`mmel-train --use-peft` on a 3-class task, the embedded base (no pooler weights) cut to 2 layers: PEFT's own
    loader, in a fresh process, rebuilds the model that was trained (its validation loss is metrics.json's); the
    pushed adapter config names the repo, never a local path; and `mmel-augment --teacher` labels with it."""
    from datasets import load_from_disk
    from fake_hub import FakeHub

    from augment_cli.augment import main as augment_main
    from augment_cli.train import main as train_main
    from mmel_hf.model_card import push_folder

    classes = ["bad", "meh", "good"]
    words = {"bad": ["awful", "dull"], "meh": ["plain", "okay"], "good": ["great", "fine"]}
    rows = [(f"the film was {words[c][i % 2]} {i}", c) for i in range(18) for c in [classes[i % 3]]]
    (tmp_path / "train.tsv").write_text("text\tmood\n" + "".join(f"{t}\t{c}\n" for t, c in rows))
    (tmp_path / "dev.tsv").write_text("text\tmood\n" + "".join(f"{t}\t{c}\n" for t, c in rows[:6]))
    task = ["--task", "moods", "--text-columns", "text", "--label-column", "mood", "--class-names", *classes]
    data = ["--train-file", tmp_path / "train.tsv", "--validation-file", tmp_path / "dev.tsv"]
    output = tmp_path / "teacher"
    code = train_main(
        [str(a) for a in [*task, *data, "--model", "embedded", "--num-layers", "2", "--mmel-loss", "none",
         "--use-peft", "--num-train-epochs", "2", "--per-device-train-batch-size", "6", "--learning-rate", "1e-2",
         "--use-cpu", "true", "--disable-tqdm", "true", "--report-to", "none", "--output-dir", output]]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    adapter = json.loads((output / "adapter_config.json").read_text())
    assert "bert.pooler.dense" in adapter["modules_to_save"]  # the pooler the MLM lacked trained and was saved

    dev = [(t, classes.index(c)) for t, c in rows[:6]]
    done = subprocess.run(
        [sys.executable, "-c", RELOAD_AND_SCORE, str(output), json.dumps(dev)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    reloaded = json.loads(done.stdout.strip().splitlines()[-1])
    recorded = json.loads((output / "metrics.json").read_text())["metrics"]["validation"]["validation_loss"]
    assert reloaded["num_labels"] == 3 and reloaded["layers"] == 2
    assert reloaded["loss"] == pytest.approx(recorded, rel=1e-5, abs=1e-6)

    hub = FakeHub()
    with pytest.MonkeyPatch.context() as patch:
        hub.install(patch)
        push_folder(output, "me/moods-teacher")
    pushed = hub.files("me/moods-teacher")
    assert json.loads(pushed["adapter_config.json"])["base_model_name_or_path"] == "me/moods-teacher"
    assert {"model.safetensors", "config.json", "adapter_model.safetensors"} <= set(pushed)
    for name, content in pushed.items():
        assert str(tmp_path).encode() not in content and b"mmel_hf/embedded" not in content, name
    assert "mmel_hf embedded" in pushed["README.md"].decode()  # the card names the base model

    code = augment_main(
        [str(a) for a in [*data, "--task", "moods", "--teacher", output, "--mlm-model", "embedded",
         "--group-size", "2", "--cache-dir", tmp_path / "cache", "--no-progress", "--output-dir", tmp_path / "aug"]]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    labelled = load_from_disk(str(tmp_path / "aug"))["train"].select(range(6))
    assert labelled["text"] == [t for t, _ in dev]
    assert np.allclose(labelled["teacher_original"], reloaded["probabilities"], atol=1e-5)
