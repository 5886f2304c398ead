"""mmel_hf: MMEL (Yi et al., ICLR 2021) as a drop-in extension of Hugging Face transformers.

>>> from mmel_hf import MMELTrainer, MMELTrainingArguments  # instead of Trainer, TrainingArguments
"""

from .collator import MMELDataCollator
from .schema import AugmentedSchema, SchemaError, validate_augmented_dataset
from .trainer import MMELTrainer
from .training_args import MMELTrainingArguments
from .version import __version__

__all__ = [
    "AugmentedSchema",
    "MMELDataCollator",
    "MMELTrainer",
    "MMELTrainingArguments",
    "SchemaError",
    "__version__",
    "validate_augmented_dataset",
]
