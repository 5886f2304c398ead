"""The package version, in a module of its own so that modules of the package read it without importing the package."""

__version__ = "0.1.0"
