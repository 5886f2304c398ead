"""MkDocs hook: the command-line reference, generated from the commands' own parsers (the config dataclasses'
fields and help, grouped as ``--help`` groups them), so no flag is described twice.

A page writes ``<!-- cli: mmel-augment -->`` where a command's options go.
"""

from __future__ import annotations

import argparse
import importlib
import re

from augment_cli import COMMANDS

TRAINER_GROUP = "training (transformers.TrainingArguments)"
MARKER = re.compile(r"<!-- cli: ([\w-]+) -->")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(action) -> str:
    if action.default in (None, argparse.SUPPRESS) or isinstance(action, argparse._HelpAction):
        return ""
    value = action.default
    if isinstance(value, (list, tuple)):
        value = " ".join(map(str, value))
    return f"`{_cell(value)}`" if str(value) != "" else ""


def command_reference(command: str) -> str:
    """Markdown for one command: its description, then a table per option group."""
    parser = importlib.import_module(COMMANDS[command]).make_parser()
    lines = [f"## `{command}`", "", "```text", (parser.description or "").strip(), "```", ""]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.option_strings and a.dest not in ("help", "version")]
        if not actions:
            continue
        lines += [f"### {command}: {group.title}", ""]
        if group.title == TRAINER_GROUP:
            flags = ", ".join(f"`{a.option_strings[-1]}`" for a in actions)
            lines += [
                f"Every field of `transformers.TrainingArguments` ({len(actions)} options, with Trainer's meaning): "
                f"{flags}.",
                "",
            ]
            continue
        lines += ["| option | default | what it does |", "|---|---|---|"]
        for action in actions:
            flag = next((o for o in action.option_strings if "-" in o[2:]), action.option_strings[-1])
            choices = f" One of: {', '.join(f'`{c}`' for c in action.choices)}." if action.choices else ""
            lines.append(f"| `{flag}` | {_default(action)} | {_cell(action.help or '')}{choices} |")
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001  (MkDocs' hook signature)
    return MARKER.sub(lambda m: command_reference(m.group(1)), markdown)
