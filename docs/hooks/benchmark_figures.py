"""MkDocs hook: the figures ``benchmarks/RESULTS.md`` links to (``study/<task>/curves.png``) served beside the
Benchmarks page that includes it, from where they live in the repository (never copied into ``docs/``)."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File


def on_files(files, config):
    benchmarks = Path(config["docs_dir"]).resolve().parent / "benchmarks"
    for figure in sorted(benchmarks.glob("study/**/*.png")):
        uri = figure.relative_to(benchmarks).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(figure)))
    return files
