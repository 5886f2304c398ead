"""The documentation: the site builds in strict mode offline, and every Python and shell block of the README and of
``docs/`` runs as written, page by page, or says in a ``<!-- not run: reason -->`` comment why it cannot run here.

Substitutions, stated: a page runs in an empty folder of its own with the Hub off (``HF_HUB_OFFLINE=1``) and
mmel_hf's cache in that folder (``MMEL_HF_CACHE``); the user's own files a page names (:data:`USER_FILES`) are
written there first with made-up rows. Nothing in a block is rewritten.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from builders import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
RUN = {"python", "bash", "sh", "shell"}
NOT_RUN = re.compile(r"<!-- not run: (?P<reason>.*\S.*) -->")


def _reviews(rows: int, offset: int = 0) -> str:
    words = {1: "awful", 2: "dull", 3: "fine", 4: "good", 5: "superb"}
    lines = ["review,stars"]
    for i in range(rows):
        stars = (i + offset) % 5 + 1
        lines.append(f"the film was {words[stars]} and the cast was {words[stars]} too,{stars}")
    return "\n".join(lines) + "\n"


# The user's own files that a page's blocks read (as the page describes them).
USER_FILES = {
    "README.md": {"reviews/train.csv": _reviews(20), "reviews/dev.csv": _reviews(10, offset=2)},
}


def code_blocks(page: Path) -> list[dict]:
    """The fenced blocks of ``page``: language, code, first line, and the reason it is not run (None: it runs)."""
    blocks, lines, i = [], page.read_text().splitlines(), 0
    while i < len(lines):
        opening = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marked = NOT_RUN.search(before)
        blocks.append(
            {
                "language": opening.group(2),
                "code": "\n".join(line[len(opening.group(1)) :] for line in lines[i + 1 : end]) + "\n",
                "line": i + 1,
                "not_run": marked.group("reason") if marked else None,
            }
        )
        i = end + 1
    return blocks


def test_every_block_runs_or_says_why_not():
    """Every Python and shell block is either run by :func:`test_the_runnable_blocks_run_as_written` or marked, with a
    reason, right above its fence; a block without a language is not allowed (it could hide code)."""
    unlabelled = [f"{p.relative_to(REPO)}:{b['line']}" for p in PAGES for b in code_blocks(p) if not b["language"]]
    assert unlabelled == []
    counted = {"run": 0, "not run": 0}
    for page in PAGES:
        for block in code_blocks(page):
            if block["language"] in RUN:
                counted["not run" if block["not_run"] else "run"] += 1
    assert counted["run"] >= 3  # the README's quick start and its own-CSV flow (shell, then Python) at least


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if any(b["language"] in RUN and not b["not_run"] for b in code_blocks(p))],
                         ids=lambda p: str(p.relative_to(REPO)))  # fmt: skip
def test_the_runnable_blocks_run_as_written(page, tmp_path):
    """A page's unmarked blocks, in order, in one folder (a later block reads what an earlier one wrote), each in a
    fresh process as a user would paste it: Python with this interpreter, shell with bash and the console scripts
    on the PATH."""
    for name, text in USER_FILES.get(page.name, {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    scripts = Path(sys.executable).parent
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MMEL_HF_CACHE": str(tmp_path / "cache"),
           "PATH": f"{scripts}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO)}  # fmt: skip
    for number, block in enumerate(b for b in code_blocks(page) if b["language"] in RUN and not b["not_run"]):
        script = tmp_path / f"block-{number}.{'py' if block['language'] == 'python' else 'sh'}"
        script.write_text(block["code"])
        command = (
            [sys.executable, script.name] if block["language"] == "python" else ["bash", "-eo", "pipefail", script.name]
        )
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        where = f"{page.relative_to(REPO)}:{block['line']}"
        assert done.returncode == 0, f"{where}\n{done.stderr[-3000:]}"


def test_the_readmes_picture_is_what_the_losses_give():
    """The group in the README's picture: its P* are mmel_weights of its losses at λ_P = 1 (Eq. 6)."""
    import torch

    from mmel_hf.losses.reweighting import mmel_weights

    picture = next(b["code"] for b in code_blocks(REPO / "README.md") if b["language"] == "text" and "P*" in b["code"])
    rows = re.findall(r"^\s+(?:original|sample \d).*?\s(\d\.\d\d)\s+(\d\.\d\d)", picture, re.M)
    assert len(rows) == 3
    losses = torch.tensor([[float(loss) for loss, _ in rows]])
    weights = mmel_weights(losses, torch.ones_like(losses, dtype=torch.bool), 1.0)[0]
    assert [round(float(w), 2) for w in weights] == [float(p) for _, p in rows]


@pytest.mark.slow
def test_the_docs_build_strictly_offline(tmp_path):
    """``mkdocs build --strict``: a broken link, a missing page, a docstring reference that does not resolve or a
    parameter documented but not in the signature fails the suite. The CLI reference is generated from the
    commands' parsers during the build."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "-d", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (tmp_path / "reference" / "cli" / "index.html").read_text()
    for command in ("mmel-augment", "mmel-train", "mmel-study", "mmel-main", "mmel-train-vision"):
        assert f"<code>{command}</code>" in cli
    assert "--max-tokens-per-batch" in cli and "--mmel-lambda-p" in cli  # options, from the dataclasses' help
    api = (tmp_path / "reference" / "api" / "index.html").read_text()
    assert "mmel_hf.MMELTrainer" in api and "validate_augmented_dataset" in api


def test_the_readme_is_short_and_its_links_resolve():
    """The README stays a five-minute read (at most 12,000 characters; the rest is in docs/), and every link of it
    to a file of the repository names one that exists (the strict build checks the docs' own links)."""
    text = (REPO / "README.md").read_text()
    assert len(text) <= 12_000
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if not t.startswith(("http", "#"))]
    assert targets and [t for t in targets if not (REPO / t).exists()] == []
