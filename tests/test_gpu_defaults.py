"""Defaults on accelerators, checked on the CPU by standing in for the device queries."""

import numpy as np
import torch

from mmel_hf.augment import precision


def test_bf16_counts_as_fast_only_on_cards_with_bf16_tensor_cores(monkeypatch):
    """torch.cuda.is_bf16_supported() is True on T4/V100 (emulated, slower than fp32): capability 8.0 and up."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    for capability, fast in (((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, c=capability: c)
        assert precision.fast_bf16_available() is fast, capability


def test_a_study_trains_on_any_accelerator_torch_knows(monkeypatch, tmp_path):
    """Not only CUDA: on a Mac the runs use MPS (as the augmentation does), the CPU only without an accelerator."""
    from mmel_hf.utils import devices
    from mmel_hf.workflows.study import StudyConfig, _training_args

    config = StudyConfig(task="rte", output_dir=str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a Mac: no CUDA, but an accelerator
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    assert devices.runs_on_cpu(None) is False and devices.runs_on_cpu("cpu") is True
    monkeypatch.setattr(devices, "runs_on_cpu", lambda device: False)  # what the study asks Trainer for
    assert _training_args(config, tmp_path / "run", {}).use_cpu is False
    monkeypatch.setattr(devices, "runs_on_cpu", lambda device: True)
    assert _training_args(config, tmp_path / "run", {}).use_cpu is True


def test_running_out_of_accelerator_memory_is_one_line_with_what_to_lower(capsys):
    """No silent back-off (the batch size is part of the result): one line naming the options to change."""
    from augment_cli.console import run_or_report

    def fails():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.\nGPU 0 has a total capacity ...")

    code, result = run_or_report("mmel-augment", fails, "rerun")
    err = capsys.readouterr().err
    assert code == 1 and result is None and len(err.strip().splitlines()) == 1
    assert "Tried to allocate 2.00 GiB" in err and "--batch-size" in err and "GPU 0 has" not in err


def test_our_passes_run_without_cudnn_attention_and_leave_the_users_settings(monkeypatch, tmp_path, tokenizer):
    """On CUDA, SDPA's cuDNN kernel plans every new shape (the GPU idled ~80% of the time): the fill-mask model, the
    teacher and MMELTrainer's steps run with it switched off, inside a scope; the user's own setting returns.
    The CUDA choice is forced here on the CPU (the flag is the same) and seen from inside each forward pass."""
    from mmel_hf import MMELTrainer
    from mmel_hf.augment.fill_mask import FillMaskAugmenter
    from mmel_hf.augment.teacher import TeacherLabeler
    from mmel_hf.utils import attention

    from builders import make_args, make_augmented_dataset, make_tiny_bert, make_tiny_mlm

    forced = attention.attention_backends(torch.device("cuda"))
    monkeypatch.setattr(attention, "attention_backends", lambda device: forced)
    seen = []

    def spy(module, args):
        seen.append(torch.backends.cuda.cudnn_sdp_enabled())

    assert torch.backends.cuda.cudnn_sdp_enabled()  # the user's (torch's default) setting
    mlm, teacher = make_tiny_mlm(tokenizer), make_tiny_bert(tokenizer)
    mlm.base_model.register_forward_pre_hook(spy)  # the encoders, where attention runs
    teacher.base_model.register_forward_pre_hook(spy)
    FillMaskAugmenter(mlm, tokenizer, num_augmented=2, show_progress=False).augment(["a fine film"], [0])
    TeacherLabeler(teacher, tokenizer).predict(["a fine film"])
    trainer = MMELTrainer(model=teacher, args=make_args(tmp_path, max_steps=1), train_dataset=make_augmented_dataset(8),
                          eval_dataset=make_augmented_dataset(4).select_columns(["sentence", "label"]),
                          processing_class=tokenizer)  # fmt: skip
    trainer.train()
    trainer.evaluate()
    assert len(seen) >= 4 and not any(seen)  # augmentation, teacher, training step, evaluation
    assert torch.backends.cuda.cudnn_sdp_enabled()  # scoped: nothing left behind
    monkeypatch.undo()
    monkeypatch.setenv(attention.KEEP_CUDNN, "1")
    assert attention.attention_backends(torch.device("cuda")) is None  # the A/B switch keeps torch's own choice


def test_bucketed_shapes_bound_what_a_run_meets(tokenizer):
    """With shape buckets (the CUDA default; forced on here) Algorithm 2 meets a bounded set of forward shapes:
    lengths that are multiples of 8 and at most 8 row counts per power of two, and its samples are well formed and
    the same on a second run. The CPU default keeps exact shapes."""
    import random

    from mmel_hf.augment.fill_mask import FillMaskAugmenter
    from mmel_hf.augment.teacher import TeacherLabeler

    from builders import make_tiny_bert, make_tiny_mlm

    rng = random.Random(0)
    words = "the a film plot cast was fine dull great long short very quite and but".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 24))) for _ in range(80)]
    mlm = make_tiny_mlm(tokenizer)
    shapes = []
    mlm.base_model.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )

    def run(buckets):
        shapes.clear()
        augmenter = FillMaskAugmenter(mlm, tokenizer, num_augmented=3, batch_size=48, shape_buckets=buckets)
        return augmenter.augment(texts, range(len(texts))), set(shapes)

    assert FillMaskAugmenter(mlm, tokenizer).shape_buckets is False  # the CPU: exact shapes, as before
    exact, exact_shapes = run(False)
    bucketed, bucketed_shapes = run(True)
    assert all(length % 8 == 0 for _, length in bucketed_shapes)
    row_counts = {rows // 3 for rows, _ in bucketed_shapes}
    assert all(count <= 8 or count % (1 << (count.bit_length() - 4)) == 0 for count in row_counts)
    assert len(bucketed_shapes) < len(exact_shapes), (len(bucketed_shapes), len(exact_shapes))
    assert [len(group) for group in bucketed] == [3] * len(texts) == [len(group) for group in exact]
    assert run(True)[0] == bucketed  # deterministic for the same options

    teacher = make_tiny_bert(tokenizer)
    widths = []
    teacher.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    plain = TeacherLabeler(teacher, tokenizer, batch_size=16).predict(texts)
    widths.clear()
    rows = []
    teacher.register_forward_pre_hook(
        lambda module, args, kwargs: rows.append(len(kwargs["input_ids"])), with_kwargs=True
    )
    padded = TeacherLabeler(teacher, tokenizer, batch_size=16, shape_buckets=True).predict(texts)
    assert all(width % 8 == 0 for width in widths)
    assert all(count <= 8 or count % (1 << (count.bit_length() - 4)) == 0 for count in rows)
    np.testing.assert_allclose(padded, plain, atol=1e-5)  # padding is masked: the same probabilities


def test_defaults_fit_the_device_and_the_users_options_win(monkeypatch):
    """On a CUDA GPU with bf16 tensor cores the commands default to bf16 and passes of up to 65,536 tokens and 4,096
    sequences in blocks of 1,024 rows; on a CPU nothing changes (fp32, 256 sequences, no token budget); what the user
    gave is kept. The resolved values are what the fingerprint hashes."""
    from mmel_hf.augment import AugmentConfig
    from mmel_hf.utils import devices
    from mmel_hf.workflows.study import StudyConfig

    config = AugmentConfig(task="rte", batch_size=64)
    cpu = config.resolved_for("cpu")
    assert (cpu.precision, cpu.batch_size, cpu.teacher_batch_size, cpu.block_size) == ("fp32", 64, 256, 256)
    assert cpu.max_tokens_per_batch is None and "max_tokens_per_batch" in cpu.result_options()
    assert AugmentConfig(task="rte").resolved_for("cpu").result_options()["precision"] == "fp32"
    assert devices.training_device_defaults({}) == {} and StudyConfig(task="rte").precision == "fp32"

    monkeypatch.setattr(devices, "cuda_with_fast_bf16", lambda: True)  # an H100, as the code sees it
    gpu = config.resolved_for("cuda")
    assert (gpu.precision, gpu.batch_size, gpu.teacher_batch_size, gpu.block_size) == ("bf16", 64, 4096, 1024)
    assert gpu.max_tokens_per_batch == 65536
    assert AugmentConfig(task="rte", max_tokens_per_batch=8192).resolved_for("cuda").max_tokens_per_batch == 8192
    assert AugmentConfig(task="rte", precision="fp32").resolved_for("cuda").precision == "fp32"
    assert devices.training_device_defaults({}) == {"bf16": True}
    assert (
        devices.training_device_defaults({"fp16": True}) == {}
        and devices.training_device_defaults({"use_cpu": True}) == {}
    )
    assert StudyConfig(task="rte").precision == "bf16" and StudyConfig(task="rte", precision="fp32").precision == "fp32"


def test_batches_of_similar_lengths_keep_padding_low(tokenizer):
    """Sentences are batched in length bands (each at least 80% of its batch's longest), so a large batch size does
    not pad short sentences to long ones: real tokens are most of what the encoder sees (64.5% on the H200 before)."""
    import random

    from mmel_hf.augment.fill_mask import FillMaskAugmenter

    from builders import make_tiny_mlm

    rng = random.Random(1)
    words = "the a film plot cast was fine dull great long short very quite and but".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 30))) for _ in range(96)]
    mlm = make_tiny_mlm(tokenizer)
    counts = {"real": 0, "all": 0}

    def count(module, args, kwargs):
        counts["real"] += int(kwargs["attention_mask"].sum())
        counts["all"] += kwargs["attention_mask"].numel()

    mlm.base_model.register_forward_pre_hook(count, with_kwargs=True)
    FillMaskAugmenter(mlm, tokenizer, num_augmented=2, batch_size=1024).augment(texts, range(len(texts)))
    assert counts["real"] / counts["all"] >= 0.8, counts


def test_a_token_budget_sizes_each_pass_by_its_length(tokenizer):
    """--max-tokens-per-batch: no forward pass of either model holds more tokens than the budget (a pass holds at
    least one sentence's samples), so short sentences go in larger batches than long ones; the teacher's outputs
    do not depend on the budget (padding is masked)."""
    import random

    from mmel_hf.augment.fill_mask import FillMaskAugmenter
    from mmel_hf.augment.teacher import TeacherLabeler

    from builders import make_tiny_bert, make_tiny_mlm

    rng = random.Random(2)
    words = "the a film plot cast was fine dull great long short very quite and but".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 40))) for _ in range(64)]
    mlm, teacher = make_tiny_mlm(tokenizer), make_tiny_bert(tokenizer)
    shapes = []

    def hook(module, args, kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))

    mlm.base_model.register_forward_pre_hook(hook, with_kwargs=True)
    teacher.register_forward_pre_hook(hook, with_kwargs=True)
    budget = 600
    samples = FillMaskAugmenter(mlm, tokenizer, num_augmented=3, batch_size=4096, max_tokens=budget).augment(
        texts, range(len(texts))
    )
    assert [len(group) for group in samples] == [3] * len(texts)
    assert all(rows * length <= budget or rows == 3 for rows, length in shapes), shapes
    first_pass = {}
    for rows, length in shapes:  # the first pass of each band holds all of its sentences
        first_pass[length] = max(first_pass.get(length, 0), rows)
    assert max(first_pass.values()) > 2 * first_pass[max(first_pass)], first_pass  # shorter: more rows a pass

    shapes.clear()
    budgeted = TeacherLabeler(teacher, tokenizer, batch_size=4096, max_tokens=budget).predict(texts)
    assert all(rows * length <= budget for rows, length in shapes) and len(shapes) > 1
    plain = TeacherLabeler(teacher, tokenizer, batch_size=4096).predict(texts)
    np.testing.assert_allclose(budgeted, plain, atol=1e-5)


def test_bands_are_pipelined_so_the_host_renders_while_the_device_computes(tokenizer, monkeypatch):
    """A band's search is queued before the band before it is read back and rendered (on a GPU the host then
    renders while the device computes); each band is read back once, and the samples are those of a run without
    the pipeline (the same bands computed in the same order)."""
    from mmel_hf.augment import fill_mask
    from mmel_hf.augment.fill_mask import FillMaskAugmenter

    from builders import make_tiny_mlm

    texts = [" ".join(["film"] * n) for n in (30, 29, 12, 11, 4, 3)]
    augmenter = FillMaskAugmenter(make_tiny_mlm(tokenizer), tokenizer, num_augmented=2, batch_size=4)
    events = []
    search, collect = FillMaskAugmenter._search, fill_mask._Launched.collect

    def spy_search(self, items, progress=None):
        events.append(("search", len(items[0].input_ids)))
        return search(self, items, progress)

    def spy_collect(self):
        events.append(("collect", self.lengths[0]))
        return collect(self)

    monkeypatch.setattr(FillMaskAugmenter, "_search", spy_search)
    monkeypatch.setattr(fill_mask._Launched, "collect", spy_collect)
    pipelined = augmenter.augment(texts, range(len(texts)))
    searched = [length for kind, length in events if kind == "search"]
    assert len(searched) >= 3 and [length for kind, length in events if kind == "collect"] == searched
    for band, length in enumerate(searched[:-1]):  # band k+1 is queued before band k is read back
        assert events.index(("search", searched[band + 1])) < events.index(("collect", length)), events
    monkeypatch.undo()
    one_by_one = []
    for band in fill_mask.length_bands([len(augmenter._pieces([t])[0]) for t in texts], 2):
        one_by_one += augmenter.augment([texts[i] for i in band], band)
    assert pipelined == one_by_one
