"""Algorithm 2 (greedy) and beam search, batched, against a direct one-sentence-at-a-time transcription."""

import numpy as np
import pytest
import torch

from mmel_hf.augment.fill_mask import FillMaskAugmenter, num_positions, sample_positions

from builders import make_tiny_mlm

TEXTS = [
    "a good film with great acting",
    "the plot is bad",
    "dull",
    "this is a much longer sentence about a movie that nobody liked at all , sadly",
    "funny and warm",
]


@pytest.fixture(scope="module")
def mlm(tokenizer):
    return make_tiny_mlm(tokenizer)


def banned_tokens(tokenizer, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of ``width`` logits may never be predicted, and which not at a sentence's start, written from the
    rules alone (not from the augmenter's masks): special tokens, [UNK] and other bracketed tokens ([unused0] ...)
    never, nor the logits past the vocabulary (heads padded to a multiple of 8); ``##`` continuations not first."""
    never = torch.zeros(width, dtype=torch.bool)
    not_first = torch.zeros(width, dtype=torch.bool)
    specials = set(tokenizer.all_special_tokens) | {tokenizer.unk_token}
    for token, index in tokenizer.get_vocab().items():  # the vocabulary as a dict, not id by id
        if token in specials or (token.startswith("[") and token.endswith("]")):
            never[index] = True
        if token.startswith("##"):
            not_first[index] = True
    never[len(tokenizer.get_vocab()) :] = True
    return never, never | not_first


def test_the_banned_tokens_are_the_rules(tokenizer, mlm):
    augmenter = FillMaskAugmenter(mlm, tokenizer, num_augmented=4)
    never, at_start = banned_tokens(tokenizer, augmenter._banned.shape[0])
    assert torch.equal(augmenter._banned.cpu(), never) and torch.equal(augmenter._banned_at_start.cpu(), at_start)
    assert never[tokenizer.mask_token_id] and never[tokenizer.unk_token_id] and not never[tokenizer.vocab["film"]]
    assert at_start[tokenizer.vocab["##s"]] and not never[tokenizer.vocab["##s"]]


def reference(model, tokenizer, augmenter, text, example_id, search):
    """Algorithm 2 / beam search transcribed literally: one sequence per forward pass, full logits, and the banned
    tokens from the rules (:func:`banned_tokens`), not from the augmenter."""
    pieces = tokenizer(text, add_special_tokens=False)["input_ids"]
    order = (sample_positions(len(pieces), augmenter.ratio, augmenter.seed, example_id) + 1).tolist()
    masked = [tokenizer.cls_token_id, *pieces, tokenizer.sep_token_id]
    for p in order:
        masked[p] = tokenizer.mask_token_id

    def log_probs(ids, position):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, position].float()
        never, at_start = banned_tokens(tokenizer, logits.shape[-1])
        return torch.log_softmax(logits.masked_fill(at_start if position == 1 else never, float("-inf")), -1)

    width = augmenter.num_augmented
    first = log_probs(masked, order[0]).topk(width)
    beams = []
    for score, token in zip(first.values.tolist(), first.indices.tolist()):
        z = list(masked)
        z[order[0]] = token
        beams.append((score, z))
    for p in order[1:]:
        if search == "greedy":  # line 6 of Algorithm 2: the most likely word, sample by sample
            beams = [(s, [*z[:p], int(log_probs(z, p).argmax()), *z[p + 1 :]]) for s, z in beams]
        else:
            candidates = []
            for s, z in beams:
                lp = log_probs(z, p)
                top = lp.topk(width)
                candidates += [
                    (s + v, [*z[:p], t, *z[p + 1 :]]) for v, t in zip(top.values.tolist(), top.indices.tolist())
                ]
            beams = sorted(candidates, key=lambda c: -c[0])[:width]
    return [tokenizer.decode(z[1:-1], skip_special_tokens=True).strip() for _, z in beams]


def test_k_rounds_half_up_and_is_at_least_one():
    assert [num_positions(n, 0.4) for n in (1, 2, 3, 4, 5, 10)] == [1, 1, 1, 2, 2, 4]
    assert num_positions(5, 0.5) == 3 and num_positions(3, 0.5) == 2  # 2.5 -> 3, 1.5 -> 2
    assert num_positions(7, 1.0) == 7
    positions = sample_positions(10, 0.4, seed=3, example_id=42)
    assert len(set(positions.tolist())) == 4 and positions.max() < 10
    np.testing.assert_array_equal(positions, sample_positions(10, 0.4, seed=3, example_id=42))
    assert not np.array_equal(positions, sample_positions(10, 0.4, seed=3, example_id=43))


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_batched_search_equals_the_literal_transcription(tokenizer, mlm, search):
    augmenter = FillMaskAugmenter(
        mlm, tokenizer, num_augmented=4, ratio=0.4, search=search, seed=5, batch_size=8, render="decode"
    )  # the pieces as the literal transcription writes them
    got = augmenter.augment(TEXTS)
    for example_id, (text, samples) in enumerate(zip(TEXTS, got)):
        expected = reference(mlm, tokenizer, augmenter, text, example_id, search)
        assert [s[0] for s in samples] == expected, text


def test_only_the_sampled_positions_change_and_specials_are_never_predicted(tokenizer, mlm):
    augmenter = FillMaskAugmenter(mlm, tokenizer, num_augmented=4, ratio=0.4, seed=0)
    for example_id, (text, samples) in enumerate(zip(TEXTS, augmenter.augment(TEXTS))):
        pieces = tokenizer(text, add_special_tokens=False)["input_ids"]
        positions = set(sample_positions(len(pieces), 0.4, 0, example_id).tolist())
        item = augmenter._single(pieces, example_id, 0)
        filled = augmenter._search([item]).collect()[0]
        assert len({tuple(ids) for ids in filled}) == 4  # the i-th most likely token at p_1 differs per sample
        for ids in filled:
            content = ids[1:-1]
            assert all(content[i] == pieces[i] for i in range(len(pieces)) if i not in positions)
            assert not banned_tokens(tokenizer, len(tokenizer))[0][torch.tensor(content)].any()
            assert not tokenizer.convert_ids_to_tokens(content[0]).startswith("##")
        assert all("[UNK]" not in s[0] and "[MASK]" not in s[0] for s in samples)


def test_same_seed_same_output_whatever_the_batch_size(tokenizer, mlm):
    texts = TEXTS * 3
    ids = list(range(100, 100 + len(texts)))
    outputs = [FillMaskAugmenter(mlm, tokenizer, seed=7, batch_size=bs).augment(texts, ids) for bs in (4, 13, 64)]
    assert outputs[0] == outputs[1] == outputs[2]
    # An example's output depends on its id, not on its neighbours.
    alone = FillMaskAugmenter(mlm, tokenizer, seed=7).augment([texts[4]], [ids[4]])
    assert alone[0] == outputs[0][4]
    assert FillMaskAugmenter(mlm, tokenizer, seed=8).augment(texts, ids) != outputs[0]


def test_pairs_separately_and_concatenated(tokenizer, mlm):
    augmenter = FillMaskAugmenter(mlm, tokenizer, num_augmented=3, seed=2)
    first, second = ["is it a good film ?", "was it dull ?"], ["a good film", "the plot is bad and long"]
    separate = augmenter.augment(first, texts_pair=second)
    alone_first = augmenter.augment(first)
    assert [[s[0] for s in samples] for samples in separate] == [[s[0] for s in samples] for samples in alone_first]
    joint = augmenter.augment(first, texts_pair=second, separate=False)
    assert all(len(samples) == 3 and all(len(s) == 2 for s in samples) for samples in joint)
    # Positions are drawn over both sentences: k = round(0.4 * (L_a + L_b)) pieces change in total.
    item = augmenter._pair(*augmenter._pieces([first[1], second[1]]), 1)
    total = len(tokenizer(first[1], add_special_tokens=False)["input_ids"]) + len(
        tokenizer(second[1], add_special_tokens=False)["input_ids"]
    )
    assert len(item.fill_order) == num_positions(total, 0.4)
    assert item.separator not in item.fill_order and 0 not in item.fill_order


def test_long_sentences_keep_their_tail(tokenizer, mlm):
    text = " ".join(["word"] * 40) + " the end"
    augmenter = FillMaskAugmenter(mlm, tokenizer, num_augmented=2, max_length=16)
    for (sample,) in augmenter.augment([text])[0]:
        assert sample.endswith("word word the end")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_augmented": 0}, "num_augmented"),
        ({"ratio": 0.0}, "ratio"),
        ({"ratio": 1.5}, "ratio"),
        ({"search": "sample"}, "search"),
        ({"precision": "int8"}, "precision"),
    ],
)
def test_bad_options(tokenizer, mlm, kwargs, match):
    with pytest.raises(ValueError, match=match):
        FillMaskAugmenter(mlm, tokenizer, **kwargs)


def test_empty_text_is_refused(tokenizer, mlm):
    with pytest.raises(ValueError, match="example 1: empty text"):
        FillMaskAugmenter(mlm, tokenizer).augment(["fine", "   "])


def test_samples_read_like_their_originals(tokenizer, mlm):
    texts = ["Couldn't the Paris café open at $2.5 billion?", "@USAirways lost my bag... again!"]
    augmenter = FillMaskAugmenter(mlm, tokenizer, num_augmented=3, ratio=0.4, seed=1)
    decoding = FillMaskAugmenter(mlm, tokenizer, num_augmented=3, ratio=0.4, seed=1, render="decode")
    assert (
        augmenter.round_trip(texts) == texts
    )  # a sample that changes nothing is the original, character for character
    for example_id, (text, samples, decoded) in enumerate(
        zip(texts, augmenter.augment(texts), decoding.augment(texts))
    ):
        pieces = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        changed = set(sample_positions(len(pieces["input_ids"]), 0.4, 1, example_id).tolist())
        kept = [text[a:b] for i, (a, b) in enumerate(pieces["offset_mapping"]) if i not in changed]
        for (sample,), (plain,) in zip(samples, decoded):
            cursor = 0
            for span in kept:  # every unchanged piece keeps its characters, in order (case and accents included)
                cursor = sample.index(span, cursor) + len(span)
            # The same pieces: rendering changes how the sample is written, never what Algorithm 2 chose.
            assert sample.lower().replace(" ", "").replace("é", "e") == plain.replace(" ", "")


@pytest.mark.parametrize("family", ["distilbert", "electra", "modernbert"])
def test_heads_of_any_shape_run_only_where_tokens_are_filled(tokenizer, family):
    """MLMs without a cls/lm_head/predictions module (DistilBERT, ELECTRA, ModernBERT) no longer compute
    [rows, T, V] logits: the encoder output is cut to the filled positions inside the model's own forward, and the
    scores equal the full logits at those positions."""
    from transformers import AutoModelForMaskedLM, DistilBertConfig, ElectraConfig, ModernBertConfig

    vocab = tokenizer.vocab_size
    config = {
        "distilbert": lambda: DistilBertConfig(vocab_size=vocab, n_layers=1, dim=32, hidden_dim=64, n_heads=2),
        "electra": lambda: ElectraConfig(
            vocab_size=vocab,
            num_hidden_layers=1,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=2,
            embedding_size=16,
        ),
        "modernbert": lambda: ModernBertConfig(
            vocab_size=vocab,
            num_hidden_layers=1,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=2,
            pad_token_id=0,
            bos_token_id=101,
            eos_token_id=102,
            cls_token_id=101,
            sep_token_id=102,
            global_attn_every_n_layers=1,
        ),
    }[family]()
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(config).eval()
    augmenter = FillMaskAugmenter(model, tokenizer, num_augmented=2, ratio=0.5)
    assert augmenter._encoder is None  # the generic path
    encoded = tokenizer(["a good film about love", "a bad plot"], padding=True, return_tensors="pt")
    positions = torch.tensor([2, 1])
    at_start = torch.tensor([False, True])
    seen = []
    model.register_forward_hook(lambda module, args, output: seen.append(tuple(output.logits.shape)))
    scores = augmenter._scores(
        encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"], positions, at_start
    )
    assert seen == [(2, 1, model.config.vocab_size)]  # one position per row reached the head
    with torch.no_grad():
        full = model(**encoded).logits[torch.arange(2), positions]
    allowed = torch.isfinite(scores)
    torch.testing.assert_close(scores[allowed], full[allowed], rtol=1e-5, atol=1e-5)
    assert not allowed[1, augmenter._banned_at_start[: scores.shape[1]]].any()  # ## pieces banned at a start
    assert all(len(samples) == 2 for samples in augmenter.augment(["a good film about love", "a bad plot"]))


@pytest.mark.parametrize("ratio,length,k", [(0.35, 90, 32), (0.7, 45, 32), (0.7, 85, 60), (0.35, 85, 30), (0.5, 3, 2)])
def test_num_positions_rounds_exact_ties_up(ratio, length, k):
    assert num_positions(length, ratio) == k


def test_vocabulary_smaller_than_the_group_is_refused(tokenizer):
    mlm = make_tiny_mlm(tokenizer)
    with pytest.raises(ValueError, match="fewer than the 40000 augmented samples"):
        FillMaskAugmenter(mlm, tokenizer, num_augmented=40000)
