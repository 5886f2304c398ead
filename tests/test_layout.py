"""The package layout: workflows apart from the library, old import paths kept for one release."""

import importlib
import subprocess
import sys

from mmel_hf._moved import MOVED


def test_every_old_import_path_warns_and_is_the_new_module():
    """One fresh interpreter (none of the old paths imported yet) imports each old path in turn."""
    code = (
        "import importlib, warnings\n"
        "from mmel_hf._moved import MOVED\n"
        "for old, new in MOVED.items():\n"
        "    with warnings.catch_warnings(record=True) as caught:\n"
        "        warnings.simplefilter('always')\n"
        "        module = importlib.import_module(old)\n"
        "    assert module is importlib.import_module(new), (old, new)\n"
        "    assert any(issubclass(w.category, DeprecationWarning) and f'{old} moved to {new}' in str(w.message)\n"
        "               for w in caught), old\n"
        "print(len(MOVED))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) == len(MOVED) >= 12


def test_the_library_does_not_import_the_workflows():
    """Imports point down: the trainer, losses, collator, schema, augment and vision never reach into workflows/
    (the old-path aliases aside)."""
    import re
    from pathlib import Path

    package = Path(importlib.import_module("mmel_hf").__file__).parent
    aliases = {package / (old.split(".", 1)[1].replace(".", "/") + ".py") for old in MOVED}
    importing = re.compile(r"^\s*(from|import)\s+(mmel_hf\.|\.+)workflows\b", re.M)
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.relative_to(package).parts[0] != "workflows"
        and path not in aliases
        and importing.search(path.read_text())
    ]
    assert offenders == []


def _imports_of_the_package():
    """Each module of mmel_hf and the package modules it imports, function-local imports included (from the source)."""
    import ast
    from pathlib import Path

    package = Path(importlib.import_module("mmel_hf").__file__).parent
    modules = {}
    for path in package.rglob("*.py"):
        parts = ["mmel_hf", *path.relative_to(package).with_suffix("").parts]
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - max(node.level - 1, 0)] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {module for module in found if module in modules and module != name}
    return graph


def test_no_module_of_the_package_imports_itself_back():
    """No import cycle, function-local imports counted (they hid two): each strongly connected set is one module."""
    graph = _imports_of_the_package()
    index, low, stack, cycles = {}, {}, [], []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            cycle = []
            while not cycle or cycle[-1] != module:
                cycle.append(stack.pop())
            if len(cycle) > 1:
                cycles.append(sorted(cycle))

    for module in graph:
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_drop_in_library_never_imports_the_offline_pipeline():
    """The trainer and what it is made of (collator, losses, schema, model card, adapters ...) never import augment/:
    the two meet in the dataset contract (schema) alone."""
    graph = _imports_of_the_package()
    drop_in = [m for m in graph if m.count(".") == 1 or m.startswith("mmel_hf.losses")]
    drop_in = [m for m in drop_in if m not in ("mmel_hf._moved", "mmel_hf.augment", "mmel_hf.workflows", "mmel_hf.tasks",
                                               "mmel_hf.vision", "mmel_hf.embedded", "mmel_hf.templates")]  # fmt: skip
    offenders = {m: sorted(d for d in graph[m] if d.startswith("mmel_hf.augment")) for m in drop_in if m not in MOVED}
    assert {m: found for m, found in offenders.items() if found} == {}


def test_arguments_pickled_under_an_old_module_name_still_load(tmp_path):
    """training_args.bin of older runs names mmel_hf.mmel_config: resuming them still unpickles."""
    import pickle
    import warnings

    from mmel_hf import MMELTrainingArguments

    args = MMELTrainingArguments(output_dir=str(tmp_path), mmel_loss="soft", mmel_lambda_t=0.5, report_to="none")
    data = pickle.dumps(args, protocol=0)  # protocol 0 names classes as text lines: "cmodule\nName\n"
    old = data.replace(b"mmel_hf.training_args\n", b"mmel_hf.mmel_config\n")
    assert old != data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = pickle.loads(old)
    assert type(loaded) is MMELTrainingArguments and loaded.mmel_lambda_t == 0.5


def test_the_modes_are_listed_once():
    """MMEL_LOSSES is the list; the Literal of the field, the study's table order and the grouped modes agree."""
    import dataclasses
    import typing

    from mmel_hf.training_args import GROUPED_LOSSES, METHOD_NAMES, MMEL_LOSSES, MMELTrainingArguments
    from mmel_hf.workflows import study

    field = next(f for f in dataclasses.fields(MMELTrainingArguments) if f.name == "mmel_loss")
    hints = typing.get_type_hints(MMELTrainingArguments)
    assert set(typing.get_args(hints["mmel_loss"])) == set(MMEL_LOSSES) == set(field.metadata["choices"])
    assert set(study._MODES) == set(MMEL_LOSSES) == set(METHOD_NAMES) and "none" not in GROUPED_LOSSES


def test_the_public_api_is_typed_and_says_so():
    """py.typed ships (PEP 561) and MMELTrainer's constructor is typed as Trainer's, every annotation resolvable."""
    import configparser
    import typing
    from pathlib import Path

    import datasets
    import torch  # noqa: F401
    from transformers import BaseImageProcessor, DataCollator, PreTrainedModel, ProcessorMixin

    import mmel_hf.trainer as trainer_module
    from mmel_hf import MMELTrainer

    package = Path(trainer_module.__file__).parent
    assert (package / "py.typed").exists()
    setup = configparser.ConfigParser()
    setup.read(package.parent / "setup.cfg")
    assert "py.typed" in setup["options.package_data"]["mmel_hf"]
    names = dict(vars(trainer_module), datasets=datasets, PeftConfig=object, BaseImageProcessor=BaseImageProcessor,
                 DataCollator=DataCollator, PreTrainedModel=PreTrainedModel, ProcessorMixin=ProcessorMixin)  # fmt: skip
    hints = typing.get_type_hints(MMELTrainer.__init__, globalns=names)
    assert set(hints) >= {"model", "args", "data_collator", "train_dataset", "eval_dataset", "processing_class",
                          "peft_config", "model_init_kwargs"}  # fmt: skip
