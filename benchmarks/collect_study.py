"""Gather the per-task reports of benchmarks/glue_study.sh into one Markdown block for RESULTS.md.

    python benchmarks/collect_study.py [benchmarks/study_output]

Prints a Table-3 style overview (rows: methods; columns: tasks, each task's own metric, mean ± std over
seeds, ×100), the per-seed values, the paired differences with their intervals, and every task's results.md
below it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mmel_hf.workflows.study_report import cross_task_tables


def main(root: str = "benchmarks/study_output") -> None:
    reports = {}
    for file in sorted(Path(root).glob("*/results.json")):
        reports[file.parent.name] = json.loads(file.read_text())
    if not reports:
        sys.exit(f"no results.json under {root}")
    print("\n".join(cross_task_tables(reports)))
    for task in reports:
        print()
        text = (Path(root) / task / "results.md").read_text()
        print(
            text.replace("\n## ", "\n#### ")
            .replace("# Study: ", "### Study: ")
            .replace("](curves.png)", f"](study/{task}/curves.png)")
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
