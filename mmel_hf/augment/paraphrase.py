"""``--augmenter generate``: paraphrases from any causal or seq2seq language model, asked with a prompt template
(through the tokenizer's chat template where it has one).

Each text is put into the template (``{text}`` marks where), the model generates ``num_candidates`` answers by
seeded sampling (:class:`.generation.SeededGumbel`: the answers depend only on seed, row and column), and each
answer is cut to one sentence: at the first line break, then after the first sentence's end. Candidates equal to
the original or to each other are removed and counted; the first |B|-1 are kept.
"""

from __future__ import annotations

import re

from .generation import GeneratingAugmenter, GenerationSettings, example_keys

__all__ = ["DEFAULT_PROMPT", "ParaphraseAugmenter", "one_sentence"]

DEFAULT_PROMPT = "Paraphrase the sentence, keeping its meaning.\nSentence: {text}\nParaphrase:"
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z\"'(\[])")


def one_sentence(text: str) -> str:
    """The answer cut to one sentence: its first line, and in it the first sentence.

    >>> one_sentence(' A fine film. It has heart.\\nSentence: next')
    'A fine film.'
    """
    line = text.strip().split("\n", 1)[0].strip()
    return _SENTENCE_END.split(line, 1)[0].strip().strip('"').strip()


class ParaphraseAugmenter(GeneratingAugmenter):
    """Args:
    generator: ``(tokenizer, model)``, a causal LM (``AutoModelForCausalLM``) or a seq2seq one.
    prompt_template: the question, with ``{text}`` where the text goes.
    num_augmented, num_candidates, settings: as :class:`BackTranslationAugmenter`.
    identity: what the fingerprint hashes of the model."""

    name = "generate"

    def __init__(
        self,
        generator,
        prompt_template: str = DEFAULT_PROMPT,
        num_augmented: int = 4,
        seed: int = 0,
        num_candidates: int | None = None,
        settings: GenerationSettings | None = None,
        identity: dict | None = None,
    ):
        super().__init__(num_augmented, seed)
        if "{text}" not in prompt_template:
            raise ValueError(f"--prompt-template {prompt_template!r}: put {{text}} where the text goes")
        self.generator, self.prompt_template = generator, prompt_template
        self.num_candidates = num_candidates or 2 * num_augmented
        self.settings = settings or GenerationSettings()
        self._identity = identity or {}
        tokenizer = generator[0]
        self.chat = bool(getattr(tokenizer, "chat_template", None)) and not generator[1].config.is_encoder_decoder

    def prompt(self, text: str) -> str:
        question = self.prompt_template.format(text=text)
        if not self.chat:
            return question
        messages = [{"role": "user", "content": question}]
        return self.generator[0].apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def candidates(self, texts, example_ids, segment):
        n = self.num_candidates
        prompts = [self.prompt(text) for text in texts for _ in range(n)]
        keys = example_keys(self.seed, example_ids, n, segment)
        answers = self.settings.generate(self.generator, prompts, keys, add_special_tokens=not self.chat)
        flat = [one_sentence(found[0]) for found in answers]
        return [flat[i * n : (i + 1) * n] for i in range(len(texts))]

    def identity(self) -> dict:
        return {**self._identity, "prompt_template": self.prompt_template, "chat": self.chat}

    def describe(self) -> dict:
        return {
            "augmenter": self.name,
            "model": self._identity.get("model_name"),
            "prompt_template": self.prompt_template,
            "chat_template": self.chat,
            "candidates": self.num_candidates,
        }
