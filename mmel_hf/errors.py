"""Errors shared by the data loaders of text and images."""

__all__ = ["DataError"]


class DataError(ValueError):
    """Input data that cannot be used; the message names the file, row and column."""
