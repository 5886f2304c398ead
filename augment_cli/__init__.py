"""Console entry points of mmel_hf: thin shells over the library."""

# Each console script and the module whose ``main`` (and ``make_parser``) it runs: the table setup.cfg's
# console_scripts install (tested), the CLI tests and the docs' generated CLI reference read.
COMMANDS = {
    "mmel-augment": "augment_cli.augment",
    "mmel-train": "augment_cli.train",
    "mmel-study": "augment_cli.study",
    "mmel-main": "augment_cli.main_job",
    "mmel-train-vision": "augment_cli.train_vision",
}
