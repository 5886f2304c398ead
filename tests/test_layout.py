"""The package layout: the root holds the drop-in library, imports point one way, no cycle, imports at the top."""

import ast
import importlib
from pathlib import Path

PACKAGE = Path(importlib.import_module("mmel_hf").__file__).parent

# What `ls mmel_hf` shows: the drop-in library (what `from mmel_hf import ...` is made of) and the rooms.
DROP_IN = {"adapters", "chunking", "collator", "da_long", "diagnostics", "errors", "model_card", "schema", "trainer",
           "training_args", "version"}  # fmt: skip
KEPT_FOR_OLD_PICKLES = {"mmel_config"}  # training_args.bin of older runs; removed in 0.2.0 (mmel_config.REMOVED_IN)
ROOMS = {"augment", "embedded", "losses", "tasks", "templates", "utils", "vision", "workflows"}

# Who may import whom, by layer: workflows -> augment, vision -> the drop-in library -> tasks -> schema, losses ->
# utils and the shared leaves. A layer imports its own and the ones listed; nothing imports a layer above it.
LAYERS = {
    "base": set(),  # utils/, errors, version, embedded/, templates/
    "contract": {"base"},  # schema (the dataset contract), losses/ (pure tensor functions)
    "tasks": {"base", "contract"},
    "library": {"base", "contract", "tasks"},  # the trainer and what it is made of
    "augment": {"base", "contract", "tasks", "library"},  # the library's adapters load its models
    "vision": {"base", "contract", "tasks", "library"},
    "workflows": {"base", "contract", "tasks", "library", "augment", "vision"},
    "package": {"library", "contract", "base"},  # mmel_hf/__init__.py: the public API
}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    name = parts[1]
    if name in ("utils", "errors", "version", "embedded", "templates"):
        return "base"
    if name in ("schema", "losses"):
        return "contract"
    if name in ("tasks", "augment", "vision", "workflows"):
        return name
    return "library"


def test_the_root_holds_the_drop_in_library_only():
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    rooms = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert modules == DROP_IN | KEPT_FOR_OLD_PICKLES
    assert rooms == ROOMS


def test_imports_point_one_way():
    graph = _imports_of_the_package()
    upward = sorted(
        f"{module} -> {other}"
        for module, imported in graph.items()
        for other in imported
        if _layer(other) != _layer(module) and _layer(other) not in LAYERS[_layer(module)]
    )
    assert upward == []


def test_the_package_imports_its_own_modules_at_the_top():
    """A function-local import of the package's own modules hid two cycles; one is allowed only with its reason in
    a ``# local import:`` comment (an optional dependency, a measured import cost)."""
    unexplained = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                own = isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("mmel_hf"))
                if own and not any("# local import:" in line for line in lines[node.lineno - 2 : node.end_lineno]):
                    unexplained.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert unexplained == []


def _imports_of_the_package():
    """Each module of mmel_hf and the package modules it imports, function-local imports included (from the source)."""
    package = PACKAGE
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


def test_arguments_pickled_under_an_old_module_name_still_load(tmp_path):
    """training_args.bin of older runs names mmel_hf.mmel_config: resuming them still unpickles (with a warning that
    names the removal version)."""
    import pickle
    import sys
    import warnings

    from mmel_hf import MMELTrainingArguments

    args = MMELTrainingArguments(output_dir=str(tmp_path), mmel_loss="soft", mmel_lambda_t=0.5, report_to="none")
    data = pickle.dumps(args, protocol=0)  # protocol 0 names classes as text lines: "cmodule\nName\n"
    old = data.replace(b"mmel_hf.training_args\n", b"mmel_hf.mmel_config\n")
    assert old != data
    sys.modules.pop("mmel_hf.mmel_config", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = pickle.loads(old)
    assert type(loaded) is MMELTrainingArguments and loaded.mmel_lambda_t == 0.5
    assert any(issubclass(w.category, DeprecationWarning) and "0.2.0" in str(w.message) for w in caught)


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


def test_no_function_of_the_library_is_over_60_lines_without_its_reason():
    """Long functions split at their seams; one that stays long says why in a ``# long:`` comment in its first lines."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                if not any("# long:" in line for line in lines[node.lineno - 1 : node.lineno + 5]):
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert long == []


def test_the_documented_layout_lists_every_module():
    """Each module of the package is named in the documentation's Layout page, under its room."""
    layout = (PACKAGE.parent / "docs" / "reference" / "layout.md").read_text()
    missing = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.stem != "__init__" and "embedded" not in path.parts and path.stem not in layout
    ]
    assert missing == []
