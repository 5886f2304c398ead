"""Moved to :mod:`mmel_hf.da_long`; this path keeps working, with a DeprecationWarning, for one release."""

from mmel_hf._moved import alias

alias(__name__)
