"""Builders for tests: tiny models from configs and small augmented datasets in the schema of mmel_hf.schema."""

import random

import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification

WORDS = {
    "good": ["great", "fine", "lovely", "superb"],
    "bad": ["awful", "poor", "dull", "weak"],
    "film": ["movie", "picture", "story", "show"],
}
POSITIVE = ["a good film", "the acting is good", "good fun for the whole family", "a good and honest film"]
NEGATIVE = ["a bad film", "the plot is bad", "bad jokes and a bad ending", "this film is bad"]


def augment(sentence: str, rng: random.Random, count: int) -> list[str]:
    """Word substitutions from a fixed table: stand-ins for fill-mask samples."""
    samples = []
    for _ in range(count):
        words = [rng.choice(WORDS[w]) if w in WORDS and rng.random() < 0.7 else w for w in sentence.split()]
        samples.append(" ".join(words))
    return samples


def make_augmented_dataset(num_rows=16, seed=0, regression=False, ragged=True, num_augmented=3, pair=False):
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    rows = {"sentence": [], "label": [], "augmented_sentence": [], "teacher_original": [], "teacher_augmented": []}
    if pair:
        rows.update({"question": [], "augmented_question": []})
    for i in range(num_rows):
        positive = i % 2 == 0
        sentence = rng.choice(POSITIVE if positive else NEGATIVE)
        count = rng.randint(0, num_augmented) if ragged else num_augmented
        rows["sentence"].append(sentence)
        rows["augmented_sentence"].append(augment(sentence, rng, count))
        if pair:
            rows["question"].append("is it good ?")
            rows["augmented_question"].append(["is it fine ?"] * count)
        if regression:
            rows["label"].append(4.0 if positive else 1.0)
            values = (torch.rand(count + 1, generator=generator) * 2 + (3.0 if positive else 0.5)).tolist()
            rows["teacher_original"].append([values[0]])
            rows["teacher_augmented"].append([[v] for v in values[1:]])
        else:
            rows["label"].append(int(positive))
            probs = torch.softmax(torch.randn(count + 1, 2, generator=generator) * 2, -1).tolist()
            rows["teacher_original"].append(probs[0])
            rows["teacher_augmented"].append(probs[1:])
    if pair:  # the model's order: question first
        order = ["question", "sentence", "label", "augmented_question", "augmented_sentence"]
        rows = {k: rows[k] for k in order + ["teacher_original", "teacher_augmented"]}
    return Dataset.from_dict(rows)


def make_tiny_bert(tokenizer, num_labels=2, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertForSequenceClassification(config)


def make_tiny_mlm(tokenizer, seed=0):
    from transformers import BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    return BertForMaskedLM(config).eval()


RTE_HEADER = "index\tsentence1\tsentence2\tlabel"
PAIRS = [
    ("The cat sat on the mat.", "A cat was sitting.", "entailment"),
    ("No weapons were found in the house.", "Weapons were found.", "not_entailment"),
    ("The film opened in Paris last year.", "The film opened in France.", "entailment"),
    ("She sold her old car to a friend.", "She bought a car.", "not_entailment"),
    ("Rain fell all day in the city.", "It was dry.", "not_entailment"),
]


def write_rte_dir(folder):
    """A tiny GLUE RTE folder (train.tsv with 10 rows, dev.tsv with 3) in GLUE's own layout."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{i}\t{a}\t{b}\t{label}" for i, (a, b, label) in enumerate(PAIRS * 2)]
    (folder / "train.tsv").write_text("\n".join([RTE_HEADER, *rows]) + "\n")
    (folder / "dev.tsv").write_text("\n".join([RTE_HEADER, *rows[:3]]) + "\n")
    return folder
