"""Gather the per-task reports of benchmarks/glue_study.sh into one Markdown block for RESULTS.md.

    python benchmarks/collect_study.py [benchmarks/study_output]

Prints a Table-3 style overview (rows: methods; columns: tasks, each task's own metric, mean ± std over
seeds, ×100), the per-seed paired differences MMEL-H − DA+UNI, and every task's results.md below it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = ["none", "long", "uniform", "max", "hard", "soft", "hard-original"]


def main(root: str = "benchmarks/study_output") -> None:
    reports = {}
    for file in sorted(Path(root).glob("*/results.json")):
        reports[file.parent.name] = json.loads(file.read_text())
    if not reports:
        sys.exit(f"no results.json under {root}")
    keys = [k for k in ORDER if any(k in r["methods"] for r in reports.values())]
    titles = {k: next(r["methods"][k]["title"] for r in reports.values() if k in r["methods"]) for k in keys}
    header = "| method | " + " | ".join(f"{t} ({r['metric']})" for t, r in reports.items()) + " |"
    print(header)
    print("|" + "---|" * (len(reports) + 1))
    for key in keys:
        cells = []
        for report in reports.values():
            entry = report["methods"].get(key)
            if entry is None:
                cells.append("—")
                continue
            m = entry["metrics"][report["metric"]]
            cells.append(f"{100 * m['mean']:.2f} ± {100 * m['std']:.2f}")
        print(f"| {titles[key]} | " + " | ".join(cells) + " |")
    print()
    print("| task | MMEL-H − DA+UNI per seed | mean | MMEL-S − DA+UNI per seed | mean |")
    print("|---|---|---|---|---|")
    for task, report in reports.items():
        row = [task]
        for key in ("hard", "soft"):
            a, b = report["methods"].get(key), report["methods"].get("uniform")
            if a is None or b is None:
                row += ["—", "—"]
                continue
            metric = report["metric"]
            diffs = [100 * (x - y) for x, y in zip(a["metrics"][metric]["values"], b["metrics"][metric]["values"])]
            row += [", ".join(f"{d:+.2f}" for d in diffs), f"{sum(diffs) / len(diffs):+.2f}"]
        print("| " + " | ".join(row) + " |")
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
