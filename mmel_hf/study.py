"""Moved to :mod:`mmel_hf.workflows.study`; this path keeps working, with a DeprecationWarning, for one release."""

import importlib
import sys
import warnings

warnings.warn(
    "mmel_hf.study moved to mmel_hf.workflows.study; the old path goes away in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = importlib.import_module(
    "mmel_hf.workflows.study"
)  # the same module object: attributes and patches shared
