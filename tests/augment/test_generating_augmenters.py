"""back-translation and generate: seeded sampling that no batch changes, de-duplicated candidates, the whole job.

The models are tiny random-weight BART and GPT-2 speaking the bert-base-uncased vocabulary: their samples are
nonsense, the plumbing (batching, seeds, de-duplication, fingerprints, the CLI into the trainer) is real."""

import json

import pytest
import torch
from datasets import load_from_disk

from mmel_hf.augment.generation import SeededGumbel, example_keys, generate_texts
from mmel_hf.schema import augmented_column

from builders import make_tiny_causal, make_tiny_seq2seq

TEXTS = ["a fine film", "the plot is thin but the cast is great", "dull", "an honest and moving story of two friends"]


@pytest.fixture(scope="module")
def generators(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("generators")
    folders = {}
    for name, build in (("forward", make_tiny_seq2seq), ("causal", make_tiny_causal)):
        folders[name] = root / name
        build(tokenizer, seed=1).save_pretrained(folders[name])
        tokenizer.save_pretrained(folders[name])
    folders["backward"] = root / "backward"
    make_tiny_seq2seq(tokenizer, seed=2).save_pretrained(folders["backward"])
    tokenizer.save_pretrained(folders["backward"])
    return {k: str(v) for k, v in folders.items()}


def test_seeded_gumbel_samples_from_the_softmax():
    """Greedy decoding over scores + the hashed Gumbel noise is a draw from softmax(scores / temperature)."""
    probabilities = torch.tensor([0.6, 0.25, 0.1, 0.05])
    keys = torch.tensor(example_keys(3, range(4000), 5, 0))
    sampler = SeededGumbel(keys, start=1)
    scores = sampler(torch.zeros(len(keys), 1, dtype=torch.long), probabilities.log().expand(len(keys), -1))
    frequencies = torch.bincount(scores.argmax(dim=-1), minlength=4).float() / len(keys)
    assert torch.allclose(frequencies, probabilities, atol=0.015), frequencies
    hot = SeededGumbel(keys, start=1, temperature=0.1)(torch.zeros(len(keys), 1, dtype=torch.long),
                                                       probabilities.log().expand(len(keys), -1))  # fmt: skip
    assert (hot.argmax(dim=-1) == 0).float().mean() > 0.99  # a low temperature is nearly greedy
    top = SeededGumbel(keys, start=1, top_k=2)(torch.zeros(len(keys), 1, dtype=torch.long),
                                               probabilities.log().expand(len(keys), -1))  # fmt: skip
    assert set(top.argmax(dim=-1).tolist()) == {0, 1}


@pytest.mark.parametrize("kind", ["forward", "causal"])
def test_a_samples_texts_depend_on_its_key_alone_not_on_its_batch(generators, kind):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    cls = AutoModelForSeq2SeqLM if kind == "forward" else AutoModelForCausalLM
    model, tokenizer = cls.from_pretrained(generators[kind]).eval(), AutoTokenizer.from_pretrained(generators[kind])
    keys = example_keys(0, range(len(TEXTS)), 1, 0)
    together = generate_texts(model, tokenizer, TEXTS, keys, max_new_tokens=8, batch_size=4)
    alone = [generate_texts(model, tokenizer, [t], [k], max_new_tokens=8, batch_size=1)[0] for t, k in zip(TEXTS, keys)]
    assert together == alone and len({t[0] for t in together}) > 1
    other = generate_texts(model, tokenizer, TEXTS, example_keys(1, range(len(TEXTS)), 1, 0), max_new_tokens=8)
    assert other != together  # another seed, other draws


def augment(capsys, argv):
    from augment_cli.augment import main

    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_back_translation_through_the_cli_into_the_trainer(models, generators, rte_dir, tmp_path, capsys):
    from augment_cli.train import main as train_main

    out = tmp_path / "bt"
    argv = ["--task", "rte", "--data-dir", str(rte_dir), "--teacher", models[1], "--cache-dir", str(tmp_path / "cache"),
            "--no-progress", "--augmenter", "back-translation", "--translation-models", generators["forward"],
            generators["backward"], "--group-size", "3", "--max-length", "12", "--output-dir", str(out)]  # fmt: skip
    code, printed, err = augment(capsys, argv)
    assert code == 0, err
    summary = json.loads(printed.strip().splitlines()[-1])
    train = load_from_disk(str(out))["train"]
    groups = train[augmented_column("sentence1")]
    assert all(1 <= len(g) <= 2 for g in groups) and sum(map(len, groups)) == summary["augmented_samples"]
    for original, group in zip(train["sentence1"], groups):
        assert all(s.strip() and s.lower() != original.lower() for s in group) and len(set(group)) == len(group)
    assert set(summary["removed"]) == {"same_as_original", "repeated", "empty"}
    made = json.loads(train.info.description)["augmenter"]
    assert made["augmenter"] == "back-translation" and made["models"] == ["local:forward", "local:backward"]
    assert str(tmp_path) not in train.info.description

    again = augment(capsys, argv)  # the same command: the cached result
    assert again[0] == 0 and json.loads(again[1].strip().splitlines()[-1])["cache_hit"]
    reseeded = augment(capsys, [*argv[:-1], str(tmp_path / "bt-seed"), "--seed", "7"])  # another seed: recomputed
    assert reseeded[0] == 0 and not json.loads(reseeded[1].strip().splitlines()[-1])["cache_hit"]

    code = train_main(["--task", "rte", "--augmented", str(out), "--model", models[0], "--num-layers", "1",
                       "--mmel-loss", "hard", "--max-steps", "2", "--per-device-train-batch-size", "4",
                       "--output-dir", str(tmp_path / "student"), "--use-cpu", "true", "--disable-tqdm", "true",
                       "--no-save-model"])  # fmt: skip
    assert code == 0


def test_paraphrases_from_a_causal_model_with_a_chat_template(models, generators, rte_dir, tmp_path, capsys):
    from transformers import AutoTokenizer

    from mmel_hf.augment import AugmentConfig, run_augmentation

    chat = tmp_path / "chat-model"
    tokenizer = AutoTokenizer.from_pretrained(generators["causal"])
    tokenizer.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant]"
    tokenizer.save_pretrained(chat)
    make_tiny_causal(tokenizer, seed=1).save_pretrained(chat)
    seen = []
    import mmel_hf.augment.generation as generation

    real = generation.generate_texts
    generation.generate_texts = lambda model, tok, prompts, *a, **k: seen.extend(prompts) or real(model, tok, prompts,
                                                                                                  *a, **k)  # fmt: skip
    try:
        result = run_augmentation(AugmentConfig(task="rte", data_dir=str(rte_dir), teacher=models[1],
                                                augmenter="generate", generator_model=str(chat), group_size=3,
                                                max_length=12, cache_dir=str(tmp_path / "cache"), progress=False,
                                                prompt_template="Say it again: {text}"))  # fmt: skip
    finally:
        generation.generate_texts = real
    assert seen and all(p.startswith("[user] Say it again: ") and p.endswith("[assistant]") for p in seen)
    train = result.dataset["train"]
    assert all("\n" not in s for g in train[augmented_column("sentence2")] for s in g)
    made = json.loads(train.info.description)["augmenter"]
    assert (
        made["augmenter"] == "generate" and made["chat_template"] and made["prompt_template"] == "Say it again: {text}"
    )


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--augmenter", "generate"], "needs --generator-model"),
        (["--augmenter", "back-translation"], "needs --translation-models"),
        (
            ["--augmenter", "generate", "--generator-model", "x", "--translation-models", "a", "b"],
            "--translation-models",
        ),
        (["--augmenter", "back-translation", "--translation-models", "a", "b", "--ratio", "0.2"], "--ratio"),
        (["--temperature", "0.5"], "--temperature"),  # fill-mask does not sample
        (
            ["--augmenter", "back-translation", "--translation-models", "a", "b", "--source-language", "en"],
            "go together",
        ),
    ],
)
def test_options_of_another_augmenter_are_refused(rte_dir, tmp_path, capsys, flags, message):
    from augment_cli.augment import main

    with pytest.raises(SystemExit) as exit_:
        main(["--task", "rte", "--data-dir", str(rte_dir), "--label-source", "original", *flags])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 2 and message in last, last


# -- eda: EDA's word edits from nlpaug -------------------------------------------------------------------------


def test_eda_edits_are_seeded_per_row_and_leave_the_callers_random_state_alone(rte_dir, tmp_path):
    import random

    import numpy as np

    pytest.importorskip("nlpaug")
    from mmel_hf.augment import AugmentConfig, run_augmentation
    from mmel_hf.augment.eda import EdaAugmenter

    augmenter = EdaAugmenter(["swap", "delete"], alpha=0.3, num_augmented=3, seed=5)
    texts = ["the quick brown fox jumps over the lazy dog", "a fine and honest film about two old friends"]
    random.seed(1)
    np.random.seed(1)
    before = (random.random(), np.random.rand())
    random.seed(1)
    np.random.seed(1)
    together = augmenter.augment_rows([texts], [10, 11])
    assert (random.random(), np.random.rand()) == before  # the caller's random state is as it was
    assert augmenter.augment_rows([texts[1:]], [11]) == together[1:]  # a row's samples: its own, on any block
    for text, group in zip(texts, together):
        assert 1 <= len(group) <= 3 and all(s[0] != text for s in group)
        words = sorted(text.split())  # a swap keeps the words (nlpaug may capitalise the first), a deletion drops some
        assert all(sorted(s[0].lower().split()) == words or len(s[0].split()) < len(words) for s in group), group

    result = run_augmentation(AugmentConfig(task="rte", data_dir=str(rte_dir), label_source="original",
                                            augmenter="eda", eda_alpha=0.3, group_size=3,
                                            cache_dir=str(tmp_path / "cache"), progress=False))  # fmt: skip
    made = json.loads(result.dataset["train"].info.description)["augmenter"]
    assert made["augmenter"] == "eda" and made["operations"] == ["swap", "delete"]
    assert sum(map(len, result.dataset["train"][augmented_column("sentence1")])) == result.summary["augmented_samples"]


def test_eda_synonyms_without_the_wordnet_lexicon_is_one_clear_error(monkeypatch):
    pytest.importorskip("nlpaug")
    import sys

    from mmel_hf.augment.eda import EdaAugmenter
    from mmel_hf.errors import DataError

    class NoLexicon:
        class data:
            @staticmethod
            def find(name):
                raise LookupError(name)

    monkeypatch.setitem(sys.modules, "nltk", NoLexicon)
    with pytest.raises(DataError, match="needs the WordNet lexicon, which is not installed"):
        EdaAugmenter(["synonym"])
    with pytest.raises(DataError, match="--eda-operations insert needs the WordNet lexicon"):
        EdaAugmenter(["insert"])
    with pytest.raises(ValueError, match="choose from swap, delete, synonym, insert"):
        EdaAugmenter(["shuffle"])


def test_eda_random_insertion_puts_a_synonym_of_a_word_of_the_text_somewhere_in_it():
    """EDA's insertion over a lexicon (WordNet in use; a fixed one here, which the test can check against)."""
    import random

    from mmel_hf.augment.eda import SynonymInsertion

    class Lexicon:
        table = {"film": ["movie", "picture"], "good": ["fine"], "plot": ["story_line"]}

        def predict(self, word, pos=None):
            return self.table.get(word, [])

    from collections import Counter

    insertion = SynonymInsertion(alpha=0.25, lexicon=Lexicon())
    text = "a good film with a thin plot"
    originals, seen = text.split(), set()
    for seed in range(20):
        random.seed(seed)
        words = insertion.augment(text).split()
        remaining = iter(words)
        assert all(word in remaining for word in originals)  # the text's words, in their order
        extra = Counter(words) - Counter(originals)  # round(0.25 x 7) = 2 synonyms ("story line" is two words)
        assert set(extra) <= {"movie", "picture", "fine", "story", "line"} and 2 <= sum(extra.values()) <= 4
        seen.update(extra)
    assert seen == {"movie", "picture", "fine", "story", "line"}  # random words, random synonyms


@pytest.mark.parametrize("flags", [["--augmenter", "eda", "--eda-alpha", "0.3"], ["--augmenter", "generate"]])
def test_eda_and_generate_through_the_cli_into_the_trainer(models, generators, rte_dir, tmp_path, capsys, flags):
    """Every augmenter's dataset trains MMEL-H through mmel-train, as fill-mask's does."""
    from augment_cli.train import main as train_main

    if "eda" in flags:
        pytest.importorskip("nlpaug")
    else:
        flags = [*flags, "--generator-model", generators["causal"], "--max-length", "12"]
    out = tmp_path / "augmented"
    code, _, err = augment(capsys, ["--task", "rte", "--data-dir", str(rte_dir), "--teacher", models[1], "--no-progress",
                                    "--cache-dir", str(tmp_path / "cache"), "--group-size", "3", *flags,
                                    "--output-dir", str(out)])  # fmt: skip
    assert code == 0, err
    assert sum(map(len, load_from_disk(str(out))["train"][augmented_column("sentence1")])) > 0
    code = train_main(["--task", "rte", "--augmented", str(out), "--model", models[0], "--num-layers", "1",
                       "--mmel-loss", "hard", "--max-steps", "2", "--per-device-train-batch-size", "4",
                       "--output-dir", str(tmp_path / "student"), "--use-cpu", "true", "--disable-tqdm", "true",
                       "--no-save-model"])  # fmt: skip
    assert code == 0
