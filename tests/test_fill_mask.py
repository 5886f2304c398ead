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


def reference(model, tokenizer, augmenter, text, example_id, search):
    """Algorithm 2 / beam search transcribed literally: one sequence per forward pass, full logits."""
    pieces = tokenizer(text, add_special_tokens=False)["input_ids"]
    order = (sample_positions(len(pieces), augmenter.ratio, augmenter.seed, example_id) + 1).tolist()
    masked = [tokenizer.cls_token_id, *pieces, tokenizer.sep_token_id]
    for p in order:
        masked[p] = tokenizer.mask_token_id

    def log_probs(ids, position):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, position].float()
        banned = augmenter._banned_at_start if position == 1 else augmenter._banned
        return torch.log_softmax(logits.masked_fill(banned, float("-inf")), -1)

    width = augmenter.num_augmented
    first = log_probs(masked, order[0]).topk(width)
    beams = []
    for score, token in zip(first.values.tolist(), first.indices.tolist()):
        z = list(masked)
        z[order[0]] = token
        beams.append((score, z))
    for p in order[1:]:
        if search == "greedy":  # line 6 of Algorithm 2: the most likely word, sample by sample
            beams = [(s, [*z[:p], int(log_probs(z, p).argmax()), *z[p + 1:]]) for s, z in beams]
        else:
            candidates = []
            for s, z in beams:
                lp = log_probs(z, p)
                top = lp.topk(width)
                candidates += [(s + v, [*z[:p], t, *z[p + 1:]]) for v, t in zip(top.values.tolist(), top.indices.tolist())]
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
    augmenter = FillMaskAugmenter(mlm, tokenizer, num_augmented=4, ratio=0.4, search=search, seed=5, batch_size=8,
                                  render="decode")  # the pieces as the literal transcription writes them
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
        filled = augmenter._search([item])[0]
        assert len({tuple(ids) for ids in filled}) == 4  # the i-th most likely token at p_1 differs per sample
        for ids in filled:
            content = ids[1:-1]
            assert all(content[i] == pieces[i] for i in range(len(pieces)) if i not in positions)
            assert not augmenter._banned[torch.tensor(content)].any()
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
        tokenizer(second[1], add_special_tokens=False)["input_ids"])
    assert len(item.fill_order) == num_positions(total, 0.4)
    assert item.separator not in item.fill_order and 0 not in item.fill_order


def test_long_sentences_keep_their_tail(tokenizer, mlm):
    text = " ".join(["word"] * 40) + " the end"
    augmenter = FillMaskAugmenter(mlm, tokenizer, num_augmented=2, max_length=16)
    for (sample,) in augmenter.augment([text])[0]:
        assert sample.endswith("word word the end")


@pytest.mark.parametrize(
    "kwargs,match",
    [({"num_augmented": 0}, "num_augmented"), ({"ratio": 0.0}, "ratio"), ({"ratio": 1.5}, "ratio"),
     ({"search": "sample"}, "search"), ({"precision": "int8"}, "precision")],
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
    assert augmenter.round_trip(texts) == texts  # a sample that changes nothing is the original, character for character
    for example_id, (text, samples, decoded) in enumerate(zip(texts, augmenter.augment(texts), decoding.augment(texts))):
        pieces = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        changed = set(sample_positions(len(pieces["input_ids"]), 0.4, 1, example_id).tolist())
        kept = [text[a:b] for i, (a, b) in enumerate(pieces["offset_mapping"]) if i not in changed]
        for (sample,), (plain,) in zip(samples, decoded):
            cursor = 0
            for span in kept:  # every unchanged piece keeps its characters, in order (case and accents included)
                cursor = sample.index(span, cursor) + len(span)
            # The same pieces: rendering changes how the sample is written, never what Algorithm 2 chose.
            assert sample.lower().replace(" ", "").replace("é", "e") == plain.replace(" ", "")
