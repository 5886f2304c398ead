"""Memory-bounded groups (mmel_chunk_size): the gradients of the one-pass loss, chunk by chunk."""

import pytest
import torch

from mmel_hf import MMELDataCollator, MMELTrainer

from builders import make_args, make_augmented_dataset, make_tiny_bert, one_sgd_step, parameters, run_under_torchrun


def sgd_gradients(tmp_path, tokenizer, dataset, mode, chunk_size, accumulation=2, regression=False):
    """The summed gradient of one optimiser step, read off an SGD step with learning rate 1."""
    model = make_tiny_bert(tokenizer, num_labels=1 if regression else 2, seed=1)
    before = parameters(model)
    after = one_sgd_step(
        tmp_path, tokenizer, dataset, 4, accumulation, mode, model=model, learning_rate=1.0, mmel_chunk_size=chunk_size
    )
    return {name: before[name] - value for name, value in after.items()}


@pytest.mark.parametrize("mode", ["hard", "soft", "uniform", "max"])
def test_chunked_gradients_equal_the_one_pass_gradients(tmp_path, tokenizer, mode):
    # Ragged groups of 1..4 samples, 2 accumulated micro-batches of 4 groups; chunks of 3 cut groups apart.
    dataset = make_augmented_dataset(num_rows=8, seed=3)
    one_pass = sgd_gradients(tmp_path, tokenizer, dataset, mode, chunk_size=None)
    chunked = sgd_gradients(tmp_path, tokenizer, dataset, mode, chunk_size=3)
    assert one_pass["classifier.weight"].abs().sum() > 0
    for name in one_pass:
        torch.testing.assert_close(
            chunked[name], one_pass[name], rtol=1e-5, atol=1e-7, msg=lambda m, n=name: f"{n}: {m}"
        )


def test_chunked_regression_gradients_equal_the_one_pass_gradients(tmp_path, tokenizer):
    dataset = make_augmented_dataset(num_rows=8, seed=4, regression=True)
    one_pass = sgd_gradients(tmp_path, tokenizer, dataset, "soft", chunk_size=None, regression=True)
    chunked = sgd_gradients(tmp_path, tokenizer, dataset, "soft", chunk_size=2, regression=True)
    for name in one_pass:
        torch.testing.assert_close(chunked[name], one_pass[name], rtol=1e-5, atol=1e-7)


def grouped_batch(tokenizer, dataset):
    collator = MMELDataCollator(tokenizer, text_columns=("sentence",))
    return collator([dataset[i] for i in range(len(dataset))])


def test_dropout_masks_are_replayed_in_the_recomputed_chunks(tmp_path, tokenizer):
    # With dropout the chunked loss must be differentiated through the very masks its forward pass drew:
    # the same as running the chunks with gradients kept (no checkpointing) from the same random state.
    dataset = make_augmented_dataset(num_rows=6, seed=5, ragged=False)
    batch = grouped_batch(tokenizer, dataset)
    model = make_tiny_bert(tokenizer, seed=2, dropout=0.3).train()
    trainer = MMELTrainer(
        model=model, args=make_args(tmp_path, mmel_chunk_size=5), train_dataset=dataset, processing_class=tokenizer
    )

    torch.manual_seed(11)
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    replayed = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    trainer.args.mmel_chunk_size = None
    original_forward = trainer._forward

    def kept_chunks(model, inputs):  # the same chunks, every activation kept
        size = inputs["input_ids"].shape[0]
        logits = torch.cat([model(**{k: v[s : s + 5] for k, v in inputs.items()}).logits for s in range(0, size, 5)])
        return logits, {"logits": logits}

    trainer._forward = kept_chunks
    torch.manual_seed(11)
    expected_loss = trainer.compute_loss(model, dict(batch))
    expected_loss.backward()
    trainer._forward = original_forward
    torch.testing.assert_close(loss, expected_loss)
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(replayed[name], parameter.grad, rtol=1e-5, atol=1e-7)
    # ... and differently from one pass over the whole batch, which draws other masks.
    model.zero_grad()
    torch.manual_seed(11)
    assert not torch.allclose(trainer.compute_loss(model, dict(batch)), loss)


def test_chunked_evaluation_equals_one_pass(tmp_path, tokenizer, tiny_bert, augmented_dataset):
    results = []
    for chunk_size in (None, 3):
        trainer = MMELTrainer(
            model=tiny_bert,
            args=make_args(tmp_path, mmel_chunk_size=chunk_size),
            train_dataset=augmented_dataset,
            processing_class=tokenizer,
        )
        results.append(trainer.predict(augmented_dataset))
    torch.testing.assert_close(
        torch.tensor(results[1].predictions), torch.tensor(results[0].predictions), rtol=1e-5, atol=1e-6
    )
    assert results[1].metrics["test_loss"] == pytest.approx(results[0].metrics["test_loss"], rel=1e-5)


def test_batch_norm_models_are_refused(tmp_path, tokenizer, augmented_dataset):
    class WithBatchNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(tokenizer.vocab_size, 8)
            self.norm = torch.nn.BatchNorm1d(8)
            self.head = torch.nn.Linear(8, 2)

        def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
            return {"logits": self.head(self.norm(self.embedding(input_ids).mean(1)))}

    with pytest.raises(ValueError, match="BatchNorm.*'norm'"):  # at construction, before any work
        MMELTrainer(
            model=WithBatchNorm(),
            args=make_args(tmp_path, mmel_chunk_size=2),
            train_dataset=augmented_dataset,
            processing_class=tokenizer,
        )
    trainer = MMELTrainer(
        model=WithBatchNorm(), args=make_args(tmp_path), train_dataset=augmented_dataset, processing_class=tokenizer
    )
    trainer.args.mmel_chunk_size = 2  # set afterwards: refused at the first chunked step
    with pytest.raises(ValueError, match="BatchNorm.*'norm'"):
        trainer.train()


@pytest.mark.slow
def test_chunked_gradients_under_two_ddp_processes(tmp_path):
    # The chunks run inside one DistributedDataParallel forward: ranks with different numbers of chunks
    # neither hang nor change the reduced gradient.
    target = tmp_path / "gradients.pt"
    run_under_torchrun("ddp_chunked_step.py", target)
    found = torch.load(target)
    assert found["world_size"] == 2
    assert found["one_pass"]["classifier.weight"].abs().sum() > 0
    for name, expected in found["one_pass"].items():
        torch.testing.assert_close(found["chunked"][name], expected, rtol=1e-5, atol=1e-7)


def test_checkpointed_chunks_hand_their_tensors_to_checkpoint_positionally(tmp_path, tokenizer, monkeypatch):
    """torch's non-reentrant checkpoint looks for the devices whose random state it saves (CUDA's) among its
    positional arguments only: keyword tensors would let CUDA dropout be redrawn in the recomputation."""
    import torch.utils.checkpoint as torch_checkpoint

    seen = []
    original = torch_checkpoint._infer_device_type

    def spy(*args):
        seen.append(sum(isinstance(a, torch.Tensor) for a in args))
        return original(*args)

    monkeypatch.setattr(torch_checkpoint, "_infer_device_type", spy)
    dataset = make_augmented_dataset(num_rows=4, seed=5, ragged=False)
    model = make_tiny_bert(tokenizer, seed=2, dropout=0.3).train()
    trainer = MMELTrainer(
        model=model, args=make_args(tmp_path, mmel_chunk_size=5), train_dataset=dataset, processing_class=tokenizer
    )
    trainer.compute_loss(model, dict(grouped_batch(tokenizer, dataset))).backward()
    assert seen and all(count >= 2 for count in seen)  # input_ids, attention_mask, ... of every chunk


def test_devices_whose_state_torch_does_not_save_are_replayed_by_the_chunks():
    """MPS: torch's checkpoint saves no state for it; the chunk replays it itself (tested with the CPU generator,
    which has the same get_rng_state/set_rng_state interface)."""
    from mmel_hf.chunking import _replaying, _unsaved_device_rng

    run = _replaying(lambda size: torch.rand(size), ["size"], rng=torch)
    torch.manual_seed(0)
    first = run(3)
    torch.rand(7)  # other work between the forward pass and the backward pass
    after_other_work = torch.get_rng_state()
    torch.testing.assert_close(run(3), first, rtol=0, atol=0)  # the recomputation draws the same numbers
    assert torch.equal(torch.get_rng_state(), after_other_work)  # and leaves the generator where it was
    plain = _replaying(lambda size: torch.rand(size), ["size"])
    assert not torch.equal(plain(3), plain(3))  # without a module to replay, nothing is replayed
    assert _unsaved_device_rng([torch.ones(1), 3]) is None  # CPU tensors: torch's checkpoint saves the CPU state
    assert _unsaved_device_rng([torch.ones(1, device="meta")]) is None


def test_chunks_under_torch_compile_are_refused(tmp_path):
    """torch.compile's wrapper stays bound to the DDP object while the chunks patch the inner model's forward:
    every chunk and recomputation would call DDP.forward again (a deadlock with 2 gloo ranks): refused."""
    with pytest.raises(ValueError, match="mmel_chunk_size cannot be combined with torch_compile=True"):
        make_args(tmp_path, mmel_chunk_size=4, torch_compile=True, torch_compile_backend="eager")
    assert make_args(tmp_path, torch_compile=True, torch_compile_backend="eager").torch_compile  # alone: allowed


def test_chunks_under_fsdp_zero3_or_dataparallel_are_refused(tmp_path, tokenizer, monkeypatch):
    """FSDP and ZeRO-3 gather the sharded parameters per forward (once per chunk, and a deadlock when ranks hold
    different chunk counts); DataParallel's replicas would copy a forward bound to the GPU-0 module."""
    from types import SimpleNamespace

    dataset = make_augmented_dataset(num_rows=2, seed=0)
    trainer = MMELTrainer(
        model=make_tiny_bert(tokenizer),
        args=make_args(tmp_path, mmel_chunk_size=4),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer._refuse_chunks_under_sharding_or_replicas()  # one CPU process: allowed
    for engine, settings in (("FSDP", {"is_fsdp_enabled": True}), ("DeepSpeed ZeRO-3", {"is_deepspeed_enabled": True})):
        with monkeypatch.context() as patch:
            for name, value in settings.items():
                patch.setattr(trainer, name, value)
            patch.setattr(
                trainer.args,
                "hf_deepspeed_config",
                SimpleNamespace(config={"zero_optimization": {"stage": 3}}),
                raising=False,
            )
            with pytest.raises(ValueError, match=f"not supported under {engine}"):
                trainer._refuse_chunks_under_sharding_or_replicas()
    with monkeypatch.context() as patch:  # ZeRO-2 keeps whole parameters on every rank: chunks are fine
        patch.setattr(trainer, "is_deepspeed_enabled", True)
        patch.setattr(
            trainer.args,
            "hf_deepspeed_config",
            SimpleNamespace(config={"zero_optimization": {"stage": 2}}),
            raising=False,
        )
        trainer._refuse_chunks_under_sharding_or_replicas()
    with monkeypatch.context() as patch:
        patch.setattr(trainer.args, "_n_gpu", 2)
        with pytest.raises(ValueError, match="DataParallel"):
            trainer._refuse_chunks_under_sharding_or_replicas()
