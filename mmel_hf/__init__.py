"""mmel_hf: MMEL (Yi et al., ICLR 2021) as a drop-in extension of Hugging Face transformers."""

__version__ = "0.1.0"
