"""Moved to :mod:`mmel_hf.training_args`; this path keeps working, with a DeprecationWarning, for one release."""

from mmel_hf._moved import alias

alias(__name__)
